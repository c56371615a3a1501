"""Server-side apply (``application/apply-patch+yaml``) and the field ownership of ordinary writes.

Ownership lives in ``metadata.managedFields``: one entry per manager and operation, ``{"manager",
"operation": "Apply"|"Update", "apiVersion", "time", "fieldsType": "FieldsV1", "fieldsV1"}``, the
field set in structured-merge-diff's FieldsV1 format (``f:<field>``, ``k:{"name":"x"}`` for an item
of a list-map, ``v:<json>`` for a set item, ``.`` when a node is owned and has owned children).

The behaviour follows ``sigs.k8s.io/structured-merge-diff`` (``merge/update.go``, ``typed/merge.go``,
``typed/tofieldset.go``, ``typed/compare.go``, ``typed/remove.go``) and apimachinery's
``pkg/util/managedfields/internal`` managers, with the schemas of ``kbox.api.schemas``:

- lists are merged per item when their field is ``x-kubernetes-list-type: map`` (by the
  ``x-kubernetes-list-map-keys``; a missing ``protocol`` key counts as ``TCP``, its schema default) or
  ``set``; a list without a list type merges by its patch merge key (``merge`` strategy), as
  kube-openapi's schema conversion does; every other list is atomic and replaced whole;
- maps merge per key unless ``x-kubernetes-map-type: atomic`` (then replaced whole); kinds the
  schemas do not know (custom resources) are typed as their ``metadata`` plus deduced content: maps
  merge, lists are atomic;
- apply: the applied configuration is merged into the live object; the manager now owns exactly the
  fields of its configuration; fields it owned before and no longer applies are removed unless some
  manager (any operation) still owns them; a field owned by another manager whose value the apply
  changes (or adds) is a 409 Conflict with ``FieldManagerConflict`` causes, worded as kube-apiserver
  words them, unless ``force`` (ownership then moves to the applier);
- an object with no ``managedFields`` gets a ``before-first-apply`` Update entry owning its fields
  before the first apply (``skipnonapplied.go``);
- the ``kubectl`` manager upgrades from client-side apply as upstream does: conflicts on fields whose
  live value still equals the ``kubectl.kubernetes.io/last-applied-configuration`` annotation are
  forced (``lastappliedmanager.go``), and an existing annotation is rewritten to the applied
  configuration (``lastappliedupdater.go``);
- ``record_update`` gives an Update manager the fields a create, update or patch added or changed (its
  earlier fields are kept; fields removed by the write leave every manager; fields it takes leave the
  other managers), starting from the ``managedFields`` sent with the object when non-empty, as
  ``fieldmanager.go`` does; an existing object without ``managedFields`` is not tracked, so sending
  ``managedFields: []`` clears them;
- ``apiVersion``, ``kind``, ``metadata`` itself, ``metadata.name``/``namespace``/``uid``/
  ``resourceVersion``/``generation``/``creationTimestamp``/``selfLink``/``managedFields`` are never
  owned (``stripmeta.go``).

Simplifications (documented, deliberate):

- one API version per kind, so no conversion between the versions of managers' entries;
- Go's non-pointer structs always exist in upstream's typed objects, so an Update owns a struct only
  through its leaves; here no struct-typed object (a schema with ``properties``) is ever owned by an
  Update as a whole, while maps, list items and leaves are, as upstream;
- no cap of ten Update managers (``ancient-changes``), no reconciliation of sets after schema changes,
  no validation of value types against the schema (the registry's validation does that);
- ``status`` and other fields that a strategy resets are tracked like any other field: the caller
  strips what its strategy ignores;
- duplicate items in a live list-map are compared by their first occurrence only; duplicate keys in an
  applied configuration are refused (500, as upstream's typed conversion fails).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kbox.api import errors, schemas
from kbox.api.patch.merge_patch import clone, json_kind
from kbox.api.patch.strategic import field_schema, items_schema, merge_keys

Schema = dict[str, Any] | None
Path = tuple[str, ...]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY = "before-first-apply"
APPLY = "Apply"
UPDATE = "Update"
_OBJECT_META = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
_UNKNOWN_KIND: dict[str, Any] = {
    "type": "object",
    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": _OBJECT_META},
}
_KEY_DEFAULTS = {"protocol": "TCP"}
_MISSING: Any = object()


# --- field sets ----------------------------------------------------------------------------------------


class FieldSet:
    """A set of field paths, as structured-merge-diff keeps it: members, and children by path element.

    Path elements are the FieldsV1 keys (``f:spec``, ``k:{"name":"x"}``, ``v:"a"``). A node can be a
    member (owned itself) and have children at the same time.
    """

    __slots__ = ("children", "members")

    def __init__(self) -> None:
        self.members: set[str] = set()
        self.children: dict[str, FieldSet] = {}

    @classmethod
    def from_fields(cls, fields: object) -> FieldSet:
        """Parse a ``fieldsV1`` object."""
        result = cls()
        if not isinstance(fields, dict):
            return result
        for key, value in fields.items():
            if key == "." or not isinstance(value, dict):
                continue
            if not value or "." in value:
                result.members.add(key)
            child = cls.from_fields(value)
            if not child.empty():
                result.children[key] = child
        return result

    def to_fields(self) -> dict[str, Any]:
        """The ``fieldsV1`` object, keys in structured-merge-diff's order."""
        out: dict[str, Any] = {}
        for key in sorted(self.members | self.children.keys(), key=_element_order):
            child = self.children.get(key)
            if child is None:
                out[key] = {}
            else:
                inner = child.to_fields()
                out[key] = {".": {}, **inner} if key in self.members else inner
        return out

    def empty(self) -> bool:
        return not self.members and not self.children

    def insert(self, path: Path) -> None:
        if not path:
            return
        node = self
        for element in path[:-1]:
            node = node.children.setdefault(element, FieldSet())
        node.members.add(path[-1])

    def has(self, path: Path) -> bool:
        node: FieldSet | None = self
        for element in path[:-1]:
            node = node.children.get(element) if node else None
        return bool(node and path and path[-1] in node.members)

    def copy(self) -> FieldSet:
        result = FieldSet()
        result.members = set(self.members)
        result.children = {k: v.copy() for k, v in self.children.items()}
        return result

    def union(self, other: FieldSet) -> FieldSet:
        result = self.copy()
        result.members |= other.members
        for key, child in other.children.items():
            mine = result.children.get(key)
            result.children[key] = mine.union(child) if mine else child.copy()
        return result

    def difference(self, other: FieldSet) -> FieldSet:
        result = FieldSet()
        result.members = self.members - other.members
        for key, child in self.children.items():
            theirs = other.children.get(key)
            rest = child.difference(theirs) if theirs else child.copy()
            if not rest.empty():
                result.children[key] = rest
        return result

    def intersection(self, other: FieldSet) -> FieldSet:
        result = FieldSet()
        result.members = self.members & other.members
        for key, child in self.children.items():
            theirs = other.children.get(key)
            if theirs:
                both = child.intersection(theirs)
                if not both.empty():
                    result.children[key] = both
        return result

    def paths(self, prefix: Path = ()) -> Iterator[Path]:
        """Every member path, in structured-merge-diff's order."""
        for key in sorted(self.members | self.children.keys(), key=_element_order):
            if key in self.members:
                yield (*prefix, key)
            child = self.children.get(key)
            if child:
                yield from child.paths((*prefix, key))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSet) and self.to_fields() == other.to_fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FieldSet({self.to_fields()!r})"


