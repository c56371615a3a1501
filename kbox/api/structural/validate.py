"""Validating a custom object against its schema, as kube-openapi's ``SchemaValidator`` does.

kube-apiserver validates a custom resource with kube-openapi's validator (a fork of go-openapi's) and
turns its results into field errors (``kubeOpenAPIResultToFieldErrors``). Both halves are reproduced
here because users read the result: the per-node order of checks (type, allOf/anyOf/oneOf/not,
string, format, number, array, enum, object), which checks still run after a type error, the
``<path> in body ...`` wording, Go's number formatting, and how each kind of failure becomes a
``FieldError`` (``Required value``, ``Unsupported value``, ``Too long``, ``Too many``, ``Invalid
value``). A failed ``anyOf``/``oneOf`` reports the alternative that got furthest, as upstream does,
approximated by counting the checks each alternative passed.

Two deliberate choices where Go's behaviour is undefined: errors come in schema order (Go walks maps
in random order), and for ``oneOf``/``anyOf`` ties the first alternative wins.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from kbox.api.errors import FieldError
from kbox.api.structural import formats, regex
from kbox.api.structural.gofmt import GoValue, go_float, go_quote, go_v
from kbox.api.structural.node import Node

IN = "body"

# kube-openapi error codes, as far as the conversion to field errors tells them apart.
TYPE = "type"
REQUIRED = "required"
ENUM = "enum"
TOO_LONG = "too_long"
MAX_ITEMS = "max_items"
TOO_MANY_PROPERTIES = "too_many_properties"
INVALID = "invalid"
COMPOSITE = "composite"

NO_OLD: Any = object()  # "no correlated old value": a create, or an element that has no counterpart


@dataclass
class Issue:
    """One kube-openapi error: its code, the data path it names, its message and bad value."""

    code: str
    name: str
    message: str
    value: Any = None
    values: list[Any] = field(default_factory=list)
    limit: int = -1


@dataclass
class Result:
    issues: list[Issue] = field(default_factory=list)
    matches: int = 0

    def merge(self, other: Result | None) -> None:
        if other is not None:
            self.issues.extend(other.issues)
            self.matches += other.matches

    def add(self, issue: Issue) -> None:
        self.issues.append(issue)

    @property
    def valid(self) -> bool:
        return not self.issues


def _fail(issue: Issue) -> Result:
    return Result([issue])


# --- the JSON kinds kube-openapi sees ----------------------------------------------------------------


def json_kind(value: Any) -> str:
    """The schema type of a decoded JSON value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return ""


def is_json_integer(value: float) -> bool:
    """swag's ``IsFloat64AJSONInteger``: whole (within 1e-9 relative error) and within ±2^53."""
    if math.isnan(value) or math.isinf(value) or abs(value) > 2.0**53:
        return False
    whole = float(math.trunc(value))
    if value == whole:
        return True
    diff = abs(value - whole)
    if whole == 0:
        return False
    return diff / (abs(value) + abs(whole)) < 1e-9


