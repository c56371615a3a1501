"""The userspace relays: a TCP listener and a UDP endpoint per Service address and port.

**TCP.** Each accepted connection is paired with a connection to an endpoint the :class:`Balancer`
picks. Both halves are asyncio protocols on the event loop's transports, so a relayed chunk costs one
``data_received`` and one ``write`` (the transport reads up to 256 KiB at a time and copies nothing
else); there is no per-byte Python work and no task per direction. Backpressure is the transports':
when one side's write buffer passes :data:`HIGH_WATER`, ``pause_writing`` stops reading from the other
side until the buffer drains below :data:`LOW_WATER`, so a slow reader holds at most about one buffer
per connection instead of growing memory. Half-close is relayed (an EOF from one side becomes
``write_eof`` on the other, and the connection closes once both sides have sent theirs). The client
side is accepted with reading paused and resumed only once the endpoint answered; if no endpoint is
ready, or every one tried refuses, the client connection is reset (``SO_LINGER`` 0, so the peer sees a
TCP RST at once rather than hanging).

**UDP.** Datagrams from each client address form a *flow* with its own socket towards the endpoint
chosen for that client's first datagram; replies on it go back to the client from the Service
address. A flow that saw no datagram for ``idle_timeout`` seconds is closed by the listener's sweeper,
and at most :data:`MAX_FLOWS` are kept (the least recently used goes first: clients such as resolvers
use a new source port per query).
Flow sockets are read with ``loop.add_reader`` directly: no coroutine per flow or per datagram. A
datagram for a Service without ready endpoints is dropped (UDP has no reset).

The :attr:`balancer` of a listener is swapped by the proxier; existing connections and flows keep the
endpoint they were given.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from kbox.proxy.balancer import Balancer, Endpoint
from kbox.util import aiotasks

_log = logging.getLogger(__name__)

HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024
CONNECT_TIMEOUT = 3.0
CONNECT_ATTEMPTS = 3
MAX_FLOWS = 4096
"""UDP flows per listener; beyond, the least recently used one is closed (each holds a socket)."""
_LINGER_RESET = struct.pack("ii", 1, 0)


def reset(transport: asyncio.BaseTransport) -> None:
    """Close ``transport`` with a TCP RST rather than a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    else:
        transport.close()


class _Half(asyncio.Protocol):
    """One side of a relayed connection; ``peer`` is the other side."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self.eof = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.closed:
            peer.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None or peer.transport is None or peer.closed:
            return False
        if peer.eof:  # both sides are done sending: finish (buffers are flushed by close)
            peer.transport.close()
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
            return True  # keep writing to this side what the peer still sends
        peer.transport.close()
        return False

    def pause_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.closed and not peer.eof:
            peer.transport.pause_reading()

    def resume_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.closed and not peer.eof:
            peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.closed:
            if exc is not None:
                reset(peer.transport)  # the other side was reset: pass it on
            else:
                peer.transport.close()


class _ClientHalf(_Half):
    """The accepted side: held paused until the endpoint side is connected."""

    def __init__(self, listener: TcpListener) -> None:
        super().__init__()
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        self.listener.accepted += 1
        balancer = self.listener.balancer
        if balancer is None or not balancer.endpoints:
            self.listener.refused += 1
            reset(self.transport)
            return
        peer = transport.get_extra_info("peername")
        client_ip = peer[0] if isinstance(peer, tuple) else ""
        task = aiotasks.create_guarded_task(
            self._connect(balancer, client_ip), name=f"kube-proxy/{self.listener.name}/connect", logger=_log
        )
        self.listener.connecting.add(task)
        task.add_done_callback(self.listener.connecting.discard)

    async def _connect(self, balancer: Balancer, client_ip: str) -> None:
        loop = asyncio.get_running_loop()
        tried: set[Endpoint] = set()
        try:
            for _ in range(CONNECT_ATTEMPTS):
                endpoint = balancer.pick(client_ip, exclude=frozenset(tried))
                if endpoint is None:
                    break
                backend = _Half()
                backend.peer = self
                try:
                    await asyncio.wait_for(
                        loop.create_connection(_returning(backend), endpoint.ip, endpoint.port),
                        CONNECT_TIMEOUT,
                    )
                except (OSError, TimeoutError) as e:
                    _log.debug("%s: endpoint %s:%d failed: %s", self.listener.name, *endpoint, e)
                    tried.add(endpoint)
                    continue
                if self.closed:  # the client gave up meanwhile
                    assert backend.transport is not None
                    backend.transport.close()
                    return
                self.peer = backend
                assert self.transport is not None
                self.transport.resume_reading()
                return
        except asyncio.CancelledError:
            if self.transport is not None and not self.closed:
                reset(self.transport)
            raise
        self.listener.refused += 1
        if self.transport is not None and not self.closed:
            reset(self.transport)


def _returning(protocol: _Half) -> Callable[[], _Half]:
    return lambda: protocol


class TcpListener:
    """Accepts TCP connections on one address and port and relays them to the balancer's endpoints."""

    def __init__(self, name: str, host: str, port: int, balancer: Balancer | None) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.balancer = balancer
        self.accepted = 0
        self.refused = 0
        self.connecting: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ClientHalf(self), self.host, self.port, reuse_address=True, backlog=1024
        )

    def close(self) -> None:
        """Stop accepting; connections already relayed go on until their peers close them."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self.connecting):
            task.cancel()


class _Flow:
    """One UDP client's datagrams to its endpoint, on a connected socket of its own."""

    __slots__ = ("client", "endpoint", "last_used", "sock")

    def __init__(self, client: Any, endpoint: Endpoint, sock: socket.socket, now: float) -> None:
        self.client = client
        self.endpoint = endpoint
        self.sock = sock
        self.last_used = now


