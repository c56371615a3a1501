"""``x-kubernetes-list-type`` and ``x-kubernetes-map-type``: uniqueness checks and the merge shape.

kube-apiserver checks two invariants on every write (``schema/listtype``): a ``set`` list holds no
value twice and a ``map`` list holds no two items with the same key fields; each repeat is reported
once, at its first repeated index, as ``Duplicate value: <value>`` (for maps the value is the key
fields, printed as Go prints a ``map[string]interface {}``). Items of a ``map`` list must be objects.

:func:`merge_schema` gives server-side apply what it needs from a CRD schema: the shape alone
(``properties``, ``items``, ``additionalProperties``) with the list and map types. It is an OpenAPI
dict of the same form as the built-in kinds' schemas in :mod:`kbox.api.schemas`, so
:mod:`kbox.api.patch.apply` can walk it unchanged. A list without ``x-kubernetes-list-type`` in a CRD
is ``atomic`` (replaced whole), as structured-merge-diff reads CRD schemas.
"""

from __future__ import annotations

import json
from typing import Any

from kbox.api.errors import FieldError, duplicate, invalid
from kbox.api.structural.gofmt import GoValue
from kbox.api.structural.node import Node


def _marker(value: Any) -> tuple[str, str]:
    """A hashable identity that tells apart what Go's ``map[interface{}]`` keys tell apart."""
    if isinstance(value, dict | list):
        return "json", json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, bool):
        return "bool", str(value)
    if isinstance(value, int):
        return "int", str(value)
    if isinstance(value, float):
        return "float", repr(value)
    if value is None:
        return "nil", ""
    return "str", str(value)


def _repeats(values: list[Any]) -> list[int]:
    """Indices where a value is seen for the second time (later repeats are not reported again)."""
    seen: dict[tuple[str, str], int] = {}
    repeated: list[int] = []
    for i, value in enumerate(values):
        marker = _marker(value)
        seen[marker] = seen.get(marker, 0) + 1
        if seen[marker] == 2:
            repeated.append(i)
    return repeated


_UNSPECIFIED = ("unspecified", "")


def _validate_list(path: str, node: Node, items: list[Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    if node.list_type == "set":
        errs.extend(duplicate(f"{path}[{i}]", GoValue(items[i])) for i in _repeats(items))
    elif node.list_type == "map":
        errs.extend(_validate_map_list(path, node, items))
    if node.items is not None:
        for i, item in enumerate(items):
            errs.extend(_validate_value(f"{path}[{i}]", node.items, item))
    return errs


def _validate_map_list(path: str, node: Node, items: list[Any]) -> list[FieldError]:
    for i, item in enumerate(items):
        if item is not None and not isinstance(item, dict):
            return [invalid(f"{path}[{i}]", GoValue(item), "must be an object for an array of list-type map")]
    if len(items) <= 1:
        return []
    keys: list[dict[str, Any]] = []
    for item in items:
        fields = item or {}
        keys.append({k: fields[k] for k in node.list_map_keys if k in fields})
    errs: list[FieldError] = []
    for i in _repeats(keys):
        errs.append(duplicate(f"{path}[{i}]", GoValue(keys[i])))
    return errs


def _validate_value(path: str, node: Node, value: Any) -> list[FieldError]:
    if isinstance(value, list):
        return _validate_list(path, node, value)
    if isinstance(value, dict):
        return validate(value, node, path)
    return []


def validate(obj: dict[str, Any], node: Node | None, path: str = "") -> list[FieldError]:
    """Every set and map-list invariant below ``obj`` (``ValidateListSetsAndMaps``)."""
    if node is None or not isinstance(obj, dict):
        return []
    errs: list[FieldError] = []
    if node.additional is not None:
        for key, value in obj.items():
            errs.extend(_validate_value(f"{path}[{key}]", node.additional, value))
    for key, value in obj.items():
        child = node.properties.get(key)
        if child is not None:
            errs.extend(_validate_value(f"{path}.{key}" if path else key, child, value))
    return errs


def merge_schema(node: Node) -> dict[str, Any]:
    """The schema's shape and list/map types, as an OpenAPI dict for server-side apply."""
    out: dict[str, Any] = {}
    if node.int_or_string:
        out["x-kubernetes-int-or-string"] = True
    elif node.type:
        out["type"] = node.type
    if node.properties:
        out["properties"] = {name: merge_schema(child) for name, child in node.properties.items()}
    if node.items is not None:
        out["items"] = merge_schema(node.items)
    if node.additional is not None:
        out["additionalProperties"] = merge_schema(node.additional)
    if node.type == "array":
        list_type = node.list_type or "atomic"
        if list_type == "map" and not node.list_map_keys:
            list_type = "atomic"
        out["x-kubernetes-list-type"] = list_type
        if list_type == "map":
            out["x-kubernetes-list-map-keys"] = list(node.list_map_keys)
    if node.map_type:
        out["x-kubernetes-map-type"] = node.map_type
    if node.preserve_unknown:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if node.embedded:
        out["x-kubernetes-embedded-resource"] = True
    return out
