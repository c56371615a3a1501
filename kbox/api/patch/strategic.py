"""Strategic merge patch, ``Content-Type: application/strategic-merge-patch+json``.

The behaviour is that of apimachinery's ``pkg/util/strategicpatch`` applying a patch on the server
(``StrategicMergeMapPatch``: parallel lists merged, unmatched ``null`` values dropped), with the merge
keys and strategies read from the ``x-kubernetes-patch-merge-key``/``x-kubernetes-patch-strategy``
extensions of the built-in schemas (``kbox.api.schemas``), following ``properties``, ``items``,
``additionalProperties`` and ``$ref``:

- maps merge recursively and ``null`` deletes a key; a map field with strategy ``replace`` is replaced;
- lists are replaced unless their field has strategy ``merge``: lists of objects then merge by the
  merge key, lists of plain values are unioned (duplicates dropped);
- ``$patch``: in a map, ``replace`` replaces the map with the rest of the patch map and ``delete``
  empties it (a key missing from the original is then not added); in an element of a merging list,
  ``delete`` removes every element with that merge key and ``replace`` makes the list the patch's
  other elements;
- ``$retainKeys: [...]`` drops the keys of the original map that it does not name (a patch key it does
  not name is 400 ``invalid patch format of retainKeys``);
- ``$deleteFromPrimitiveList/<field>: [...]`` removes those values from the list ``<field>``;
- ``$setElementOrder/<field>: [...]`` (``{<mergeKey>: value}`` objects, or plain values) orders the
  merged list as client-side apply asks: the listed items in that order, and the items only the
  server has interleaved where they stood relative to the listed ones in the live list (upstream's
  ``normalizeElementOrder``/``mergeSortedSlice``); items added by a plain merge without such a list
  are placed the same way, ordered as in the patch;
- every directive is removed from the result (upstream leaves some in content that is new or
  replaced, for the typed decode to drop).

Where kbox is deliberately more lenient or precise than upstream:

- ``$patch: merge`` (the documented default) is accepted and ignored; upstream rejects it in maps
  ("unknown patch type") and in list elements ("merging lists cannot yet be specified in the patch");
- malformed patches that upstream answers with a 500 (a missing merge key, an unknown ``$patch``
  value, mixed element types, an order list that contradicts the patch list) are 400 BadRequest here;
  the errors upstream maps itself keep upstream's code: 400 for ``invalid patch format of ...``
  messages, 422 (generic message) for lists of lists.

A kind the schemas do not know is a custom resource: kube-apiserver's CR handler does not list this
patch type at all, so it answers 415 UnsupportedMediaType naming the accepted types
(``k8s.io/apiextensions-apiserver`` ``customresource_handler.go`` with
``negotiation.NewUnsupportedMediaTypeError``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from kbox.api import errors, schemas
from kbox.api.patch.merge_patch import clone, json_kind

Schema = dict[str, Any] | None
KeyOf = Callable[[Any], Any]

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"
SET_ELEMENT_ORDER = "$setElementOrder/"

CUSTOM_RESOURCE_MESSAGE = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)
REJECTED = "the server rejected our request due to an error in our request"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_ORDER_LIST = "invalid patch format of setElementOrder list"
_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"


def apply(original: dict[str, Any], patch: object, *, group: str, version: str, kind: str) -> dict[str, Any]:
    """The result of applying the strategic merge ``patch`` to ``original`` (neither is modified).

    ``patch`` is the decoded request body: a JSON object (``null`` changes nothing, as upstream).
    """
    schema = schemas.schema_for(group, version, kind)
    if schema is None:
        raise errors.unsupported_media_type(CUSTOM_RESOURCE_MESSAGE)
    result: dict[str, Any] = clone(original)
    if patch is None:
        return result
    if not isinstance(patch, dict):
        raise errors.bad_request(
            f"json: cannot unmarshal {json_kind(patch)} into Go value of type map[string]interface {{}}"
        )
    return _merge_map(result, patch, schema)


# --- schema lookups ------------------------------------------------------------------------------------


def field_schema(schema: Schema, key: str) -> Schema:
    """The schema of ``key`` in an object schema, unresolved so that it keeps the field's extensions.

    ``None`` when unknown: a field the schema does not declare, or any field of a free-form object.
    """
    if schema is None:
        return None
    resolved = schemas.resolve(schema)
    properties = resolved.get("properties")
    if isinstance(properties, dict) and key in properties:
        found: dict[str, Any] = properties[key]
        return found
    extra = resolved.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def items_schema(schema: Schema) -> Schema:
    """The schema of the elements of an array schema (``None`` when unknown)."""
    if schema is None:
        return None
    items = schemas.resolve(schema).get("items")
    return items if isinstance(items, dict) else None


def merge_keys(schema: Schema) -> tuple[frozenset[str], str | None]:
    """The patch strategies (``merge``, ``retainKeys``, ``replace``) and merge key of a field's schema."""
    if schema is None:
        return frozenset(), None
    strategy = schema.get("x-kubernetes-patch-strategy") or ""
    strategies = frozenset(s.strip() for s in strategy.split(",") if s.strip())
    key = schema.get("x-kubernetes-patch-merge-key")
    return strategies, key if isinstance(key, str) else None


