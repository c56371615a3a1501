"""Server-side field validation: unknown fields in a request body, found with the kind's schema.

kubectl leaves validation to the server when OpenAPI v3 says it can (it sends
``fieldValidation=Strict``), so a misspelled field in a manifest must come back as an error here:
``Strict`` refuses the request (400, ``strict decoding error: unknown field "spec.replicaz"``),
``Warn`` (kube-apiserver's default) accepts it with a ``Warning`` header per field, ``Ignore`` accepts it
silently. Accepted unknown fields are dropped, as decoding into kube-apiserver's typed objects drops
them. Kinds without a schema (custom resources without one) are not checked.
"""

from __future__ import annotations

from typing import Any

from kbox.api import errors, schemas

MODES = ("Ignore", "Warn", "Strict")


class _Node:
    """A schema compiled for the walk: which fields exist, what maps and lists hold."""

    __slots__ = ("extra", "free", "items", "properties")

    def __init__(self) -> None:
        self.free = False  # x-kubernetes-preserve-unknown-fields: anything goes below
        self.properties: dict[str, _Node] | None = None
        self.extra: _Node | None = None  # additionalProperties
        self.items: _Node | None = None


_compiled: dict[int, _Node] = {}


def _compile(schema: dict[str, Any]) -> _Node:
    """Compile once per schema object (recursive types such as JSONSchemaProps share nodes)."""
    schema = schemas.resolve(schema)
    key = id(schema)
    node = _compiled.get(key)
    if node is not None:
        return node
    node = _compiled[key] = _Node()
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        node.free = True
        return node
    properties = schema.get("properties")
    if properties is not None:
        node.properties = {name: _compile(child) for name, child in properties.items()}
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        node.extra = _compile(extra)
    items = schema.get("items")
    if isinstance(items, dict):
        node.items = _compile(items)
    return node


def unknown_fields(obj: Any, group: str, version: str, kind: str) -> list[str]:
    """Paths of fields the kind's schema does not know, as kube-apiserver prints them."""
    schema = schemas.schema_for(group, version, kind)
    if schema is None:
        return []
    found: list[str] = []
    _walk(obj, _compile(schema), "", found)
    return found


def check(
    obj: Any, group: str, version: str, kind: str, mode: str | None, warnings: list[str] | None
) -> None:
    """Apply ``mode`` (default Warn) to the unknown fields of ``obj``, dropping them unless refused."""
    mode = mode or "Warn"
    schema = schemas.schema_for(group, version, kind)
    if schema is None:
        return
    found: list[str] = []
    _walk(obj, _compile(schema), "", found, prune=mode != "Strict")
    if not found:
        return
    if mode == "Strict":
        raise errors.bad_request("strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in found))
    if mode == "Warn" and warnings is not None:
        warnings.extend(f'unknown field "{f}"' for f in found)


def _walk(value: Any, node: _Node, path: str, found: list[str], *, prune: bool = False) -> None:
    if node.free:
        return
    if isinstance(value, dict):
        properties = node.properties
        if properties is not None:
            for key, item in list(value.items()):
                child = properties.get(key)
                if child is None:
                    found.append(f"{path}.{key}" if path else key)
                    if prune:
                        del value[key]
                elif isinstance(item, dict | list):
                    _walk(item, child, f"{path}.{key}" if path else key, found, prune=prune)
            return
        if node.extra is not None:
            for key, item in value.items():
                if isinstance(item, dict | list):
                    _walk(item, node.extra, f"{path}[{key}]", found, prune=prune)
    elif isinstance(value, list) and node.items is not None:
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                _walk(item, node.items, f"{path}[{index}]", found, prune=prune)
