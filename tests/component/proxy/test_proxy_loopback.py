"""kube-proxy in process, without Docker: Services and hand-made EndpointSlices in a live apiserver,
endpoints that are small asyncio servers on 127.0.0.1, and ClusterIPs mapped to 127.x.y.z addresses
(``ProxySettings.cluster_ip_bind``) so no root is needed.

Every test runs with both TCP relays (splice and asyncio transports). Covers: TCP relay and half-close, round robin over three endpoints, an endpoint that stops being ready
leaving the rotation without cutting its open connection, reset without ready endpoints, ClientIP session
affinity, UDP flows, NodePort on loopback, LoadBalancer ingress status, headless and ExternalName
Services getting no listener, a deleted Service's listener closing, and a slow reader not growing the
proxy's buffers. The real bridge addresses and pods are covered by tests/e2e/test_services_docker.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kbox.client.interface import ENDPOINTS, SERVICES, Obj
from kbox.client.local import LocalClient
from kbox.proxy import KubeProxy, ProxySettings
from kbox.proxy.proxier import ENDPOINTSLICES
from kbox.proxy.relay import HIGH_WATER, TcpListener
from kbox.proxy.splice import SpliceListener
from kbox.util import aiotasks
from tests.support.apiserver import served
from tests.support.wait import eventually

# Each ClusterIP maps to one fixed loopback address and port (10.96.0.1:443 → 127.96.0.1:443): under
# pytest-xdist this module's tests must not run in two workers at once.
pytestmark = pytest.mark.xdist_group("loopback-cluster-ips")


def loopback_for(cluster_ip: str) -> str:
    """10.96.a.b → 127.96.a.b: a distinct loopback address per ClusterIP."""
    parts = cluster_ip.split(".")
    return f"127.{parts[1]}.{parts[2]}.{parts[3]}"


@dataclass
class Backend:
    """A TCP server that greets with its name and then echoes; or a UDP echo server."""

    name: str
    port: int = 0
    connections: int = 0
    server: asyncio.Server | None = None
    udp: asyncio.DatagramTransport | None = None
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start_tcp(self) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self.writers.append(writer)
            writer.write(f"{self.name}\n".encode())
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                writer.write(b"bye\n")  # after the client's EOF: half-close works both ways
                await writer.drain()
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def start_udp(self) -> None:
        name = self.name.encode()

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(name + b":" + data, addr)  # type: ignore[attr-defined]

        loop = asyncio.get_running_loop()
        self.udp, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        self.port = self.udp.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.close()
        if self.udp is not None:
            self.udp.close()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[LocalClient]:
    async with served(tmp_path) as s:
        yield LocalClient(s.plane.catalog)


@pytest.fixture(params=["splice", "stream"])
async def proxy(client: LocalClient, request: pytest.FixtureRequest) -> AsyncIterator[KubeProxy]:
    """The proxy with each TCP relay: splice (the default on Linux) and asyncio transports."""
    settings = ProxySettings(
        cluster_ip_bind=loopback_for,
        node_addresses=("127.0.0.1",),
        retry_interval=0.2,
        tcp_relay=request.param,
    )
    kube_proxy = KubeProxy(client, settings)
    task = aiotasks.create_guarded_task(kube_proxy.run(), name="test/kube-proxy")
    await eventually(kube_proxy.healthy, message="kube-proxy synced")
    yield kube_proxy
    await aiotasks.stop([task], title="test")
    assert not kube_proxy.listeners, "every listener is closed when the proxy stops"


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    made: list[Backend] = []
    yield made
    for backend in made:
        backend.close()


async def make_service(client: LocalClient, name: str, **spec: Any) -> Obj:
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": [{"name": "web", "port": 80, "protocol": "TCP"}], **spec},
    }
    return await client.create(SERVICES, body, namespace="default")


def slice_body(service: str, port: int, ips_ready: list[tuple[str, bool]], *, protocol: str = "TCP") -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-1", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "web", "port": port, "protocol": protocol}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in ips_ready],
    }


async def set_endpoints(
    client: LocalClient, service: str, port: int, ips_ready: list[tuple[str, bool]], *, protocol: str = "TCP"
) -> None:
    body = slice_body(service, port, ips_ready, protocol=protocol)
    try:
        current = await client.get(ENDPOINTSLICES, f"{service}-1", namespace="default")
    except Exception:
        await client.create(ENDPOINTSLICES, body, namespace="default")
        return
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    await client.update(ENDPOINTSLICES, body, namespace="default")


async def greeting(host: str, port: int) -> str:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()


async def tcp_backends(backends: list[Backend], count: int) -> list[Backend]:
    """``count`` TCP backends on the same port number is impossible on one address, so each endpoint is a
    distinct 127.0.0.x address with the same port (as pods share a targetPort)."""
    first = Backend("b0")
    await first.start_tcp()
    backends.append(first)
    made = [first]
    for i in range(1, count):
        backend = Backend(f"b{i}")

        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, b: Backend = backend
        ) -> None:
            b.connections += 1
            b.writers.append(writer)
            writer.write(f"{b.name}\n".encode())
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                writer.close()

        backend.server = await asyncio.start_server(handle, f"127.0.0.{10 + i}", first.port)
        backend.port = first.port
        backends.append(backend)
        made.append(backend)
    return made


def ready_count(proxy: KubeProxy, key: str, port: str) -> int:
    state = proxy.services.get(key)
    balancer = state.balancers.get(port) if state is not None else None
    return len(balancer.endpoints) if balancer is not None else 0


def endpoint_ip(index: int) -> str:
    return "127.0.0.1" if index == 0 else f"127.0.0.{10 + index}"


async def test_round_robin_half_close_and_readiness(
    client: LocalClient, proxy: KubeProxy, backends: list[Backend]
) -> None:
    made = await tcp_backends(backends, 3)
    service = await make_service(client, "web")
    host = loopback_for(service["spec"]["clusterIP"])
    await set_endpoints(client, "web", made[0].port, [(endpoint_ip(i), True) for i in range(3)])
    await eventually(lambda: ready_count(proxy, "default/web", "web/TCP") == 3)

    seen = [await greeting(host, 80) for _ in range(6)]
    assert sorted(seen) == ["b0", "b0", "b1", "b1", "b2", "b2"], seen

    # Half-close: the client's EOF reaches the endpoint, whose reply still comes back.
    reader, writer = await asyncio.open_connection(host, 80)
    first = (await reader.readline()).decode().strip()
    writer.write(b"ping\n")
    writer.write_eof()
    rest = await asyncio.wait_for(reader.read(), 5)
    assert rest in (b"ping\n", b"ping\nbye\n")
    writer.close()

    # An open connection survives its endpoint leaving the rotation; new connections avoid it.
    reader, writer = await asyncio.open_connection(host, 80)
    held = (await reader.readline()).decode().strip()
    index = int(held[1:])
    ready = [(endpoint_ip(i), i != index) for i in range(3)]
    await set_endpoints(client, "web", made[0].port, ready)
    await eventually(lambda: ready_count(proxy, "default/web", "web/TCP") == 2)
    assert held not in {await greeting(host, 80) for _ in range(4)}
    writer.write(b"still here\n")
    assert await asyncio.wait_for(reader.readline(), 5) == b"still here\n"
    writer.close()
    assert first


async def test_no_ready_endpoints_resets_at_once(client: LocalClient, proxy: KubeProxy) -> None:
    service = await make_service(client, "empty")
    host = loopback_for(service["spec"]["clusterIP"])
    await eventually(lambda: ("TCP", host, 80) in proxy.listeners)
    with pytest.raises(ConnectionResetError):  # at connect already, or at the first read
        reader, writer = await asyncio.open_connection(host, 80)
        try:
            await asyncio.wait_for(reader.read(), 2)
        finally:
            writer.close()
    listener = proxy.listeners[("TCP", host, 80)]
    assert isinstance(listener, TcpListener | SpliceListener) and listener.refused == 1


async def test_endpoint_refusing_is_skipped(
    client: LocalClient, proxy: KubeProxy, backends: list[Backend]
) -> None:
    made = await tcp_backends(backends, 1)
    service = await make_service(client, "partly")
    host = loopback_for(service["spec"]["clusterIP"])
    # 127.0.0.30 has nothing listening on that port: connections go to the one that answers.
    await set_endpoints(client, "partly", made[0].port, [("127.0.0.30", True), ("127.0.0.1", True)])
    await eventually(lambda: ("TCP", host, 80) in proxy.listeners)
    await eventually(lambda: ready_count(proxy, "default/partly", "web/TCP") == 2)
    assert {await greeting(host, 80) for _ in range(4)} == {"b0"}


async def test_client_ip_affinity(client: LocalClient, proxy: KubeProxy, backends: list[Backend]) -> None:
    made = await tcp_backends(backends, 3)
    service = await make_service(
        client,
        "sticky",
        sessionAffinity="ClientIP",
        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}},
    )
    host = loopback_for(service["spec"]["clusterIP"])
    await set_endpoints(client, "sticky", made[0].port, [(endpoint_ip(i), True) for i in range(3)])
    await eventually(lambda: ready_count(proxy, "default/sticky", "web/TCP") == 3)
    assert len({await greeting(host, 80) for _ in range(6)}) == 1


async def test_udp_flows(client: LocalClient, proxy: KubeProxy, backends: list[Backend]) -> None:
    echo = Backend("u0")
    await echo.start_udp()
    backends.append(echo)
    service = await make_service(client, "dns", ports=[{"name": "web", "port": 53, "protocol": "UDP"}])
    host = loopback_for(service["spec"]["clusterIP"])
    await set_endpoints(client, "dns", echo.port, [("127.0.0.1", True)], protocol="UDP")
    await eventually(lambda: ("UDP", host, 53) in proxy.listeners)
    await eventually(lambda: ready_count(proxy, "default/dns", "web/UDP"))

    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            assert addr == (host, 53), "replies come from the Service address"
            replies.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=(host, 53))
    try:
        for word in (b"one", b"two"):
            transport.sendto(word)
            assert await asyncio.wait_for(replies.get(), 5) == b"u0:" + word
        assert len(proxy.listeners[("UDP", host, 53)].flows) == 1  # type: ignore[union-attr]
    finally:
        transport.close()


async def test_node_port_and_load_balancer(
    client: LocalClient, proxy: KubeProxy, backends: list[Backend]
) -> None:
    made = await tcp_backends(backends, 1)
    service = await make_service(client, "lb", type="LoadBalancer")
    node_port = service["spec"]["ports"][0]["nodePort"]
    await set_endpoints(client, "lb", made[0].port, [("127.0.0.1", True)])
    await eventually(lambda: ("TCP", "127.0.0.1", node_port) in proxy.listeners)
    await eventually(lambda: ready_count(proxy, "default/lb", "web/TCP"))
    assert await greeting("127.0.0.1", node_port) == "b0"

    async def ingress() -> Any:
        svc = await client.get(SERVICES, "lb", namespace="default")
        return svc["status"].get("loadBalancer", {}).get("ingress")

    ingress_list = await eventually(ingress, message="LoadBalancer ingress written")
    ip = ingress_list[0]["ip"]
    assert ip == loopback_for(service["spec"]["clusterIP"])
    assert await greeting(ip, 80) == "b0"


async def test_endpoints_without_slices(
    client: LocalClient, proxy: KubeProxy, backends: list[Backend]
) -> None:
    """A selectorless Service with hand-written Endpoints and no EndpointSlice (kbox mirrors none)."""
    made = await tcp_backends(backends, 1)
    service = await make_service(client, "legacy")
    await client.create(
        ENDPOINTS,
        {
            "metadata": {"name": "legacy"},
            "subsets": [
                {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "web", "port": made[0].port}]}
            ],
        },
        namespace="default",
    )
    await eventually(lambda: ready_count(proxy, "default/legacy", "web/TCP") == 1)
    assert await greeting(loopback_for(service["spec"]["clusterIP"]), 80) == "b0"


async def test_headless_external_name_and_deletion(client: LocalClient, proxy: KubeProxy) -> None:
    await make_service(client, "headless", clusterIP="None")
    await client.create(
        SERVICES,
        {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.org"}},
        namespace="default",
    )
    service = await make_service(client, "gone")
    host = loopback_for(service["spec"]["clusterIP"])
    await eventually(lambda: ("TCP", host, 80) in proxy.listeners)
    assert "default/headless" not in proxy.services and "default/ext" not in proxy.services

    await client.delete(SERVICES, "gone", namespace="default")
    await eventually(lambda: ("TCP", host, 80) not in proxy.listeners)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, 80)


async def test_slow_reader_bounds_buffers(client: LocalClient, proxy: KubeProxy) -> None:
    """An endpoint streams as fast as it can to a client that does not read: the proxy stops reading the
    endpoint once its buffer towards the client is full, so the endpoint's writes block instead."""
    sent = 0
    blocked = asyncio.Event()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        chunk = b"x" * 65536
        with contextlib.suppress(ConnectionError):
            while True:
                writer.write(chunk)
                sent += len(chunk)
                try:
                    await asyncio.wait_for(writer.drain(), 0.5)
                except TimeoutError:
                    blocked.set()
                    await writer.drain()

    server = await asyncio.start_server(flood, "127.0.0.1", 0)
    try:
        service = await make_service(client, "flood")
        host = loopback_for(service["spec"]["clusterIP"])
        await set_endpoints(client, "flood", server.sockets[0].getsockname()[1], [("127.0.0.1", True)])
        await eventually(lambda: ready_count(proxy, "default/flood", "web/TCP"))
        await eventually(lambda: ("TCP", host, 80) in proxy.listeners)
        reader, writer = await asyncio.open_connection(host, 80, limit=65536)
        await asyncio.wait_for(blocked.wait(), 10)
        # What the endpoint got rid of sits in kernel socket buffers plus at most about one proxy
        # buffer (HIGH_WATER) and one read chunk; nothing near what an unbounded relay would hold.
        assert sent < 32 * 1024 * 1024 + HIGH_WATER
        first = await reader.readexactly(65536)
        assert first == b"x" * 65536
        writer.close()
    finally:
        server.close()


async def test_kubernetes_service_reaches_the_apiserver(client: LocalClient, proxy: KubeProxy) -> None:
    """10.96.0.1:443 reaches the apiserver through the proxy (the bootstrap writes its endpoints)."""
    service = await client.get(SERVICES, "kubernetes", namespace="default")
    host = loopback_for(service["spec"]["clusterIP"])
    await eventually(lambda: ready_count(proxy, "default/kubernetes", "https/TCP") == 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, 443, ssl=context), 5)
    writer.write(b"GET /livez HTTP/1.0\r\n\r\n")
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.")
    writer.close()
