"""JSON merge patch (RFC 7386), ``Content-Type: application/merge-patch+json``.

A ``null`` deletes a key, an object merges recursively into the object it meets (or replaces a
non-object), and anything else (lists included) replaces the target value.

Errors are kube-apiserver's (``k8s.io/apiserver`` ``pkg/endpoints/handlers/patch.go``): the handler
decodes the body into ``map[string]interface{}`` first (field validation is ``Warn`` unless a client
asks for ``Ignore``), so a body that is not a JSON object is 400 BadRequest ``error decoding patch:
json: cannot unmarshal array into Go value of type map[string]interface {}``, and a ``null`` body is
400 ``Invalid JSON Patch`` from the merge library.

``clone`` and ``json_kind`` are shared with the sibling patch modules.
"""

from __future__ import annotations

from typing import Any

from kbox.api import errors


def apply(original: dict[str, Any], patch: object) -> dict[str, Any]:
    """The result of merging ``patch`` into ``original`` (neither is modified)."""
    if patch is None:
        raise errors.bad_request("Invalid JSON Patch")
    if not isinstance(patch, dict):
        raise errors.bad_request(
            f"error decoding patch: json: cannot unmarshal {json_kind(patch)} into Go value of type "
            "map[string]interface {}"
        )
    result: dict[str, Any] = clone(original)
    _merge_into(result, patch)
    return result


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict):
                current = target[key] = {}
            _merge_into(current, value)
        else:
            target[key] = clone(value)


def clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def json_kind(value: object) -> str:
    """How Go's ``encoding/json`` names the JSON type of ``value`` in its unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"
