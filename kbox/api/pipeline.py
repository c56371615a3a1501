"""The request pipeline below the transport: checks, admission, patch engines and the generic store.

Both doors into kbox use it: the HTTP handlers (after parsing the URL, query and body) and the
in-process ``LocalClient`` (which components use without HTTP or JSON). So a write from the scheduler
and a write from kubectl go through the same kind/namespace checks, admission, defaulting,
validation and store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from kbox.api import admission, errors, eviction, fieldcheck, negotiation, objects, selectors, subresources
from kbox.api.catalog import Catalog
from kbox.api.crd import custom, definition
from kbox.api.crd import scale as custom_scale
from kbox.api.patch import apply as apply_patch
from kbox.api.patch import json_patch, merge_patch, strategic
from kbox.api.registry import DeleteOptions, GenericStore, ListPage, Selection, WatchEvent
from kbox.api.requestinfo import RequestInfo

Obj = dict[str, Any]
_Objs = list[Obj]  # ``Pipeline.list`` shadows the builtin inside the class body
_Warnings = list[str]
MAX_SELECTOR = 64 * 1024


class Pipeline:
    """Every operation of the API, on decoded arguments."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def resolve(self, group: str, version: str, plural: str) -> GenericStore:
        generic = self.catalog.lookup(group, version, plural)
        if generic is None:
            raise errors.StatusError("the server could not find the requested resource", 404, "NotFound")
        return generic

    # -- reads -------------------------------------------------------------------------------

    async def get(self, generic: GenericStore, namespace: str | None, name: str) -> Obj:
        return await generic.get(namespace, name)

    async def list(
        self,
        generic: GenericStore,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ListPage:
        return await generic.list(
            namespace,
            selection=selection(generic, label_selector, field_selector),
            limit=limit,
            continue_token=continue_token,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
        )

    async def watch(
        self,
        generic: GenericStore,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str = "",
        bookmarks: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        return await generic.watch(
            namespace,
            resource_version=resource_version,
            selection=selection(generic, label_selector, field_selector),
            bookmarks=bookmarks,
        )

    # -- writes ------------------------------------------------------------------------------

    async def create(
        self,
        generic: GenericStore,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        field_validation: str | None = "Ignore",
        warnings: _Warnings | None = None,
    ) -> Obj:
        obj = check_object(generic, body, namespace)
        _check_fields(generic, obj, field_validation, warnings)
        if warnings is not None and isinstance(generic.strategy, definition.CustomResourceDefinitionStrategy):
            warnings.extend(generic.strategy.warnings(obj))  # what kbox does not enforce in its schemas
        evaluate = generic.resource.extra.get("evaluate")
        review = generic.resource.extra.get("review")  # async (catalog, object): reviews that read the API
        if not generic.resource.stored and (callable(evaluate) or callable(review)):
            # Reviews are answered, not stored.
            problems = generic.strategy.validate(obj)
            if problems:
                raise errors.invalid_object(generic.resource.group, generic.resource.kind, "", problems)
            obj.setdefault("metadata", {}).setdefault("creationTimestamp", None)
            if callable(evaluate):
                answered: Obj = evaluate(obj)
                return answered
            assert callable(review)
            reviewed: Obj = await review(self.catalog, obj)
            return reviewed
        await admission.admit_create(self.catalog, generic, namespace, obj)
        return await generic.create(namespace, obj, dry_run=dry_run)

    async def update(
        self,
        generic: GenericStore,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str | None = "Ignore",
        warnings: _Warnings | None = None,
    ) -> tuple[Obj, bool]:
        obj = check_object(generic, body, namespace)
        _check_fields(generic, obj, field_validation, warnings)
        if warnings is not None and isinstance(generic.strategy, definition.CustomResourceDefinitionStrategy):
            warnings.extend(generic.strategy.warnings(obj))  # what kbox does not enforce in its schemas

        def replace(current: Obj | None) -> Obj:
            return obj

        return await generic.update(namespace, name, replace, subresource=subresource, dry_run=dry_run)

    async def patch(
        self,
        generic: GenericStore,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
        dry_run: bool = False,
        field_validation: str | None = "Ignore",
        warnings: _Warnings | None = None,
    ) -> tuple[Obj, bool]:
        """Apply a patch of ``patch_type`` (a PATCH content type) to the current object."""
        resource = generic.resource
        if patch_type not in negotiation.PATCH_TYPES:
            raise errors.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(negotiation.PATCH_TYPES)}"
            )
        create_missing = False
        if patch_type == negotiation.APPLY_PATCH:
            applied = check_object(generic, patch, namespace)
            _check_fields(generic, applied, field_validation, warnings)
            if not field_manager:
                raise errors.bad_request("PATCH with apply requires a fieldManager query parameter")
            manager = field_manager
            create_missing = subresource is None
            strategy = generic.strategy
            apply_schema = (
                strategy.apply_schema() if isinstance(strategy, custom.CustomResourceStrategy) else None
            )

            def transform(current: Obj | None) -> Obj:
                return apply_patch.apply(
                    without_rv(current),
                    applied,
                    manager=manager,
                    force=force,
                    group=resource.group,
                    version=resource.version,
                    kind=resource.kind,
                    now=objects.timestamp(),
                    schema=apply_schema,
                )

        else:

            def transform(current: Obj | None) -> Obj:
                if current is None:
                    raise errors.not_found(resource.group, resource.plural, name)
                seen = current.get("metadata", {}).get("resourceVersion")
                base = without_rv(current)
                assert base is not None
                if patch_type == negotiation.MERGE_PATCH:
                    patched = merge_patch.apply(base, patch)
                elif patch_type == negotiation.JSON_PATCH:
                    patched = _json_patch(base, patch, seen)
                else:
                    patched = strategic.apply(
                        base, patch, group=resource.group, version=resource.version, kind=resource.kind
                    )
                if warnings is not None:
                    warnings.clear()  # a retried transform reports afresh
                _check_fields(generic, patched, field_validation, warnings)
                return patched

        if create_missing:
            await admission.admit_create(self.catalog, generic, namespace, None)
            if admission.mutates_created(self.catalog, generic):
                created = await self._apply_create(generic, namespace, name, transform, dry_run=dry_run)
                if created is not None:
                    return created, True
        return await generic.update(
            namespace,
            name,
            transform,
            subresource=subresource,
            create_missing=create_missing,
            dry_run=dry_run,
        )

    async def _apply_create(
        self,
        generic: GenericStore,
        namespace: str | None,
        name: str,
        transform: Any,
        *,
        dry_run: bool,
    ) -> Obj | None:
        """A server-side apply that creates an object mutating admission changes (a pod's service
        account token volume): the applied object goes through admission before the store, as a POST
        would; the additions are not the applier's fields. None when the object exists (then it is an
        ordinary apply)."""
        try:
            await generic.get(namespace, name)
            return None
        except errors.StatusError as exc:
            if exc.code != 404:
                raise
        new = transform(None)
        metadata = objects.meta(new)
        if metadata.get("name") and metadata["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})"
            )
        metadata["name"] = name
        metadata.pop("resourceVersion", None)
        await admission.admit_create(self.catalog, generic, namespace, new)
        try:
            return await generic.create(namespace, new, dry_run=dry_run)
        except errors.StatusError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                return None  # created meanwhile: apply to it
            raise

    async def delete(
        self, generic: GenericStore, namespace: str | None, name: str, options: DeleteOptions | None = None
    ) -> Obj:
        obj, _ = await generic.delete(namespace, name, options)
        return obj

    async def delete_collection(
        self,
        generic: GenericStore,
        namespace: str | None,
        options: DeleteOptions,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> _Objs:
        page = await self.list(
            generic, namespace, label_selector=label_selector, field_selector=field_selector
        )
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
        return deleted

    # -- subresources --------------------------------------------------------------------------

    async def scale(self, generic: GenericStore, info: RequestInfo, body: Any, patch_type: str | None) -> Obj:
        if isinstance(generic.resource.extra.get("scale"), dict):
            # A custom resource: the Scale maps onto the replicas paths its CRD names.
            return await custom_scale.serve(generic, info, body, patch_type)
        result, _ = await subresources.scale(generic, info, body, patch_type)
        return result

    async def bind(self, generic: GenericStore, info: RequestInfo, body: Any) -> Obj:
        return await subresources.bind(generic, info, body)

    async def evict(self, generic: GenericStore, info: RequestInfo, body: Any) -> Obj:
        """``pods/<name>/eviction``: a delete that PodDisruptionBudgets may refuse."""
        return await eviction.evict(self.catalog, generic, info, body)

    async def finalize(self, generic: GenericStore, info: RequestInfo, body: Any) -> Obj:
        return await subresources.finalize(generic, info, body)

    async def token(self, generic: GenericStore, info: RequestInfo, body: Any) -> Obj:
        """``serviceaccounts/<name>/token``: a TokenRequest answered with a signed token."""
        return await subresources.token(self.catalog, generic, info, body)


def _json_patch(base: Obj, patch: Any, resource_version: str | None) -> Obj:
    """A JSON patch sees the object's resourceVersion (kopf guards its patches with a ``test`` of it);
    left as it was, it is no precondition, so a lost race is retried as for the other patch types."""
    if resource_version is not None:
        base.setdefault("metadata", {})["resourceVersion"] = resource_version
    patched: Obj = json_patch.apply(base, patch)
    metadata = patched.get("metadata")
    if isinstance(metadata, dict) and metadata.get("resourceVersion") == resource_version:
        metadata.pop("resourceVersion", None)
    return patched


def _check_fields(generic: GenericStore, obj: Obj, mode: str | None, warnings: list[str] | None) -> None:
    resource = generic.resource
    if isinstance(generic.strategy, custom.CustomResourceStrategy):
        # A custom resource: unknown fields are those its schema prunes (the strategy drops them).
        found = generic.strategy.unknown_fields(obj)
        if found and (mode or "Warn") == "Strict":
            raise errors.bad_request(
                "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in found)
            )
        if found and (mode or "Warn") == "Warn" and warnings is not None:
            warnings.extend(f'unknown field "{f}"' for f in found)
        return
    fieldcheck.check(obj, resource.group, resource.version, resource.kind, mode, warnings)


def selection(generic: GenericStore, labels: str | None, fields: str | None) -> Selection:
    """Parse a request's selectors (400 on bad syntax or on a field the kind cannot select by)."""
    for text in (labels, fields):
        if text is not None and len(text) > MAX_SELECTOR:
            raise errors.bad_request(f"selector too long: {len(text)} bytes (limit {MAX_SELECTOR})")
    result = Selection()
    if labels:
        result.labels = selectors.parse_labels(labels)
    if fields:
        parsed = selectors.parse_fields(fields)
        custom_fields = generic.resource.extra.get("selectable_fields")
        if isinstance(custom_fields, tuple) and custom_fields:
            # A CRD version's selectableFields join metadata.name and metadata.namespace.
            known = ("metadata.name", "metadata.namespace", *custom_fields)
            for r in parsed.requirements:
                if r.field not in known:
                    quoted = ", ".join(f'"{k}"' for k in known)
                    raise errors.bad_request(f'"{r.field}" is not a known field selector: only {quoted}')
            result.fields = parsed
        else:
            result.fields = selectors.check_fields(generic.resource.group, generic.resource.kind, parsed)
    return result


def check_object(generic: GenericStore, body: Any, namespace: str | None) -> Obj:
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


def without_rv(obj: Obj | None) -> Obj | None:
    """A patch base: a resourceVersion in the result should come only from the patch itself."""
    if obj is not None:
        obj.get("metadata", {}).pop("resourceVersion", None)
    return obj