def _element_order(element: str) -> tuple[int, str]:
    return ("fkvi".find(element[:1]), element[2:])


def path_string(path: Path) -> str:
    """A path as structured-merge-diff prints it: ``.spec.containers[name="nginx"].image``."""
    parts: list[str] = []
    for element in path:
        kind, text = element[:1], element[2:]
        if kind == "f":
            parts.append("." + text)
        elif kind == "k":
            keys = json.loads(text)
            parts.append("[" + ",".join(f"{k}={_value_string(v)}" for k, v in keys.items()) + "]")
        elif kind == "v":
            parts.append(f"[={_value_string(json.loads(text))}]")
        else:
            parts.append(f"[{text}]")
    return "".join(parts)


def _value_string(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return _go_json(value)


def _go_json(value: Any) -> str:
    """Compact JSON as Go's ``encoding/json`` writes it (sorted keys, HTML characters escaped)."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_STRIPPED = FieldSet()
_STRIPPED.members.update({"f:apiVersion", "f:kind", "f:metadata"})
_STRIPPED.children["f:metadata"] = FieldSet()
_STRIPPED.children["f:metadata"].members.update(
    "f:" + name
    for name in (
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    )
)


# --- schema shapes -------------------------------------------------------------------------------------


def _root_schema(group: str, version: str, kind: str) -> dict[str, Any]:
    return schemas.schema_for(group, version, kind) or _UNKNOWN_KIND


def _is_atomic_map(schema: Schema) -> bool:
    if schema is None:
        return False
    own = schema.get("x-kubernetes-map-type")
    if own is not None:
        return bool(own == "atomic")
    return bool(schemas.resolve(schema).get("x-kubernetes-map-type") == "atomic")


def _declares(schema: Schema, key: str) -> bool:
    if schema is None:
        return False
    properties = schemas.resolve(schema).get("properties")
    return isinstance(properties, dict) and key in properties


def _is_struct(schema: Schema) -> bool:
    return schema is not None and isinstance(schemas.resolve(schema).get("properties"), dict)


def _list_type(schema: Schema) -> tuple[str, tuple[str, ...]]:
    """``("map", keys)``, ``("set", ())`` or ``("atomic", ())`` for a list field."""
    if schema is None:
        return "atomic", ()
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
        return ("map", keys) if keys else ("atomic", ())
    if list_type == "set":
        return "set", ()
    if list_type is not None:
        return "atomic", ()
    strategies, merge_key = merge_keys(schema)
    if "merge" in strategies:
        return ("map", (merge_key,)) if merge_key else ("set", ())
    return "atomic", ()


class _TypedError(Exception):
    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _item_element(item: Any, list_type: str, keys: tuple[str, ...], path: Path, index: int) -> str:
    if list_type == "set":
        if isinstance(item, dict | list):
            raise _TypedError(
                path,
                f"element {index}: associative list without keys has an element that's a "
                f"{'map' if isinstance(item, dict) else 'list'} type",
            )
        return "v:" + _go_json(item)
    if not isinstance(item, dict):
        raise _TypedError(path, f"element {index}: associative list with keys may not have non-map elements")
    found = {}
    for key in keys:
        if key in item and item[key] is not None:
            found[key] = item[key]
        elif key in _KEY_DEFAULTS:
            found[key] = _KEY_DEFAULTS[key]
    if not found:
        names = "[" + " ".join(json.dumps(k) for k in keys) + "]"
        raise _TypedError(
            path,
            f"element {index}: associative list with keys has an element that omits all key fields {names} "
            "(and doesn't have default values for any key fields)",
        )
    return "k:" + _go_json(found)


def _elements(values: list[Any], schema: Schema, path: Path, *, strict: bool = False) -> list[str] | None:
    """The path element of each item of a non-atomic list, or ``None`` to treat the list as atomic."""
    list_type, keys = _list_type(schema)
    if list_type == "atomic":
        return None
    try:
        elements = [_item_element(item, list_type, keys, path, i) for i, item in enumerate(values)]
    except _TypedError:
        if strict:
            raise
        return None
    if strict and len(set(elements)) != len(elements):
        seen: set[str] = set()
        for element in elements:
            if element in seen:
                raise _TypedError(path, f"duplicate entries for key {path_string((element,))}")
            seen.add(element)
    return elements


# --- the typed operations ------------------------------------------------------------------------------


def field_set(value: Any, schema: Schema, path: Path = (), *, strict: bool = False) -> FieldSet:
    """The fields set by ``value`` (structured-merge-diff's ``ToFieldSet``)."""
    out = FieldSet()
    _collect(value, schema, path, out, strict)
    return out


def _collect(value: Any, schema: Schema, path: Path, out: FieldSet, strict: bool) -> None:
    if isinstance(value, dict):
        if _is_atomic_map(schema):
            out.insert(path)
            return
        for key, child in value.items():
            child_path = (*path, "f:" + key)
            _collect(child, field_schema(schema, key), child_path, out, strict)
            if child is None or child == {} or not _declares(schema, key):
                out.insert(child_path)
    elif isinstance(value, list):
        elements = _elements(value, schema, path, strict=strict)
        if elements is None:
            out.insert(path)
            return
        sub = items_schema(schema)
        for element, item in zip(elements, value, strict=True):
            _collect(item, sub, (*path, element), out, strict)
            out.insert((*path, element))
    else:
        out.insert(path)


def merge(live: Any, config: Any, schema: Schema) -> Any:
    """The applied configuration merged into the live value (structured-merge-diff's ``Merge``)."""
    if isinstance(live, dict) and isinstance(config, dict) and not _is_atomic_map(schema):
        out: dict[str, Any] = {}
        for key, value in live.items():
            if key not in config:
                out[key] = clone(value)
            elif config[key] is not None:
                out[key] = merge(value, config[key], field_schema(schema, key))
        for key, value in config.items():
            if key not in live and value is not None:
                out[key] = clone(value)
        return out
    if isinstance(live, list) and isinstance(config, list) and (live or config):
        live_elements = _elements(live, schema, ())
        config_elements = _elements(config, schema, ())
        if live_elements is not None and config_elements is not None:
            return _merge_items(live, config, live_elements, config_elements, items_schema(schema))
    return clone(config)


def _merge_items(
    live: list[Any], config: list[Any], live_pes: list[str], config_pes: list[str], schema: Schema
) -> list[Any]:
    """Merge two list-maps or sets: live-only items keep their places, applied items their order."""
    by_config = dict(zip(config_pes, config, strict=True))
    by_live: dict[str, Any] = {}
    for element, item in zip(live_pes, live, strict=True):
        by_live[element] = _MISSING if element in by_live else item
    shared = iter([pe for pe in config_pes if pe in by_live])
    next_shared = next(shared, None)
    merged: set[str] = set()
    out: list[Any] = []

    def take(element: str) -> None:
        merged.add(element)
        old = by_live.get(element, _MISSING)
        new = by_config[element]
        out.append(clone(new) if old is _MISSING else merge(old, new, schema))

    li = ri = 0
    while li < len(live_pes) or ri < len(config_pes):
        if li < len(live_pes) and ri < len(config_pes):
            element = live_pes[li]
            if element == config_pes[ri]:
                take(element)
                li += 1
                ri += 1
                next_shared = next(shared, None)
                continue
            if element in by_config and next_shared is not None and next_shared != element:
                li += 1
                continue
        if li < len(live_pes):
            element = live_pes[li]
            if element not in by_config:
                out.append(clone(live[li]))
                li += 1
                continue
            if element in merged:
                li += 1
        if ri < len(config_pes):
            element = config_pes[ri]
            take(element)
            ri += 1
            if next_shared is not None and next_shared == element:
                next_shared = next(shared, None)
    return out


@dataclass
class Comparison:
    """What changed between two objects, as field sets."""

    added: FieldSet = field(default_factory=FieldSet)
    modified: FieldSet = field(default_factory=FieldSet)
    removed: FieldSet = field(default_factory=FieldSet)


def compare(old: Any, new: Any, schema: Schema) -> Comparison:
    """The fields ``new`` adds, modifies and removes relative to ``old`` (``typed.Compare``)."""
    result = Comparison()
    _compare(old, new, schema, (), result)
    return result


def _compare(old: Any, new: Any, schema: Schema, path: Path, result: Comparison) -> None:
    old_missing, new_missing = old is _MISSING, new is _MISSING
    shape = _shape(old if new_missing else new)
    if not old_missing and not new_missing and _shape(old) != shape:
        _leaf(old, new, path, result)
    elif shape == "object" and not _is_atomic_map(schema):
        left: dict[str, Any] = {} if old_missing else old
        right: dict[str, Any] = {} if new_missing else new
        if not left and not right:
            _leaf(old, new, path, result)
            return
        for key in {**left, **right}:
            child_path = (*path, "f:" + key)
            _compare(
                left.get(key, _MISSING),
                right.get(key, _MISSING),
                field_schema(schema, key),
                child_path,
                result,
            )
        # An Update never takes a struct as a whole (Go's non-pointer structs always exist upstream).
        if new_missing or not (_is_struct(schema) and path and path[-1].startswith("f:")):
            _ends(old_missing, new_missing, path, result)
    elif shape == "scalar" or not _compare_items(old, new, schema, path, result):
        _leaf(old, new, path, result)


def _compare_items(old: Any, new: Any, schema: Schema, path: Path, result: Comparison) -> bool:
    """Compare two lists item by item; ``False`` when they are atomic (or both empty)."""
    left: list[Any] = [] if old is _MISSING else old
    right: list[Any] = [] if new is _MISSING else new
    left_pes = _elements(left, schema, path)
    right_pes = _elements(right, schema, path)
    if not (left or right) or left_pes is None or right_pes is None:
        return False
    sub = items_schema(schema)
    lefts: dict[str, Any] = {}
    for element, item in zip(left_pes, left, strict=True):
        lefts.setdefault(element, item)
    rights: dict[str, Any] = {}
    for element, item in zip(right_pes, right, strict=True):
        rights.setdefault(element, item)
    for element in {**lefts, **rights}:
        _compare(lefts.get(element, _MISSING), rights.get(element, _MISSING), sub, (*path, element), result)
    _ends(old is _MISSING, new is _MISSING, path, result)
    return True


def _ends(old_missing: bool, new_missing: bool, path: Path, result: Comparison) -> None:
    if old_missing:
        result.added.insert(path)
    elif new_missing:
        result.removed.insert(path)


def _leaf(old: Any, new: Any, path: Path, result: Comparison) -> None:
    if old is _MISSING:
        result.added.insert(path)
    elif new is _MISSING:
        result.removed.insert(path)
    elif not _equal(old, new):
        result.modified.insert(path)


def _shape(value: Any) -> str:
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "scalar"


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return bool(a == b)


def remove(value: Any, fields: FieldSet, schema: Schema) -> Any:
    """``value`` without the members of ``fields`` (and their subtrees); ``_MISSING`` when emptied."""
    if isinstance(value, dict) and not _is_atomic_map(schema):
        out: dict[str, Any] = {}
        for key, child in value.items():
            element = "f:" + key
            if element in fields.members:
                continue
            inner = fields.children.get(element)
            if inner is None:
                out[key] = child
                continue
            kept = remove(child, inner, field_schema(schema, key))
            if kept is not _MISSING:
                out[key] = kept
        return out if out else _MISSING
    if isinstance(value, list):
        elements = _elements(value, schema, ())
        if elements is None:
            return value
        sub = items_schema(schema)
        items: list[Any] = []
        for element, item in zip(elements, value, strict=True):
            if element in fields.members:
                continue
            inner = fields.children.get(element)
            if inner is not None:
                kept = remove(item, inner, sub)
                item = {} if kept is _MISSING else kept
            items.append(item)
        return items if items else _MISSING
    return value


def with_named_fields(fields: FieldSet, schema: Schema) -> FieldSet:
    """``fields`` plus, as members, the struct fields on the way to its members
    (``EnsureNamedFieldsAreMembers``): owning ``.spec.strategy.type`` owns ``.spec.strategy``."""
    result = FieldSet()
    result.members = set(fields.members)
    for element, child in fields.children.items():
        if element.startswith("f:"):
            name = element[2:]
            if _declares(schema, name):
                result.members.add(element)
            sub = field_schema(schema, name)
        elif element.startswith("k:"):
            sub = items_schema(schema)
        else:
            sub = None
        result.children[element] = with_named_fields(child, sub)
    return result


# --- managers ------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    fields: FieldSet
    time: str | None = None
    subresource: str = ""

    @property
    def identity(self) -> str:
        """The manager identifier (the entry without fields and time; Apply also without apiVersion)."""
        ident: dict[str, str] = {"manager": self.manager, "operation": self.operation}
        if self.operation != APPLY and self.api_version:
            ident["apiVersion"] = self.api_version
        if self.subresource:
            ident["subresource"] = self.subresource
        return json.dumps(ident, separators=(",", ":"))

    def printed(self) -> str:
        """The manager as conflict messages print it."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text

    def encode(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            entry["time"] = self.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = self.fields.to_fields()
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


Managers = dict[str, _Entry]


def _decode(entries: object) -> Managers:
    managers: Managers = {}
    if not isinstance(entries, list):
        return managers
    for raw in entries:
        if not isinstance(raw, dict) or raw.get("operation") not in (APPLY, UPDATE):
            continue
        if not raw.get("apiVersion") or raw.get("fieldsType") != "FieldsV1":
            continue
        entry = _Entry(
            manager=str(raw.get("manager") or ""),
            operation=raw["operation"],
            api_version=str(raw["apiVersion"]),
            fields=FieldSet.from_fields(raw.get("fieldsV1")),
            time=raw.get("time") if isinstance(raw.get("time"), str) else None,
            subresource=str(raw.get("subresource") or ""),
        )
        managers[entry.identity] = entry
    return managers


def _encode(managers: Managers) -> list[dict[str, Any]]:
    def order(entry: _Entry) -> tuple[str, int, str, str, str]:
        return (entry.operation, _seconds(entry.time), entry.manager, entry.api_version, entry.subresource)

    return [entry.encode() for entry in sorted(managers.values(), key=order)]


def _seconds(time: str | None) -> int:
    if not time:
        return 0
    try:
        return int(datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _split(obj: dict[str, Any] | None) -> tuple[dict[str, Any], object]:
    """A copy of ``obj`` without ``metadata.managedFields``, and those managed fields."""
    if obj is None:
        return {}, None
    body = clone(obj)
    metadata = body.get("metadata")
    entries = metadata.pop("managedFields", None) if isinstance(metadata, dict) else None
    return body, entries


def _store(obj: dict[str, Any], managers: Managers) -> None:
    metadata = obj.setdefault("metadata", {})
    if managers:
        metadata["managedFields"] = _encode(managers)
    else:
        metadata.pop("managedFields", None)


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


# --- server-side apply ---------------------------------------------------------------------------------


class _Conflicts(Exception):
    def __init__(self, found: list[tuple[_Entry, Path]]) -> None:
        super().__init__("conflicts")
        self.found = found


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    group: str,
    version: str,
    kind: str,
    now: str,
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The object after ``manager`` applies the configuration ``applied`` to ``live`` (``None``: create).

    The result carries the updated ``metadata.managedFields``; the inputs are not modified. ``schema``:
    the kind's shape when the built-in schemas do not know it (a custom resource's list and map types).
    """
    api_version = f"{group}/{version}" if group else version
    if not isinstance(applied, dict):
        raise errors.bad_request(
            f"error decoding patch: json: cannot unmarshal {json_kind(applied)} into Go value of type "
            "map[string]interface {}"
        )
    if applied.get("apiVersion") != api_version:
        raise errors.bad_request(
            "Incorrect version specified in apply patch. Specified patch version: "
            f"{applied.get('apiVersion') or ''}, expected: {api_version}"
        )
    metadata = applied.get("metadata")
    if isinstance(metadata, dict) and metadata.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    schema = schema or _root_schema(group, version, kind)
    try:
        applied_set = field_set(applied, schema, strict=True)
    except _TypedError as exc:
        raise errors.StatusError(
            f"failed to create typed patch object ({_describe(applied, group, version, kind)}): "
            f"{path_string(exc.path)}: {exc.message}",
            500,
            "",
        ) from exc

    body, entries = _split(live)
    managers = _decode(entries)
    manager = manager or "unknown"
    me = _Entry(manager, APPLY, api_version, applied_set)
    if live is not None and not managers:
        before = _Entry(BEFORE_FIRST_APPLY, UPDATE, api_version, _strip(compare({}, body, schema).added), now)
        if not before.fields.empty():
            managers[before.identity] = before

    try:
        result, managers = _apply(body, applied, me, _copy_managers(managers), force, schema)
    except _Conflicts as conflicts:
        found = conflicts.found
        if manager == "kubectl":
            allowed = _allowed_by_last_applied(body, schema, api_version)
            if allowed is not None:
                found = [(entry, path) for entry, path in found if not allowed.has(path)]
        if found:
            raise _conflict_error(found) from None
        result, managers = _apply(body, applied, me, _copy_managers(managers), True, schema)

    if manager == "kubectl" and _last_applied(result):
        annotations = result.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[LAST_APPLIED] = _last_applied_value(applied)
    if not _equal(result, body) and me.identity in managers:
        managers[me.identity].time = now
    _store(result, managers)
    return result


def _apply(
    body: dict[str, Any], applied: dict[str, Any], me: _Entry, managers: Managers, force: bool, schema: Schema
) -> tuple[dict[str, Any], Managers]:
    merged = merge(body, applied, schema)
    previous = managers.get(me.identity)
    managers[me.identity] = _Entry(
        me.manager, APPLY, me.api_version, me.fields, previous.time if previous else None
    )
    if previous is not None and not previous.fields.empty():
        owned = FieldSet()
        for entry in managers.values():
            owned = owned.union(entry.fields)
        stale = with_named_fields(previous.fields, schema).difference(with_named_fields(owned, schema))
        pruned = remove(merged, stale, schema)
        merged = {} if pruned is _MISSING else pruned

    changes = compare(body, merged, schema)
    changed = changes.modified.union(changes.added)
    found: list[tuple[_Entry, Path]] = []
    taken: dict[str, FieldSet] = {}
    for identity, entry in managers.items():
        if identity == me.identity:
            continue
        overlap = entry.fields.intersection(changed)
        if not overlap.empty():
            taken[identity] = overlap
            found.extend((entry, path) for path in overlap.paths())
    if found and not force:
        raise _Conflicts(sorted(found, key=lambda pair: (pair[0].identity, _path_order(pair[1]))))
    for identity, entry in list(managers.items()):
        if identity == me.identity:
            continue
        entry.fields = entry.fields.difference(taken.get(identity, FieldSet())).difference(changes.removed)
        if entry.fields.empty():
            del managers[identity]
    mine = managers[me.identity]
    mine.fields = _strip(mine.fields)
    if mine.fields.empty():
        del managers[me.identity]
    return merged, managers


def _conflict_error(found: list[tuple[_Entry, Path]]) -> errors.StatusError:
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {entry.printed()}",
            "field": path_string(path),
        }
        for entry, path in found
    ]
    if len(found) == 1:
        entry, path = found[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.printed()}: {path_string(path)}"
    else:
        lines: list[str] = []
        current = None
        for entry, path in found:
            if entry.identity != current:
                current = entry.identity
                lines.append(f"conflicts with {entry.printed()}:")
            lines.append(f"- {path_string(path)}")
        message = f"Apply failed with {len(found)} conflicts: " + "\n".join(lines)
    return errors.StatusError(message, 409, "Conflict", {"causes": causes})


