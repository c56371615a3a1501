"""Just enough SPDY/3.1 for port-forward: frame encoding and decoding, and zlib header blocks.

kubectl's port-forward speaks SPDY/3.1 as the client (moby/spdystream); kbox is the server side. It
opens streams with SYN_STREAM, expects a SYN_REPLY to each, sends DATA frames (FIN half-closes), PINGs
every few seconds and may RST_STREAM. spdystream does no flow control, so WINDOW_UPDATE and SETTINGS
are read and ignored.

Frame layout (all integers big-endian):

- control frame: ``0x8003`` (control bit + version 3), 16-bit type, 8-bit flags, 24-bit length, payload;
- data frame: 31-bit stream id, 8-bit flags, 24-bit length, payload.

Header blocks are a 32-bit pair count then length-prefixed names and values, compressed as one zlib
stream per direction of a connection, primed with the fixed dictionary of the SPDY/3 specification and
flushed (Z_SYNC_FLUSH) after every block. Several values of one name are joined with NUL.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes.
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
CANCEL = 5
INTERNAL_ERROR = 6
STREAM_IN_USE = 8

MAX_LENGTH = (1 << 24) - 1

# The header-compression dictionary of the SPDY/3 specification (section 2.6.10.1): 65 length-prefixed
# header names and values, then a run of common status lines, dates and content types. 1423 bytes.
_DICTIONARY_WORDS = (
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
)
_DICTIONARY_TAIL = (
    b"100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    b"203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    b"401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    b"503 Service Unavailable"
    b"Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    b"chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    b"text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = (
    b"".join(struct.pack(">I", len(word)) + word.encode() for word in _DICTIONARY_WORDS) + _DICTIONARY_TAIL
)
assert len(DICTIONARY) == 1423


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3."""


@dataclass(frozen=True, slots=True)
class ControlFrame:
    type: int
    flags: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class DataFrame:
    stream_id: int
    flags: int
    data: bytes

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


Frame = ControlFrame | DataFrame


class FrameReader:
    """Cuts a byte stream (WebSocket messages need not match frame boundaries) into frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            word, flags_length = struct.unpack_from(">II", self._buffer)
            length = flags_length & MAX_LENGTH
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            flags = flags_length >> 24
            if word & 0x80000000:
                version = (word >> 16) & 0x7FFF
                if version != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {version}")
                frames.append(ControlFrame(word & 0xFFFF, flags, payload))
            else:
                frames.append(DataFrame(word, flags, payload))
        return frames


class HeaderCodec:
    """One connection's header compression: a compressor for what this side sends and a decompressor for
    what it receives, each one zlib stream for the connection's lifetime."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 8, zdict=DICTIONARY)
        self._decompressor = zlib.decompressobj(zdict=DICTIONARY)

    def encode(self, headers: dict[str, list[str]]) -> bytes:
        block = bytearray(struct.pack(">I", len(headers)))
        for name, values in headers.items():
            raw_name = name.lower().encode()
            raw_value = "\x00".join(values).encode()
            block += struct.pack(">I", len(raw_name)) + raw_name
            block += struct.pack(">I", len(raw_value)) + raw_value
        return self._compressor.compress(bytes(block)) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> dict[str, list[str]]:
        try:
            raw = self._decompressor.decompress(block)
        except zlib.error as exc:
            raise ProtocolError(f"bad header block: {exc}") from None
        try:
            (count,) = struct.unpack_from(">I", raw)
            offset = 4
            headers: dict[str, list[str]] = {}
            for _ in range(count):
                (size,) = struct.unpack_from(">I", raw, offset)
                name = raw[offset + 4 : offset + 4 + size].decode()
                offset += 4 + size
                (size,) = struct.unpack_from(">I", raw, offset)
                value = raw[offset + 4 : offset + 4 + size].decode()
                offset += 4 + size
                headers.setdefault(name.lower(), []).extend(value.split("\x00"))
        except (struct.error, UnicodeDecodeError) as exc:
            raise ProtocolError(f"bad header block: {exc}") from None
        return headers


@dataclass(frozen=True, slots=True)
class SynStream:
    stream_id: int
    associated_id: int
    priority: int
    header_block: bytes


def parse_syn_stream(frame: ControlFrame) -> SynStream:
    if len(frame.payload) < 10:
        raise ProtocolError("SYN_STREAM frame too short")
    stream_id, associated, priority = struct.unpack_from(">IIB", frame.payload)
    return SynStream(stream_id & 0x7FFFFFFF, associated & 0x7FFFFFFF, priority >> 5, frame.payload[10:])


def stream_id_of(frame: ControlFrame) -> int:
    """The stream a SYN_REPLY, RST_STREAM, HEADERS or WINDOW_UPDATE frame is about."""
    if len(frame.payload) < 4:
        raise ProtocolError("control frame too short")
    (stream_id,) = struct.unpack_from(">I", frame.payload)
    return int(stream_id) & 0x7FFFFFFF


def control(frame_type: int, payload: bytes, flags: int = 0) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise ValueError("control frame too long")
    return struct.pack(">HHI", 0x8000 | VERSION, frame_type, (flags << 24) | len(payload)) + payload


def syn_reply(stream_id: int, header_block: bytes, *, fin: bool = False) -> bytes:
    return control(SYN_REPLY, struct.pack(">I", stream_id) + header_block, FLAG_FIN if fin else 0)


def rst_stream(stream_id: int, status: int) -> bytes:
    return control(RST_STREAM, struct.pack(">II", stream_id, status))


def goaway(last_good_stream_id: int, status: int = 0) -> bytes:
    return control(GOAWAY, struct.pack(">II", last_good_stream_id, status))


def data(stream_id: int, payload: bytes = b"", *, fin: bool = False) -> bytes:
    """One DATA frame; ``payload`` must fit in 24 bits (callers chunk)."""
    if len(payload) > MAX_LENGTH:
        raise ValueError("data frame too long")
    flags = FLAG_FIN if fin else 0
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload
