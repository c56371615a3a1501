"""``pods/<name>/portforward`` over WebSocket, in the two shapes clients use.

kubectl (1.30 and later) tunnels SPDY/3.1 through the WebSocket (subprotocol
``SPDY/3.1+portforward.k8s.io``, no query string): binary messages carry raw SPDY bytes whose
boundaries need not match frames. For each local connection it opens two streams with headers
``port``, ``requestid`` and ``streamtype`` ``error`` (half-closed at once) and ``data``. Each gets a
SYN_REPLY; once both are there the pod's port is dialled and bytes copied both ways as DATA frames. When
the pod side ends, the data stream and then the error stream are FINished (kubectl waits for the error
stream's end); if the dial fails, the error text goes on the error stream first, and kubectl reports
``an error occurred forwarding`` and drops the whole connection (``lost connection to pod``).

The official Python client speaks the older channel protocol (``v4.channel.k8s.io`` with
``?ports=80,443``): two channels per port (data ``2i``, error ``2i+1``), each starting with the port as
two little-endian bytes, then data; the socket closes when every port's connection has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from kbox.api import errors
from kbox.api.nodeconnection import NodeConnection, Unavailable
from kbox.api.streaming import common, spdy

_log = logging.getLogger(__name__)

SPDY_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
# The channel protocol has no v5; clients that offer v5 and v4 (the Python client does) get v4.
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")
PROTOCOLS = (SPDY_PROTOCOL, *CHANNEL_PROTOCOLS)

CHUNK = 32 * 1024
MAX_MESSAGE = 16 * 1024 * 1024


async def serve(request: web.Request, pod: common.Pod, connection: NodeConnection) -> web.StreamResponse:
    namespace, name = common.namespace_and_name(pod)
    common.require_host(pod)
    common.require_running_pod(pod)
    ports = _ports(request)
    if isinstance(connection, Unavailable):
        raise connection.error  # before the upgrade, as kube-apiserver fails to reach the kubelet
    ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True, compress=False, max_msg_size=MAX_MESSAGE)
    ready = ws.can_prepare(request)
    if not ready.ok:
        raise common.not_websocket(request, PROTOCOLS)
    if ready.protocol is None:
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        raise errors.bad_request(
            f"requested protocol(s) are not supported: [{offered}]; supports [{' '.join(PROTOCOLS)}]"
        )
    target = _Target(connection, namespace, name, str((pod.get("metadata") or {}).get("uid") or ""))
    if ready.protocol != SPDY_PROTOCOL and not ports:
        raise errors.bad_request('query parameter "ports" is required')
    with common.long_lived(request):
        await ws.prepare(request)
        if ready.protocol == SPDY_PROTOCOL:
            await _SpdyTunnel(ws, target).run()
        else:
            await _ChannelForward(ws, target, ports).run()
    return ws


def _ports(request: web.Request) -> list[int]:
    ports: list[int] = []
    for value in request.query.getall("ports", []):
        for text in value.split(","):
            ports.append(_port(text))
    return ports


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise errors.bad_request(f'unable to parse "{text}" as a port') from None
    if not 0 < port < 65536:
        raise errors.bad_request(f'port "{text}" must be > 0 and < 65536')
    return port


@dataclass
class _Target:
    connection: NodeConnection
    namespace: str
    pod: str
    uid: str

    async def dial(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await self.connection.port_forward(self.namespace, self.pod, port)
        except errors.StatusError as exc:
            raise _DialError(self._message(port, exc.message)) from None
        except OSError as exc:
            why = f"connect: {os.strerror(exc.errno).lower()}" if exc.errno else str(exc)
            raise _DialError(self._message(port, why)) from None

    def _message(self, port: int, why: str) -> str:
        return f"error forwarding port {port} to pod {self.namespace}/{self.pod}, uid {self.uid}: {why}"


class _DialError(Exception):
    pass


# -- SPDY/3.1 inside WebSocket messages (kubectl) ---------------------------------------------------


@dataclass
class _Stream:
    id: int
    kind: str
    port: str
    request_id: str
    inbound: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    remote_closed: bool = False
    local_closed: bool = False
    forward: asyncio.Task[None] | None = None  # on the data stream, once paired


class _SpdyTunnel:
    def __init__(self, ws: web.WebSocketResponse, target: _Target) -> None:
        self.ws = ws
        self.target = target
        self.codec = spdy.HeaderCodec()
        self.reader = spdy.FrameReader()
        self.streams: dict[int, _Stream] = {}
        self.pairs: dict[str, dict[str, _Stream]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.send_lock = asyncio.Lock()
        self.last_stream_id = 0

    async def run(self) -> None:
        try:
            async for message in self.ws:
                if message.type != WSMsgType.BINARY:
                    break
                for frame in self.reader.feed(bytes(message.data)):
                    await self._frame(frame)
        except spdy.ProtocolError as exc:
            _log.info("port-forward: %s", exc)
            with contextlib.suppress(ConnectionError):
                await self._send(spdy.goaway(self.last_stream_id, 1))
        except ConnectionError:
            pass  # the client is gone
        finally:
            for task in list(self.tasks):
                task.cancel()
            for task in list(self.tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def _frame(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.DataFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is None or stream.remote_closed:
                return
            if frame.data:
                stream.inbound.put_nowait(frame.data)
            if frame.fin:
                stream.remote_closed = True
                stream.inbound.put_nowait(None)
            return
        if frame.type == spdy.SYN_STREAM:
            await self._syn_stream(frame)
        elif frame.type == spdy.PING:
            await self._send(spdy.control(spdy.PING, frame.payload))
        elif frame.type == spdy.RST_STREAM:
            stream = self.streams.pop(spdy.stream_id_of(frame), None)
            if stream is not None:
                stream.remote_closed = stream.local_closed = True
                stream.inbound.put_nowait(None)
                if stream.forward is not None:
                    stream.forward.cancel()
        elif frame.type == spdy.GOAWAY:
            await self.ws.close()
        # SETTINGS, WINDOW_UPDATE, HEADERS and anything newer: spdystream needs none of them answered.

    async def _syn_stream(self, frame: spdy.ControlFrame) -> None:
        syn = spdy.parse_syn_stream(frame)
        headers = self.codec.decode(syn.header_block)
        self.last_stream_id = max(self.last_stream_id, syn.stream_id)
        if syn.stream_id in self.streams:
            await self._send(spdy.rst_stream(syn.stream_id, spdy.STREAM_IN_USE))
            return
        stream = _Stream(
            syn.stream_id,
            kind=_header(headers, "streamtype"),
            port=_header(headers, "port"),
            request_id=_header(headers, "requestid"),
            remote_closed=bool(frame.flags & spdy.FLAG_FIN),
        )
        self.streams[stream.id] = stream
        async with self.send_lock:  # header blocks must leave in the order they were compressed
            await self.ws.send_bytes(spdy.syn_reply(stream.id, self.codec.encode({})))
        if stream.kind not in ("data", "error"):
            await self._reset(stream, spdy.PROTOCOL_ERROR)
            return
        pair = self.pairs.setdefault(stream.request_id, {})
        if stream.kind in pair:
            await self._reset(stream, spdy.PROTOCOL_ERROR)
            return
        pair[stream.kind] = stream
        if len(pair) == 2:
            del self.pairs[stream.request_id]
            task = asyncio.ensure_future(self._forward(pair["data"], pair["error"]))
            pair["data"].forward = task
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _forward(self, data: _Stream, error: _Stream) -> None:
        """Dial the pod's port and copy until the pod side ends (or kubectl resets the data stream); the
        error stream ends last, carrying the dial error if there was one: kubectl waits for it."""
        try:
            try:
                reader, writer = await self.target.dial(_port(data.port))
            except (_DialError, errors.StatusError) as exc:
                text = exc.message if isinstance(exc, errors.StatusError) else str(exc)
                await self._write(error, text.encode(), fin=True)
                return
            upstream = asyncio.ensure_future(self._to_pod(data, writer))
            try:
                while chunk := await reader.read(CHUNK):
                    await self._write(data, chunk)
            finally:
                upstream.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await upstream
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        except ConnectionError:
            pass  # the pod's side reset (the streams still end below), or the WebSocket is gone
        finally:
            with contextlib.suppress(ConnectionError):
                await self._write(data, b"", fin=True)
                await self._write(error, b"", fin=True)
            self.streams.pop(data.id, None)
            self.streams.pop(error.id, None)

    async def _to_pod(self, data: _Stream, writer: asyncio.StreamWriter) -> None:
        while True:
            chunk = await data.inbound.get()
            if chunk is None:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    async def _write(self, stream: _Stream, payload: bytes, *, fin: bool = False) -> None:
        if stream.local_closed or self.ws.closed:
            return
        for offset in range(0, max(len(payload), 1), CHUNK):
            piece = payload[offset : offset + CHUNK]
            last = offset + CHUNK >= len(payload)
            await self._send(spdy.data(stream.id, piece, fin=fin and last))
        if fin:
            stream.local_closed = True

    async def _reset(self, stream: _Stream, status: int) -> None:
        stream.local_closed = stream.remote_closed = True
        self.streams.pop(stream.id, None)
        await self._send(spdy.rst_stream(stream.id, status))

    async def _send(self, frame: bytes) -> None:
        async with self.send_lock:
            await self.ws.send_bytes(frame)


def _header(headers: dict[str, list[str]], name: str) -> str:
    values = headers.get(name) or [""]
    return values[0]


# -- the channel protocol (official Python client) -------------------------------------------------


class _ChannelForward:
    def __init__(self, ws: web.WebSocketResponse, target: _Target, ports: list[int]) -> None:
        self.ws = ws
        self.target = target
        self.ports = ports
        self.inbound: list[asyncio.Queue[bytes | None]] = [asyncio.Queue() for _ in ports]

    async def run(self) -> None:
        for index, port in enumerate(self.ports):
            prefix = struct.pack("<H", port)
            await self._send(2 * index, prefix)
            await self._send(2 * index + 1, prefix)
        forwards = [asyncio.ensure_future(self._forward(i, p)) for i, p in enumerate(self.ports)]
        reading = asyncio.ensure_future(self._read())

        async def all_forwarded() -> None:
            for forward in forwards:
                with contextlib.suppress(Exception):
                    await forward

        finished = asyncio.ensure_future(all_forwarded())
        try:
            await asyncio.wait({reading, finished}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished.cancel()
            for task in (*forwards, reading):
                task.cancel()
            for task in (*forwards, reading):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != WSMsgType.BINARY:
                break
            payload = bytes(message.data)
            if not payload or payload[0] % 2 or payload[0] // 2 >= len(self.ports):
                continue
            if len(payload) > 1:
                self.inbound[payload[0] // 2].put_nowait(payload[1:])
        for queue in self.inbound:
            queue.put_nowait(None)

    async def _forward(self, index: int, port: int) -> None:
        try:
            reader, writer = await self.target.dial(port)
        except _DialError as exc:
            await self._send(2 * index + 1, str(exc).encode())
            return
        upstream = asyncio.ensure_future(self._to_pod(index, writer))
        try:
            while chunk := await reader.read(CHUNK):
                await self._send(2 * index, chunk)
        finally:
            upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await upstream
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _to_pod(self, index: int, writer: asyncio.StreamWriter) -> None:
        while (chunk := await self.inbound[index].get()) is not None:
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def _send(self, channel: int, data: bytes) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError):
                await self.ws.send_bytes(bytes([channel]) + data)
