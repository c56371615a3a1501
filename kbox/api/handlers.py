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

from kbox.api import admission, errors, negotiation, objects, requestinfo, selectors, subresources, tables
from kbox.api.catalog import Catalog
from kbox.api.patch import apply as apply_patch
from kbox.api.patch import json_patch, merge_patch, strategic
from kbox.api.registry import DeleteOptions, GenericStore, Selection, WatchEvent

Obj = dict[str, Any]

_COMMON = {"pretty", "timeout"}
_WRITE = {"dryRun", "fieldManager", "fieldValidation"}
_ALLOWED: dict[str, set[str]] = {
    "get": _COMMON | {"resourceVersion"},
    "list": _COMMON
    | {
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
MAX_SELECTOR = 16 * 1024


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=objects.encode(body), status=status, content_type="application/json")


def raw_response(data: bytes, status: int = 200) -> web.Response:
    return web.Response(body=data, status=status, content_type="application/json")


class ResourceHandler:
    """Serves ``/api/...`` and ``/apis/...`` resource paths for every type in the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.watch_tasks: set[asyncio.Task[Any]] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        info = requestinfo.parse(request.method, request.path, watch=_truthy(query.get("watch")))
        generic = self.catalog.lookup(info.group, info.version, info.resource)
        if generic is None:
            raise errors.StatusError("the server could not find the requested resource", 404, "NotFound")
        resource = generic.resource
        if resource.namespaced is False and info.namespace is not None:
            raise errors.StatusError("the server could not find the requested resource", 404, "NotFound")
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
        page = await generic.list(
            info.namespace,
            selection=_selection(generic, query),
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
        selection = _selection(generic, query)
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
                    await response.write(frame)
        except TimeoutError:
            pass
        except errors.StatusError as exc:
            await response.write(objects.encode({"type": "ERROR", "object": exc.status()}) + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            await events.aclose()  # type: ignore[attr-defined]
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
        obj = _check_object(generic, body, info.namespace)
        evaluate = generic.resource.extra.get("evaluate")
        if not generic.resource.stored and callable(evaluate):
            # Reviews are answered, not stored.
            problems = generic.strategy.validate(obj)
            if problems:
                raise errors.invalid_object(generic.resource.group, generic.resource.kind, "", problems)
            obj.setdefault("metadata", {}).setdefault("creationTimestamp", None)
            return json_response(evaluate(obj), 201)
        await admission.admit_create(self.catalog, generic, info.namespace, obj)
        created = await generic.create(info.namespace, obj, dry_run=_dry_run(request))
        return json_response(created, 201)

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
        obj = _check_object(generic, body, info.namespace)

        def replace(current: Obj | None) -> Obj:
            return obj

        result, created = await generic.update(
            info.namespace, info.name, replace, subresource=subresource, dry_run=_dry_run(request)
        )
        return json_response(result, 201 if created else 200)

    async def _patch(
        self,
        request: web.Request,
        generic: GenericStore,
        info: requestinfo.RequestInfo,
        *,
        subresource: str | None,
    ) -> web.StreamResponse:
        assert info.name is not None
        kind = negotiation.media_type(request.headers.get("Content-Type"))
        if kind not in negotiation.PATCH_TYPES:
            raise errors.unsupported_media_type(
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(negotiation.PATCH_TYPES)}"
            )
        patch = await self._body(request)
        resource = generic.resource
        name = info.name
        create_missing = False
        if kind == negotiation.APPLY_PATCH:
            applied = _check_object(generic, patch, info.namespace)
            manager = request.query.get("fieldManager")
            if not manager:
                raise errors.bad_request("PATCH with apply requires a fieldManager query parameter")
            force = _truthy(request.query.get("force"))
            create_missing = subresource is None

            def transform(current: Obj | None) -> Obj:
                return apply_patch.apply(
                    _without_rv(current),
                    applied,
                    manager=manager,
                    force=force,
                    group=resource.group,
                    version=resource.version,
                    kind=resource.kind,
                    now=objects.timestamp(),
                )

        else:

            def transform(current: Obj | None) -> Obj:
                if current is None:
                    raise errors.not_found(resource.group, resource.plural, name)
                base = _without_rv(current)
                assert base is not None
                if kind == negotiation.MERGE_PATCH:
                    return merge_patch.apply(base, patch)
                if kind == negotiation.JSON_PATCH:
                    return json_patch.apply(base, patch)
                return strategic.apply(
                    base, patch, group=resource.group, version=resource.version, kind=resource.kind
                )

        if create_missing:
            await admission.admit_create(self.catalog, generic, info.namespace, None)
        result, created = await generic.update(
            info.namespace,
            name,
            transform,
            subresource=subresource,
            create_missing=create_missing,
            dry_run=_dry_run(request),
        )
        return json_response(result, 201 if created else 200)

    async def _delete(
        self, request: web.Request, generic: GenericStore, info: requestinfo.RequestInfo
    ) -> web.StreamResponse:
        assert info.name is not None
        options = await self._delete_options(request)
        obj, _ = await generic.delete(info.namespace, info.name, options)
        return json_response(obj)

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
        page = await generic.list(info.namespace, selection=_selection(generic, request.query))
        deleted = []
        for obj in page.items:
            meta = obj["metadata"]
            try:
                result, _ = await generic.delete(meta.get("namespace"), meta["name"], options)
            except errors.StatusError as exc:
                if exc.code == 404:
                    continue
                raise
            deleted.append(result)
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
            scale, code = await subresources.scale(generic, info, body, request.headers.get("Content-Type"))
            return json_response(scale, code)
        if sub == "binding":
            return json_response(await subresources.bind(generic, info, await self._body(request)), 201)
        if sub == "finalize":
            return json_response(await subresources.finalize(generic, info, await self._body(request)))
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


def _selection(generic: GenericStore, query: Any) -> Selection:
    labels = query.get("labelSelector")
    fields = query.get("fieldSelector")
    for text in (labels, fields):
        if text is not None and len(text) > MAX_SELECTOR:
            raise errors.bad_request(f"selector too long: {len(text)} bytes (limit {MAX_SELECTOR})")
    selection = Selection()
    if labels:
        selection.labels = selectors.parse_labels(labels)
    if fields:
        parsed = selectors.parse_fields(fields)
        selection.fields = selectors.check_fields(generic.resource.group, generic.resource.kind, parsed)
    return selection


def _check_object(generic: GenericStore, body: Any, namespace: str | None) -> Obj:
    """A request body must be an object of this resource's kind, in this request's namespace."""
    resource = generic.resource
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request must be a {resource.kind} object")
    # Like kube-apiserver's decoder, a body without apiVersion/kind takes them from the URL.
    api_version = body.setdefault("apiVersion", resource.api_version) or resource.api_version
    kind = body.setdefault("kind", resource.kind) or resource.kind
    body["apiVersion"], body["kind"] = api_version, kind
    if api_version != resource.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({resource.api_version})"
        )
    if kind != resource.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
        )
    metadata = body.get("metadata")
    if metadata is None:
        metadata = body["metadata"] = {}
    if not isinstance(metadata, dict):
        raise errors.bad_request("metadata must be an object")
    body_ns = metadata.get("namespace")
    if resource.namespaced and body_ns and namespace and body_ns != namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    return body


def _without_rv(obj: Obj | None) -> Obj | None:
    """A patch base: a resourceVersion in the result should come only from the patch itself."""
    if obj is not None:
        obj.get("metadata", {}).pop("resourceVersion", None)
    return obj