class _UdpFront(asyncio.DatagramProtocol):
    def __init__(self, listener: UdpListener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.listener.received(data, addr)

    def error_received(self, exc: Exception) -> None:
        _log.debug("%s: %s", self.listener.name, exc)


class UdpListener:
    """Receives datagrams on one address and port and relays each client's flow to one endpoint."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        balancer: Balancer | None,
        *,
        idle_timeout: float = 30.0,
        max_flows: int = MAX_FLOWS,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.balancer = balancer
        self.idle_timeout = idle_timeout
        self.flows: collections.OrderedDict[Any, _Flow] = collections.OrderedDict()  # least recent first
        self.max_flows = max_flows
        self.dropped = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _UdpFront(self), local_addr=(self.host, self.port)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]  # the one given to port 0
        self._sweeper = aiotasks.create_guarded_task(
            self._sweep(), name=f"kube-proxy/{self.name}/sweeper", logger=_log
        )

    def received(self, data: bytes, client: Any) -> None:
        assert self._loop is not None
        now = self._loop.time()
        flow = self.flows.get(client)
        if flow is None:
            if len(self.flows) >= self.max_flows:  # each flow holds a socket: bound them
                self._close_flow(next(iter(self.flows.values())))
            flow = self._open(client, now)
            if flow is None:
                self.dropped += 1
                return
        else:
            self.flows.move_to_end(client)
        flow.last_used = now
        try:
            flow.sock.sendto(data, flow.endpoint)
        except (BlockingIOError, InterruptedError):
            self.dropped += 1  # the endpoint's socket buffer is full: UDP may drop
        except OSError as e:  # e.g. ECONNREFUSED from an earlier ICMP: the endpoint went away
            _log.debug("%s: flow %s -> %s: %s", self.name, client, flow.endpoint, e)
            self._close_flow(flow)

    def _open(self, client: Any, now: float) -> _Flow | None:
        balancer = self.balancer
        if balancer is None:
            return None
        endpoint = balancer.pick(str(client[0]))
        if endpoint is None:
            return None
        # Not connected: a server bound to a wildcard address may answer from another of its addresses
        # than the one asked (a host with several), and a connected socket would drop that reply. The
        # socket is this flow's alone, so whatever arrives on it is the endpoint's answer.
        sock = socket.socket(socket.AF_INET6 if ":" in endpoint.ip else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(("::" if ":" in endpoint.ip else "0.0.0.0", 0))
        except OSError as e:
            sock.close()
            _log.debug("%s: cannot reach %s: %s", self.name, endpoint, e)
            return None
        flow = _Flow(client, endpoint, sock, now)
        self.flows[client] = flow
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._reply, flow)
        return flow

    def _reply(self, flow: _Flow) -> None:
        """Datagrams from the endpoint go back to the client, from the Service address."""
        transport = self._transport
        for _ in range(64):  # bounded, so one busy flow cannot starve the loop
            try:
                data = flow.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno != errno.ECONNREFUSED:
                    _log.debug("%s: flow %s: %s", self.name, flow.client, e)
                self._close_flow(flow)
                return
            assert self._loop is not None
            flow.last_used = self._loop.time()
            if transport is None or transport.is_closing():
                return
            transport.sendto(data, flow.client)

    def _close_flow(self, flow: _Flow) -> None:
        if self.flows.get(flow.client) is flow:
            del self.flows[flow.client]
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(flow.sock.fileno())
        flow.sock.close()

    async def _sweep(self) -> None:
        assert self._loop is not None
        while True:
            await asyncio.sleep(max(self.idle_timeout / 2, 0.05))
            deadline = self._loop.time() - self.idle_timeout
            for flow in [f for f in self.flows.values() if f.last_used < deadline]:
                self._close_flow(flow)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for flow in list(self.flows.values()):
            self._close_flow(flow)
