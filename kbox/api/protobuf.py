"""Decode Kubernetes-protobuf request bodies (``application/vnd.kubernetes.protobuf``) into JSON dicts.

kubectl's typed clients (``create namespace|deployment|secret|...``, ``auth can-i``, ``create
token``) send their objects as protobuf and never fall back to JSON. :func:`decode` turns such a
body into exactly the dict that the JSON body of the same object would parse to, so the rest of the
apiserver sees no difference. (policy/v1 Eviction is covered too, though kubectl 1.32.4's ``drain``
was seen sending it as JSON.)

The body is the 4-byte magic ``k8s\\x00`` and a ``runtime.Unknown``: 1 ``TypeMeta`` {1 apiVersion,
2 kind}, 2 the object's own protobuf, 3 contentEncoding, 4 contentType (both empty). The object is
decoded against :mod:`kbox.api.protobuf_schema`, a table generated from the upstream
``generated.proto`` and ``types.go`` files, and rendered as Go's ``encoding/json`` renders the
typed object:

* keys are the JSON names, in Go field order; embedded structs (``Volume``'s ``VolumeSource``) are
  inlined; ``omitempty`` drops empty strings, zeros, false, empty lists and maps;
* a non-``omitempty`` list or map that is absent is ``null``, a nil pointer is left out (or ``null``);
  structs are never omitted (``"status": {}``, ``"creationTimestamp": null``);
* int64 is an ``int``, ``bytes`` (``Secret.data``) is standard base64, ``Time`` is RFC 3339 in UTC
  with seconds (``null`` when zero), ``MicroTime`` has microseconds, ``Duration`` is Go's
  ``1h2m3s`` form, ``Quantity`` is its string, ``IntOrString`` is an int or a string, and
  ``RawExtension``/``FieldsV1`` hold their embedded JSON;
* field numbers the table does not know are skipped, as protobuf readers do.

The wire format is decoded by hand (varints, length-delimited, fixed32/fixed64, packed lists): it
is about 80 lines, while the ``protobuf`` package would add a dependency whose low-level decoder is
not public API (``google.protobuf.internal``) and would remove none of the schema work, which is
all Kubernetes-specific (JSON names, omitempty, inlining, custom types).
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from kbox.api import errors
from kbox.api.protobuf_schema import INLINE, KINDS, MESSAGES, OMIT, PTR, REP, SPECIAL

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# Wire types.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_WIRE_OF = {
    "string": _LEN,
    "bytes": _LEN,
    "message": _LEN,
    "map": _LEN,
    "bool": _VARINT,
    "int32": _VARINT,
    "int64": _VARINT,
    "uint32": _VARINT,
    "uint64": _VARINT,
    "double": _I64,
    "float": _I32,
}
_MAX_DEPTH = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Go's zero time.Time (0001-01-01T00:00:00Z), which the JSON encoding writes as null.
_GO_ZERO_SECONDS = -62135596800


class _Malformed(Exception):
    """Raised inside the decoder; :func:`decode` turns it into a 400 naming the field."""


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object (as parsed by ``json.loads``) that a Kubernetes-protobuf ``body`` encodes.

    Raises ``StatusError`` 400 for bytes that are not a well-formed envelope or message, and 415 for
    a kind kbox has no table for (or an envelope with a content encoding or type it cannot read).
    """
    if not body.startswith(MAGIC):
        raise errors.bad_request("protobuf body does not start with the Kubernetes magic bytes k8s\\x00")
    try:
        api_version, kind, raw, encoding, content_type = _envelope(bytes(body[len(MAGIC) :]))
    except _Malformed as e:
        raise errors.bad_request(f"malformed protobuf envelope (runtime.Unknown): {e}") from None
    if not kind:
        raise errors.bad_request("protobuf envelope names no kind")
    if encoding:
        raise errors.unsupported_media_type(
            f"protobuf envelope with contentEncoding {encoding!r} is not supported"
        )
    if content_type and content_type != CONTENT_TYPE:
        raise errors.unsupported_media_type(
            f"protobuf envelope with contentType {content_type!r} is not supported"
        )
    message = KINDS.get((api_version, kind))
    if message is None and kind == "DeleteOptions":
        # Registered in every group version: client-go sends it in its client's one (v1, apps/v1...).
        message = "meta.v1.DeleteOptions"
    if message is None:
        raise errors.unsupported_media_type(
            f"kbox cannot decode {kind} ({api_version or 'no apiVersion'}) from {CONTENT_TYPE}; "
            "send it as application/json"
        )
    try:
        fields = _object(raw, message, kind, 0)
    except _Malformed as e:
        raise errors.bad_request(f"malformed protobuf body for {kind}: {e}") from None
    return {"kind": kind, "apiVersion": api_version, **fields}


