"""OpenAPI documents for kubectl: ``/openapi/v3`` (validation for ``apply``/``create``, ``explain``, patch
metadata for client-side apply) and the "empty v2" answer at ``/openapi/v2``.

What kubectl v1.32 does with them (see kubectl-wire.md §4):

- ``GET /openapi/v3`` lists one document per group version (``api/v1``, ``apis/apps/v1``) with a
  ``?hash=`` URL, which kubectl fetches exactly as given.
- For ``--validate=strict`` (the default) it looks in the group version's document for a ``patch``
  operation tagged ``x-kubernetes-group-version-kind`` with the object's GVK that lists a
  ``fieldValidation`` query parameter. If found, it validates nothing itself and sends
  ``fieldValidation=Strict``; otherwise it falls back to ``/openapi/v2`` (protobuf), for which kbox
  serves a 200 with an empty body: no schemas, so client-side validation passes everything.
- ``explain`` finds the kind in ``components.schemas`` through ``x-kubernetes-group-version-kind``
  and walks ``properties``, ``allOf``/``$ref`` and ``items``.
- Client-side ``apply`` builds a strategic merge patch from the schemas' ``x-kubernetes-patch-*``
  extensions when the kind's ``patch`` operation accepts ``application/strategic-merge-patch+json``
  (built-in kinds; CRDs get JSON merge patch, as upstream).

The schemas are generated at run time from the ``kubernetes-validate`` package's v1.32 definitions
(:mod:`kbox.api.schemas`, JSON Schema flavour), converted to the OpenAPI 3.0 form kube-apiserver
publishes: ``$ref`` points into ``#/components/schemas``, a ``$ref`` with siblings (a field's
description) is wrapped in a one-element ``allOf``, ``type: [X, "null"]`` becomes ``type: X`` (upstream
marks almost nothing ``nullable``), the ``enum`` the package adds on ``apiVersion``/``kind`` is dropped
(upstream has none), and ``IntOrString``/``Quantity`` take upstream's v3 form. Each definition is
converted once and shared by every document; a document is built on its first request and cached as
encoded bytes, and adding or removing a resource (CRDs) drops only its group version's document.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from typing import Any

import msgspec
from aiohttp import web

from kbox.api import schemas
from kbox.api.resource import ResourceDef, SubresourceDef

V3_CONTENT_TYPE = "application/json"
# The dot before v1.0 matters: the "@v1.0" kubectl asks for breaks client-go's media type parsing.
V2_PROTOBUF_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

_REF_IN = "#/$defs/"
_REF_OUT = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_OBJECT_META = _META + "ObjectMeta"
_LIST_META = _META + "ListMeta"
_DELETE_OPTIONS = _META + "DeleteOptions"
_STATUS = _META + "Status"
_PATCH = _META + "Patch"

# The package spells these two as unions with null; kube-apiserver's v3 documents give them a description,
# a non-null ``oneOf`` (their OpenAPIV3OneOfTypes) and, for IntOrString, the ``int-or-string`` format, which
# is what makes ``kubectl explain`` print ``<IntOrString>`` and ``map[string]Quantity``.
_OVERRIDES: dict[str, dict[str, Any]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.",
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": 'Quantity is a fixed-point representation of a number, such as "100m", "1Gi" or "2".',
        "oneOf": [{"type": "string"}, {"type": "number"}],
    },
}

_encoder = msgspec.json.Encoder()


# --- schema conversion -------------------------------------------------------------------------------


def _convert(schema: dict[str, Any]) -> dict[str, Any]:
    """One JSON-Schema-flavoured schema (and its nested schemas) in OpenAPI 3.0 form."""
    out: dict[str, Any] = {}
    ref: str | None = None
    for key, value in schema.items():
        if key == "$ref":
            ref = _REF_OUT + value.removeprefix(_REF_IN)
        elif key in ("$schema", "$id"):
            continue
        elif key == "type":
            if isinstance(value, list):
                kinds = [t for t in value if t != "null"]
                value = kinds[0] if len(kinds) == 1 else kinds
            out["type"] = value
        elif key == "properties":
            # Keys here are field names (JSONSchemaProps has fields called "$ref" and "$schema").
            out["properties"] = {name: _convert(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _convert(value)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_convert(sub) for sub in value]
        else:  # description, required, enum, format, default, x-kubernetes-* (copied as they are)
            out[key] = value
    if ref is not None:
        if not out:
            return {"$ref": ref}
        # OpenAPI 3.0 ignores siblings of $ref; kube-apiserver wraps the ref to keep the description.
        return {"allOf": [{"$ref": ref}], **out}
    return out


@functools.cache
def component(name: str) -> dict[str, Any]:
    """The OpenAPI 3.0 schema of one package definition, converted once (callers must not mutate it)."""
    if name in _OVERRIDES:
        return _OVERRIDES[name]
    converted = _convert(schemas.definitions()[name])
    props = converted.get("properties")
    if "x-kubernetes-group-version-kind" in converted and props:
        for field in ("apiVersion", "kind"):
            if field in props and "enum" in props[field]:
                props[field] = {k: v for k, v in props[field].items() if k != "enum"}
    return converted


def _collect_refs(node: Any, into: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                into.add(value.removeprefix(_REF_OUT))
            elif key == "properties":
                for sub in value.values():
                    _collect_refs(sub, into)
            elif isinstance(value, dict | list) and not key.startswith("x-"):
                _collect_refs(value, into)
    elif isinstance(node, list):
        for item in node:
            _collect_refs(item, into)


@functools.cache
def _direct_refs(name: str) -> frozenset[str]:
    found: set[str] = set()
    _collect_refs(component(name), found)
    return frozenset(found)


def closure(names: Iterable[str]) -> list[str]:
    """The definitions named and every definition they reference, transitively, sorted."""
    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(_direct_refs(name) - seen)
    return sorted(seen)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF_OUT + name}


# --- paths --------------------------------------------------------------------------------------------


def _query(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": type_}}


_P_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "name of the object",
    "schema": {"type": "string"},
}
_P_NAMESPACE = {
    "name": "namespace",
    "in": "path",
    "required": True,
    "description": "object name and auth scope, such as for teams and projects",
    "schema": {"type": "string"},
}
_P_PRETTY = _query("pretty", "If 'true', then the output is pretty printed.")
_P_DRY_RUN = _query("dryRun", "When present, indicates that modifications should not be persisted (All).")
_P_FIELD_MANAGER = _query("fieldManager", "A name associated with the actor or entity making these changes.")
_P_FIELD_VALIDATION = _query(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request containing unknown or "
    "duplicate fields: Ignore, Warn or Strict.",
)
_P_FORCE = _query("force", "Force Apply requests (re-acquire conflicting fields).", "boolean")
_P_GRACE = _query("gracePeriodSeconds", "Seconds before the object should be deleted.", "integer")
_P_PROPAGATION = _query("propagationPolicy", "Garbage collection policy: Orphan, Background or Foreground.")
_LIST_PARAMS = [
    _query("allowWatchBookmarks", 'Request watch events with type "BOOKMARK".', "boolean"),
    _query("continue", "Set when retrieving more results from the server."),
    _query("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _query("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _query("limit", "The maximum number of responses to return for a list call.", "integer"),
    _query("resourceVersion", "A constraint on what resource versions a request may be served from."),
    _query("resourceVersionMatch", "How resourceVersion is applied to list calls."),
    _query("sendInitialEvents", "May be set together with `watch=true`.", "boolean"),
    _query("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    _query("watch", "Watch for changes to the described resources and return them as a stream.", "boolean"),
]
_WRITE_PARAMS = [_P_DRY_RUN, _P_FIELD_MANAGER, _P_FIELD_VALIDATION]
_DELETE_PARAMS = [_P_DRY_RUN, _P_GRACE, _P_PROPAGATION]
_JSON_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json")
_SMP = "application/strategic-merge-patch+json"
_APPLY = "application/apply-patch+yaml"


def _content(schema: dict[str, Any], types: Iterable[str] = _JSON_TYPES) -> dict[str, Any]:
    return {media: {"schema": schema} for media in types}


def _response(schema: dict[str, Any] | None, description: str = "OK") -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": _content(schema)}


def _camel(text: str) -> str:
    parts = text.replace("-", ".").split(".")
    return "".join(part[:1].upper() + part[1:] for part in parts if part)


def _group_ident(group: str) -> tuple[str, str]:
    """Operation id prefix and tag stem of a group, as upstream: ``Core``/``core``, ``RbacAuthorization``/
    ``rbacAuthorization``, ``StableExampleCom``/``stableExampleCom``."""
    if not group:
        return "Core", "core"
    ident = _camel(group.removesuffix(".k8s.io"))
    return ident, ident[:1].lower() + ident[1:]


class _Builder:
    """Assembles one group version's document: paths, and the names of the schemas they need."""

    def __init__(self, group: str, version: str) -> None:
        self.group = group
        self.version = version
        ident, tag = _group_ident(group)
        self.op_prefix = ident + _camel(version)
        self.tag = f"{tag}_{version}"
        self.paths: dict[str, dict[str, Any]] = {}
        self.schema_names: set[str] = set()
        self.extra_schemas: dict[str, dict[str, Any]] = {}

    def _op(
        self,
        action: str,
        op_id: str,
        description: str,
        gvk: dict[str, str],
        responses: dict[str, Any],
        params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        op: dict[str, Any] = {"tags": [self.tag], "description": description, "operationId": op_id}
        if params:
            op["parameters"] = params
        if body is not None:
            op["requestBody"] = {"content": body, "required": True}
        op["responses"] = {**responses, "401": {"description": "Unauthorized"}}
        op["x-kubernetes-action"] = action
        op["x-kubernetes-group-version-kind"] = gvk
        return op

    def _schema_of(self, group: str, version: str, kind: str) -> dict[str, Any] | None:
        name = schemas.name_for(group, version, kind)
        if name is None:
            return None
        self.schema_names.add(name)
        return _ref(name)

    def add_resource(self, resource: ResourceDef) -> None:
        kind, verbs = resource.kind, set(resource.verbs)
        gvk = {"group": resource.group, "version": resource.version, "kind": kind}
        known = schemas.name_for(resource.group, resource.version, kind)
        list_name: str | None = None
        if known is not None:
            name = known
            list_name = schemas.name_for(resource.group, resource.version, resource.list_kind)
            self.schema_names.add(name)
        else:
            name, schema = _custom_schema(resource)
            self.extra_schemas[name] = schema
        if list_name is None:
            list_name = name + "List"
            self.extra_schemas[list_name] = _list_schema(resource, name)
        else:
            self.schema_names.add(list_name)
        obj, lst = _ref(name), _ref(list_name)
        status, delete_body = _ref(_STATUS), _content(_ref(_DELETE_OPTIONS), ("*/*",))
        self.schema_names.update((_DELETE_OPTIONS, _STATUS, _PATCH))

        base = f"/apis/{resource.group}/{resource.version}" if resource.group else "/api/v1"
        if resource.namespaced:
            collection = f"{base}/namespaces/{{namespace}}/{resource.plural}"
            scope_params, suffix = [_P_NAMESPACE], f"{self.op_prefix}Namespaced{kind}"
        else:
            collection = f"{base}/{resource.plural}"
            scope_params, suffix = [], f"{self.op_prefix}{kind}"
        written = {"200": _response(obj), "201": _response(obj, "Created")}

        # The collection: list, create, delete collection.
        item: dict[str, Any] = {"parameters": [*scope_params, _P_PRETTY]}
        if "list" in verbs:
            item["get"] = self._op(
                "list",
                f"list{suffix}",
                f"list or watch objects of kind {kind}",
                gvk,
                {"200": _response(lst)},
                _LIST_PARAMS,
            )
        if "create" in verbs:
            item["post"] = self._op(
                "post",
                f"create{suffix}",
                f"create a {kind}",
                gvk,
                {**written, "202": _response(obj, "Accepted")},
                _WRITE_PARAMS,
                _content(obj, ("*/*",)),
            )
        if "deletecollection" in verbs:
            item["delete"] = self._op(
                "deletecollection",
                f"deleteCollection{suffix}",
                f"delete collection of {kind}",
                gvk,
                {"200": _response(status)},
                [*_DELETE_PARAMS, *_LIST_PARAMS],
                delete_body,
            )
        if len(item) > 1:
            self.paths[collection] = item
        if resource.namespaced and "list" in verbs:
            self.paths[f"{base}/{resource.plural}"] = {
                "parameters": [_P_PRETTY],
                "get": self._op(
                    "list",
                    f"list{self.op_prefix}{kind}ForAllNamespaces",
                    f"list or watch objects of kind {kind}",
                    gvk,
                    {"200": _response(lst)},
                    _LIST_PARAMS,
                ),
            }

        # The item: read, replace, patch, delete.
        item = {"parameters": [_P_NAME, *scope_params, _P_PRETTY]}
        if "get" in verbs:
            item["get"] = self._op(
                "get", f"read{suffix}", f"read the specified {kind}", gvk, {"200": _response(obj)}
            )
        if "update" in verbs:
            item["put"] = self._op(
                "put",
                f"replace{suffix}",
                f"replace the specified {kind}",
                gvk,
                written,
                _WRITE_PARAMS,
                _content(obj, ("*/*",)),
            )
        if "patch" in verbs:
            item["patch"] = self._patch_op(
                f"patch{suffix}",
                f"partially update the specified {kind}",
                gvk,
                obj,
                strategic=known is not None,
            )
        if "delete" in verbs:
            item["delete"] = self._op(
                "delete",
                f"delete{suffix}",
                f"delete a {kind}",
                gvk,
                {"200": _response(status), "202": _response(status, "Accepted")},
                _DELETE_PARAMS,
                delete_body,
            )
        if len(item) > 1:
            self.paths[f"{collection}/{{name}}"] = item

        for sub in resource.subresources:
            path = f"{collection}/{{name}}/{sub.name}"
            self._add_subresource(resource, sub, path, scope_params, obj, suffix)

    def _patch_op(
        self, op_id: str, description: str, gvk: dict[str, str], obj: dict[str, Any], strategic: bool
    ) -> dict[str, Any]:
        """A PATCH operation with ``fieldValidation``: what kubectl looks for to validate server-side.
        Listing strategic merge patch makes client-side apply compute one from the schemas."""
        types = [*_PATCH_TYPES, _SMP, _APPLY] if strategic else [*_PATCH_TYPES, _APPLY]
        params = [*_WRITE_PARAMS, _P_FORCE]
        written = {"200": _response(obj), "201": _response(obj, "Created")}
        return self._op("patch", op_id, description, gvk, written, params, _content(_ref(_PATCH), types))

    def _add_subresource(
        self,
        resource: ResourceDef,
        sub: SubresourceDef,
        path: str,
        scope_params: list[dict[str, Any]],
        parent: dict[str, Any],
        suffix: str,
    ) -> None:
        group = resource.group if sub.group is None else sub.group
        version = sub.version or resource.version
        gvk = {"group": group, "version": version, "kind": sub.kind}
        verbs = set(sub.verbs)
        op_suffix = suffix + _camel(sub.name)
        what = f"{sub.name} of the specified {resource.kind}"
        item: dict[str, Any] = {"parameters": [_P_NAME, *scope_params, _P_PRETTY]}
        if verbs & {"update", "patch"}:
            # An object subresource (status, scale): read, replace and patch the subresource's kind.
            target = self._schema_of(group, version, sub.kind) or parent
            written = {"200": _response(target), "201": _response(target, "Created")}
            if "get" in verbs:
                item["get"] = self._op(
                    "get", f"read{op_suffix}", f"read {what}", gvk, {"200": _response(target)}
                )
            if "update" in verbs:
                body = _content(target, ("*/*",))
                item["put"] = self._op(
                    "put", f"replace{op_suffix}", f"replace {what}", gvk, written, _WRITE_PARAMS, body
                )
            if "patch" in verbs:
                strategic = schemas.name_for(group, version, sub.kind) is not None
                item["patch"] = self._patch_op(
                    f"patch{op_suffix}", f"partially update {what}", gvk, target, strategic
                )
        else:
            # A connect subresource (exec, attach, portforward, proxy: kind *Options) or log answers with a
            # stream; an action one (binding, eviction, token) takes and returns its own kind.
            connect = sub.kind.endswith("Options")
            own = None if connect or sub.kind == resource.kind else self._schema_of(group, version, sub.kind)
            answer = own or {"type": "string"}
            if "get" in verbs:
                op_id = f"{'connectGet' if connect else 'read'}{op_suffix}"
                action = "connect" if connect else "get"
                item["get"] = self._op(action, op_id, what, gvk, {"200": _response(answer)})
            if "create" in verbs:
                op_id = f"{'connectPost' if connect else 'create'}{op_suffix}"
                action = "connect" if connect else "post"
                request = _content(own, ("*/*",)) if own else None
                responses = {"200": _response(answer), "201": _response(answer, "Created")}
                item["post"] = self._op(
                    action, op_id, f"create {what}", gvk, responses, _WRITE_PARAMS if own else None, request
                )
        if len(item) > 1:
            self.paths[path] = item

    def document(self, title_version: str) -> dict[str, Any]:
        needed = set(self.schema_names)
        for schema in self.extra_schemas.values():
            _collect_refs(schema, needed)
        components = {name: component(name) for name in closure(needed - self.extra_schemas.keys())}
        components.update(self.extra_schemas)
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": title_version},
            "paths": dict(sorted(self.paths.items())),
            "components": {
                "schemas": dict(sorted(components.items())),
                "securitySchemes": {
                    "BearerToken": {
                        "type": "apiKey",
                        "description": "Bearer Token authentication",
                        "name": "authorization",
                        "in": "header",
                    }
                },
            },
            "security": [{"BearerToken": []}],
        }


