"""JSON patch (RFC 6902), ``Content-Type: application/json-patch+json``, applied with ``jsonpatch``.

Errors follow kube-apiserver's patch handler (``k8s.io/apiserver`` ``pkg/endpoints/handlers/patch.go``):

- a body that does not decode as a list of operations is 400 BadRequest, worded as the handler's
  strict decode into ``[]handlers.jsonPatchOp`` words it (``error decoding patch: json: cannot
  unmarshal object into Go value of type []handlers.jsonPatchOp``); kubectl's default field
  validation (``Warn``) takes that path;
- more than 10,000 operations is 413 RequestEntityTooLarge;
- any operation that fails to apply (a ``test`` that does not match, a missing path, an unknown or
  incomplete operation) is 422 Invalid with the generic message ``the server rejected our request due
  to an error in our request`` and empty details: the handler wraps the library's error in
  ``NewGenericServerResponse(422, ...)``, which keeps only the generic text;
- a patch that turns the object into something other than a JSON object is 422 Invalid on ``patch``,
  as the handler's decode of the patched document reports it.
"""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
import jsonpointer

from kbox.api import errors
from kbox.api.patch.merge_patch import json_kind

MAX_OPERATIONS = 10_000
REJECTED = "the server rejected our request due to an error in our request"
_STRING_FIELDS = ("op", "path", "from")


def apply(original: dict[str, Any], patch: object) -> dict[str, Any]:
    """The result of applying the operations in ``patch`` to ``original`` (neither is modified)."""
    operations = _decode(patch)
    if len(operations) > MAX_OPERATIONS:
        raise errors.too_large(
            f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(operations)}"
        )
    try:
        result = jsonpatch.JsonPatch(operations).apply(original, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, ValueError) as exc:
        raise errors.StatusError(REJECTED, 422, "Invalid", {}) from exc
    if not isinstance(result, dict):
        text = json.dumps(result, separators=(",", ":"))
        detail = f"json: cannot unmarshal {json_kind(result)} into Go value of type map[string]interface {{}}"
        raise errors.invalid_object("", "", "", [errors.invalid("patch", text, detail)])
    return result


def _decode(patch: object) -> list[dict[str, Any]]:
    if not isinstance(patch, list):
        raise _decode_error(
            f"cannot unmarshal {json_kind(patch)} into Go value of type []handlers.jsonPatchOp"
        )
    for operation in patch:
        if operation is None:
            continue
        if not isinstance(operation, dict):
            raise _decode_error(
                f"cannot unmarshal {json_kind(operation)} into Go value of type handlers.jsonPatchOp"
            )
        for name in _STRING_FIELDS:
            value = operation.get(name)
            if value is not None and not isinstance(value, str):
                where = f"Go struct field jsonPatchOp.{name} of type string"
                raise _decode_error(f"cannot unmarshal {json_kind(value)} into {where}")
    return [operation if operation is not None else {} for operation in patch]


def _decode_error(text: str) -> errors.StatusError:
    return errors.bad_request(f"error decoding patch: json: {text}")
