"""Kubernetes' CEL libraries that kbox adds to cel-python: strings, lists, regex, quantities, URLs, IPs.

kube-apiserver's CEL environment has cel-go's string extensions and Kubernetes' ``lists`` and
``regex`` libraries besides standard CEL; CRD rules use them often (``self.name.lowerAscii()``,
``self.items.isSorted()``, ``self.url.find('^https?')``,
``quantity(self.memory).isLessThan(quantity('1Gi'))``). These are re-implemented here on
cel-python's types with the semantics of the Go libraries (indices count code points, ``lowerAscii``
touches ASCII letters only, ``min()`` of an empty list is an error, quantities compare by value).
The ``format`` and ``semver`` libraries and ``string()`` of an IP, CIDR or URL are not covered; a rule
using what is not covered is not enforced (or not judged), see :mod:`.cel`.
"""

from __future__ import annotations

import importlib
import ipaddress
import urllib.parse
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from kbox.api import quantity as quantities
from kbox.api.structural import formats, regex


class CELFunctionError(ValueError):
    """An error the Go library would return (the rule then fails to evaluate)."""


def _types() -> Any:
    return importlib.import_module("celpy.celtypes")


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise CELFunctionError(f"no such overload for {type(value).__name__}")
    return str(value)


def char_at(text: Any, index: Any) -> Any:
    value, i = _string(text), int(index)
    if i < 0 or i > len(value):
        raise CELFunctionError(f"index out of range: {i}")
    return _types().StringType(value[i : i + 1])


def index_of(target: Any, item: Any, offset: Any = None) -> Any:
    types = _types()
    if _is_list(target):
        for i, element in enumerate(target):
            if _equal(element, item):
                return types.IntType(i)
        return types.IntType(-1)
    value, sub = _string(target), _string(item)
    start = 0 if offset is None else int(offset)
    if start < 0 or start > len(value):
        raise CELFunctionError(f"index out of range: {start}")
    return types.IntType(value.find(sub, start))


def last_index_of(target: Any, item: Any, offset: Any = None) -> Any:
    types = _types()
    if _is_list(target):
        for i in range(len(target) - 1, -1, -1):
            if _equal(target[i], item):
                return types.IntType(i)
        return types.IntType(-1)
    value, sub = _string(target), _string(item)
    end = len(value) if offset is None else int(offset)
    if end < 0 or end > len(value):
        raise CELFunctionError(f"index out of range: {end}")
    return types.IntType(value.rfind(sub, 0, end + len(sub)))


def _ascii_case(text: Any, upper: bool) -> Any:
    value = _string(text)
    table = str.maketrans(
        "abcdefghijklmnopqrstuvwxyz" if upper else "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if upper else "abcdefghijklmnopqrstuvwxyz",
    )
    return _types().StringType(value.translate(table))


def replace(text: Any, old: Any, new: Any, count: Any = None) -> Any:
    value = _string(text)
    limit = -1 if count is None else int(count)
    return _types().StringType(value.replace(_string(old), _string(new), limit))


def split(text: Any, separator: Any, count: Any = None) -> Any:
    types = _types()
    value, sep = _string(text), _string(separator)
    limit = -1 if count is None else int(count)
    if limit == 0:
        return types.ListType([])
    if sep == "":
        parts = list(value) if limit < 0 else [*list(value[: limit - 1]), value[limit - 1 :]]
    else:
        parts = value.split(sep, limit - 1 if limit > 0 else -1)
    return types.ListType([types.StringType(p) for p in parts if not (sep == "" and p == "")])


def substring(text: Any, start: Any, end: Any = None) -> Any:
    value = _string(text)
    first = int(start)
    last = len(value) if end is None else int(end)
    if first < 0 or last > len(value) or first > last:
        raise CELFunctionError(f"index out of range: {first}..{last}")
    return _types().StringType(value[first:last])


def trim(text: Any) -> Any:
    return _types().StringType(_string(text).strip())


def join(items: Any, separator: Any = "") -> Any:
    if not _is_list(items):
        raise CELFunctionError("join needs a list of strings")
    return _types().StringType(_string(separator).join(_string(item) for item in items))


def _equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


def is_sorted(items: Any) -> Any:
    if not _is_list(items):
        raise CELFunctionError("isSorted needs a list")
    return _types().BoolType(all(items[i] <= items[i + 1] for i in range(len(items) - 1)))


def list_sum(items: Any) -> Any:
    types = _types()
    if not _is_list(items):
        raise CELFunctionError("sum needs a list")
    if not items:
        return types.IntType(0)
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


def _extreme(items: Any, pick: Callable[[Any, Any], bool]) -> Any:
    if not _is_list(items) or not items:
        raise CELFunctionError("min or max of an empty list")
    best = items[0]
    for item in items[1:]:
        if pick(item, best):
            best = item
    return best