def _custom_name(resource: ResourceDef, kind: str) -> str:
    """``com.example.stable.v1.CronTab`` for ``stable.example.com/v1`` (upstream's CRD naming)."""
    reversed_group = ".".join(reversed(resource.group.split("."))) if resource.group else "io.k8s.api.core"
    return f"{reversed_group}.{resource.version}.{kind}"


def _custom_schema(resource: ResourceDef) -> tuple[str, dict[str, Any]]:
    """The schema of a kind the package does not know: the CRD's own structural schema when the resource
    carries one (``extra["openapi_v3_schema"]``, a CRD version's ``schema.openAPIV3Schema``), else an
    object that accepts any field; either way with upstream's ``apiVersion``/``kind``/``metadata``."""
    gvk = [{"group": resource.group, "version": resource.version, "kind": resource.kind}]
    given = resource.extra.get("openapi_v3_schema")
    schema: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
    if not schema:
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema.setdefault("type", "object")
    schema["properties"] = {
        **schema.get("properties", {}),
        **_type_meta_properties(),
        "metadata": {"allOf": [_ref(_OBJECT_META)], "description": "Standard object's metadata."},
    }
    schema["x-kubernetes-group-version-kind"] = gvk
    return _custom_name(resource, resource.kind), schema


def _list_schema(resource: ResourceDef, item_name: str) -> dict[str, Any]:
    return {
        "description": f"{resource.list_kind} is a list of {resource.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            **_type_meta_properties(),
            "items": {
                "type": "array",
                "description": f"List of {resource.plural}.",
                "items": _ref(item_name),
            },
            "metadata": {"allOf": [_ref(_LIST_META)], "description": "Standard list metadata."},
        },
        "x-kubernetes-group-version-kind": [
            {"group": resource.group, "version": resource.version, "kind": resource.list_kind}
        ],
    }