# --- maps ----------------------------------------------------------------------------------------------


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """Merge ``patch`` into ``original``, which the caller owns (it is modified and returned)."""
    patch = dict(patch)
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return _merge_map({}, patch, schema)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise errors.bad_request(f"unknown patch type: {directive} in map: {_show(patch)}")

    if RETAIN_KEYS in patch:
        _retain_keys(original, patch, patch.pop(RETAIN_KEYS))

    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        _merge_ordered_list(original, patch, key, schema)

    for key, value in patch.items():
        is_delete_list = key.startswith(DELETE_FROM_PRIMITIVE_LIST)
        if is_delete_list:
            key = key[len(DELETE_FROM_PRIMITIVE_LIST) :]
            if not key:
                raise errors.bad_request(_BAD_PRIMITIVE_LIST)
        if value is None:
            original.pop(key, None)
            continue
        sub = field_schema(schema, key)
        current = original.get(key, _MISSING)
        if current is _MISSING or _shape(current) != _shape(value):
            if not is_delete_list:
                _set_fresh(original, key, value, sub)
            continue
        if isinstance(value, dict):
            strategies, _ = merge_keys(sub)
            if "replace" in strategies:
                original[key] = _merge_map({}, value, sub)
            else:
                original[key] = _merge_map(current, value, sub)
        elif isinstance(value, list):
            strategies, merge_key = merge_keys(sub)
            if "merge" in strategies or is_delete_list:
                original[key] = _merge_list(current, value, sub, merge_key, delete=is_delete_list)
            else:
                original[key] = _fresh_list(value, items_schema(sub))
        else:
            original[key] = value
    return original


def _retain_keys(original: dict[str, Any], patch: dict[str, Any], retain: object) -> None:
    if not isinstance(retain, list):
        raise errors.bad_request(_BAD_RETAIN_KEYS)
    kept = {k for k in retain if isinstance(k, str)}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in kept:
            raise errors.bad_request(_BAD_RETAIN_KEYS)
    for key in [k for k in original if k not in kept]:
        del original[key]


def _set_fresh(target: dict[str, Any], key: str, value: Any, schema: Schema) -> None:
    """Store patch content where the original has nothing to merge with, directives resolved."""
    if isinstance(value, dict) and value.get(DIRECTIVE) == "delete":
        target.pop(key, None)
    elif isinstance(value, dict):
        target[key] = _merge_map({}, value, schema)
    elif isinstance(value, list):
        target[key] = _fresh_list(value, items_schema(schema))
    else:
        target[key] = value