def find(text: Any, pattern: Any) -> Any:
    compiled = regex.compile_pattern(_string(pattern))
    match = compiled.search(_string(text))
    return _types().StringType(match.group(0) if match else "")


def find_all(text: Any, pattern: Any, count: Any = None) -> Any:
    types = _types()
    compiled = regex.compile_pattern(_string(pattern))
    limit = -1 if count is None else int(count)
    found = [m.group(0) for m in compiled.finditer(_string(text))]
    if limit >= 0:
        found = found[:limit]
    return types.ListType([types.StringType(f) for f in found])


# --- quantities (Kubernetes' ``quantity`` library) ----------------------------------------------------

_INT64 = 2**63


class Quantity:
    """A CEL ``kubernetes.Quantity``: compared, added and converted by value (``1`` equals ``1000m``)."""

    __slots__ = ("value",)

    def __init__(self, value: Decimal) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Quantity({self.value})"


def _quantity(value: Any) -> Quantity:
    if isinstance(value, Quantity):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Quantity(Decimal(int(value)))
    try:
        return Quantity(quantities.parse(_string(value)))
    except ValueError as exc:
        raise CELFunctionError(str(exc)) from None


def is_quantity(value: Any) -> Any:
    try:
        quantities.parse(_string(value))
    except ValueError:
        return _types().BoolType(False)
    return _types().BoolType(True)


def as_integer(value: Any) -> Any:
    amount = _quantity(value).value
    if amount != amount.to_integral_value() or not -_INT64 <= amount < _INT64:
        raise CELFunctionError("cannot convert value to integer")
    return _types().IntType(int(amount))


def _compare(a: Any, b: Any) -> int:
    left, right = _quantity(a).value, _quantity(b).value
    return (left > right) - (left < right)


QUANTITY_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "quantity": _quantity,
    "isQuantity": is_quantity,
    "sign": lambda q: _types().IntType((_quantity(q).value > 0) - (_quantity(q).value < 0)),
    "isInteger": lambda q: _types().BoolType(_quantity(q).value == _quantity(q).value.to_integral_value()),
    "asInteger": as_integer,
    "asApproximateFloat": lambda q: _types().DoubleType(float(_quantity(q).value)),
    "add": lambda a, b: Quantity(_quantity(a).value + _quantity(b).value),
    "sub": lambda a, b: Quantity(_quantity(a).value - _quantity(b).value),
    "compareTo": lambda a, b: _types().IntType(_compare(a, b)),
    "isGreaterThan": lambda a, b: _types().BoolType(_compare(a, b) > 0),
    "isLessThan": lambda a, b: _types().BoolType(_compare(a, b) < 0),
}


# --- URLs (Kubernetes' ``url`` library) -----------------------------------------------------------


class URL:
    """A CEL ``kubernetes.URL``: an absolute URI or an absolute path, as ``url.ParseRequestURI`` reads."""

    __slots__ = ("parts",)

    def __init__(self, parts: urllib.parse.SplitResult) -> None:
        self.parts = parts

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URL) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(self.parts)


def _url(value: Any) -> URL:
    if isinstance(value, URL):
        return value
    text = _string(value)
    if not formats.is_request_uri(text):
        raise CELFunctionError(f"URL parse error during conversion from string: {text}")
    return URL(urllib.parse.urlsplit(text))


def _hostname(parts: urllib.parse.SplitResult) -> str:
    host = parts.netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.partition(":")[0]


def _port(parts: urllib.parse.SplitResult) -> str:
    host = parts.netloc.rpartition("@")[2]
    if host.startswith("["):
        host = host[host.find("]") + 1 :]
    return host.partition(":")[2]


def _query(value: Any) -> Any:
    types = _types()
    parsed = urllib.parse.parse_qs(_url(value).parts.query, keep_blank_values=True)
    return types.MapType(
        {types.StringType(k): types.ListType([types.StringType(v) for v in vs]) for k, vs in parsed.items()}
    )


URL_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "url": _url,
    "isURL": lambda value: _types().BoolType(formats.is_request_uri(_string(value))),
    "getScheme": lambda u: _types().StringType(_url(u).parts.scheme),
    "getHost": lambda u: _types().StringType(_url(u).parts.netloc.rpartition("@")[2]),
    "getHostname": lambda u: _types().StringType(_hostname(_url(u).parts)),
    "getPort": lambda u: _types().StringType(_port(_url(u).parts)),
    "getEscapedPath": lambda u: _types().StringType(_url(u).parts.path),
    "getQuery": _query,
}


# --- IPs and CIDRs (Kubernetes' ``ip`` and ``cidr`` libraries) ---------------------------------------


