"""The TCP relay on Linux: bytes move between the two sockets inside the kernel, with ``splice(2)``.

A relayed byte read into Python and written out again costs two copies and a trip through the
interpreter per chunk; with ``splice`` the kernel moves the socket's pages into a pipe and from the pipe
into the other socket, so the proxy's CPU time hardly depends on the bytes relayed and a bulk transfer
runs close to the speed of a direct one. Everything is driven by event-loop reader/writer callbacks on
the raw file descriptors: accepting, connecting to the endpoint (non-blocking ``connect`` and a writer
callback), and relaying. There is no task, transport or protocol object per connection, which also
keeps new connections cheap.

Per direction a :class:`_Pump` owns one pipe (up to :data:`PIPE_SIZE` bytes in flight). It reads from
its source only while its pipe is empty; when the destination cannot take the pipe's contents, it stops
reading the source and waits for the destination to become writable: that is the backpressure, and
memory per connection is bounded by two pipes whatever the peers do. An EOF is passed on as
``shutdown(SHUT_WR)`` once the pipe is drained (half-close); the connection is closed when both
directions are done, or at once, with a reset to the other side, when one side fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import socket
import struct

from kbox.proxy.balancer import Balancer, Endpoint

_log = logging.getLogger(__name__)

PIPE_SIZE = 1024 * 1024
PIPE_POOL = 32
READS_PER_WAKEUP = 8
CONNECT_TIMEOUT = 3.0
CONNECT_ATTEMPTS = 3
_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_SET_PIPE_SIZE = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_LINGER_RESET = struct.pack("ii", 1, 0)
_AGAIN = (BlockingIOError, InterruptedError)


def available() -> bool:
    return hasattr(os, "splice")


def _reset_and_close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    sock.close()


class _Pump:
    """One direction of a relayed connection: ``src`` → pipe → ``dst``."""

    __slots__ = ("conn", "done", "dst", "eof", "inflight", "pipe_r", "pipe_w", "src")

    def __init__(self, conn: _Connection, src: socket.socket, dst: socket.socket) -> None:
        self.conn = conn
        self.src = src
        self.dst = dst
        self.pipe_r, self.pipe_w = _pipes.pop() if _pipes else _new_pipe()
        self.inflight = 0
        self.eof = False
        self.done = False

    def start(self) -> None:
        self.conn.loop.add_reader(self.src.fileno(), self.readable)

    def readable(self) -> None:
        """Move what ``src`` has, a few rounds per wake-up while ``dst`` keeps up (fewer loop turns)."""
        for _ in range(READS_PER_WAKEUP):
            try:
                n = os.splice(self.src.fileno(), self.pipe_w, PIPE_SIZE, flags=_FLAGS)
            except _AGAIN:
                return
            except OSError as e:
                self.conn.fail(e)
                return
            if n == 0:
                self.eof = True
                self.conn.loop.remove_reader(self.src.fileno())
                self.flush()
                return
            self.inflight += n
            self.flush()
            if self.inflight or self.conn.closed:  # dst is full: wait for it (flush arranged that)
                return

    def flush(self) -> None:
        """Move what the pipe holds to ``dst``; wait for ``dst`` (not reading ``src``) when it is full."""
        loop = self.conn.loop
        while self.inflight:
            try:
                n = os.splice(self.pipe_r, self.dst.fileno(), self.inflight, flags=_FLAGS)
            except _AGAIN:
                if not self.eof:
                    loop.remove_reader(self.src.fileno())
                loop.add_writer(self.dst.fileno(), self.writable)
                return
            except OSError as e:
                self.conn.fail(e)
                return
            self.inflight -= n
        if self.eof and not self.done:
            self.done = True
            with contextlib.suppress(OSError):
                self.dst.shutdown(socket.SHUT_WR)
            self.conn.direction_done()

    def writable(self) -> None:
        loop = self.conn.loop
        loop.remove_writer(self.dst.fileno())
        self.flush()
        if not self.inflight and not self.eof and not self.conn.closed:
            loop.add_reader(self.src.fileno(), self.readable)

    def close(self) -> None:
        if self.inflight == 0 and len(_pipes) < PIPE_POOL:  # empty: the next connection can have it
            _pipes.append((self.pipe_r, self.pipe_w))
            return
        for fd in (self.pipe_r, self.pipe_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def _new_pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, _SET_PIPE_SIZE, PIPE_SIZE)
    return read_end, write_end


_pipes: list[tuple[int, int]] = []
"""Empty pipes of finished connections, reused: new connections cost four system calls less each."""


class _Connection:
    """An accepted client socket, then its endpoint, then the two pumps between them."""

    def __init__(self, listener: SpliceListener, client: socket.socket, client_ip: str) -> None:
        self.listener = listener
        self.loop = listener.loop
        self.client = client
        self.client_ip = client_ip
        self.backend: socket.socket | None = None
        self.pumps: tuple[_Pump, _Pump] | None = None
        self.tried: set[Endpoint] = set()
        self.attempts = 0
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.finished = 0

    # -- connecting to an endpoint -----------------------------------------------------------

    def connect_next(self, balancer: Balancer) -> None:
        self.attempts += 1
        endpoint = None
        if self.attempts <= CONNECT_ATTEMPTS:
            endpoint = balancer.pick(self.client_ip, exclude=frozenset(self.tried))
        if endpoint is None:
            self.listener.refused += 1
            _log.debug(
                "%s: reset %s: no endpoint answered (tried %s)",
                self.listener.name,
                self.client_ip,
                self.tried,
            )
            self.abort()
            return
        family = socket.AF_INET6 if ":" in endpoint.ip else socket.AF_INET
        backend = socket.socket(family, socket.SOCK_STREAM)
        backend.setblocking(False)
        backend.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = backend.connect_ex((endpoint.ip, endpoint.port))
        if code not in (0, errno.EINPROGRESS):
            backend.close()
            self.tried.add(endpoint)
            self.connect_next(balancer)
            return
        self.backend = backend
        self.loop.add_writer(backend.fileno(), self.connected, balancer, endpoint)
        self.timer = self.loop.call_later(CONNECT_TIMEOUT, self.timed_out, balancer, endpoint)

    def connected(self, balancer: Balancer, endpoint: Endpoint) -> None:
        backend = self.backend
        assert backend is not None
        self.loop.remove_writer(backend.fileno())
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        code = backend.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            _log.debug("%s: endpoint %s:%d: %s", self.listener.name, *endpoint, os.strerror(code))
            self._retry(balancer, endpoint)
            return
        self.pumps = (_Pump(self, self.client, backend), _Pump(self, backend, self.client))
        for pump in self.pumps:
            pump.start()

    def timed_out(self, balancer: Balancer, endpoint: Endpoint) -> None:
        self.timer = None
        if self.backend is not None:
            self.loop.remove_writer(self.backend.fileno())
        _log.debug("%s: endpoint %s:%d: connect timed out", self.listener.name, *endpoint)
        self._retry(balancer, endpoint)

    def _retry(self, balancer: Balancer, endpoint: Endpoint) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        self.tried.add(endpoint)
        if not self.closed:
            self.connect_next(balancer)

    # -- ending ------------------------------------------------------------------------------

    def direction_done(self) -> None:
        self.finished += 1
        if self.finished == 2:
            self.close()

    def fail(self, error: OSError) -> None:
        _log.debug("%s: relay from %s failed: %s", self.listener.name, self.client_ip, error)
        self.abort()

    def abort(self) -> None:
        """Close both sides with a reset (a failed side, no endpoint, the listener closing)."""
        self.close(reset=True)

    def close(self, *, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.listener.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        for sock in (self.client, self.backend):
            if sock is None or sock.fileno() < 0:
                continue
            self.loop.remove_reader(sock.fileno())
            self.loop.remove_writer(sock.fileno())
            if reset:
                _reset_and_close(sock)
            else:
                sock.close()
        if self.pumps is not None:
            for pump in self.pumps:
                pump.close()


class SpliceListener:
    """Accepts TCP connections on one address and port and splices them to the balancer's endpoints.

    The same interface as :class:`kbox.proxy.relay.TcpListener`."""

    def __init__(self, name: str, host: str, port: int, balancer: Balancer | None) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.balancer = balancer
        self.accepted = 0
        self.refused = 0
        self.connections: set[_Connection] = set()
        self.loop = asyncio.get_running_loop()
        self._sock: socket.socket | None = None

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(1024)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self.loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(64):  # a burst at a time, then let the loop breathe
            try:
                client, address = sock.accept()
            except _AGAIN:
                return
            except OSError as e:  # EMFILE and friends: log and try again on the next wake-up
                _log.warning("%s: accept failed: %s", self.name, e)
                return
            self.accepted += 1
            client.setblocking(False)
            with contextlib.suppress(OSError):
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            balancer = self.balancer
            if balancer is None or not balancer.endpoints:
                self.refused += 1
                _log.debug("%s: reset %s: no ready endpoints", self.name, address[0])
                _reset_and_close(client)
                continue
            connection = _Connection(self, client, str(address[0]))
            self.connections.add(connection)
            connection.connect_next(balancer)

    def close(self) -> None:
        """Stop accepting; connections already relayed go on until their peers close them, except
        those still connecting, which are reset."""
        sock, self._sock = self._sock, None
        if sock is not None:
            self.loop.remove_reader(sock.fileno())
            sock.close()
        for connection in list(self.connections):
            if connection.pumps is None:
                connection.abort()
