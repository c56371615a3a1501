"""The generic REST handlers: one set for every resource type, dispatched on the parsed request.

``ResourceHandler.handle`` parses the path into a ``RequestInfo``, finds the ``GenericStore`` in the
catalog, checks the verb against what the resource offers, runs admission, and calls the store. Reads
serve the stored bytes as they are; ``Accept: ...;as=Table`` answers with a server-side printed Table.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from aiohttp import web

from kbox.api import errors, negotiation, objects, pipeline, requestinfo, streaming, tables
from kbox.api.catalog import Catalog
from kbox.api.registry import DeleteOptions, GenericStore, WatchEvent

Obj = dict[str, Any]

_COMMON = {"pretty", "timeout"}
_WRITE = {"dryRun", "fieldManager", "fieldValidation"}
_ALLOWED: dict[str, set[str]] = {
    "get": _COMMON | {"resourceVersion", "includeObject"},  # includeObject: for Tables (kubectl --sort-by)
    "list": _COMMON
    | {
        "includeObject",
        "labelSelector",
        "fieldSelector",
        "limit",
        "continue",
        "resourceVersion",
        "resourceVersionMatch",
        "watch",
    }
    | {"allowWatchBookmarks", "timeoutSeconds", "sendInitialEvents"},
    "create": _COMMON | _WRITE,
    "update": _COMMON | _WRITE,
    "patch": _COMMON | _WRITE | {"force"},
    "delete": _COMMON | {"dryRun", "gracePeriodSeconds", "propagationPolicy", "orphanDependents"},
    "deletecollection": _COMMON
    | {"dryRun", "gracePeriodSeconds", "propagationPolicy", "orphanDependents"}
    | {"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "resourceVersionMatch"},
}
_ALLOWED["watch"] = _ALLOWED["list"]


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=objects.encode(body), status=status, content_type="application/json")


def raw_response(data: bytes, status: int = 200) -> web.Response:
    return web.Response(body=data, status=status, content_type="application/json")


class ResourceHandler:
    """Serves ``/api/...`` and ``/apis/...`` resource paths for every type in the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.pipeline = pipeline.Pipeline(catalog)
        self.watch_tasks: set[asyncio.Task[Any]] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        info = requestinfo.parse(request.method, request.path, watch=_truthy(request.query.get("watch")))
        generic = self.pipeline.resolve(info.group, info.version, info.resource)
        response = await self._handle(request, info, generic)
        deprecated = generic.resource.extra.get("deprecation_warning")  # a deprecated CRD version's
        if isinstance(deprecated, str) and isinstance(response, web.Response):
            _warn(response, [deprecated])
        return response

    async def _handle(
        self, request: web.Request, info: requestinfo.RequestInfo, generic: GenericStore
    ) -> web.StreamResponse:
        query = request.query
        resource = generic.resource
        if resource.namespaced is False and info.namespace is not None:
            raise errors.StatusError("the server could not find the requested resource", 404, "NotFound")
        if info.subresource not in ("log", "exec", "attach", "portforward"):
            # The streaming subresources check their own options, as kube-apiserver does.
            _check_query(info.verb, query)
        if info.subresource is not None:
            sub = resource.subresource(info.subresource)
            if sub is None:
                raise errors.StatusError("the server could not find the requested resource", 404, "NotFound")
            return await self._subresource(request, generic, info)
        if info.verb not in resource.verbs:
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource "
                f"({info.verb} {resource.plural})"
            )
        if info.verb == "get":
            return await self._get(request, generic, info)
        if info.verb in ("list", "watch"):
            if info.verb == "watch":
                return await self._watch(request, generic, info)
            return await self._list(request, generic, info)
        if info.verb == "create":
            return await self._create(request, generic, info)
        if info.verb == "update":
            return await self._update(request, generic, info, subresource=None)
        if info.verb == "patch":
            return await self._patch(request, generic, info, subresource=None)
        if info.verb == "delete":
            return await self._delete(request, generic, info)
        return await self._delete_collection(request, generic, info)

    # -- reads -------------------------------------------------------------------------------

    async def _get(
        self, request: web.Request, generic: GenericStore, info: requestinfo.RequestInfo
    ) -> web.StreamResponse:
        assert info.name is not None
        if negotiation.wants_table(request.headers.get("Accept")):
            obj = await generic.get(info.namespace, info.name)
            return json_response(
                self._table(request, generic, [obj], obj["metadata"].get("resourceVersion", ""))
            )
        return raw_response(await generic.get_raw(info.namespace, info.name))

    async def _list(
        self, request: web.Request, generic: GenericStore, info: requestinfo.RequestInfo
    ) -> web.StreamResponse:
        query = request.query
        as_table = negotiation.wants_table(request.headers.get("Accept"))
        if not as_table and not query.get("labelSelector") and not query.get("fieldSelector"):
            return await self._list_raw(generic, info, query)
        page = await generic.list(
            info.namespace,
            selection=pipeline.selection(generic, query.get("labelSelector"), query.get("fieldSelector")),
            limit=_int(query.get("limit"), "limit"),
            continue_token=query.get("continue") or None,
            resource_version=query.get("resourceVersion", ""),
            resource_version_match=query.get("resourceVersionMatch", ""),
        )
        if negotiation.wants_table(request.headers.get("Accept")):
            return json_response(
                self._table(
                    request, generic, page.items, page.resource_version, continue_token=page.continue_token
                )
            )
        metadata: Obj = {"resourceVersion": page.resource_version}
        if page.continue_token:
            metadata["continue"] = page.continue_token
        return json_response(
            {
                "kind": generic.resource.list_kind,
                "apiVersion": generic.resource.api_version,
                "metadata": metadata,
                "items": page.items,
            }
        )

    async def _list_raw(
        self, generic: GenericStore, info: requestinfo.RequestInfo, query: Any
    ) -> web.StreamResponse:
        """An unfiltered JSON list assembled from the stored bytes, without decoding any object."""
        values, revision, token = await generic.list_raw(
            info.namespace,
            limit=_int(query.get("limit"), "limit"),
            continue_token=query.get("continue") or None,
            resource_version=query.get("resourceVersion", ""),
            resource_version_match=query.get("resourceVersionMatch", ""),
        )
        metadata: Obj = {"resourceVersion": revision}
        if token:
            metadata["continue"] = token
        resource = generic.resource
        head = objects.encode(
            {"kind": resource.list_kind, "apiVersion": resource.api_version, "metadata": metadata}
        )
        body = head[:-1] + b',"items":[' + b",".join(values) + b"]}"
        return raw_response(body)

    def _table(
        self,
        request: web.Request,
        generic: GenericStore,
        items: list[Obj],
        resource_version: str,
        *,
        continue_token: str | None = None,
        include_columns: bool = True,
    ) -> Obj:
        printer = generic.resource.extra.get("printer")  # a custom resource's printer columns
        if not isinstance(printer, tables.Printer):
            printer = tables.printer_for(generic.resource.group, generic.resource.kind)
        include = request.query.get("includeObject", "Metadata")
        return tables.to_table(
            printer,
            items,
            now=objects.now(),
            include_object=include,
            resource_version=resource_version,
            continue_token=continue_token,
            include_columns=include_columns,
        )

    async def _watch(
        self, request: web.Request, generic: GenericStore, info: requestinfo.RequestInfo
    ) -> web.StreamResponse:
        query = request.query
        selection = pipeline.selection(generic, query.get("labelSelector"), query.get("fieldSelector"))
        timeout = _int(query.get("timeoutSeconds"), "timeoutSeconds") or random.randint(1800, 3600)
        as_table = negotiation.wants_table(request.headers.get("Accept"))
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            events = await generic.watch(
                info.namespace,
                resource_version=query.get("resourceVersion", ""),
                selection=selection,
                bookmarks=_truthy(query.get("allowWatchBookmarks")),
            )
        except errors.StatusError as exc:
            if exc.code != 410:
                raise
            await response.prepare(request)
            await response.write(objects.encode({"type": "ERROR", "object": exc.status()}) + b"\n")
            return response
        await response.prepare(request)
        task = asyncio.current_task()
        if task is not None:
            self.watch_tasks.add(task)
        first = True
        batch: list[bytes] = []
        try:
            async with asyncio.timeout(timeout):
                async for event in events:
                    if as_table and event.type != "BOOKMARK":
                        frame = self._table_frame(request, generic, event, include_columns=first)
                        first = False
                    else:
                        frame = (
                            event.frame
                            or objects.encode({"type": event.type, "object": event.object}) + b"\n"
                        )
                    batch.append(frame)
                    # Events already waiting go out in one write: one chunk and one TLS record for
                    # many events instead of one each, which is most of a busy watch's cost.
                    if len(batch) >= 256 or not events.ready():
                        await response.write(b"".join(batch))
                        batch.clear()
        except TimeoutError:
            if batch:
                await response.write(b"".join(batch))
        except errors.StatusError as exc:
            await response.write(objects.encode({"type": "ERROR", "object": exc.status()}) + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            await events.aclose()
            if task is not None:
                self.watch_tasks.discard(task)
        return response

    def _table_frame(
        self, request: web.Request, generic: GenericStore, event: WatchEvent, *, include_columns: bool
    ) -> bytes:
        rv = event.object.get("metadata", {}).get("resourceVersion", "")
        table = self._table(request, generic, [event.object], rv, include_columns=include_columns)
        return objects.encode({"type": event.type, "object": table}) + b"\n"

    # -- writes ------------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> Any:
        return negotiation.decode_body(await request.read(), request.headers.get("Content-Type"))

    async def _create(
        self, request: web.Request, generic: GenericStore, info: requestinfo.RequestInfo
    ) -> web.StreamResponse:
        body = await self._body(request)
        warnings: list[str] = []
        created = await self.pipeline.create(
            generic,
            info.namespace,
            body,
            dry_run=_dry_run(request),
            field_validation=request.query.get("fieldValidation"),
            warnings=warnings,
        )
        return _warn(json_response(created, 201), warnings)

    async def _update(
        self,
        request: web.Request,
        generic: GenericStore,
        info: requestinfo.RequestInfo,
        *,
        subresource: str | None,
    ) -> web.StreamResponse:
        assert info.name is not None
        body = await self._body(request)
        warnings: list[str] = []
        result, created = await self.pipeline.update(
            generic,
            info.namespace,
            info.name,
            body,
            subresource=subresource,
            dry_run=_dry_run(request),
            field_validation=request.query.get("fieldValidation"),
            warnings=warnings,
        )
        return _warn(json_response(result, 201 if created else 200), warnings)

    async def _patch(
        self,
        request: web.Request,
        generic: GenericStore,
        info: requestinfo.RequestInfo,
        *,
        subresource: str | None,
    ) -> web.StreamResponse:
        assert info.name is not None
        patch_type = negotiation.media_type(request.headers.get("Content-Type"))
        if patch_type not in negotiation.PATCH_TYPES:
            raise errors.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(negotiation.PATCH_TYPES)}"
            )
        warnings: list[str] = []
        result, created = await self.pipeline.patch(
            generic,
            info.namespace,
            info.name,
            await self._body(request),
            patch_type,
            subresource=subresource,
            field_manager=request.query.get("fieldManager"),
            force=_truthy(request.query.get("force")),
            dry_run=_dry_run(request),
            field_validation=request.query.get("fieldValidation"),
            warnings=warnings,
        )
        return _warn(json_response(result, 201 if created else 200), warnings)

    async def _delete(
        self, request: web.Request, generic: GenericStore, info: requestinfo.RequestInfo
    ) -> web.StreamResponse:
        assert info.name is not None
        options = await self._delete_options(request)
        return json_response(await self.pipeline.delete(generic, info.namespace, info.name, options))

    async def _delete_options(self, request: web.Request) -> DeleteOptions:
        body: Obj = {}
        raw = await request.read()
        if raw.strip():
            decoded = negotiation.decode_body(raw, request.headers.get("Content-Type"))
            if not isinstance(decoded, dict):
                raise errors.bad_request("the request body must be a DeleteOptions object")
            body = decoded
        query = request.query
        grace = body.get("gracePeriodSeconds")
        if "gracePeriodSeconds" in query:
            grace = _int(query.get("gracePeriodSeconds"), "gracePeriodSeconds", allow_negative=True)
        if grace is not None and not isinstance(grace, int):
            raise errors.bad_request("gracePeriodSeconds must be an integer")
        policy = query.get("propagationPolicy") or body.get("propagationPolicy")
        if body.get("orphanDependents") is True or _truthy(query.get("orphanDependents")):
            policy = policy or "Orphan"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(f'propagationPolicy: Unsupported value: "{policy}"')
        preconditions = body.get("preconditions") or {}
        if not isinstance(preconditions, dict):
            raise errors.bad_request("preconditions must be an object")
        dry_run = _dry_run(request) or "All" in (body.get("dryRun") or [])
        return DeleteOptions(
            grace_period_seconds=grace,
            propagation_policy=policy,
            preconditions={k: str(v) for k, v in preconditions.items() if v},
            dry_run=dry_run,
        )

    async def _delete_collection(
        self, request: web.Request, generic: GenericStore, info: requestinfo.RequestInfo
    ) -> web.StreamResponse:
        options = await self._delete_options(request)
        deleted = await self.pipeline.delete_collection(
            generic,
            info.namespace,
            options,
            label_selector=request.query.get("labelSelector"),
            field_selector=request.query.get("fieldSelector"),
        )
        return json_response(
            {
                "kind": generic.resource.list_kind,
                "apiVersion": generic.resource.api_version,
                "metadata": {"resourceVersion": str(generic.store.revision)},
                "items": deleted,
            }
        )

    # -- subresources --------------------------------------------------------------------------

    async def _subresource(
        self, request: web.Request, generic: GenericStore, info: requestinfo.RequestInfo
    ) -> web.StreamResponse:
        sub = info.subresource
        allowed = generic.resource.subresource(sub or "")
        if allowed is None or info.verb not in allowed.verbs:
            raise errors.method_not_allowed(
                f"the server does not allow this method on the requested resource ({info.verb} {sub})"
            )
        if sub == "scale":
            body = await self._body(request) if info.verb in ("update", "patch") else None
            return json_response(
                await self.pipeline.scale(generic, info, body, request.headers.get("Content-Type"))
            )
        if sub == "binding":
            return json_response(await self.pipeline.bind(generic, info, await self._body(request)), 201)
        if sub == "finalize":
            return json_response(await self.pipeline.finalize(generic, info, await self._body(request)))
        if sub in ("log", "exec", "attach", "portforward"):
            assert info.name is not None
            pod = await generic.get(info.namespace, info.name)
            connection = self.catalog.node_connections.for_pod(pod)
            return await streaming.handle(request, pod=pod, subresource=sub, connection=connection)
        if sub == "token":
            return json_response(await self.pipeline.token(generic, info, await self._body(request)), 201)
        if sub == "eviction":
            return json_response(await self.pipeline.evict(generic, info, await self._body(request)), 201)
        if sub == "status":
            if info.verb == "get":
                return await self._get(request, generic, info)
            if info.verb == "update":
                return await self._update(request, generic, info, subresource="status")
            if info.verb == "patch":
                return await self._patch(request, generic, info, subresource="status")
        raise errors.method_not_allowed(
            f"the server does not allow this method on the requested resource ({info.verb} {sub})"
        )


# -- helpers -----------------------------------------------------------------------------------


def _warn(response: web.Response, warnings: list[str]) -> web.Response:
    """Warnings travel as ``Warning: 299 - "text"`` headers, which kubectl prints as ``Warning: text``."""
    for text in warnings:
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{quoted}"')
    return response


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def _int(value: str | None, name: str, *, allow_negative: bool = False) -> int:
    if value is None or value == "":
        return 0
    try:
        number = int(value)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{value}" is not an integer') from None
    if number < 0 and not allow_negative:
        raise errors.bad_request(f"invalid value for {name}: must not be negative")
    return number


def _check_query(verb: str, query: Any) -> None:
    allowed = _ALLOWED.get(verb, _COMMON)
    for key in query:
        if key not in allowed:
            raise errors.bad_request(f'unknown query parameter "{key}" for {verb}')
    dry_run = query.getall("dryRun", [])
    for value in dry_run:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    validation = query.get("fieldValidation")
    if validation is not None and validation not in ("Ignore", "Warn", "Strict", ""):
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{validation}": '
            'supported values: "Ignore", "Warn", "Strict"'
        )


def _dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])
