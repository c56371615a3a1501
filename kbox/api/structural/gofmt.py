"""Values printed the way Go prints decoded JSON, so error messages match kube-apiserver byte for byte.

A custom object reaches kube-apiserver's validators as ``map[string]interface{}``, ``[]interface{}``,
``string``, ``int64``, ``float64``, ``bool`` and ``nil``, and the messages show those values with
``fmt``'s verbs: ``%v`` for numbers (``65535``, ``1.5``, ``1e+21``), ``%q`` for strings and ``%#v`` for
maps and lists (``map[string]interface {}{"name":"http"}``). Python's ``str`` differs on most of these
(``3.0``, ``{'name': 'http'}``), so the validators wrap the values they report in :class:`GoValue`.
"""

from __future__ import annotations

import decimal
import math
from typing import Any

_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def _printable(char: str) -> bool:
    """Go's ``unicode.IsPrint``: letters, marks, numbers, punctuation, symbols and the ASCII space."""
    return char == " " or char.isprintable()


def go_quote(text: str) -> str:
    """``strconv.Quote``: double quotes, C escapes, ``\\x``/``\\u``/``\\U`` for what cannot be shown."""
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif _printable(char):
            out.append(char)
        else:
            code = ord(char)
            if code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_float(value: float) -> str:
    """A float64 as ``%v`` prints it: the shortest digits, with an exponent below 1e-4 or from 1e21."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    mantissa, _, power = text.partition("e")
    if not power:  # Python spells out 1e-4 <= |v| < 1e16, as Go does
        return text.removesuffix(".0")
    exponent = int(power)
    if -4 <= exponent < 21:  # Go spells these out too, Python does not
        spelled = format(decimal.Decimal(text), "f")
        return spelled.rstrip("0").rstrip(".") if "." in spelled else spelled
    sign = "-" if exponent < 0 else "+"
    return f"{mantissa.removesuffix('.0')}e{sign}{abs(exponent):02d}"


def go_v(value: Any) -> str:
    """``%v`` of a decoded JSON value (scalars; maps and lists as ``fmt`` prints them)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_v(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_v(v) for v in value) + "]"
    return str(value)


def go_sharp_v(value: Any, *, boxed: bool = False) -> str:
    """``%#v``: Go syntax. ``boxed`` is for values held in an ``interface{}`` slot (nil shows its type)."""
    if value is None:
        return "interface {}(nil)" if boxed else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{go_quote(str(k))}:{go_sharp_v(value[k], boxed=True)}" for k in sorted(value))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(go_sharp_v(v, boxed=True) for v in value) + "}"
    return str(value)


def field_value(value: Any) -> str:
    """How ``field.Error`` shows a bad value: ``null``, ``%v`` for numbers and booleans, ``%q`` for
    strings, ``%#v`` for the rest."""
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return go_v(value)
    if isinstance(value, str):
        return go_quote(value)
    return go_sharp_v(value)


class GoValue:
    """A bad value for a :class:`~kbox.api.errors.FieldError`: it prints as kube-apiserver prints it.

    ``FieldError`` quotes plain strings and ``str()``-s anything else, so wrapping the value here keeps
    the exact Go rendering without changing the shared error type. ``value`` keeps the original.
    """

    __slots__ = ("text", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.text = field_value(value)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"GoValue({self.value!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GoValue):
            return self.text == other.text
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.text)
