"""The DNS addon's answers, asked over real UDP and TCP with dnspython against a DnsServer on 127.0.0.1
and a free port, fed by a live apiserver (in-memory store) through kbox's in-process client.

Covers: A for a ClusterIP Service (NODATA for AAAA, NXDOMAIN for unknown names, with the SOA), headless
Services to ready endpoint addresses and per-endpoint hostnames (StatefulSet style), SRV for named ports,
pod records, ExternalName CNAMEs chased upstream, forwarding other names to a local upstream stub (UDP
and TCP), SERVFAIL when no upstream answers, REFUSED for clients outside the allowed networks, truncation
over UDP, answers following Service changes, and the kube-dns Service the addon ensures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.reversename
import dns.rrset
import pytest

from kbox.addons.dns import DnsServer, DnsSettings, ensure_kube_dns_service
from kbox.addons.dns.server import ENDPOINTSLICES
from kbox.client.interface import SERVICES, Obj
from kbox.client.local import LocalClient
from kbox.util import aiotasks
from tests.support.apiserver import served
from tests.support.wait import eventually

Query = Callable[..., Awaitable[dns.message.Message]]


class Upstream(asyncio.DatagramProtocol):
    """A stub upstream resolver: ``*.example.org`` A 192.0.2.<n>, everything else NXDOMAIN."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.seen: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        self.seen.append(question.name.to_text())
        response = dns.message.make_response(query)
        if question.name.to_text().endswith("example.org.") and question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", "192.0.2.7"))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[LocalClient]:
    async with served(tmp_path) as s:
        yield LocalClient(s.plane.catalog)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, int]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Upstream, local_addr=("127.0.0.1", 0))
    yield protocol, transport.get_extra_info("sockname")[1]
    transport.close()


async def start(client: LocalClient, settings: DnsSettings) -> tuple[DnsServer, asyncio.Task[None]]:
    server = DnsServer(client, settings)
    task = aiotasks.create_guarded_task(server.run(), name="test/coredns")
    await eventually(server.healthy, message="DNS server synced")
    return server, task


@pytest.fixture
async def server(client: LocalClient, upstream: tuple[Upstream, int]) -> AsyncIterator[DnsServer]:
    settings = DnsSettings(listen="127.0.0.1", port=0, upstreams=(f"127.0.0.1:{upstream[1]}",))
    dns_server, task = await start(client, settings)
    yield dns_server
    await aiotasks.stop([task], title="test")
    assert not dns_server.healthy()


@pytest.fixture
def ask(server: DnsServer) -> Query:
    async def query(
        name: str, rdtype: str = "A", *, tcp: bool = False, edns: int = -1
    ) -> dns.message.Message:
        assert server.address is not None
        message = dns.message.make_query(name, rdtype, use_edns=edns)
        if tcp:
            return await dns.asyncquery.tcp(message, server.address[0], port=server.address[1], timeout=5)
        return await dns.asyncquery.udp(message, server.address[0], port=server.address[1], timeout=5)

    return query


def values(response: dns.message.Message, rdtype: str = "A") -> list[str]:
    kind = dns.rdatatype.from_text(rdtype)
    return sorted(r.to_text() for rrset in response.answer if rrset.rdtype == kind for r in rrset)


async def service(client: LocalClient, name: str, namespace: str = "default", **spec: Any) -> Obj:
    body = {"metadata": {"name": name}, "spec": {"ports": [{"name": "http", "port": 80}], **spec}}
    return await client.create(SERVICES, body, namespace=namespace)