def _path_order(path: Path) -> list[tuple[int, str]]:
    return [_element_order(element) for element in path]


def _strip(fields: FieldSet) -> FieldSet:
    return fields.difference(_STRIPPED)


def _copy_managers(managers: Managers) -> Managers:
    return {
        k: _Entry(e.manager, e.operation, e.api_version, e.fields.copy(), e.time, e.subresource)
        for k, e in managers.items()
    }


def _describe(obj: dict[str, Any], group: str, version: str, kind: str) -> str:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}; {group}/{version}, Kind={kind}"


def _last_applied(body: dict[str, Any]) -> str:
    metadata = body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    value = annotations.get(LAST_APPLIED) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else ""


def _last_applied_value(applied: dict[str, Any]) -> str:
    config = clone(applied)
    metadata = config.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("annotations"), dict):
        metadata["annotations"].pop(LAST_APPLIED, None)
    return _go_json(config) + "\n"


def _allowed_by_last_applied(body: dict[str, Any], schema: Schema, api_version: str) -> FieldSet | None:
    """The fields client-side apply set that still hold their applied value: taking them is no conflict."""
    text = _last_applied(body)
    if not text:
        return None
    try:
        last = json.loads(text)
        if not isinstance(last, dict) or last.get("apiVersion") != api_version:
            return None
        fields = field_set(last, schema, strict=True)
    except (ValueError, _TypedError):
        return None
    changes = compare(last, body, schema)
    return fields.difference(changes.modified).difference(changes.added).difference(changes.removed)


