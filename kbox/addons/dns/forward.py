"""Forwarding names outside the cluster zone to the host's resolvers.

The upstreams come from the host's ``/etc/resolv.conf`` (``nameserver`` lines) unless given; an entry
may carry a port (``127.0.0.1:5353``, ``[::1]:5353``) for tests. A query goes to each upstream in turn
over UDP (whatever the client used: upstreams need not serve TCP), retried over TCP when the answer is
truncated, with a per-upstream timeout; when none answers the client gets SERVFAIL. Queries are relayed
as they came (same ID, flags and EDNS options) and the answer as it comes back.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path

import dns.flags

_log = logging.getLogger(__name__)

Upstream = tuple[str, int]


def parse_upstream(text: str) -> Upstream:
    """``1.2.3.4``, ``1.2.3.4:53``, ``::1`` or ``[::1]:53`` → (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or 53)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


def resolv_conf_upstreams(
    path: Path = Path("/etc/resolv.conf"), *, skip: frozenset[str] = frozenset()
) -> list[Upstream]:
    """The ``nameserver`` entries of a resolv.conf, without ``skip`` (our own listen address)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    result = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] not in skip:
            result.append((parts[1].split("%")[0], 53))
    return result


class _OneAnswer(asyncio.DatagramProtocol):
    def __init__(self, query_id: bytes) -> None:
        self.query_id = query_id
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if data[:2] == self.query_id and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


class Forwarder:
    """Sends queries to the upstream resolvers; see the module docstring."""

    def __init__(self, upstreams: list[Upstream], *, timeout: float = 2.0) -> None:
        self.upstreams = upstreams
        self.timeout = timeout

    async def forward(self, query: bytes) -> bytes | None:
        """The first upstream answer to ``query`` (wire format), or ``None`` when none answered. UDP
        first whatever the client used (upstreams need not serve TCP), TCP when that is truncated."""
        for upstream in self.upstreams:
            try:
                answer = await asyncio.wait_for(self._udp(query, upstream), self.timeout)
                if not (answer[2] & (dns.flags.TC >> 8)):
                    return answer
                return await asyncio.wait_for(self._tcp(query, upstream), self.timeout)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                _log.debug("dns: upstream %s:%d failed: %r", *upstream, e)
        return None

    async def _udp(self, query: bytes, upstream: Upstream) -> bytes:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _OneAnswer(query[:2]), remote_addr=upstream
        )
        try:
            transport.sendto(query)
            return await protocol.answer
        finally:
            transport.close()

    async def _tcp(self, query: bytes, upstream: Upstream) -> bytes:
        reader, writer = await asyncio.open_connection(*upstream)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(length)
        finally:
            writer.close()
