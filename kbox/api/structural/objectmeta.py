"""``metadata`` inside custom objects: the object's own and that of embedded resources.

kube-apiserver never prunes ``metadata`` with the CRD schema. It decodes it into a Go ``ObjectMeta``
and encodes it back, which drops fields ``ObjectMeta`` does not have (reported as unknown fields for
``fieldValidation``) and, inside ``x-kubernetes-embedded-resource`` objects, empty values (every
``ObjectMeta`` field is ``omitempty``) and a null ``creationTimestamp``. An embedded resource must
also carry a string ``apiVersion`` and ``kind`` and valid metadata (``schema/objectmeta``); its
metadata is validated as ``ValidateObjectMeta`` does with the path-segment name rule.

Metadata that cannot be decoded (``labels: "x"``) is left untouched by :func:`coerce` and reported by
:func:`validate` with Go's decoding message, where kube-apiserver would refuse to decode the body.
"""

from __future__ import annotations

from typing import Any

from kbox.api import validation
from kbox.api.errors import FieldError, invalid, required
from kbox.api.structural.gofmt import GoValue
from kbox.api.structural.node import Node
from kbox.api.structural.pruning import META_FIELDS

_STRING = "string"
_INT = "int64"
_TIME = "Time"
_STRING_MAP = "map[string]string"
_STRINGS = "[]string"

OBJECT_META: dict[str, str] = {
    "name": _STRING,
    "generateName": _STRING,
    "namespace": _STRING,
    "selfLink": _STRING,
    "uid": _STRING,
    "resourceVersion": _STRING,
    "generation": _INT,
    "creationTimestamp": _TIME,
    "deletionTimestamp": _TIME,
    "deletionGracePeriodSeconds": _INT,
    "labels": _STRING_MAP,
    "annotations": _STRING_MAP,
    "ownerReferences": "[]v1.OwnerReference",
    "finalizers": _STRINGS,
    "managedFields": "[]v1.ManagedFieldsEntry",
}

OWNER_REFERENCE: dict[str, str] = {
    "apiVersion": _STRING,
    "kind": _STRING,
    "name": _STRING,
    "uid": _STRING,
    "controller": "bool",
    "blockOwnerDeletion": "bool",
}

MANAGED_FIELDS_ENTRY: dict[str, str] = {
    "manager": _STRING,
    "operation": _STRING,
    "apiVersion": _STRING,
    "time": _TIME,
    "fieldsType": _STRING,
    "fieldsV1": "v1.FieldsV1",
    "subresource": _STRING,
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _decode_error(value: Any, struct: str, key: str, go_type: str) -> str:
    return f"json: cannot unmarshal {_json_type(value)} into Go struct field {struct}.{key} of type {go_type}"


def _fits(value: Any, go_type: str) -> bool:
    if value is None:
        return True
    if go_type == _STRING:
        return isinstance(value, str)
    if go_type == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if go_type == "bool":
        return isinstance(value, bool)
    if go_type == _TIME:
        return isinstance(value, str)
    if go_type == _STRING_MAP:
        return isinstance(value, dict) and all(isinstance(v, str) or v is None for v in value.values())
    if go_type == _STRINGS:
        return isinstance(value, list) and all(isinstance(v, str) or v is None for v in value)
    if go_type == "v1.FieldsV1":
        return isinstance(value, dict)
    return isinstance(value, list)


def decode_error(meta: Any) -> str | None:
    """Why Go could not decode ``meta`` into an ``ObjectMeta``, in ``encoding/json``'s words."""
    if meta is None:
        return None
    if not isinstance(meta, dict):
        return f"json: cannot unmarshal {_json_type(meta)} into Go value of type v1.ObjectMeta"
    for key, go_type in OBJECT_META.items():
        if key in meta and not _fits(meta[key], go_type):
            return _decode_error(meta[key], "ObjectMeta", key, go_type)
    for key, fields, struct in (
        ("ownerReferences", OWNER_REFERENCE, "OwnerReference"),
        ("managedFields", MANAGED_FIELDS_ENTRY, "ManagedFieldsEntry"),
    ):
        for item in meta.get(key) or []:
            if not isinstance(item, dict) and item is not None:
                return (
                    f"json: cannot unmarshal {_json_type(item)} "
                    f"into Go struct field ObjectMeta.{key} of type v1.{struct}"
                )
            for sub, go_type in fields.items():
                if isinstance(item, dict) and sub in item and not _fits(item[sub], go_type):
                    return _decode_error(item[sub], struct, sub, go_type)
    return None


def _empty(value: Any) -> bool:
    return value is None or value in ("", 0, False) or value == {} or value == []


def _drop_unknown(
    entries: dict[str, Any], known: dict[str, str], prefix: str, unknown: list[str], *, drop_empty: bool
) -> None:
    for key in list(entries):
        if key not in known:
            unknown.append(f"{prefix}.{key}")
            del entries[key]
        elif drop_empty and _empty(entries[key]) and not (key == "controller" or key == "blockOwnerDeletion"):
            del entries[key]


def coerce_meta(meta: dict[str, Any], prefix: str, unknown: list[str], *, embedded: bool) -> None:
    """Round-trip one decodable ``metadata`` through ``ObjectMeta``'s fields, in place."""
    _drop_unknown(meta, OBJECT_META, prefix, unknown, drop_empty=embedded)
    for key, fields in (("ownerReferences", OWNER_REFERENCE), ("managedFields", MANAGED_FIELDS_ENTRY)):
        for i, item in enumerate(meta.get(key) or []):
            if isinstance(item, dict):
                _drop_unknown(item, fields, f"{prefix}.{key}[{i}]", unknown, drop_empty=embedded)


def coerce(obj: Any, root: Node | None) -> list[str]:
    """Normalise the object's own metadata and every embedded resource's; returns unknown field paths."""
    unknown: list[str] = []
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict) and decode_error(meta) is None:
            coerce_meta(meta, "metadata", unknown, embedded=False)
        _walk_embedded(obj, root, "", unknown, is_root=True)
    return sorted(unknown)


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk_embedded(value: Any, node: Node | None, path: str, unknown: list[str], *, is_root: bool) -> None:
    if node is None:
        return
    if isinstance(value, dict):
        if node.embedded and not is_root:
            meta = value.get("metadata")
            if isinstance(meta, dict) and decode_error(meta) is None:
                coerce_meta(meta, _child(path, "metadata"), unknown, embedded=True)
        for key, item in value.items():
            if (is_root or node.embedded) and key in META_FIELDS:
                continue
            child = node.properties.get(key)
            if child is not None:
                _walk_embedded(item, child, _child(path, key), unknown, is_root=False)
            elif node.additional is not None:
                _walk_embedded(item, node.additional, f"{path}[{key}]", unknown, is_root=False)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk_embedded(item, node.items, f"{path}[{i}]", unknown, is_root=False)


