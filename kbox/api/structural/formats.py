"""String ``format``s as kube-apiserver checks them in custom resources.

kube-apiserver keeps only the formats in its supported list (see :data:`SUPPORTED`) and strips every
other one from the schema before validating, so ``int32``, ``int64``, ``float`` and ``double`` (and any
made-up name) check nothing. Names are compared with ``-`` removed (``date-time`` is ``datetime``).
A value of the wrong format fails as ``<path> in body must be of type <format>: "<value>"``.

Each checker follows the Go function kube-openapi registers for the name (``net.ParseIP``,
``mail.ParseAddress``, ``time.Parse`` ...), re-expressed in Python; their quirks are kept on purpose
(a plain ``my-host`` is not a ``hostname``: the upstream pattern only allows a hyphen in a label that
is followed by a dot).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import unicodedata
from collections.abc import Callable

SUPPORTED = frozenset(
    {
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
    }
)


def normalize(name: str) -> str:
    return name.replace("-", "")


def is_supported(name: str) -> bool:
    """Whether kube-apiserver keeps (and so checks) this format."""
    return normalize(name) in SUPPORTED


# --- network ------------------------------------------------------------------------------------------


def _ipv4_sloppy(text: str) -> bool:
    """``ParseIPSloppy`` for dotted quads: four decimal fields up to 255, leading zeros allowed."""
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not part or not part.isascii() or not part.isdigit() or int(part) > 255:
            return False
    return True


def _ipv6(text: str) -> bool:
    if "%" in text or not text.isascii():
        return False
    head, sep, tail = text.rpartition(":")
    if sep and "." in tail:  # an embedded IPv4 tail may have leading zeros in the sloppy parser
        if not _ipv4_sloppy(tail):
            return False
        text = head + ":" + ".".join(str(int(p)) for p in tail.split("."))
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _parse_ip(text: str) -> bool:
    return _ipv4_sloppy(text) or _ipv6(text)


def is_ipv4(text: str) -> bool:
    """Any IP ``ParseIPSloppy`` reads that contains a dot (so ``::ffff:1.2.3.4`` passes, as upstream)."""
    return _parse_ip(text) and "." in text


def is_ipv6(text: str) -> bool:
    return _parse_ip(text) and ":" in text


def is_cidr(text: str) -> bool:
    address, sep, prefix = text.partition("/")
    if not sep or not prefix.isascii() or not prefix.isdigit():
        return False
    if len(prefix) > 1 and prefix.startswith("0"):
        return False
    if _ipv4_sloppy(address):
        return int(prefix) <= 32
    if _ipv6(address):
        return int(prefix) <= 128
    return False


_MAC_COLON = re.compile(r"[0-9A-Fa-f]{2}(?:([:-])[0-9A-Fa-f]{2})+\Z")
_MAC_DOT = re.compile(r"[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4})+\Z")


def is_mac(text: str) -> bool:
    """``net.ParseMAC``: EUI-48, EUI-64 or 20-octet IPoIB, in ``:``, ``-`` or ``.`` notation."""
    if _MAC_COLON.match(text):
        separator = text[2]
        if any(text[i] != separator for i in range(2, len(text), 3)):
            return False
        return (len(text) + 1) // 3 in (6, 8, 20)
    if _MAC_DOT.match(text):
        return (len(text) + 1) // 5 * 2 in (6, 8, 20)
    return False


def _host_class(char: str) -> str:
    """The class a character has in the upstream hostname pattern: letter, digit, symbol or itself."""
    if char.isascii():
        if char.isalpha():
            return "L"
        if char.isdigit():
            return "D"
        return char if char in "-." else "?"
    category = unicodedata.category(char)
    if category.startswith("L"):
        return "L"
    if category.startswith("S"):
        return "S"
    return "?"


_HOSTNAME = re.compile(r"^([LDS]((-?[LDS]{0,62})?)|([LDS](([LDS-]{0,61}[LDS])?)(\.)){1,}([L]){2,63})\Z")


def is_hostname(text: str) -> bool:
    mapped = "".join(_host_class(c) for c in text)
    if not _HOSTNAME.match(mapped):
        return False
    if len(text.encode()) > 255:
        return False
    return all(len(part.encode()) <= 63 for part in text.split("."))


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def is_request_uri(text: str) -> bool:
    """``url.ParseRequestURI``: an absolute URI or an absolute path, without control characters."""
    if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return False
    scheme = _SCHEME.match(text)
    if scheme is None:
        return text.startswith("/")
    rest = text[scheme.end() :]
    if not rest.startswith("//"):
        return True  # opaque ("mailto:x") or a path after the scheme
    authority = rest[2:].split("/", 1)[0].split("?", 1)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        end = host.find("]")
        if end < 0 or not _ipv6(host[1:end].split("%", 1)[0]):
            return False
        return re.fullmatch(r"(?::\d*)?", host[end + 1 :]) is not None
    name, _, port = host.partition(":")
    if port and not port.isdigit():
        return False
    return re.fullmatch(r"[A-Za-z0-9\-._~!$&'()*+,;=%]*", name) is not None


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_QUOTED = r'"(?:[^"\\\r\n]|\\.)*"'
_ADDR = rf"(?:{_DOT_ATOM}|{_QUOTED})@(?:{_DOT_ATOM}|\[[^\[\]\\]*\])"
_EMAIL = re.compile(rf"\s*(?:{_ADDR}|(?:{_QUOTED}|[^<>@\"]*)\s*<{_ADDR}>)\s*\Z")


def is_email(text: str) -> bool:
    """``mail.ParseAddress``: ``user@domain`` or ``Name <user@domain>``."""
    return _EMAIL.match(text) is not None


# --- identifiers and numbers --------------------------------------------------------------------------

_UUID = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\Z")
_UUID3 = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}\Z")
_UUID4 = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}\Z")
_UUID5 = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}\Z")
_BSON = re.compile(r"[0-9A-Fa-f]{24}\Z")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})\Z")
_SSN = re.compile(r"\d{3}[- ]?\d{2}[- ]?\d{4}\Z", re.ASCII)
_HEXCOLOR = re.compile(r"#?(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")
_BYTE = r"(?:0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])"
_RGB = re.compile(rf"rgb\(\s*{_BYTE}\s*,\s*{_BYTE}\s*,\s*{_BYTE}\s*\)\Z", re.ASCII)
_CREDIT = re.compile(
    r"(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720)[0-9]{12}"
    r"|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11}"
    r"|6[27][0-9]{14})\Z",
    re.ASCII,
)


def _isbn10(text: str) -> bool:
    digits = re.sub(r"[\s-]+", "", text)
    if not re.fullmatch(r"[0-9]{9}X|[0-9]{10}", digits):
        return False
    total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(digits))
    return total % 11 == 0


def _isbn13(text: str) -> bool:
    digits = re.sub(r"[\s-]+", "", text)
    if not re.fullmatch(r"[0-9]{13}", digits):
        return False
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == int(digits[12])


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def is_credit_card(text: str) -> bool:
    digits = re.sub(r"[^0-9]+", "", text)
    return _CREDIT.match(digits) is not None and _luhn(digits)


def is_ssn(text: str) -> bool:
    return len(text) == 11 and _SSN.match(text) is not None


# --- times --------------------------------------------------------------------------------------------

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z", re.ASCII)
_TIME = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))\Z")


def is_date(text: str) -> bool:
    """``time.Parse("2006-01-02")``: a real calendar day."""
    match = _DATE.match(text)
    if match is None:
        return False
    try:
        datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return True


def is_date_time(text: str) -> bool:
    """kube-openapi's check: a date, a ``t``, then a time whose fields compare as strings."""
    if len(text) < 4:
        return False
    parts = text.lower().split("t")
    if len(parts) < 2 or not is_date(parts[0]):
        return False
    match = _TIME.match(parts[1])
    if match is None:
        return False
    return match[1] <= "23" and match[2] <= "59" and match[3] <= "59"