def _type_meta_properties() -> dict[str, Any]:
    return {
        "apiVersion": {
            "type": "string",
            "description": "APIVersion defines the versioned schema of this object.",
        },
        "kind": {"type": "string", "description": "Kind is a string value representing the REST resource."},
    }


# --- the served documents -----------------------------------------------------------------------------


def _doc_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


class OpenAPI:
    """The OpenAPI documents of the served resource types; encoded lazily and cached per group version."""

    def __init__(self, resources: Iterable[ResourceDef] = (), *, version: str = schemas.KUBERNETES_VERSION):
        self.version = version
        # Document path ("api/v1", "apis/apps/v1") -> resources by plural, in registration order.
        self._resources: dict[str, dict[str, ResourceDef]] = {}
        self._docs: dict[str, tuple[bytes, str]] = {}  # path -> (encoded document, hash)
        self._root: dict[str, Any] | None = None
        for resource in resources:
            self.add(resource)

    def add(self, resource: ResourceDef) -> None:
        path = _doc_path(resource.group, resource.version)
        self._resources.setdefault(path, {})[resource.plural] = resource
        self._invalidate(path)

    def remove(self, resource: ResourceDef) -> None:
        path = _doc_path(resource.group, resource.version)
        served = self._resources.get(path)
        if served is None or served.pop(resource.plural, None) is None:
            return
        if not served:
            del self._resources[path]
        self._invalidate(path)

    def _invalidate(self, path: str) -> None:
        self._docs.pop(path, None)
        self._root = None

    def paths(self) -> list[str]:
        """The served documents' paths (``api/v1``, ``apis/apps/v1``, ...)."""
        return list(self._resources)

    def _build(self, path: str) -> tuple[bytes, str] | None:
        cached = self._docs.get(path)
        if cached is not None:
            return cached
        served = self._resources.get(path)
        if not served:
            return None
        first = next(iter(served.values()))
        builder = _Builder(first.group, first.version)
        for resource in served.values():
            builder.add_resource(resource)
        data = _encoder.encode(builder.document(self.version))
        built = (data, hashlib.sha512(data).hexdigest().upper())
        self._docs[path] = built
        return built

    def document(self, path: str) -> dict[str, Any] | None:
        """A group version's document, decoded (for tests and tooling; the server uses the bytes)."""
        data = self.v3_document(path)
        return None if data is None else msgspec.json.decode(data)

    def v3_document(self, path: str) -> bytes | None:
        """The encoded document of ``api/v1`` or ``apis/<group>/<version>`` (leading slash allowed)."""
        built = self._build(path.strip("/"))
        return None if built is None else built[0]

    def v3_hash(self, path: str) -> str | None:
        """The document's hash: uppercase hex SHA-512 of its bytes, as kube-apiserver's ``?hash=``."""
        built = self._build(path.strip("/"))
        return None if built is None else built[1]

    def v3_root(self) -> dict[str, Any]:
        """``GET /openapi/v3``: one entry per served group version, with its hashed URL.

        The hashes are those of the documents' bytes, so the first call builds every document.
        """
        if self._root is None:
            entries: dict[str, Any] = {}
            for path in sorted(self._resources):
                digest = self.v3_hash(path)
                entries[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
            self._root = {"paths": entries}
        return self._root

    def v2(self, accept: str = "") -> tuple[bytes, str]:
        """``GET /openapi/v2``: no schemas. kubectl asks for protobuf and gets a 200 with an empty body
        (an empty ``Swagger`` message), so its client-side validation passes everything; a client that
        only accepts JSON gets an empty Swagger 2.0 document instead."""
        if accept and "protobuf" not in accept and "json" in accept:
            body = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": self.version}, "paths": {}}
            return _encoder.encode(body), "application/json"
        return b"", V2_PROTOBUF_CONTENT_TYPE

    # --- aiohttp -------------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """``/openapi/v2``, ``/openapi/v3`` and ``/openapi/v3/{path}`` for an aiohttp router."""
        return [
            web.get("/openapi/v2", self.handle_v2),
            web.get("/openapi/v3", self.handle_v3_root),
            web.get("/openapi/v3/", self.handle_v3_root),
            web.get("/openapi/v3/{path:.+}", self.handle_v3_document),
        ]

    async def handle_v2(self, request: web.Request) -> web.Response:
        body, content_type = self.v2(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def handle_v3_root(self, request: web.Request) -> web.Response:
        return web.Response(
            body=_encoder.encode(self.v3_root()),
            headers={"Content-Type": V3_CONTENT_TYPE, "Cache-Control": "no-cache, private"},
        )

    async def handle_v3_document(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"].strip("/")
        built = self._build(path)
        if built is None:
            raise web.HTTPNotFound(text=f'404 page not found: "/openapi/v3/{path}"')
        data, digest = built
        asked = request.query.get("hash")
        etag = f'"{digest}"'
        if asked is not None and asked != digest:
            # A stale hash (the document changed, e.g. a CRD was added): send the client to the new one.
            raise web.HTTPMovedPermanently(f"/openapi/v3/{path}?hash={digest}")
        cache = "public, immutable" if asked else "no-cache, private"
        headers = {"Content-Type": V3_CONTENT_TYPE, "ETag": etag, "Cache-Control": cache}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers={"ETag": etag, "Cache-Control": cache})
        return web.Response(body=data, headers=headers)