def deep_equal(a: Any, b: Any) -> bool:
    """``reflect.DeepEqual`` on decoded JSON: ``1`` and ``1.0`` differ, ``True`` and ``1`` differ."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _converted(data: Any, target: Any) -> tuple[bool, Any]:
    """Go's ``reflect`` conversion of ``data`` to the type of ``target`` (the enum check's rule)."""
    if type(data) is type(target):
        return True, data
    if isinstance(data, bool) or isinstance(target, bool):
        return False, None
    if isinstance(data, int | float) and isinstance(target, int | float):
        if isinstance(target, int):
            return (True, math.trunc(data)) if math.isfinite(data) else (False, None)
        return True, float(data)
    if isinstance(data, int) and isinstance(target, str):  # Go: string(rune(n))
        return True, chr(data) if 0 <= data <= 0x10FFFF and not 0xD800 <= data <= 0xDFFF else "\ufffd"
    return False, None


def _effective_format(node: Node) -> str:
    """The format kube-apiserver keeps: unsupported ones are stripped before validation."""
    return node.format if formats.is_supported(node.format) else ""


# --- the validators, in kube-openapi's order ---------------------------------------------------------


def _type_error(path: str, type_name: str, value: str) -> Issue:
    message = f"{path} in {IN} must be of type {type_name}: {go_quote(value)}"
    return Issue(TYPE, path, message, value)


def _check_type(node: Node, data: Any, path: str) -> Result | None:
    types = node.json_types()
    fmt = _effective_format(node)
    if not types and not fmt:
        return None
    result = Result(matches=1)
    if data is None:
        if types and "null" not in types and not node.nullable:
            return _fail(_type_error(path, ",".join(types), "null"))
        return result
    kind = json_kind(data)
    data_format = {"integer": "int64", "number": "float64"}.get(kind, "")
    is_float_int = kind == "number" and is_json_integer(data) and "integer" in types
    is_int_float = kind == "integer" and "number" in types
    if (
        kind not in ("string", "array")
        and fmt
        and not (kind in types or data_format == fmt or is_float_int or is_int_float)
    ):
        return _fail(_type_error(path, fmt, data_format))
    if "number" not in types and "integer" not in types and fmt and kind in ("string", "array"):
        return result
    if not (kind in types or is_float_int or is_int_float):
        return _fail(_type_error(path, ",".join(types), kind))
    return result


def _check_string(node: Node, data: str, path: str) -> Result | None:
    if node.max_length is not None and len(data) > node.max_length:
        message = f"{path} in {IN} should be at most {node.max_length} chars long"
        return _fail(Issue(TOO_LONG, path, message, data, limit=node.max_length))
    if node.min_length is not None and len(data) < node.min_length:
        message = f"{path} in {IN} should be at least {node.min_length} chars long"
        return _fail(Issue(INVALID, path, message, data))
    if node.pattern:
        problem = regex.check(node.pattern)
        if problem is not None:
            message = f"{path} in {IN} should match '{node.pattern}, but pattern is invalid: {problem}'"
            return _fail(Issue(INVALID, path, message, data))
        if regex.search(node.pattern, data) is False:
            message = f"{path} in {IN} should match '{node.pattern}'"
            return _fail(Issue(INVALID, path, message, data))
    return None


def _check_format(node: Node, data: str, path: str) -> Result | None:
    fmt = _effective_format(node)
    if not fmt or formats.check(fmt, data):
        return None
    return _fail(_type_error(path, fmt, data))


def _multiple_of(data: int | float, factor: float | int, path: str) -> Issue | None:
    if isinstance(data, int):
        whole = math.trunc(factor)
        if whole <= 0:
            return Issue(
                INVALID, path, f"factor MultipleOf declared for {path} must be positive: {whole}", whole
            )
        quotient = abs(data) // whole * (1 if data >= 0 else -1)  # Go truncates toward zero
        if quotient * whole != data:
            return Issue(INVALID, path, f"{path} in {IN} should be a multiple of {whole}", data)
        return None
    factor = float(factor)
    if factor <= 0:
        message = f"factor MultipleOf declared for {path} must be positive: {go_float(factor)}"
        return Issue(INVALID, path, message, factor)
    ratio = 1 / factor * data if factor < 1 else data / factor
    if not is_json_integer(ratio):
        return Issue(INVALID, path, f"{path} in {IN} should be a multiple of {go_float(factor)}", data)
    return None


def _bound(data: int | float, limit: float | int, exclusive: bool, path: str, upper: bool) -> Issue | None:
    """Maximum/minimum: integers compare with the bound truncated to an integer, as upstream."""
    shown: int | float
    if isinstance(data, int):
        shown = math.trunc(limit)
        text = str(shown)
    else:
        shown = float(limit)
        text = go_float(shown)
    if upper:
        failed = data >= shown if exclusive else data > shown
        words = "less than" if exclusive else "less than or equal to"
    else:
        failed = data <= shown if exclusive else data < shown
        words = "greater than" if exclusive else "greater than or equal to"
    if failed:
        return Issue(INVALID, path, f"{path} in {IN} should be {words} {text}", data)
    return None


def _check_number(node: Node, data: int | float, path: str) -> Result:
    result = Result(matches=1)
    if node.multiple_of is not None:
        issue = _multiple_of(data, node.multiple_of, path)
        if issue is not None:
            result.add(issue)
    if node.minimum is not None:
        issue = _bound(data, node.minimum, node.exclusive_minimum, path, upper=False)
        if issue is not None:
            result.add(issue)
    if node.maximum is not None:
        issue = _bound(data, node.maximum, node.exclusive_maximum, path, upper=True)
        if issue is not None:
            result.add(issue)
    return result


def _check_array(node: Node, data: list[Any], path: str, old: Any) -> Result:
    result = Result(matches=1)
    if node.items is not None:
        for i, item in enumerate(data):
            result.merge(validate_node(node.items, item, f"{path}[{i}]", correlate_item(node, item, old)))
    size = len(data)
    if node.min_items is not None and size < node.min_items:
        message = f"{path} in {IN} should have at least {node.min_items} items"
        result.add(Issue(INVALID, path, message, size))
    if node.max_items is not None and size > node.max_items:
        message = f"{path} in {IN} should have at most {node.max_items} items"
        result.add(Issue(MAX_ITEMS, path, message, size, limit=node.max_items))
    if node.unique_items:
        seen: list[Any] = []
        for item in data:
            if any(deep_equal(item, other) for other in seen):
                result.add(Issue(INVALID, path, f"{path} in {IN} shouldn't contain duplicates"))
                break
            seen.append(item)
    return result


def _check_enum(node: Node, data: Any, path: str) -> Result | None:
    if not node.enum:
        return None
    if data is not None:
        for allowed in node.enum:
            if allowed is None:
                continue
            ok, converted = _converted(data, allowed)
            if ok and deep_equal(converted, allowed):
                return None
    shown = " ".join(go_v(v) for v in node.enum)
    message = f"{path} in {IN} should be one of [{shown}]"
    return _fail(Issue(ENUM, path, message, data, values=list(node.enum)))


def _check_object(node: Node, data: dict[str, Any], path: str, old: Any) -> Result:
    result = Result(matches=1)
    size = len(data)
    if node.min_properties is not None and size < node.min_properties:
        message = f"{path} in {IN} should have at least {node.min_properties} properties"
        result.add(Issue(INVALID, path, message, size))
    if node.max_properties is not None and size > node.max_properties:
        message = f"{path} in {IN} should have at most {node.max_properties} properties"
        result.add(Issue(TOO_MANY_PROPERTIES, path, message, size, limit=node.max_properties))
    if node.additional_bool is False:
        for key in data:
            if key not in node.properties:
                message = f"{path}.{key} in {IN} is a forbidden property"
                result.add(Issue(INVALID, path, message, key))
    elif node.additional is not None:
        for key, value in data.items():
            if key not in node.properties:
                result.merge(validate_node(node.additional, value, f"{path}.{key}", correlate_key(key, old)))
    for name, prop in node.properties.items():
        if name in data:
            child_old = NO_OLD if (not path and name in ("apiVersion", "kind")) else correlate_key(name, old)
            result.merge(validate_node(prop, data[name], f"{path}.{name}" if path else name, child_old))
    for name in node.required:
        if name not in data:
            result.add(Issue(REQUIRED, f"{path}.{name}", f"{path}.{name} in {IN} is required"))
    return result


def _check_combinators(node: Node, data: Any, path: str, old: Any) -> Result | None:
    if not (node.any_of or node.one_of or node.all_of or node.not_ is not None):
        return None
    result = Result()
    quoted = go_quote(path)
    if node.any_of:
        best: Result | None = None
        first_success: Result | None = None
        for sub in node.any_of:
            attempt = validate_node(sub, data, path, old)
            if attempt.valid:
                best, first_success = None, attempt
                break
            if best is None or attempt.matches > best.matches:
                best = attempt
        if first_success is None:
            result.add(Issue(COMPOSITE, path, f"{quoted} must validate at least one schema (anyOf)"))
        result.merge(best if best is not None else first_success)
    if node.one_of:
        best = None
        first_success = None
        validated = 0
        for sub in node.one_of:
            attempt = validate_node(sub, data, path, old)
            if attempt.valid:
                validated += 1
                best = None
                first_success = first_success or attempt
                continue
            if validated == 0 and (best is None or attempt.matches > best.matches):
                best = attempt
        if validated != 1:
            found = "Found none valid" if validated == 0 else f"Found {validated} valid alternatives"
            result.add(
                Issue(COMPOSITE, path, f"{quoted} must validate one and only one schema (oneOf). {found}")
            )
            result.merge(best)
        else:
            result.merge(first_success)
    if node.all_of:
        validated = 0
        for sub in node.all_of:
            attempt = validate_node(sub, data, path, old)
            validated += attempt.valid
            result.merge(attempt)
        if validated != len(node.all_of):
            extra = ". None validated" if validated == 0 else ""
            result.add(Issue(COMPOSITE, path, f"{quoted} must validate all the schemas (allOf){extra}"))
    if node.not_ is not None and validate_node(node.not_, data, path, old).valid:
        result.add(Issue(COMPOSITE, path, f"{quoted} must not validate the schema (not)"))
    result.matches += 1
    return result


def validate_node(node: Node, data: Any, path: str, old: Any = NO_OLD) -> Result:
    """Every check of ``node`` on ``data`` (and, through it, of the sub-schemas) at ``path``.

    ``old`` is the correlated old value on an update: errors below a value that did not change are
    dropped (kube-apiserver's validation ratcheting, on by default since v1.30), so objects written
    under an older, looser schema can still be updated elsewhere.
    """
    if old is not NO_OLD and deep_equal(data, old):
        return Result(matches=1)  # ratcheting would drop every error below an unchanged value
    result = Result()
    if data is None:
        result.merge(_check_type(node, data, path))
        result.merge(_check_enum(node, data, path))
        return result
    kind = json_kind(data)
    steps: list[Result | None] = [_check_type(node, data, path), _check_combinators(node, data, path, old)]
    if kind == "string":
        steps.append(_check_string(node, data, path))
        steps.append(_check_format(node, data, path))
    elif kind in ("integer", "number"):
        steps.append(_check_number(node, data, path))
    elif kind == "array":
        steps.append(_check_array(node, data, path, old))
    steps.append(_check_enum(node, data, path))
    if kind == "object":
        steps.append(_check_object(node, data, path, old))
    for step in steps:
        result.merge(step)
        result.matches += 1
    return result


# --- correlating new and old values (ratcheting) -----------------------------------------------------


def correlate_key(key: str, old: Any) -> Any:
    """The old value of an object's field, or :data:`NO_OLD`."""
    if isinstance(old, dict) and key in old:
        return old[key]
    return NO_OLD


def _map_key(item: Any, keys: list[str]) -> str | None:
    if not isinstance(item, dict):
        return None
    return json.dumps([item.get(k) for k in keys], sort_keys=True)


def correlate_item(node: Node, item: Any, old: Any) -> Any:
    """The old item of a ``map`` list with the same keys; items of other lists do not correlate."""
    if node.list_type != "map" or not node.list_map_keys or not isinstance(old, list):
        return NO_OLD
    key = _map_key(item, node.list_map_keys)
    if key is None:
        return NO_OLD
    for candidate in old:
        if _map_key(candidate, node.list_map_keys) == key:
            return candidate
    return NO_OLD


# --- kube-openapi results to field errors ------------------------------------------------------------


def _join(base: str, name: str) -> str:
    if not name or name == ".":
        return base
    name = name.removeprefix(".")
    return f"{base}.{name}" if base != "<nil>" else name


def _supported_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return _json_marshal(value)


def _json_marshal(value: Any) -> str:
    """``json.Marshal`` of a decoded value (enum entries that are not strings)."""
    if isinstance(value, float) and not isinstance(value, bool):
        text = go_float(value)
        mantissa, sep, exponent = text.partition("e")
        return f"{mantissa}e{exponent[0]}{exponent[1:].lstrip('0')}" if sep else text
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def to_field_errors(result: Result, base: str = "<nil>") -> list[FieldError]:
    """``kubeOpenAPIResultToFieldErrors``: ``base`` is the field path validation started at (``<nil>``
    for a whole object, as Go prints a nil path)."""
    errs: list[FieldError] = []
    for issue in result.issues:
        if issue.code == COMPOSITE:
            errs.append(FieldError("FieldValueInvalid", base, issue.message, GoValue(""), True))
            continue
        path = _join(base, issue.name)
        value = "" if issue.value is None else issue.value
        if issue.code == REQUIRED:
            errs.append(FieldError("FieldValueRequired", path))
        elif issue.code == ENUM:
            detail = "supported values: " + ", ".join(go_quote(_supported_text(v)) for v in issue.values)
            errs.append(FieldError("FieldValueNotSupported", path, detail, GoValue(issue.value), True))
        elif issue.code == TOO_LONG:
            errs.append(FieldError("FieldValueTooLong", path, f"may not be more than {issue.limit} bytes"))
        elif issue.code in (MAX_ITEMS, TOO_MANY_PROPERTIES):
            detail = f"must have at most {issue.limit} items"
            errs.append(FieldError("FieldValueTooMany", path, detail, GoValue(issue.value), True))
        elif issue.code == TYPE:
            errs.append(FieldError("FieldValueTypeInvalid", path, issue.message, GoValue(value), True))
        else:
            errs.append(FieldError("FieldValueInvalid", path, issue.message, GoValue(value), True))
    return errs