def _fresh_list(values: list[Any], schema: Schema) -> list[Any]:
    """A patch list taken as it is: directive elements dropped, directives in the others resolved."""
    result: list[Any] = []
    for value in values:
        if isinstance(value, dict):
            directive = value.get(DIRECTIVE)
            if directive in ("delete", "replace"):
                continue
            result.append(_merge_map({}, value, schema))
        elif isinstance(value, list):
            result.append(_fresh_list(value, None))
        else:
            result.append(value)
    return result


# --- lists ---------------------------------------------------------------------------------------------


def _merge_list(
    original: list[Any], patch: list[Any], schema: Schema, merge_key: str | None, *, delete: bool = False
) -> list[Any]:
    """Merge a patch list into the list of a field with strategy ``merge`` (or a deletion list)."""
    if not original and not patch:
        return original
    is_map = _element_kind(original, patch) == "object"
    if not is_map:
        if delete:
            return [v for v in original if not any(_same(v, p) for p in patch)]
        merged = _dedupe([*original, *patch])
        key_of: KeyOf = _identity
    else:
        if not merge_key:
            raise errors.bad_request(f"cannot merge lists without merge key for {_schema_name(schema)}")
        key_of = _merge_key_reader(merge_key)
        original, patch = _apply_list_directives(original, patch, merge_key, items_schema(schema))
        merged = list(original)
        element_schema = items_schema(schema)
        for element in patch:
            if merge_key not in element:
                raise errors.bad_request(
                    f"map: {_show(element)} does not contain declared merge key: {merge_key}"
                )
            at = _index(merged, element[merge_key], key_of)
            if at >= 0:
                merged[at] = _merge_map(merged[at], element, element_schema)
            else:
                merged.append(_merge_map({}, element, element_schema))
    ordered, server_only = _partition(merged, patch, key_of)
    return _normalize_order(ordered, server_only, patch, original, key_of)


def _apply_list_directives(
    original: list[Any], patch: list[Any], merge_key: str, schema: Schema
) -> tuple[list[Any], list[Any]]:
    """Handle the ``$patch`` elements of a merging list of objects: returns (original, plain patch)."""
    plain: list[Any] = []
    replace = False
    for element in patch:
        if DIRECTIVE not in element:
            plain.append(element)
            continue
        directive = element[DIRECTIVE]
        if directive == "delete":
            if merge_key not in element:
                raise errors.bad_request(
                    f"map: {_show(element)} does not contain declared merge key: {merge_key}"
                )
            original = [o for o in original if not _same(o.get(merge_key, _MISSING), element[merge_key])]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            plain.append({k: v for k, v in element.items() if k != DIRECTIVE})
        else:
            raise errors.bad_request(f"unknown patch type: {directive} in map: {_show(element)}")
    if replace:
        return [_merge_map({}, element, schema) for element in plain], []
    return original, plain


def _merge_ordered_list(
    original: dict[str, Any], patch: dict[str, Any], order_key: str, schema: Schema
) -> None:
    """Process ``$setElementOrder/<field>`` with the patch list of that field (both leave the patch)."""
    order = patch.pop(order_key)
    key = order_key[len(SET_ELEMENT_ORDER) :]
    if not key or not isinstance(order, list):
        raise errors.bad_request(_BAD_ORDER_LIST)
    sub = field_schema(schema, key)
    strategies, merge_key = merge_keys(sub)
    in_original = key in original
    in_patch = key in patch
    current = original.get(key) if in_original else []
    patch_list = patch.pop(key) if in_patch else []
    if not isinstance(current, list) or not isinstance(patch_list, list):
        raise errors.bad_request(_BAD_ORDER_LIST)
    key_of = _merge_key_reader(merge_key) if merge_key else _identity
    if merge_key:
        for entry in order:
            if not isinstance(entry, dict) or merge_key not in entry:
                raise errors.bad_request(
                    f"map: {_show(entry)} does not contain declared merge key: {merge_key}"
                )
    _check_order(patch_list, order, key_of, bool(merge_key), order_key)

    if in_original and in_patch:
        if "merge" in strategies:
            merged = _merge_list(current, patch_list, sub, merge_key)
        else:
            merged = _fresh_list(patch_list, items_schema(sub))
    elif in_patch:
        merged = _fresh_list(patch_list, items_schema(sub))
    elif in_original:
        merged = current
    else:
        return
    listed, server_only = _partition(merged, order, key_of)
    original[key] = _normalize_order(listed, server_only, order, current, key_of)