async def endpoints(
    client: LocalClient, service_name: str, eps: list[dict[str, Any]], *, port: int = 8080
) -> None:
    await client.create(
        ENDPOINTSLICES,
        {
            "metadata": {"name": f"{service_name}-x", "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": eps,
        },
        namespace="default",
    )


async def test_cluster_ip_service(client: LocalClient, ask: Query) -> None:
    svc = await service(client, "web")
    ip = svc["spec"]["clusterIP"]
    response = await eventually(
        lambda: _answered(ask("web.default.svc.cluster.local")), message="web resolves"
    )
    assert values(response) == [ip]
    assert response.flags & dns.flags.AA
    assert all(rrset.ttl <= 5 for rrset in response.answer)
    # Names are case-insensitive; the question's spelling comes back.
    assert values(await ask("WEB.Default.SVC.cluster.local")) == [ip]

    nodata = await ask("web.default.svc.cluster.local", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    assert nodata.authority and nodata.authority[0].rdtype == dns.rdatatype.SOA

    for missing in ("nope.default.svc.cluster.local", "web.other.svc.cluster.local", "x.y.cluster.local"):
        nx = await ask(missing)
        assert nx.rcode() == dns.rcode.NXDOMAIN, missing
        assert nx.authority[0].rdtype == dns.rdatatype.SOA
    assert (await ask("default.svc.cluster.local")).rcode() == dns.rcode.NOERROR
    assert (await ask("empty.svc.cluster.local")).rcode() == dns.rcode.NXDOMAIN
    assert values(await ask("cluster.local", "SOA"), "SOA")

    srv = await ask("_http._tcp.web.default.svc.cluster.local", "SRV")
    assert values(srv, "SRV") == ["0 100 80 web.default.svc.cluster.local."]
    assert [r.to_text() for rrset in srv.additional for r in rrset] == [ip]
    assert (await ask("_http._udp.web.default.svc.cluster.local", "SRV")).rcode() == dns.rcode.NXDOMAIN


async def _answered(pending: Awaitable[dns.message.Message]) -> dns.message.Message | None:
    response = await pending
    return response if response.answer else None


async def test_headless_service_and_hostnames(client: LocalClient, ask: Query) -> None:
    await service(client, "db", clusterIP="None")
    await endpoints(
        client,
        "db",
        [
            {"addresses": ["10.1.0.5"], "hostname": "db-0", "conditions": {"ready": True}},
            {"addresses": ["10.1.0.6"], "hostname": "db-1", "conditions": {"ready": True}},
            {"addresses": ["10.1.0.7"], "hostname": "db-2", "conditions": {"ready": False}},
            {"addresses": ["10.1.0.8"], "conditions": {"ready": True}},
        ],
    )
    name = "db.default.svc.cluster.local"
    response = await eventually(lambda: _answered(ask(name)))
    assert values(response) == ["10.1.0.5", "10.1.0.6", "10.1.0.8"], "only ready endpoints"
    assert values(await ask("db-1.db.default.svc.cluster.local")) == ["10.1.0.6"]
    assert values(await ask("10-1-0-8.db.default.svc.cluster.local")) == ["10.1.0.8"]
    assert (await ask("db-2.db.default.svc.cluster.local")).rcode() == dns.rcode.NXDOMAIN

    srv = await ask("_http._tcp.db.default.svc.cluster.local", "SRV")
    targets = sorted(r.target.to_text() for rrset in srv.answer for r in rrset)
    assert targets == [
        "10-1-0-8.db.default.svc.cluster.local.",
        "db-0.db.default.svc.cluster.local.",
        "db-1.db.default.svc.cluster.local.",
    ]
    assert {r.port for rrset in srv.answer for r in rrset} == {8080}
    assert sorted(r.to_text() for rrset in srv.additional for r in rrset) == [
        "10.1.0.5",
        "10.1.0.6",
        "10.1.0.8",
    ]


async def test_answers_follow_changes(client: LocalClient, ask: Query) -> None:
    await service(client, "moving", clusterIP="None")
    name = "moving.default.svc.cluster.local"
    assert (await ask(name)).answer == []  # exists, no endpoints yet: NODATA, and cached
    await endpoints(client, "moving", [{"addresses": ["10.1.0.9"], "conditions": {"ready": True}}])
    response = await eventually(lambda: _answered(ask(name)), message="the new endpoint is seen")
    assert values(response) == ["10.1.0.9"]
    await client.delete(SERVICES, "moving", namespace="default")
    await eventually(
        lambda: _rcode_is(ask(name), dns.rcode.NXDOMAIN), message="a deleted Service's name is gone"
    )


async def _rcode_is(pending: Awaitable[dns.message.Message], rcode: dns.rcode.Rcode) -> bool:
    return (await pending).rcode() == rcode


async def test_pod_records(ask: Query) -> None:
    assert values(await ask("10-244-0-5.default.pod.cluster.local")) == ["10.244.0.5"]
    assert (await ask("not-an-ip.default.pod.cluster.local")).rcode() == dns.rcode.NXDOMAIN


async def test_external_name_and_forwarding(
    client: LocalClient, ask: Query, upstream: tuple[Upstream, int]
) -> None:
    await client.create(
        SERVICES,
        {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "www.example.org"}},
        namespace="default",
    )
    response = await eventually(lambda: _answered(ask("ext.default.svc.cluster.local")))
    assert values(response, "CNAME") == ["www.example.org."]
    assert values(response) == ["192.0.2.7"], "the CNAME target is resolved upstream"

    forwarded = await ask("api.example.org")
    assert values(forwarded) == ["192.0.2.7"] and not forwarded.flags & dns.flags.AA
    assert values(await ask("api.example.org", tcp=True)) == ["192.0.2.7"]
    assert (await ask("nothing.invalid")).rcode() == dns.rcode.NXDOMAIN
    assert "api.example.org." in upstream[0].seen


async def test_truncation_over_udp(client: LocalClient, ask: Query) -> None:
    await service(client, "big", clusterIP="None")
    await endpoints(
        client, "big", [{"addresses": [f"10.2.0.{i}"], "conditions": {"ready": True}} for i in range(1, 80)]
    )
    name = "big.default.svc.cluster.local"
    full = await eventually(lambda: _answered(ask(name, tcp=True)))
    assert len(values(full)) == 79
    truncated = await ask(name)
    assert truncated.flags & dns.flags.TC
    assert len(values(await ask(name, edns=0))) <= 79  # EDNS lets more through UDP


async def test_refused_for_outside_clients_and_servfail(
    client: LocalClient, upstream: tuple[Upstream, int]
) -> None:
    await service(client, "web")
    closed = DnsSettings(
        listen="127.0.0.1", port=0, upstreams=(f"127.0.0.1:{upstream[1]}",), allowed_networks=("10.0.0.0/8",)
    )
    dns_server, task = await start(client, closed)
    try:
        assert dns_server.address is not None
        host, port = dns_server.address
        refused = await dns.asyncquery.udp(
            dns.message.make_query("api.example.org", "A"), host, port=port, timeout=5
        )
        assert refused.rcode() == dns.rcode.REFUSED and not upstream[0].seen
        local = await dns.asyncquery.udp(
            dns.message.make_query("web.default.svc.cluster.local", "A"), host, port=port, timeout=5
        )
        assert local.rcode() == dns.rcode.NOERROR and local.answer, "the cluster zone is answered to anyone"
    finally:
        await aiotasks.stop([task], title="test")

    dead = DnsSettings(listen="127.0.0.1", port=0, upstreams=("127.0.0.1:9",), forward_timeout=1.0)
    dns_server, task = await start(client, dead)
    try:
        assert dns_server.address is not None
        host, port = dns_server.address
        failed = await dns.asyncquery.udp(
            dns.message.make_query("api.example.org", "A"), host, port=port, timeout=5
        )
        assert failed.rcode() == dns.rcode.SERVFAIL
    finally:
        await aiotasks.stop([task], title="test")


async def test_kube_dns_service(client: LocalClient) -> None:
    created = await ensure_kube_dns_service(client)
    assert created["spec"]["clusterIP"] == "10.96.0.10"
    assert created["metadata"]["labels"]["k8s-app"] == "kube-dns"
    ports = {(p["name"], p["port"], p["protocol"]) for p in created["spec"]["ports"]}
    assert ports == {("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")}
    again = await ensure_kube_dns_service(client)
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"], "idempotent"

    stripped = dict(again, metadata={**again["metadata"], "labels": {}})
    await client.update(SERVICES, stripped, namespace="kube-system")
    fixed = await ensure_kube_dns_service(client)
    assert fixed["metadata"]["labels"]["k8s-app"] == "kube-dns"


async def test_address_in_use_is_one_clear_error(client: LocalClient, server: DnsServer) -> None:
    assert server.address is not None
    second = DnsServer(client, DnsSettings(listen="127.0.0.1", port=server.address[1], upstreams=()))
    with pytest.raises(RuntimeError, match=r"cannot listen on 127\.0\.0\.1:\d+: in use"):
        await asyncio.wait_for(second.run(), 10)
    assert not second.healthy()


async def test_reverse_lookups(client: LocalClient, ask: Query, upstream: tuple[Upstream, int]) -> None:
    svc = await service(client, "web")
    await service(client, "db", clusterIP="None")
    await endpoints(
        client, "db", [{"addresses": ["10.1.0.5"], "hostname": "db-0", "conditions": {"ready": True}}]
    )
    reverse = dns.reversename.from_address(svc["spec"]["clusterIP"]).to_text()
    response = await eventually(lambda: _answered(ask(reverse, "PTR")))
    assert values(response, "PTR") == ["web.default.svc.cluster.local."]
    assert response.flags & dns.flags.AA
    endpoint = await eventually(lambda: _answered(ask("5.0.1.10.in-addr.arpa", "PTR")))
    assert values(endpoint, "PTR") == ["db-0.db.default.svc.cluster.local."]
    elsewhere = await ask("7.2.0.192.in-addr.arpa", "PTR")  # not the cluster's: asked upstream
    assert elsewhere.rcode() == dns.rcode.NXDOMAIN and "7.2.0.192.in-addr.arpa." in upstream[0].seen