class IP:
    """A CEL ``net.IP``."""

    __slots__ = ("address",)

    def __init__(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        self.address = address

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IP) and self.address == other.address

    def __hash__(self) -> int:
        return hash(self.address)


class CIDR:
    """A CEL ``net.CIDR``: the address as written and its prefix length."""

    __slots__ = ("address", "network")

    def __init__(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: int) -> None:
        self.address = address
        self.network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CIDR) and (self.address, self.network) == (other.address, other.network)

    def __hash__(self) -> int:
        return hash((self.address, self.network))


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``netip.ParseAddr`` without zones or IPv4-mapped IPv6, as the library requires."""
    if "%" in text:
        raise CELFunctionError("IP address with zone value is not allowed")
    try:
        address = ipaddress.ip_address(text)
    except ValueError as exc:
        raise CELFunctionError(
            f"IP Address {text!r} parse error during conversion from string: {exc}"
        ) from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise CELFunctionError("IPv4-mapped IPv6 address is not allowed")
    return address


def _ip(value: Any) -> IP:
    """``ip('10.0.0.1')``, and ``cidr('10.0.0.0/8').ip()``: the two share the name."""
    if isinstance(value, IP):
        return value
    if isinstance(value, CIDR):
        return IP(value.address)
    return IP(_parse_ip(_string(value)))


def _cidr(value: Any) -> CIDR:
    if isinstance(value, CIDR):
        return value
    text = _string(value)
    address, sep, prefix = text.partition("/")
    if not sep or not prefix.isdigit() or (len(prefix) > 1 and prefix.startswith("0")):
        raise CELFunctionError(f"network address parse error during conversion from string: {text}")
    parsed = _parse_ip(address)
    if int(prefix) > parsed.max_prefixlen:
        raise CELFunctionError(f"network address parse error during conversion from string: {text}")
    return CIDR(parsed, int(prefix))


def _valid(parse: Callable[[Any], Any], value: Any) -> Any:
    try:
        parse(value)
    except CELFunctionError:
        return _types().BoolType(False)
    return _types().BoolType(True)


def _global_unicast(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Go's ``IsGlobalUnicast``: private ranges count, loopback, link-local, multicast do not."""
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_link_local:
        return False
    return address != ipaddress.IPv4Address("255.255.255.255")


def _link_local_multicast(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        return address in ipaddress.ip_network("224.0.0.0/24")
    return address.is_multicast and (address.packed[1] & 0x0F) == 0x02


def _contains_ip(cidr: Any, ip: Any) -> Any:
    return _types().BoolType(_ip(ip).address in _cidr(cidr).network)


def _contains_cidr(cidr: Any, other: Any) -> Any:
    outer, inner = _cidr(cidr).network, _cidr(other).network
    same_family = outer.version == inner.version
    return _types().BoolType(same_family and inner.subnet_of(outer))  # type: ignore[arg-type]


IP_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ip": _ip,
    "isIP": lambda value: _valid(_ip, value),
    "family": lambda ip: _types().IntType(_ip(ip).address.version),
    "isUnspecified": lambda ip: _types().BoolType(_ip(ip).address.is_unspecified),
    "isLoopback": lambda ip: _types().BoolType(_ip(ip).address.is_loopback),
    "isLinkLocalMulticast": lambda ip: _types().BoolType(_link_local_multicast(_ip(ip).address)),
    "isLinkLocalUnicast": lambda ip: _types().BoolType(
        _ip(ip).address.is_link_local and not _ip(ip).address.is_multicast
    ),
    "isGlobalUnicast": lambda ip: _types().BoolType(_global_unicast(_ip(ip).address)),
    "cidr": _cidr,
    "isCIDR": lambda value: _valid(_cidr, value),
    "containsIP": _contains_ip,
    "containsCIDR": _contains_cidr,
    "prefixLength": lambda cidr: _types().IntType(_cidr(cidr).network.prefixlen),
    "masked": lambda cidr: CIDR(_cidr(cidr).network.network_address, _cidr(cidr).network.prefixlen),
}


FUNCTIONS: dict[str, Callable[..., Any]] = {
    **QUANTITY_FUNCTIONS,
    **URL_FUNCTIONS,
    **IP_FUNCTIONS,
    "charAt": char_at,
    "indexOf": index_of,
    "lastIndexOf": last_index_of,
    "lowerAscii": lambda text: _ascii_case(text, upper=False),
    "upperAscii": lambda text: _ascii_case(text, upper=True),
    "replace": replace,
    "split": split,
    "substring": substring,
    "trim": trim,
    "join": join,
    "isSorted": is_sorted,
    "sum": list_sum,
    "min": lambda items: _extreme(items, lambda a, b: a < b),
    "max": lambda items: _extreme(items, lambda a, b: a > b),
    "find": find,
    "findAll": find_all,
}
