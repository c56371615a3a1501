"""Client-side apply's three-way patch: from the last applied manifest, the new one and the live object.

What ``kubectl apply`` computes (apimachinery's ``CreateThreeWayMergePatch`` for built-in kinds,
``CreateThreeWayJSONMergePatch`` for custom resources), written here from its documented semantics:

- a field in the new manifest that differs from the live object is set;
- a field that was in the last applied manifest but is gone from the new one is deleted (``null``);
- a field nobody applied (defaults, fields other clients set) is left alone.

With a schema (``PatchSchema``, read from the server's OpenAPI v3 ``x-kubernetes-patch-*``
extensions) the result is a strategic merge patch: lists with strategy ``merge`` and a merge key
(containers by ``name``, ports by ``containerPort``) are diffed element by element, so a container
another client added survives; a removed element becomes ``{key: value, "$patch": "delete"}`` and
``$setElementOrder/<field>`` keeps the manifest's order; merging lists of plain values use
``$deleteFromPrimitiveList/<field>``; maps with strategy ``retainKeys`` (a Deployment's
``strategy``) get ``$retainKeys`` so switching ``RollingUpdate`` to ``Recreate`` drops the other
union member. Without a schema (custom resources) every list is atomic and the patch is a plain JSON
merge patch.

An atomic list counts as unchanged when the live list "covers" the manifest's (same length, each live
element holding every field the manifest gives, with the same values: the server may have added
defaults) and nothing was removed since the last apply; otherwise the whole new list is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_MISSING: Any = object()
_REF_PREFIX = "#/components/schemas/"


class PatchSchema:
    """A node of an OpenAPI v3 schema with its document's components, for merge keys and strategies.

    ``field_schema`` is the schema of the map field itself (where the ``x-kubernetes-patch-*``
    extensions sit); ``resolved`` is what it describes after ``$ref``/``allOf``.
    """

    def __init__(self, node: Mapping[str, Any], components: Mapping[str, Any]) -> None:
        self.node = node
        self.components = components
        self.resolved = self._resolve(node)

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        for _ in range(32):  # a guard against reference cycles in a malformed document
            ref = node.get("$ref")
            if ref is None and len(node.get("allOf") or ()) == 1:
                ref = node["allOf"][0].get("$ref")
            if not (isinstance(ref, str) and ref.startswith(_REF_PREFIX)):
                return node
            target = self.components.get(ref[len(_REF_PREFIX) :])
            if not isinstance(target, Mapping):
                return node
            node = target
        return node

    @property
    def strategies(self) -> frozenset[str]:
        text = self.node.get("x-kubernetes-patch-strategy") or ""
        return frozenset(part.strip() for part in str(text).split(",") if part.strip())

    @property
    def merge_key(self) -> str | None:
        key = self.node.get("x-kubernetes-patch-merge-key")
        return key if isinstance(key, str) else None

    def field(self, name: str) -> PatchSchema | None:
        properties = self.resolved.get("properties")
        if isinstance(properties, Mapping) and isinstance(properties.get(name), Mapping):
            return PatchSchema(properties[name], self.components)
        extra = self.resolved.get("additionalProperties")
        if isinstance(extra, Mapping):
            return PatchSchema(extra, self.components)
        return None

    def items(self) -> PatchSchema | None:
        items = self.resolved.get("items")
        return PatchSchema(items, self.components) if isinstance(items, Mapping) else None


def _field(schema: PatchSchema | None, name: str) -> PatchSchema | None:
    return schema.field(name) if schema is not None else None


# --- the last-applied annotation ---------------------------------------------------------------------


def encode_last_applied(obj: Mapping[str, Any]) -> str:
    """The annotation's value, byte for byte as kubectl writes it (Go's encoder: sorted keys, compact,
    ``<``, ``>``, ``&`` escaped, a trailing newline), so kubectl and kbox see the same text as unchanged."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