# --- ordinary writes -----------------------------------------------------------------------------------


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    subresource: str = "",
) -> None:
    """Record in ``new["metadata"]["managedFields"]`` the fields an Update by ``manager`` took.

    ``old`` is the object before the write (``None`` for a create), ``new`` the object to store.
    """
    metadata = new.setdefault("metadata", {})
    sent = metadata.get("managedFields")
    if isinstance(sent, list) and (not sent or (len(sent) == 1 and sent[0] == {})):
        managers: Managers = {}
    else:
        managers = _decode(sent) if isinstance(sent, list) and sent else {}
        if not managers and old is not None:
            managers = _decode((old.get("metadata") or {}).get("managedFields"))
    if old is not None and not managers:
        metadata.pop("managedFields", None)
        return

    group, version = _group_version(api_version)
    schema = _root_schema(group, version, str(new.get("kind") or ""))
    old_body, _ = _split(old) if old is not None else ({}, None)
    new_body, _ = _split(new)
    changes = compare(old_body, new_body, schema)
    changed = changes.modified.union(changes.added)
    for identity, entry in list(managers.items()):
        entry.fields = entry.fields.difference(changed).difference(changes.removed)
        if entry.fields.empty():
            del managers[identity]
    taken = _strip(changed)
    if not taken.empty():
        me = _Entry(manager or "unknown", UPDATE, api_version, taken, now, subresource)
        previous = managers.get(me.identity)
        if previous is not None:
            me.fields = taken.union(previous.fields)
        managers[me.identity] = me
    _store(new, managers)
