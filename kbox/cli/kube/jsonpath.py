"""kubectl's JSONPath templates, for ``-o jsonpath=...`` and the cells of ``-o custom-columns=...``.

kubectl's dialect differs from the JSONPath of the JSON world, so this is its own small evaluator:

* a template is literal text with actions in braces: ``{.metadata.name}``, ``{"\\n"}``,
  ``{range .items[*]}{.metadata.name}{"\\t"}{end}``;
* inside an action: ``.field`` (``\\.`` escapes a dot inside a key), ``['key']``, ``[*]`` and ``.*``,
  ``[i]`` (negative counts from the end), ``[start:end:step]``, unions ``[0,2]`` / ``['a','b']``,
  recursive descent ``..field``, filters ``[?(@.type=="Ready")]`` (``==``, ``!=``, ``<``, ``>``, ``<=``,
  ``>=``, or a bare path for "exists"), string, number and boolean literals; ``@`` and ``$`` both mean
  the current object, as in kubectl;
* each action prints its results separated by one space: strings as they are, numbers and booleans
  as Go prints them, maps and lists as compact JSON;
* a missing key gives nothing (kubectl's default ``--allow-missing-template-keys=true``) unless
  ``allow_missing=False``; a bad index is an error either way.

One deliberate extension: a quoted key (``['a.b']``) is one key even if it holds dots; kubectl would
split it (there ``\\.`` is the only way).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


class JSONPathError(ValueError):
    """A template that cannot be parsed, or cannot be applied to the data."""


# -- the parsed form -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Wildcard:
    pass


@dataclass(frozen=True)
class Recursive:
    pass


@dataclass(frozen=True)
class Slice:
    start: int | None
    end: int | None
    step: int | None
    single: bool  # ``[i]`` rather than ``[i:j]``


@dataclass(frozen=True)
class Union:
    branches: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Filter:
    left: tuple[Any, ...]
    operator: str  # "exists", "==", "!=", "<", ">", "<=", ">="
    right: tuple[Any, ...]


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass
class Action:
    """``{...}``: steps applied to the current object."""

    steps: tuple[Any, ...]


@dataclass
class Range:
    """``{range <steps>}...{end}``: the body once per result."""

    steps: tuple[Any, ...]
    body: list[Any] = field(default_factory=list)


_TERMINATORS = set(" \t\r\n.,[]$@{}")
_OPERATOR = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$", re.S)
_SLICE = re.compile(r"^\s*(-?\d+)?\s*(:\s*(-?\d+)?)?\s*(:\s*(-?\d+)?)?\s*$")
_QUOTED = re.compile(r"""^\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*$""", re.S)


def parse(template: str) -> list[Any]:
    """The template as a list of text (``str``), ``Action`` and ``Range`` nodes."""
    root: list[Any] = []
    stack: list[list[Any]] = [root]
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            stack[-1].append(template[pos:])
            break
        if start > pos:
            stack[-1].append(template[pos:start])
        end = _action_end(template, start + 1)
        steps = _parse_steps(template[start + 1 : end])
        pos = end + 1
        if steps and isinstance(steps[0], _Keyword):
            if steps[0].word == "range":
                node = Range(tuple(steps[1:]))
                stack[-1].append(node)
                stack.append(node.body)
                continue
            if len(stack) == 1:
                raise JSONPathError("not in range, nothing to end")
            stack.pop()
            continue
        stack[-1].append(Action(tuple(steps)))
    if len(stack) > 1:
        raise JSONPathError("unclosed range: missing {end}")
    return root


def _action_end(text: str, pos: int) -> int:
    """The index of the ``}`` closing the action opened before ``pos`` (quotes may hold braces)."""
    return _closing(text, pos, "}", "unclosed action", stop="\r\n")


@dataclass(frozen=True)
class _Keyword:
    word: str  # "range" or "end"


def _parse_steps(text: str) -> list[Any]:
    steps: list[Any] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char in " \t@$":
            pos += 1
        elif text.startswith("[?(", pos):
            pos = _parse_filter(text, pos, steps)
        elif text.startswith("..", pos):
            if steps and isinstance(steps[-1], Recursive):
                raise JSONPathError("invalid multiple recursive descent")
            steps.append(Recursive())
            pos += 2
            if pos < len(text) and (text[pos].isalnum() or text[pos] == "_"):
                pos = _parse_field(text, pos, steps)
        elif char == ".":
            pos = _parse_field(text, pos + 1, steps)
        elif char == "[":
            pos = _parse_bracket(text, pos, steps)
        elif char in "\"'":
            end = pos + 1
            while end < len(text) and not (text[end] == char and text[end - 1] != "\\"):
                end += 1
            if end >= len(text):
                raise JSONPathError("unterminated quoted string")
            steps.append(Literal(_unquote(text[pos + 1 : end])))
            pos = end + 1
        elif char in "+-" or char.isdigit():
            end = pos + 1
            while end < len(text) and (text[end].isdigit() or text[end] == "."):
                end += 1
            steps.append(Literal(_number(text[pos:end])))
            pos = end
        elif char.isalnum() or char == "_":
            end = pos
            while end < len(text) and text[end] not in _TERMINATORS:
                end += 1
            word = text[pos:end]
            if word in ("true", "false"):
                steps.append(Literal(word == "true"))
            elif word in ("range", "end"):
                steps.append(_Keyword(word))
            else:
                raise JSONPathError(f"unrecognized identifier {word}")
            pos = end
        else:
            raise JSONPathError(f"unrecognized character in action: {char!r}")
    keywords = [i for i, step in enumerate(steps) if isinstance(step, _Keyword)]
    if keywords and keywords != [0]:
        raise JSONPathError("range and end must open an action")
    if steps and isinstance(steps[0], _Keyword) and steps[0].word == "end" and len(steps) > 1:
        raise JSONPathError("end takes nothing after it")
    return steps


def _parse_field(text: str, pos: int, steps: list[Any]) -> int:
    name: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            name.append(text[pos + 1])
            pos += 2
            continue
        if char in _TERMINATORS:
            break
        name.append(char)
        pos += 1
    value = "".join(name)
    if value == "*":
        steps.append(Wildcard())
    elif value:
        steps.append(Field(value))
    return pos


def _closing(text: str, start: int, closer: str, error: str, *, stop: str = "") -> int:
    """Where ``closer`` stands at or after ``start``, outside quoted strings (in which a backslash
    escapes the next character); ``error`` when it is nowhere, or a ``stop`` character comes first."""
    end = start
    quote = ""
    while end < len(text):
        char = text[end]
        if quote:
            if char == "\\":
                end += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif text.startswith(closer, end):
            return end
        elif char in stop:
            break
        end += 1
    raise JSONPathError(error)


def _parse_bracket(text: str, pos: int, steps: list[Any]) -> int:
    end = _closing(text, pos + 1, "]", "unterminated array")
    inner = text[pos + 1 : end]
    parts = _split_union(inner)
    if len(parts) > 1:
        steps.append(Union(tuple(tuple(_bracket_steps(part)) for part in parts)))
    else:
        steps.extend(_bracket_steps(inner))
    return end + 1


def _split_union(inner: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    for char in inner:
        if quote:
            if char == quote and (not current or current[-1] != "\\"):
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _bracket_steps(inner: str) -> list[Any]:
    if inner.strip() == "*":
        return [Wildcard()]
    quoted = _QUOTED.match(inner)
    if quoted:
        raw = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
        return [Field(_unquote(raw))]
    match = _SLICE.match(inner)
    if not match or not inner.strip():
        raise JSONPathError(f"invalid array index {inner}")
    start = int(match.group(1)) if match.group(1) else None
    if match.group(2) is None:
        if start is None:
            raise JSONPathError(f"invalid array index {inner}")
        return [Slice(start, None, None, single=True)]
    end = int(match.group(3)) if match.group(3) else None
    step = int(match.group(5)) if match.group(5) else None
    return [Slice(start, end, step, single=False)]


def _parse_filter(text: str, pos: int, steps: list[Any]) -> int:
    end = _closing(text, pos + 3, ")]", "unterminated filter")
    inner = text[pos + 3 : end]
    match = _OPERATOR.match(inner)
    if match is None:
        steps.append(Filter(tuple(_parse_steps(inner)), "exists", ()))
    else:
        operator = match.group(2)
        if operator not in ("==", "!=", "<", ">", "<=", ">="):
            raise JSONPathError(f"unrecognized filter operator {operator}")
        left = tuple(_parse_steps(match.group(1)))
        right = tuple(_parse_steps(match.group(3)))
        steps.append(Filter(left, operator, right))
    return end + 2


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise JSONPathError(f"cannot parse number {text}") from None


_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def _unquote(text: str) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char != "\\" or pos + 1 >= len(text):
            out.append(char)
            pos += 1
            continue
        code = text[pos + 1]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            pos += 2
        elif code in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[code]
            digits = text[pos + 2 : pos + 2 + width]
            try:
                out.append(chr(int(digits, 16)))
            except ValueError:
                raise JSONPathError(f"invalid escape \\{code}{digits}") from None
            pos += 2 + width
        else:
            raise JSONPathError(f"invalid escape \\{code}")
    return "".join(out)


# -- evaluation ------------------------------------------------------------------------------------


def find(steps: tuple[Any, ...], data: Any, *, allow_missing: bool = True) -> list[Any]:
    """The values ``steps`` select from ``data``."""
    return _walk(steps, [data], allow_missing)


def _walk(steps: tuple[Any, ...], values: list[Any], allow_missing: bool) -> list[Any]:
    for step in steps:
        values = _apply(step, values, allow_missing)
    return values


def _apply(step: Any, values: list[Any], allow_missing: bool) -> list[Any]:
    if isinstance(step, Field):
        found = [v[step.name] for v in values if isinstance(v, dict) and step.name in v]
        if not found and values and not allow_missing:
            raise JSONPathError(f"{step.name} is not found")
        return found
    if isinstance(step, Wildcard):
        return [child for v in values for child in _children(v)]
    if isinstance(step, Recursive):
        return [node for v in values for node in _descend(v)]
    if isinstance(step, Slice):
        return [item for v in values for item in _slice(step, v)]
    if isinstance(step, Union):
        return [item for branch in step.branches for item in _walk(branch, values, allow_missing)]
    if isinstance(step, Filter):
        return [item for v in values for item in _filter(step, v, allow_missing)]
    if isinstance(step, Literal):
        return [step.value for _ in values]
    raise JSONPathError(f"unexpected step {step!r}")


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return []


def _descend(value: Any) -> Iterator[Any]:
    children = _children(value)
    if children:
        yield value
        for child in children:
            yield from _descend(child)


def _slice(step: Slice, value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise JSONPathError(f"{_go_type(value)} is not array or slice")
    length = len(value)
    start = 0 if step.start is None else step.start
    if start < 0:
        start += length
    if step.single:
        if not 0 <= start < length:
            raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
        return [value[start]]
    end = length if step.end is None else step.end
    if end < 0:
        end += length
    if start == end:
        return []
    if not 0 <= start < length:
        raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
    if not 0 <= end <= length:
        raise JSONPathError(f"array index out of bounds: index {end - 1}, length {length}")
    if start > end:
        raise JSONPathError(f"starting index {start} is greater than ending index {end}")
    step_by = 1 if step.step is None else step.step
    if step_by <= 0:
        raise JSONPathError("step must be > 0")
    return value[start:end:step_by]


def _filter(step: Filter, value: Any, allow_missing: bool) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise JSONPathError(f"{_go_text(value)} is not array or slice and cannot be filtered")
    kept = []
    for item in value:
        lefts = find(step.left, item, allow_missing=True)
        if step.operator == "exists":
            if lefts:
                kept.append(item)
            continue
        rights = find(step.right, item, allow_missing=True)
        if not lefts or not rights:
            continue
        if len(lefts) > 1 or len(rights) > 1:
            raise JSONPathError("can only compare one element at a time")
        if _compare(lefts[0], step.operator, rights[0]):
            kept.append(item)
    return kept


def _compare(left: Any, operator: str, right: Any) -> bool:
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    if operator in ("==", "!="):
        if (number(left) and number(right)) or type(left) is type(right):
            equal = left == right
        else:
            raise JSONPathError(f"incompatible types for comparison: {_go_type(left)} and {_go_type(right)}")
        return equal if operator == "==" else not equal
    if not ((number(left) and number(right)) or (isinstance(left, str) and isinstance(right, str))):
        raise JSONPathError(f"invalid type for comparison: {_go_type(left)} and {_go_type(right)}")
    if operator == "<":
        return bool(left < right)
    if operator == ">":
        return bool(left > right)
    if operator == "<=":
        return bool(left <= right)
    return bool(left >= right)


# -- rendering -------------------------------------------------------------------------------------


def render(template: str | list[Any], data: Any, *, allow_missing: bool = True) -> str:
    """The template filled from ``data``, as kubectl prints it (no newline added)."""
    nodes = parse(template) if isinstance(template, str) else template
    out: list[str] = []
    _render(nodes, data, out, allow_missing)
    return "".join(out)


def _render(nodes: list[Any], data: Any, out: list[str], allow_missing: bool) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Range):
            for item in find(node.steps, data, allow_missing=allow_missing):
                _render(node.body, item, out, allow_missing)
        else:
            values = find(node.steps, data, allow_missing=allow_missing)
            out.append(" ".join(_text(v) for v in values))


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return go_json(value)
    return _go_text(value)


def _go_text(value: Any) -> str:
    """A scalar as Go's ``fmt.Print`` shows it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def go_float(value: float) -> str:
    """A float64 as Go's ``%v`` prints it: shortest form, exponent past 1e21 or below 1e-4."""
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        digits = exponent.lstrip("+-").rjust(2, "0")
        return f"{mantissa}e{sign}{digits}"
    return text


def go_json(value: Any) -> str:
    """Compact JSON as Go's ``json.Marshal`` writes a decoded object: keys sorted, HTML characters escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return escape_html(text)


def escape_html(text: str) -> str:
    """Go's encoding/json escapes these even outside HTML."""
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def go_sprint(value: Any) -> str:
    """A value as Go's ``fmt.Sprint`` prints a decoded JSON value (custom-columns cells)."""
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_sprint(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_sprint(v) for v in value) + "]"
    return _go_text(value)


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    return "<nil>"
