"""The cluster DNS server (the ``dns`` addon): authoritative for the cluster domain, a forwarder for the
rest, on UDP and TCP.

Queries for the cluster domain are answered from Services and EndpointSlices in this process's informer
caches (:mod:`kbox.addons.dns.records`), synchronously in the datagram callback: no task per query. Each
answer's wire form is cached by the query's bytes (minus the ID) until the next Service or EndpointSlice
event, so the repeated lookups that search paths and ndots:5 produce cost a dict lookup.

Other names are forwarded upstream (:mod:`kbox.addons.dns.forward`) only for clients on the cluster's
networks: loopback, the Service range and the cluster's Docker bridge subnets (looked up again every few
seconds, as the runtime creates the network with the first pod). Anyone else gets REFUSED: the server
must never become an open resolver, even when it listens on an address others could reach.

It listens on the kube-dns Service's ClusterIP (10.96.0.10) with ``IP_FREEBIND``, so it can bind before
kube-proxy has put that address on the cluster bridge (kube-proxy leaves the Service's ports to this
server: the Service carries ``service.kubernetes.io/service-proxy-name``). Tests listen on 127.0.0.1 and
a free port instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from kbox.addons.dns import forward, records
from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.interface import ENDPOINTSLICES, SERVICES, Client, Obj
from kbox.util import aiotasks

_log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
BY_SERVICE = "dns.service"
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
MAX_FORWARDS = 512
CACHE_ENTRIES = 20000


@dataclass
class DnsSettings:
    """Where the server listens, what it is authoritative for, and where it forwards."""

    domain: str = "cluster.local"
    listen: str = "10.96.0.10"
    port: int = 53
    upstreams: tuple[str, ...] | None = None
    """``host`` or ``host:port`` entries; ``None``: the ``nameserver`` lines of :attr:`resolv_conf`."""
    resolv_conf: Path = Path("/etc/resolv.conf")
    cluster: str = ""
    """When set, the subnets of Docker network ``kbox-<cluster>`` may use the server as a forwarder."""
    allowed_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128", "10.96.0.0/12")
    forward_timeout: float = 2.0
    tcp_idle_timeout: float = 10.0
    networks_refresh: float = 5.0


@dataclass
class Stats:
    queries: int = 0
    cached: int = 0
    forwarded: int = 0
    refused: int = 0
    failed: int = 0
    by_rcode: dict[str, int] = field(default_factory=dict)


def by_service_name(obj: Obj) -> list[str]:
    metadata = obj.get("metadata") or {}
    service = (metadata.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{metadata.get('namespace', '')}/{service}"] if service else []


class DnsServer:
    """The cluster DNS component: ``run()`` until cancelled; see the module docstring."""

    name = "coredns"

    def __init__(self, client: Client, settings: DnsSettings | None = None) -> None:
        self.client = client
        self.settings = settings or DnsSettings()
        self.stats = Stats()
        self.address: tuple[str, int] | None = None
        """Where the server listens once running (the port resolved when 0 was asked)."""
        self._synced = False
        self._bound = False
        self._cache: dict[bytes, bytes] = {}
        self._forwards: set[asyncio.Task[None]] = set()
        self._networks = [ipaddress.ip_network(n) for n in self.settings.allowed_networks]
        self._bridge_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._services: informers.SharedInformer | None = None
        self._slices: informers.SharedInformer | None = None
        self.zone = records.ClusterZone(
            self.settings.domain,
            service=self._service,
            slices=self._service_slices,
            namespace_has_services=self._namespace_has_services,
            all_services=self._all_services,
        )
        skip = frozenset({self.settings.listen})
        if self.settings.upstreams is None:
            upstreams = forward.resolv_conf_upstreams(self.settings.resolv_conf, skip=skip)
        else:
            upstreams = [forward.parse_upstream(u) for u in self.settings.upstreams]
        self.forwarder = forward.Forwarder(upstreams, timeout=self.settings.forward_timeout)

    def healthy(self) -> bool:
        return self._synced and self._bound

    # -- the caches --------------------------------------------------------------------------

    def _service(self, namespace: str, name: str) -> Obj | None:
        return self._services.indexer.get(f"{namespace}/{name}") if self._services is not None else None

    def _service_slices(self, namespace: str, name: str) -> list[Obj]:
        if self._slices is None:
            return []
        return list(self._slices.indexer.by_index(BY_SERVICE, f"{namespace}/{name}"))

    def _all_services(self) -> list[Obj]:
        return list(self._services.indexer.list()) if self._services is not None else []

    def _namespace_has_services(self, namespace: str) -> bool:
        if self._services is None:
            return False
        return bool(self._services.indexer.index_keys(cache.NAMESPACE, namespace))

    def _invalidate(self, *_: Any) -> None:
        self._cache.clear()

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        factory = informers.InformerFactory(self.client)
        self._services = factory.informer(SERVICES)
        self._slices = factory.informer(ENDPOINTSLICES)
        self._slices.add_index(BY_SERVICE, by_service_name)
        registrations = [
            informer.add_handler(self._invalidate, self._invalidate, self._invalidate)
            for informer in (self._services, self._slices)
        ]
        transport: asyncio.DatagramTransport | None = None
        server: asyncio.Server | None = None
        refresher: asyncio.Task[None] | None = None
        try:
            factory.start()
            loop = asyncio.get_running_loop()
            try:
                udp_sock, tcp_sock = self._sockets()
            except OSError as e:
                where = f"{self.settings.listen}:{self.settings.port}"
                reason = "in use (another cluster's DNS?)" if e.errno == errno.EADDRINUSE else e.strerror
                raise RuntimeError(f"coredns: cannot listen on {where}: {reason}") from None
            transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=udp_sock)
            tcp_sock.listen(128)
            server = await asyncio.start_server(self._tcp_client, sock=tcp_sock)
            self.address = (self.settings.listen, udp_sock.getsockname()[1])
            self._bound = True
            if self.settings.cluster:
                refresher = aiotasks.create_guarded_task(
                    self._refresh_networks(), name="coredns/networks", logger=_log
                )
            await factory.wait_synced()
            self._cache.clear()
            self._synced = True
            _log.info("coredns: serving %s on %s:%d (UDP and TCP)", self.settings.domain, *self.address)
            await asyncio.Future()  # until cancelled
        finally:
            self._synced = self._bound = False
            for registration in registrations:
                registration.remove()
            if transport is not None:
                transport.close()
            if server is not None:
                server.close()
            tasks = list(self._forwards)
            if refresher is not None:
                tasks.append(refresher)
            await aiotasks.stop(tasks, title="coredns")
            await factory.stop()
            self._services = self._slices = None
            self._cache.clear()

    def _sockets(self) -> tuple[socket.socket, socket.socket]:
        """A UDP and a TCP socket on the same port; with port 0, one free for both (tried a few times)."""
        for attempt in range(20):
            udp_sock = self._socket(socket.SOCK_DGRAM)
            try:
                return udp_sock, self._socket(socket.SOCK_STREAM, port=udp_sock.getsockname()[1])
            except OSError as e:
                udp_sock.close()
                if self.settings.port or e.errno != errno.EADDRINUSE or attempt == 19:
                    raise
        raise AssertionError("unreachable")

    def _socket(self, kind: socket.SocketKind, *, port: int | None = None) -> socket.socket:
        host = self.settings.listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, kind)
        try:
            if kind == socket.SOCK_STREAM:  # on UDP it would let a second server share the port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with contextlib.suppress(OSError):  # bind before the address is on the bridge
                sock.setsockopt(
                    socket.IPPROTO_IP if family == socket.AF_INET else socket.IPPROTO_IPV6, IP_FREEBIND, 1
                )
            sock.bind((host, self.settings.port if port is None else port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _refresh_networks(self) -> None:
        from kbox.proxy import addresses

        while True:
            try:
                _, subnets = await addresses.find_bridge(self.settings.cluster, create=False)
                self._bridge_networks = [ipaddress.ip_network(s) for s in subnets]
            except Exception as e:
                _log.debug("coredns: no Docker network for cluster %s yet: %s", self.settings.cluster, e)
            # Until the network exists (the first pod creates it), look again soon.
            await asyncio.sleep(self.settings.networks_refresh if self._bridge_networks else 0.5)

    def allowed(self, client_ip: str) -> bool:
        """Whether ``client_ip`` may have names outside the cluster domain resolved."""
        try:
            address = ipaddress.ip_address(client_ip.split("%")[0])
        except ValueError:
            return False
        return any(address in network for network in (*self._networks, *self._bridge_networks))

    # -- answering ---------------------------------------------------------------------------

    def respond(
        self, data: bytes, client_ip: str, *, tcp: bool
    ) -> bytes | Coroutine[Any, Any, bytes | None] | None:
        """The answer to one query: bytes at once for the cluster zone, a coroutine when it must be
        forwarded, ``None`` when the query is not worth an answer (not even a DNS header)."""
        self.stats.queries += 1
        key = (b"T" if tcp else b"U") + data[2:]
        hit = self._cache.get(key)
        if hit is not None:
            self.stats.cached += 1
            return data[:2] + hit
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return _error_reply(data, dns.rcode.FORMERR)
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1 or query.flags & dns.flags.QR:
            return self._finish(query, _reply(query, dns.rcode.NOTIMP), tcp)
        question = query.question[0]
        if not self._synced:
            return self._finish(query, _reply(query, dns.rcode.SERVFAIL), tcp)
        if question.rdclass == dns.rdataclass.IN and self.zone.covers(question.name):
            answer = self.zone.resolve(question.name, question.rdtype)
            response = _reply(query, answer.rcode, authoritative=True)
            response.answer.extend(answer.answer)
            response.authority.extend(answer.authority)
            response.additional.extend(answer.additional)
            if answer.external_target is not None:
                if not self.allowed(client_ip):
                    return self._finish(query, response, tcp)
                return self._chase(query, response, answer.external_target, tcp)
            wire = self._finish(query, response, tcp)
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = wire[2:]
            return wire
        if question.rdtype == dns.rdatatype.PTR and question.name.is_subdomain(_REVERSE):
            ptr = self.zone.reverse(question.name)
            if ptr is not None:
                response = _reply(query, dns.rcode.NOERROR, authoritative=True)
                response.answer.extend(ptr.answer)
                wire = self._finish(query, response, tcp)
                if len(self._cache) >= CACHE_ENTRIES:
                    self._cache.clear()
                self._cache[key] = wire[2:]
                return wire
        if not self.allowed(client_ip):
            self.stats.refused += 1
            return self._finish(query, _reply(query, dns.rcode.REFUSED), tcp)
        if len(self._forwards) >= MAX_FORWARDS:
            return self._finish(query, _reply(query, dns.rcode.SERVFAIL), tcp)
        self.stats.forwarded += 1
        return self._forward(query, data, tcp)

    async def _forward(self, query: dns.message.Message, data: bytes, tcp: bool) -> bytes | None:
        answer = await self.forwarder.forward(data)
        if answer is None:
            self.stats.failed += 1
            return self._finish(query, _reply(query, dns.rcode.SERVFAIL), tcp)
        return answer

    async def _chase(
        self, query: dns.message.Message, response: dns.message.Message, target: dns.name.Name, tcp: bool
    ) -> bytes | None:
        """An ExternalName's CNAME plus the target's addresses as upstream has them."""
        question = query.question[0]
        upstream_query = dns.message.make_query(target, question.rdtype)
        answer = await self.forwarder.forward(upstream_query.to_wire())
        if answer is not None:
            with contextlib.suppress(dns.exception.DNSException):
                response.answer.extend(dns.message.from_wire(answer).answer)
        return self._finish(query, response, tcp)

    def _finish(self, query: dns.message.Message, response: dns.message.Message, tcp: bool) -> bytes:
        rcode = dns.rcode.to_text(response.rcode())
        self.stats.by_rcode[rcode] = self.stats.by_rcode.get(rcode, 0) + 1
        limit = 65535 if tcp else max(512, query.payload if query.edns >= 0 else 512)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            truncated = _reply(query, response.rcode(), authoritative=bool(response.flags & dns.flags.AA))
            truncated.flags |= dns.flags.TC
            return truncated.to_wire(max_size=limit)

    def _send_later(self, coro: Coroutine[Any, Any, bytes | None], deliver: Any) -> None:
        async def run() -> None:
            wire = await coro
            if wire is not None:
                deliver(wire)

        task = aiotasks.create_guarded_task(run(), name="coredns/forward", logger=_log)
        self._forwards.add(task)
        task.add_done_callback(self._forwards.discard)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]) if isinstance(peer, tuple) else ""
        try:
            while True:
                header = await asyncio.wait_for(reader.readexactly(2), self.settings.tcp_idle_timeout)
                (length,) = struct.unpack("!H", header)
                data = await reader.readexactly(length)
                result = self.respond(data, client_ip, tcp=True)
                if result is not None and not isinstance(result, bytes):
                    result = await result
                if result is None:
                    break
                writer.write(struct.pack("!H", len(result)) + result)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # 3.11: not a subclass

    def datagram_received(self, data: bytes, addr: Any) -> None:
        result = self.server.respond(data, str(addr[0]), tcp=False)
        if result is None or self.transport is None:
            return
        if isinstance(result, bytes):
            self.transport.sendto(result, addr)
            return
        transport = self.transport
        self.server._send_later(
            result, lambda wire: None if transport.is_closing() else transport.sendto(wire, addr)
        )

    def error_received(self, exc: Exception) -> None:
        _log.debug("coredns: %s", exc)


_REVERSE = dns.name.from_text("arpa.")


def _reply(
    query: dns.message.Message, rcode: dns.rcode.Rcode, *, authoritative: bool = False
) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    response.flags |= dns.flags.RA  # recursion is offered (to the cluster's own clients)
    if authoritative:
        response.flags |= dns.flags.AA
    return response


def _error_reply(data: bytes, rcode: dns.rcode.Rcode) -> bytes | None:
    """A bare header with ``rcode`` for a query that does not parse (nothing if it has no header)."""
    if len(data) < 12:
        return None
    flags = struct.unpack("!H", data[2:4])[0]
    if flags & 0x8000:  # a response, not a query: never answer those
        return None
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0080 | int(rcode)
    return data[:2] + struct.pack("!HHHHH", reply_flags, 0, 0, 0, 0)
