"""Pruning and defaulting: the two ways a structural schema rewrites a custom object.

Both follow apiextensions-apiserver's algorithms (``schema/pruning``, ``schema/defaulting``):

* pruning removes every field the schema does not specify, except under
  ``x-kubernetes-preserve-unknown-fields`` (where fields the schema does specify are still pruned
  inside). ``apiVersion``, ``kind`` and ``metadata`` of the object itself and of every
  ``x-kubernetes-embedded-resource`` are left alone; their metadata is normalised separately
  (:mod:`.objectmeta`). An object or list under a field with no schema at all (``additionalProperties:
  true``) loses its content, as upstream. The removed paths are returned (``spec.foo``,
  ``spec.items[0].bar``) for ``fieldValidation=Strict``/``Warn``;
* after pruning, ``null`` values of fields that are neither nullable nor defaulted are dropped;
* defaulting fills missing (or ``null`` but not nullable) fields from their ``default``, also inside
  array items and ``additionalProperties`` values, and never below a field the schema leaves
  unspecified (preserve-unknown-fields without properties).
"""

from __future__ import annotations

from typing import Any

from kbox.api.structural.node import Node

META_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


class _Paths:
    """Where the walk is, as upstream's ``UnknownFieldPathOptions`` prints it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.unknown: list[str] = []

    def key(self, key: str) -> None:
        self.parts.append(f".{key}" if self.parts else key)

    def index(self, index: int) -> None:
        self.parts.append(f"[{index}]")

    def pop(self) -> None:
        self.parts.pop()

    def record(self, key: str) -> None:
        self.key(key)
        self.unknown.append("".join(self.parts))
        self.pop()


def prune(obj: Any, root: Node | None) -> list[str]:
    """Drop unknown fields of a whole object in place; returns their paths, sorted."""
    paths = _Paths()
    _prune(obj, root, paths, embedded_root=True)
    _prune_nulls(obj, root)
    return sorted(paths.unknown)


def prune_value(value: Any, node: Node) -> None:
    """Prune one value (a default) by its own schema, in place."""
    _prune(value, node, _Paths(), embedded_root=node.embedded)


def _prune(value: Any, node: Node | None, paths: _Paths, *, embedded_root: bool = False) -> None:
    if node is not None and node.preserve_unknown:
        _skip_prune(value, node, paths)
        return
    embedded = embedded_root or (node is not None and node.embedded)
    if isinstance(value, dict):
        if node is None:
            for key in list(value):
                paths.record(key)
                del value[key]
            return
        for key in list(value):
            if embedded and key in META_FIELDS:
                continue
            child = node.properties.get(key)
            if child is not None:
                paths.key(key)
                _prune(value[key], child, paths)
                paths.pop()
            elif node.additional is not None or node.additional_bool is not None:
                paths.key(key)
                _prune(value[key], node.additional, paths)
                paths.pop()
            else:
                if key not in META_FIELDS or paths.parts:
                    paths.record(key)
                del value[key]
    elif isinstance(value, list):
        items = node.items if node is not None else None
        for i, item in enumerate(value):
            paths.index(i)
            _prune(item, items, paths)
            paths.pop()


def _skip_prune(value: Any, node: Node | None, paths: _Paths) -> None:
    """Below preserve-unknown-fields: unknown fields stay, specified ones are still pruned inside."""
    if node is None:
        return
    if isinstance(value, dict):
        for key in list(value):
            if node.embedded and key in META_FIELDS:
                continue
            child = node.properties.get(key)
            if child is not None:
                paths.key(key)
                _prune(value[key], child, paths)
                paths.pop()
            elif node.additional is not None or node.additional_bool is not None:
                paths.key(key)
                _prune(value[key], node.additional, paths)
                paths.pop()
    elif isinstance(value, list):
        for i, item in enumerate(value):
            paths.index(i)
            _skip_prune(item, node.items, paths)
            paths.pop()


def _field_schema(node: Node | None, key: str) -> Node | None:
    if node is None:
        return None
    return node.property_or_additional(key)


def _prune_nulls(value: Any, node: Node | None) -> None:
    """``PruneNonNullableNullsWithoutDefaults``."""
    if isinstance(value, dict):
        for key in list(value):
            child = _field_schema(node, key)
            item = value[key]
            if item is None and child is not None and not child.nullable and not child.has_default:
                del value[key]
            else:
                _prune_nulls(item, child)
    elif isinstance(value, list):
        items = node.items if node is not None else None
        for item in value:
            _prune_nulls(item, items)


def _null_to_default(value: Any, node: Node | None) -> bool:
    return value is None and node is not None and not node.nullable


def apply_defaults(value: Any, node: Node | None) -> None:
    """Fill defaults in place, top-down, as upstream's ``Default``."""
    if node is None:
        return
    if isinstance(value, dict):
        for key, prop in node.properties.items():
            if not prop.has_default:
                continue
            if key not in value or _null_to_default(value[key], prop):
                value[key] = prop.default_copy()
        for key in list(value):
            prop_or_none = node.properties.get(key)
            if prop_or_none is not None:
                apply_defaults(value[key], prop_or_none)
            elif node.additional is not None or node.additional_bool is not None:
                extra = node.additional
                if _null_to_default(value[key], extra) and extra is not None:
                    value[key] = extra.default_copy() if extra.has_default else None
                apply_defaults(value[key], extra)
    elif isinstance(value, list):
        items = node.items
        for i, item in enumerate(value):
            if _null_to_default(item, items) and items is not None:
                value[i] = items.default_copy() if items.has_default else None
            apply_defaults(value[i], items)


def prune_defaults(node: Node) -> None:
    """``PruneDefaults``: a ``default`` holding fields its own schema does not specify loses them, once,
    when the schema is compiled (so every defaulted object gets the pruned value)."""
    seen: set[int] = set()

    def walk(current: Node) -> None:
        if id(current) in seen:
            return
        seen.add(id(current))
        if current.has_default:
            value = current.default_copy()
            prune_value(value, current)
            current.default = value
        for child in current.properties.values():
            walk(child)
        if current.items is not None:
            walk(current.items)
        if current.additional is not None:
            walk(current.additional)

    walk(node)