# --- validation of embedded resources ----------------------------------------------------------------


def _parse_group_version(api_version: str) -> str | None:
    """``schema.ParseGroupVersion``'s error, or ``None``."""
    if api_version.count("/") > 1:
        return f"unexpected GroupVersion string: {api_version}"
    return None


def _validate_embedded(value: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if "apiVersion" not in value:
        errs.append(required(_child(path, "apiVersion"), "must not be empty"))
    if "kind" not in value:
        errs.append(required(_child(path, "kind"), "must not be empty"))
    api_version = value.get("apiVersion")
    if "apiVersion" in value:
        where = _child(path, "apiVersion")
        if not isinstance(api_version, str):
            errs.append(invalid(where, GoValue(api_version), "must be a string"))
        elif not api_version:
            errs.append(invalid(where, api_version, "must not be empty"))
        elif (problem := _parse_group_version(api_version)) is not None:
            errs.append(invalid(where, api_version, problem))
    kind = value.get("kind")
    if "kind" in value:
        where = _child(path, "kind")
        if not isinstance(kind, str):
            errs.append(invalid(where, GoValue(kind), "must be a string"))
        elif not kind:
            errs.append(invalid(where, kind, "must not be empty"))
        elif problems := validation.is_dns1035_label(kind.lower()):
            detail = "may have mixed case, but should otherwise match: " + ",".join(problems)
            errs.append(invalid(where, kind, detail))
    if "metadata" in value:
        errs.extend(_validate_embedded_meta(value["metadata"], _child(path, "metadata")))
    return errs


def _validate_embedded_meta(meta: Any, path: str) -> list[FieldError]:
    problem = decode_error(meta)
    if problem is not None:
        return [invalid(path, GoValue(meta), problem)]
    meta = dict(meta or {})
    if not meta.get("name"):
        meta["name"] = "fakename"  # as upstream: generateName-only metadata must not fail on the name
    namespace = meta.get("namespace") or ""
    return validation.validate_object_meta(
        meta, namespaced=bool(namespace), name_rule=validation.path_segment_name, path=path
    )


def validate(obj: Any, root: Node | None) -> list[FieldError]:
    """Errors of every embedded resource below the object (the object's own metadata is the generic
    pipeline's to check)."""
    errs: list[FieldError] = []
    _validate(obj, root, "", errs, is_root=True)
    return errs


def _validate(value: Any, node: Node | None, path: str, errs: list[FieldError], *, is_root: bool) -> None:
    if node is None:
        return
    if isinstance(value, dict):
        if node.embedded and not is_root:
            errs.extend(_validate_embedded(value, path))
        for key, item in value.items():
            child = node.properties.get(key)
            if child is not None:
                _validate(item, child, _child(path, key), errs, is_root=False)
            elif node.additional is not None:
                _validate(item, node.additional, f"{path}[{key}]", errs, is_root=False)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _validate(item, node.items, f"{path}[{i}]", errs, is_root=False)