def decode_message(message: str, data: bytes) -> Any:
    """The JSON value of one message of :data:`MESSAGES` (``"core.v1.PodSpec"``, ``"meta.v1.Time"``)."""
    if message not in MESSAGES:
        raise errors.unsupported_media_type(f"no protobuf table for message {message}")
    try:
        return _value(data, message, message.rsplit(".", 1)[-1], 0)
    except _Malformed as e:
        raise errors.bad_request(f"malformed protobuf {message}: {e}") from None


# --- wire format -----------------------------------------------------------------------------------


def _varint(data: bytes, pos: int, path: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _Malformed(f"{path}: truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise _Malformed(f"{path}: varint longer than 10 bytes")


def _scan(data: bytes, path: str) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field: an int, or the bytes of a LEN/I32/I64 field."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos, path)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed(f"{path}: field number 0")
        if wire == _VARINT:
            value, pos = _varint(data, pos, path)
            yield number, wire, value
            continue
        if wire == _LEN:
            size, pos = _varint(data, pos, path)
        elif wire == _I64:
            size = 8
        elif wire == _I32:
            size = 4
        else:
            raise _Malformed(f"{path}: field {number} has unsupported wire type {wire}")
        if pos + size > end:
            raise _Malformed(f"{path}: field {number} runs past the end of its message")
        yield number, wire, data[pos : pos + size]
        pos += size


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _scalar(kind: str, wire: int, value: int | bytes, path: str) -> Any:
    if isinstance(value, int):
        if kind == "int64":
            return _signed(value, 64)
        if kind == "int32":
            return _signed(value, 32)
        if kind == "uint32":
            return value & 0xFFFFFFFF
        if kind == "bool":
            return value != 0
        return value  # uint64
    if kind == "string":
        return value.decode("utf-8", errors="replace")  # Go's JSON encoder writes U+FFFD for bad bytes
    if kind == "double":
        return struct.unpack("<d", value)[0]
    if kind == "float":
        return struct.unpack("<f", value)[0]
    return value  # bytes


def _packed(kind: str, data: bytes, path: str) -> list[Any]:
    """A packed repeated numeric field."""
    if kind in ("double", "float"):
        size = 8 if kind == "double" else 4
        if len(data) % size:
            raise _Malformed(f"{path}: packed {kind} list of {len(data)} bytes")
        return [_scalar(kind, _LEN, data[i : i + size], path) for i in range(0, len(data), size)]
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos, path)
        out.append(_scalar(kind, _VARINT, value, path))
    return out


# --- messages --------------------------------------------------------------------------------------


def _envelope(data: bytes) -> tuple[str, str, bytes, str, str]:
    api_version = kind = encoding = content_type = ""
    raw = b""
    for number, wire, value in _scan(data, "Unknown"):
        if number == 1 and wire == _LEN and isinstance(value, bytes):
            for inner, inner_wire, inner_value in _scan(value, "Unknown.typeMeta"):
                if inner_wire == _LEN and isinstance(inner_value, bytes) and inner in (1, 2):
                    text = inner_value.decode("utf-8", errors="replace")
                    api_version, kind = (text, kind) if inner == 1 else (api_version, text)
        elif number == 2 and wire == _LEN and isinstance(value, bytes):
            raw = value
        elif number in (3, 4) and wire == _LEN and isinstance(value, bytes):
            text = value.decode("utf-8", errors="replace")
            encoding, content_type = (text, content_type) if number == 3 else (encoding, text)
    return api_version, kind, raw, encoding, content_type


def _collect(data: bytes, message: str, path: str) -> dict[int, Any]:
    """Field number -> Python value: scalars typed, lists for repeated fields and maps, message bytes.

    Sub-messages stay bytes (a non-repeated one seen twice is concatenated, which is protobuf's merge).
    """
    fields = MESSAGES[message]
    values: dict[int, Any] = {}
    for number, wire, value in _scan(data, path):
        spec = fields.get(number)
        if spec is None:
            continue
        name, kind, flags, _ = spec
        expected = _WIRE_OF[kind]
        if flags & REP and kind not in ("string", "bytes", "message") and wire == _LEN:
            assert isinstance(value, bytes)
            values.setdefault(number, []).extend(_packed(kind, value, f"{path}.{name}"))
            continue
        if wire != expected:
            raise _Malformed(f"{path}.{name}: wire type {wire}, expected {expected} for {kind}")
        if kind == "map" or flags & REP:
            values.setdefault(number, []).append(
                value if kind in ("message", "map") else _scalar(kind, wire, value, path)
            )
        elif kind == "message":
            values[number] = values.get(number, b"") + value
        else:
            values[number] = _scalar(kind, wire, value, path)
    return values


def _object(data: bytes, message: str, path: str, depth: int) -> dict[str, Any]:
    """A message without custom JSON, as Go's encoding/json writes the struct."""
    values = _collect(data, message, path)
    out: dict[str, Any] = {}
    for number, (name, kind, flags, ref) in MESSAGES[message].items():
        where = f"{path}.{name}" if name else path
        present = number in values
        if kind == "map":
            if present:
                assert ref is not None
                out[name] = _map(values[number], ref, where, depth)
            elif not flags & OMIT:
                out[name] = None
        elif flags & REP:
            if present:
                items = values[number]
                if kind == "message":
                    assert ref is not None
                    items = [_value(item, ref, f"{where}[{i}]", depth + 1) for i, item in enumerate(items)]
                elif kind == "bytes":
                    items = [_base64(item) for item in items]
                out[name] = items
            elif not flags & OMIT:
                out[name] = None
        elif kind == "message":
            assert ref is not None
            if present or not flags & PTR:  # a struct (not a pointer) is always there, zero if absent
                value = _value(values.get(number, b""), ref, where, depth + 1)
            elif flags & OMIT:
                continue
            else:
                value = None
            if flags & INLINE:
                out.update(value or {})  # a nil embedded pointer contributes no keys
            else:
                out[name] = value
        elif present:
            value = values[number]
            if flags & OMIT and not flags & PTR and not value:
                continue
            out[name] = _base64(value) if kind == "bytes" else value
        elif not flags & OMIT and not flags & PTR:
            out[name] = None if kind == "bytes" else _zero(kind)
        elif not flags & OMIT:
            out[name] = None
    return out


def _zero(kind: str) -> Any:
    if kind == "string":
        return ""
    if kind == "bool":
        return False
    if kind in ("double", "float"):
        return 0.0
    return 0


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _map(entries: list[bytes], ref: str, path: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    is_message = ref in MESSAGES
    for entry in entries:
        key = ""
        value: Any = None
        seen = False
        for number, wire, raw in _scan(entry, path):
            if number == 1:
                if wire != _LEN or not isinstance(raw, bytes):
                    raise _Malformed(f"{path}: map key with wire type {wire}")
                key = raw.decode("utf-8", errors="replace")
            elif number == 2:
                expected = _LEN if is_message else _WIRE_OF[ref]
                if wire != expected:
                    raise _Malformed(f"{path}: map value with wire type {wire}, expected {expected}")
                if isinstance(raw, bytes) and is_message:
                    value = (value or b"") + raw  # a repeated message field merges
                else:
                    value = _scalar(ref, wire, raw, path)
                seen = True
        where = f"{path}[{key}]"
        if is_message:
            out[key] = _value(value or b"", ref, where, depth + 1)
        elif ref == "bytes":
            out[key] = _base64(value) if seen else ""
        else:
            out[key] = value if seen else _zero(ref)
    return dict(sorted(out.items()))  # encoding/json writes map keys sorted


def _value(data: bytes, message: str, path: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise _Malformed(f"{path}: nested deeper than {_MAX_DEPTH} messages")
    how = SPECIAL.get(message)
    if how is None:
        return _object(data, message, path, depth)
    names = {name: number for number, (name, *_) in MESSAGES[message].items()}
    values = _collect(data, message, path)

    def get(name: str, default: Any = None) -> Any:
        return values.get(names[name], default)

    if how in ("time", "microtime"):
        if not data:
            return None
        seconds = get("seconds", 0)
        if seconds == _GO_ZERO_SECONDS:
            return None
        try:
            when = _EPOCH + timedelta(seconds=seconds)
        except OverflowError:
            raise _Malformed(f"{path}: time {seconds}s is out of range") from None
        text = f"{when.year:04d}-{when:%m-%dT%H:%M:%S}"  # %Y does not pad years before 1000
        if how == "microtime":
            text += f".{(get('nanos', 0) // 1000) % 1000000:06d}"
        return text + "Z"
    if how == "duration":
        return _go_duration(get("duration", 0))
    if how == "quantity":
        return get("string") or "0"
    if how == "intorstring":
        kind = get("type", 0)
        if kind == 0:
            return get("intVal", 0)
        if kind == 1:
            return get("strVal", "")
        raise _Malformed(f"{path}: IntOrString type {kind}")
    if how == "raw":
        raw = values.get(1)
        if not raw:
            return None  # RawExtension/FieldsV1 with nil Raw marshal as null
        if raw.startswith(MAGIC):
            return decode(raw)
        try:
            return json.loads(raw)
        except ValueError:
            raise _Malformed(f"{path}: embedded object is neither JSON nor Kubernetes protobuf") from None
    if how == "list":
        return get("items")
    raise AssertionError(f"unknown special message kind {how!r}")


def _go_duration(ns: int) -> str:
    """time.Duration.String(): ``1h2m3.5s``, ``1.5ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)

    def fraction(value: int, digits: int) -> str:
        whole, frac = divmod(value, 10**digits)
        text = f"{frac:0{digits}d}".rstrip("0")
        return f"{whole}.{text}" if text else str(whole)

    if u < 1000:
        return f"{sign}{u}ns"
    if u < 1000_000:
        return f"{sign}{fraction(u, 3)}µs"
    if u < 1000_000_000:
        return f"{sign}{fraction(u, 6)}ms"
    seconds = fraction(u % 60_000_000_000, 9) + "s"
    minutes, hours = (u // 60_000_000_000) % 60, u // 3600_000_000_000
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return f"{sign}{seconds}"
