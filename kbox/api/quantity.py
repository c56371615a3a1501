"""Kubernetes resource quantities (``500m``, ``128Mi``, ``1.5``, ``2e3``) as numbers."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_PATTERN = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$"
)


def parse(value: str | int | float) -> Decimal:
    """The quantity's value in base units (cores, bytes); ValueError if malformed."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _PATTERN.match(value.strip())
    if match is None:
        raise ValueError(f"quantities must match the regular expression '{_PATTERN.pattern}': {value!r}")
    number, exponent, suffix = match.groups()
    try:
        result = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"invalid quantity {value!r}") from None
    if exponent:
        result *= Decimal(10) ** int(exponent[1:])
    return result * _SUFFIXES[suffix or ""]
