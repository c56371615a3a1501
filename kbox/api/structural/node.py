"""One compiled node of an ``openAPIV3Schema``: the parsed form every algorithm here walks.

A CRD schema arrives as decoded JSON. Parsing it once into :class:`Node` objects checks the shapes
(``properties`` is an object, ``required`` a list of strings, ...) so that a malformed schema fails
with one ``ValueError`` at CRD-serving time instead of a ``KeyError`` deep in a request, and gives the
walkers (pruning, defaulting, validation, list types) plain attributes instead of ``dict.get`` chains.

The same class holds the value-validation sub-schemas of ``allOf``/``anyOf``/``oneOf``/``not``; in a
structural schema those may only repeat constraints, never types (see :mod:`.structural`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

_MISSING = object()

TYPES = ("object", "array", "string", "integer", "number", "boolean")


def _fail(path: str, message: str) -> ValueError:
    return ValueError(f"{path}: {message}")


def _number(raw: Obj, key: str, path: str) -> float | int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{path}.{key}", "must be a number")
    return value


def _count(raw: Obj, key: str, path: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{path}.{key}", "must be an integer")
    return value


def _flag(raw: Obj, key: str, path: str) -> bool:
    value = raw.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _fail(f"{path}.{key}", "must be a boolean")
    return value


def _strings(raw: Obj, key: str, path: str) -> list[str]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(f"{path}.{key}", "must be a list of strings")
    return list(value)


def _optional_str(raw: Obj, key: str, path: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(f"{path}.{key}", "must be a string")
    return value


@dataclass(eq=False)
class Node:
    """A parsed schema. Unset constraints are ``None`` (or empty), as the Go pointers are nil."""

    raw: Obj
    type: str = ""
    format: str = ""
    nullable: bool = False
    description: str = ""
    title: str = ""
    default: Any = _MISSING
    properties: dict[str, Node] = field(default_factory=dict)
    items: Node | None = None
    additional: Node | None = None  # additionalProperties as a schema
    additional_bool: bool | None = None  # additionalProperties: true/false
    required: list[str] = field(default_factory=list)
    enum: list[Any] | None = None
    pattern: str = ""
    maximum: float | int | None = None
    exclusive_maximum: bool = False
    minimum: float | int | None = None
    exclusive_minimum: bool = False
    multiple_of: float | int | None = None
    max_length: int | None = None
    min_length: int | None = None
    max_items: int | None = None
    min_items: int | None = None
    unique_items: bool = False
    max_properties: int | None = None
    min_properties: int | None = None
    all_of: list[Node] = field(default_factory=list)
    any_of: list[Node] = field(default_factory=list)
    one_of: list[Node] = field(default_factory=list)
    not_: Node | None = None
    preserve_unknown: bool = False
    preserve_unknown_set: bool = False  # explicitly false counts in structural checks
    embedded: bool = False
    int_or_string: bool = False
    list_type: str | None = None
    list_map_keys: list[str] = field(default_factory=list)
    map_type: str | None = None
    validations: list[Obj] = field(default_factory=list)  # x-kubernetes-validations (CEL)
    cel_rules: list[Any] | None = None  # the rules compiled by :mod:`.cel`, on first use

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING

    def default_copy(self) -> Any:
        """A fresh copy of the default: every object defaulted gets its own."""
        return copy.deepcopy(self.default)

    def json_types(self) -> list[str]:
        """The types kube-openapi checks: ``integer,string`` for int-or-string, else the one type."""
        if self.int_or_string:
            return ["integer", "string"]
        return [self.type] if self.type else []

    def property_or_additional(self, key: str) -> Node | None:
        """The schema of a field: its property, else additionalProperties' schema."""
        prop = self.properties.get(key)
        if prop is not None:
            return prop
        return self.additional


def parse(raw: Any, path: str = "openAPIV3Schema") -> Node:
    """Parse (and shape-check) one schema; raises ``ValueError`` naming the bad path."""
    if not isinstance(raw, dict):
        raise _fail(path, "must be an object")
    if "$ref" in raw:
        raise _fail(f"{path}.$ref", "is not supported")
    node = Node(raw=raw)
    node.type = _optional_str(raw, "type", path) or ""
    node.format = _optional_str(raw, "format", path) or ""
    node.description = _optional_str(raw, "description", path) or ""
    node.title = _optional_str(raw, "title", path) or ""
    node.nullable = _flag(raw, "nullable", path)
    if "default" in raw:
        node.default = raw["default"]
    properties = raw.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            raise _fail(f"{path}.properties", "must be an object")
        node.properties = {
            str(name): parse(child, f"{path}.properties[{name}]") for name, child in properties.items()
        }
    items = raw.get("items")
    if items is not None:
        if isinstance(items, list):
            raise _fail(f"{path}.items", "must be a schema object, not a list of schemas")
        node.items = parse(items, f"{path}.items")
    additional = raw.get("additionalProperties")
    if isinstance(additional, bool):
        node.additional_bool = additional
    elif additional is not None:
        node.additional = parse(additional, f"{path}.additionalProperties")
    node.required = _strings(raw, "required", path)
    enum = raw.get("enum")
    if enum is not None:
        if not isinstance(enum, list):
            raise _fail(f"{path}.enum", "must be a list")
        node.enum = list(enum)
    node.pattern = _optional_str(raw, "pattern", path) or ""
    node.maximum = _number(raw, "maximum", path)
    node.minimum = _number(raw, "minimum", path)
    node.exclusive_maximum = _flag(raw, "exclusiveMaximum", path)
    node.exclusive_minimum = _flag(raw, "exclusiveMinimum", path)
    node.multiple_of = _number(raw, "multipleOf", path)
    node.max_length = _count(raw, "maxLength", path)
    node.min_length = _count(raw, "minLength", path)
    node.max_items = _count(raw, "maxItems", path)
    node.min_items = _count(raw, "minItems", path)
    node.unique_items = _flag(raw, "uniqueItems", path)
    node.max_properties = _count(raw, "maxProperties", path)
    node.min_properties = _count(raw, "minProperties", path)
    for key, target in (("allOf", node.all_of), ("anyOf", node.any_of), ("oneOf", node.one_of)):
        subs = raw.get(key)
        if subs is None:
            continue
        if not isinstance(subs, list):
            raise _fail(f"{path}.{key}", "must be a list of schemas")
        target.extend(parse(sub, f"{path}.{key}[{i}]") for i, sub in enumerate(subs))
    if raw.get("not") is not None:
        node.not_ = parse(raw["not"], f"{path}.not")
    node.preserve_unknown_set = raw.get("x-kubernetes-preserve-unknown-fields") is not None
    node.preserve_unknown = _flag(raw, "x-kubernetes-preserve-unknown-fields", path)
    node.embedded = _flag(raw, "x-kubernetes-embedded-resource", path)
    node.int_or_string = _flag(raw, "x-kubernetes-int-or-string", path)
    node.list_type = _optional_str(raw, "x-kubernetes-list-type", path)
    node.list_map_keys = _strings(raw, "x-kubernetes-list-map-keys", path)
    node.map_type = _optional_str(raw, "x-kubernetes-map-type", path)
    validations = raw.get("x-kubernetes-validations")
    if validations is not None:
        if not isinstance(validations, list) or not all(isinstance(v, dict) for v in validations):
            raise _fail(f"{path}.x-kubernetes-validations", "must be a list of rules")
        node.validations = list(validations)
    return node