_GO_DURATION = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+\Z")
_LOOSE_DURATION = re.compile(r"(\d+)\s*([A-Za-zµ]+)")
_UNITS = (
    ("ns", "nano"),
    ("us", "µs", "micro"),
    ("ms", "milli"),
    ("s", "sec"),
    ("m", "min"),
    ("h", "hr", "hour"),
    ("d", "day"),
    ("w", "wk", "week"),
)


def is_duration(text: str) -> bool:
    """Go's ``time.ParseDuration``, or a list of ``<n> <unit>`` words (``3 days``, ``1 hour 5 min``)."""
    if text in ("0", "+0", "-0") or _GO_DURATION.match(text):
        return True
    for match in _LOOSE_DURATION.finditer(text):
        unit = match[2].strip().lower()
        for variants in _UNITS:
            last = len(variants) - 1
            for i, variant in enumerate(variants):
                if (i == last and unit.startswith(variant)) or variant.lower() == unit:
                    return True
    return False


CHECKERS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": lambda s: _BSON.match(s) is not None,
    "uri": is_request_uri,
    "email": is_email,
    "hostname": is_hostname,
    "ipv4": is_ipv4,
    "ipv6": is_ipv6,
    "cidr": is_cidr,
    "mac": is_mac,
    "uuid": lambda s: _UUID.match(s) is not None,
    "uuid3": lambda s: _UUID3.match(s) is not None,
    "uuid4": lambda s: _UUID4.match(s) is not None,
    "uuid5": lambda s: _UUID5.match(s) is not None,
    "isbn": lambda s: _isbn10(s) or _isbn13(s),
    "isbn10": _isbn10,
    "isbn13": _isbn13,
    "creditcard": is_credit_card,
    "ssn": is_ssn,
    "hexcolor": lambda s: _HEXCOLOR.match(s) is not None,
    "rgbcolor": lambda s: _RGB.match(s) is not None,
    "byte": lambda s: _BASE64.match(s) is not None,
    "password": lambda s: True,
    "date": is_date,
    "duration": is_duration,
    "datetime": is_date_time,
}


def check(name: str, value: str) -> bool:
    """Whether ``value`` is a valid ``name``; unsupported formats accept everything."""
    checker = CHECKERS.get(normalize(name))
    return True if checker is None else checker(value)