def with_last_applied(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as it is sent: a deep copy annotated with itself (minus that annotation)."""
    modified: dict[str, Any] = json.loads(json.dumps(manifest))
    metadata = modified.setdefault("metadata", {})
    annotations = dict(metadata.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    metadata["annotations"] = annotations  # kubectl records ``"annotations":{}`` too
    value = encode_last_applied(modified)
    metadata["annotations"] = {**annotations, LAST_APPLIED: value}
    return modified


def last_applied(live: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest of the previous apply, from the live object's annotation (None: never applied)."""
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- the patch ---------------------------------------------------------------------------------------


def three_way(
    original: Mapping[str, Any] | None,
    modified: Mapping[str, Any],
    current: Mapping[str, Any],
    schema: PatchSchema | None = None,
) -> dict[str, Any]:
    """The patch that takes ``current`` to ``modified``, deleting what ``original`` had and ``modified``
    dropped; ``{}`` when nothing needs to change. With ``schema`` a strategic merge patch, else a JSON
    merge patch."""
    return _map(original or {}, modified, current, schema)


def _map(
    original: Mapping[str, Any],
    modified: Mapping[str, Any],
    current: Mapping[str, Any],
    schema: PatchSchema | None,
) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key in original:
        if key not in modified and key in current:
            patch[key] = None
    for key, value in modified.items():
        live = current.get(key, _MISSING)
        if value is None:
            # ``key: null`` asks for the field to be absent; once applied, it is not asked again, so
            # a field the server always sets (``creationTimestamp: null`` in generated YAML) does not
            # make every apply "configured".
            if live is not _MISSING and original.get(key, _MISSING) is not None:
                patch[key] = None
            continue
        if live is _MISSING or live is None:
            patch[key] = value
            continue
        sub = _field(schema, key)
        before = original.get(key, _MISSING)
        if isinstance(value, dict) and isinstance(live, dict):
            if sub is not None and "replace" in sub.strategies:
                if not (covers(live, value) and (before is _MISSING or covers(value, before))):
                    patch[key] = {**value, "$patch": "replace"}
                continue
            child = _map(before if isinstance(before, dict) else {}, value, live, sub)
            if child:
                if sub is not None and "retainKeys" in sub.strategies:
                    child["$retainKeys"] = sorted(k for k, v in value.items() if v is not None)
                patch[key] = child
        elif isinstance(value, list) and isinstance(live, list):
            _list(patch, key, before if isinstance(before, list) else None, value, live, sub)
        elif value != live:
            patch[key] = value
    return patch


def _list(
    patch: dict[str, Any],
    key: str,
    original: list[Any] | None,
    modified: list[Any],
    current: list[Any],
    schema: PatchSchema | None,
) -> None:
    strategies = schema.strategies if schema is not None else frozenset()
    merge_key = schema.merge_key if schema is not None else None
    if "merge" in strategies and merge_key and all(isinstance(e, dict) for e in modified):
        _keyed_list(patch, key, original, modified, current, schema, merge_key)
    elif "merge" in strategies and not any(isinstance(e, dict | list) for e in modified):
        added = [value for value in modified if value not in current]
        removed = [v for v in original or () if v not in modified and v in current]
        if added:
            patch[key] = added
        if removed:
            patch[f"$deleteFromPrimitiveList/{key}"] = removed
        kept = [value for value in current if value in modified]
        if (added or removed) or kept != [v for v in modified if v in kept]:
            patch[f"$setElementOrder/{key}"] = list(modified)
    elif not covers(current, modified) or (original is not None and not covers(modified, original)):
        patch[key] = modified


def _keyed_list(
    patch: dict[str, Any],
    key: str,
    original: list[Any] | None,
    modified: list[dict[str, Any]],
    current: list[Any],
    schema: PatchSchema | None,
    merge_key: str,
) -> None:
    items_schema = schema.items() if schema is not None else None
    live = {e.get(merge_key): e for e in current if isinstance(e, dict)}
    before = {e.get(merge_key): e for e in original or () if isinstance(e, dict)}
    wanted = [e.get(merge_key) for e in modified]
    elements: list[dict[str, Any]] = []
    for element in modified:
        name = element.get(merge_key)
        live_element = live.get(name)
        if live_element is None:
            elements.append(element)
            continue
        child = _map(before.get(name) or {}, element, live_element, items_schema)
        if child:
            elements.append({merge_key: name, **child})
    for name in before:
        if name not in wanted and name in live:
            elements.append({merge_key: name, "$patch": "delete"})
    live_order = [name for name in live if name in wanted]
    if elements or live_order != [name for name in wanted if name in live]:
        if elements:
            patch[key] = elements
        patch[f"$setElementOrder/{key}"] = [{merge_key: name} for name in wanted]


def covers(outer: Any, inner: Any) -> bool:
    """Whether ``outer`` holds everything ``inner`` states: every field of a map (recursively, with
    ``null`` meaning absent), every element of a list of the same length, equal plain values."""
    if isinstance(inner, dict):
        if not isinstance(outer, dict):
            return False
        for key, value in inner.items():
            if value is None:
                if outer.get(key) is not None:
                    return False
            elif key not in outer or not covers(outer[key], value):
                return False
        return True
    if isinstance(inner, list):
        return (
            isinstance(outer, list)
            and len(outer) == len(inner)
            and all(covers(o, i) for o, i in zip(outer, inner, strict=True))
        )
    if isinstance(inner, bool) or isinstance(outer, bool):
        return inner is outer
    return bool(inner == outer)