def _check_order(patch_list: list[Any], order: list[Any], key_of: KeyOf, by_key: bool, name: str) -> None:
    """The items of the patch list must appear in the order list, in the same relative order."""
    items = [e for e in patch_list if not (by_key and isinstance(e, dict) and e.get(DIRECTIVE) == "delete")]
    if not items or not order:
        return
    i = j = 0
    while i < len(items) and j < len(order):
        if isinstance(items[i], dict) and DIRECTIVE in items[i]:
            i += 1
            continue
        if _same(key_of(items[i]), key_of(order[j])):
            i += 1
        j += 1
    if i < len(items):
        raise errors.bad_request(
            f"The order in patch list:\n{_show(patch_list)}\n doesn't match {name.split('/')[0]} list:\n"
            f"{_show(order)}\n"
        )


def _partition(merged: list[Any], listed: list[Any], key_of: KeyOf) -> tuple[list[Any], list[Any]]:
    """Split ``merged`` into the items named in ``listed`` and the others (the server-only items)."""
    inside: list[Any] = []
    outside: list[Any] = []
    for item in merged:
        (inside if _index(listed, key_of(item), key_of) >= 0 else outside).append(item)
    return inside, outside


def _normalize_order(
    listed: list[Any], server_only: list[Any], order: list[Any], server_order: list[Any], key_of: KeyOf
) -> list[Any]:
    """Order ``listed`` by ``order`` and ``server_only`` by ``server_order``, then interleave them.

    A server-only item goes before a listed item when both are in the live list and it stood before
    it there; otherwise the listed item comes first. Relative orders within each group are kept.
    """
    listed = _sorted_by(listed, order, key_of)
    server_only = _sorted_by(server_only, server_order, key_of)
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(listed):
        if j >= len(listed):
            result.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            result.append(listed[j])
            j += 1
        else:
            left = _index(server_order, key_of(server_only[i]), key_of)
            right = _index(server_order, key_of(listed[j]), key_of)
            if left >= 0 and right >= 0 and left < right:
                result.append(server_only[i])
                i += 1
            else:
                result.append(listed[j])
                j += 1
    return result


def _sorted_by(items: list[Any], order: list[Any], key_of: KeyOf) -> list[Any]:
    positions = [_index(order, key_of(item), key_of) for item in items]
    if all(p >= 0 for p in positions):
        return [item for _, item in sorted(zip(positions, items, strict=True), key=lambda pair: pair[0])]
    return items


# --- helpers -------------------------------------------------------------------------------------------

_MISSING: Any = object()


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "scalar"


def _element_kind(*lists: Iterable[Any]) -> str:
    kinds = {_shape(v) for values in lists for v in values if v is not None}
    if "array" in kinds:
        raise errors.StatusError(REJECTED, 422, "Invalid", {})
    if len(kinds) > 1:
        raise errors.bad_request(f"list element types are not identical: {_show([list(v) for v in lists])}")
    return kinds.pop() if kinds else "scalar"


def _identity(value: Any) -> Any:
    return value


def _merge_key_reader(merge_key: str) -> KeyOf:
    def read(item: Any) -> Any:
        return item.get(merge_key) if isinstance(item, dict) else _MISSING

    return read


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1`` (Python would say it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _index(values: list[Any], wanted: Any, key_of: KeyOf) -> int:
    for i, value in enumerate(values):
        if _same(key_of(value), wanted):
            return i
    return -1


def _dedupe(values: list[Any]) -> list[Any]:
    result: list[Any] = []
    for value in values:
        if not any(_same(value, seen) for seen in result):
            result.append(value)
    return result


def _show(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _schema_name(schema: Schema) -> str:
    items = items_schema(schema)
    ref = (items or {}).get("$ref", "")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) and ref else "list"
