"""Services on real Docker: kube-proxy and the DNS addon next to a whole cluster (apiserver, controllers,
scheduler, kubelet on the Docker runtime), driven by the real kubectl, with busybox pods on the cluster's
bridge.

Covers: HTTP from a busybox pod through a Service's ClusterIP (a named targetPort), round robin
observed over 3 endpoints, a pod failing readiness leaving the rotation, the same Service from the host
through its ClusterIP and its NodePort on 127.0.0.1, a LoadBalancer's ingress IP answering from the host,
names resolved from a pod by the cluster DNS (a Service, a headless Service to the pod IPs, SRV for a
named port, an external name forwarded to a local upstream stub; by short name, namespaced name and FQDN
through the pod's resolver when the kubelet sets ``cluster_dns``), UDP through a Service from a pod and
from the host, and ClusterIP addresses following Services and a kube-proxy crash and restart.

The static busybox here crashes in ``wget`` (glibc's resolver in a static binary), so pods speak HTTP
with busybox ``nc``, and names are looked up with busybox ``nslookup``, which has its own resolver. It
also has no UDP server applet (its ``nc`` lacks ``-u``), so the UDP Service's endpoint is a
UDP responder on the host's end of the bridge (a hand-made EndpointSlice), queried with busybox
``nslookup`` from the pod: a real UDP exchange from a pod, through the ClusterIP, to an endpoint.

kube-proxy is the cluster's own (``ClusterSettings.kube_proxy``). The DNS server is run by the test
(the ``dns`` addon off) so that it forwards to the local upstream stub; it listens on a random address
of the Service range, which the kubelets give pods as nameserver, rather than 10.96.0.10, so this test
never collides with a ``kbox start`` on the same machine. ClusterIPs need root: without it the test fails under CI=true and is
skipped otherwise, like the Docker tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiodocker
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from kbox import kubeconfig
from kbox.addons.dns import DnsServer, DnsSettings, ensure_kube_dns_service
from kbox.client.interface import PODS, SERVICES, Obj
from kbox.cluster import Cluster, ClusterSettings
from kbox.kubelet.kubelet import KubeletSettings
from kbox.kubelet.runtime.docker import DockerRuntime
from kbox.proxy import KubeProxy
from kbox.proxy import addresses as proxy_addresses
from kbox.proxy.proxier import ENDPOINTSLICES
from kbox.testing.cluster import TEST_TIMERS
from kbox.util import aiotasks
from tests.e2e.conftest import BuiltImages
from tests.support.apiserver import Kubectl
from tests.support.wait import eventually

pytestmark = pytest.mark.docker

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {image}
        imagePullPolicy: Never
        command: ["sh", "-c", "mkdir -p /w; hostname > /w/index.html; touch /w/ready; exec httpd -f -p 8080 -h /w"]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{exec: {{command: ["test", "-f", "/w/ready"]}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-lb}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{name: http, port: 8081, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-headless}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["sleep", "3600"]
"""


class Responder(asyncio.DatagramProtocol):
    """A UDP endpoint on the host: a tiny DNS server (``*.example.org`` A 192.0.2.7, no other records;
    anything else NXDOMAIN) that also echoes
    non-DNS datagrams back with a prefix."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            self.transport.sendto(b"echo:" + data, addr)
            return
        response = dns.message.make_response(query)
        question = query.question[0]
        if question.name.to_text().endswith("example.org."):
            if question.rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", "192.0.2.7"))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)


def _require_root() -> None:
    if proxy_addresses.can_manage():
        return
    message = "ClusterIPs need root (CAP_NET_ADMIN) to be added to the cluster bridge"
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message}, and CI=true", pytrace=False)
    pytest.skip(message)


@dataclasses.dataclass
class Env:
    cluster: Cluster
    kubectl: Kubectl
    proxy: KubeProxy
    dns: DnsServer
    dns_ip: str
    gateway: str
    responder_port: int


@pytest.fixture
async def env(runtime: DockerRuntime, docker: aiodocker.Docker, tmp_path: Path) -> AsyncIterator[Env]:
    _require_root()
    loop = asyncio.get_running_loop()
    # On every address: the DNS server forwards to it on loopback, the UDP Service reaches it on the
    # bridge (and a wildcard server answering from another address than asked is what real ones do).
    responder, _ = await loop.create_datagram_endpoint(Responder, local_addr=("0.0.0.0", 0))
    responder_port = responder.get_extra_info("sockname")[1]
    dns_ip = f"10.111.{random.randint(0, 255)}.{random.randint(2, 254)}"
    settings = ClusterSettings(
        name=runtime.cluster,
        state_dir=tmp_path / "state",
        runtime="docker",
        port=0,
        durable=False,
        # TEST_TIMERS also holds the node lifecycle's and the Job controller's timers: the kubelet's only.
        kubelet={
            k: v for k, v in TEST_TIMERS.items() if k in {f.name for f in dataclasses.fields(KubeletSettings)}
        },
        kube_proxy=True,  # the cluster's own kube-proxy; kubelets give pods dns_ip as nameserver
        dns_ip=dns_ip,
        addons={"dns": False},  # the test's DNS server instead, to forward to the local upstream stub
    )
    cluster = Cluster(settings, runtime=runtime)
    await cluster.start()
    task: asyncio.Task[None] | None = None
    try:
        config = kubeconfig.build(
            name=settings.name, url=cluster.url, token=cluster.token, ca=cluster.tls.ca_pem()
        )
        kubeconfig.write(tmp_path / "kubeconfig", config)
        (tmp_path / "cache").mkdir()
        kubectl = Kubectl(tmp_path / "kubeconfig", tmp_path / "cache")
        proxy = cluster.supervisor.component("kube-proxy")
        assert isinstance(proxy, KubeProxy)
        await ensure_kube_dns_service(cluster.client("kbox"), cluster_ip=dns_ip)
        dns_server = DnsServer(
            cluster.client("coredns"),
            DnsSettings(listen=dns_ip, cluster=settings.name, upstreams=(f"127.0.0.1:{responder_port}",)),
        )
        task = aiotasks.create_guarded_task(dns_server.run(), name="test/coredns")
        await eventually(lambda: proxy.healthy() and dns_server.healthy(), message="proxy and DNS running")
        network = await (await docker.networks.get(f"kbox-{settings.name}")).show()
        gateway = network["IPAM"]["Config"][0]["Gateway"]
        yield Env(cluster, kubectl, proxy, dns_server, dns_ip, gateway, responder_port)
    finally:
        if task is not None:
            await aiotasks.stop([task], title="test")
        await cluster.stop()
        responder.close()


async def in_client(env: Env, *command: str) -> str:
    return await env.kubectl.ok("exec", "client", "--", *command)


async def http_from_client(env: Env, host: str, port: int = 80) -> str:
    """The body of ``GET /index.html`` from the client pod, over busybox ``nc`` (see the docstring)."""
    request = f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port}"
    out = await in_client(env, "sh", "-c", request)
    assert out.startswith("HTTP/1.") and " 200 " in out.splitlines()[0], out
    return out.strip().splitlines()[-1].strip()


async def fetch(host: str, port: int) -> str:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
    try:
        writer.write(f"GET /index.html HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        body = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    return body.split(b"\r\n\r\n", 1)[-1].decode().strip()


async def service(env: Env, name: str) -> Obj:
    return await env.cluster.client().get(SERVICES, name, namespace="default")


async def test_services_from_pods_and_host(
    env: Env, docker_images: BuiltImages, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kbox.proxy")  # a failure shows why a connection was reset
    kubectl = env.kubectl
    await kubectl.ok("apply", "-f", "-", stdin=WEB.format(image=docker_images.busybox))
    await kubectl.ok("rollout", "status", "deployment/web", "--timeout=90s")
    await kubectl.ok("wait", "--for=condition=Ready", "pod/client", "--timeout=60s")
    pods = (await env.cluster.client().list(PODS, namespace="default", label_selector="app=web"))["items"]
    names = {p["metadata"]["name"] for p in pods}
    pod_ips = sorted(p["status"]["podIP"] for p in pods)
    web = await service(env, "web")
    cluster_ip = web["spec"]["clusterIP"]
    node_port = web["spec"]["ports"][0]["nodePort"]

    async def endpoints_ready(count: int) -> bool:
        state = env.proxy.services.get("default/web")
        return state is not None and len(state.balancers["http/TCP"].endpoints) == count

    await eventually(lambda: endpoints_ready(3), message="three ready endpoints")

    # From a pod, by ClusterIP: round robin reaches all three pods.
    seen = [await http_from_client(env, cluster_ip) for _ in range(6)]
    assert set(seen) == names, seen

    # From the host: ClusterIP, NodePort on loopback, the LoadBalancer's ingress IP.
    assert await fetch(cluster_ip, 80) in names
    assert await fetch("127.0.0.1", node_port) in names

    async def lb_ingress() -> str | None:
        ingress = ((await service(env, "web-lb")).get("status") or {}).get("loadBalancer", {}).get("ingress")
        return ingress[0]["ip"] if ingress else None

    lb_ip = await eventually(lb_ingress, message="LoadBalancer ingress")
    assert await fetch(lb_ip, 8081) in names

    # DNS from the pod, asking the cluster DNS server directly.
    answer = await in_client(env, "nslookup", "web.default.svc.cluster.local", env.dns_ip)
    assert cluster_ip in answer, answer
    headless = await in_client(env, "nslookup", "web-headless.default.svc.cluster.local", env.dns_ip)
    assert all(ip in headless for ip in pod_ips), headless
    srv = await in_client(
        env, "nslookup", "-type=srv", "_http._tcp.web.default.svc.cluster.local", env.dns_ip
    )
    assert "80 web.default.svc.cluster.local" in srv, srv
    external = await in_client(env, "nslookup", "api.example.org", env.dns_ip)
    assert "192.0.2.7" in external, external
    # The pod's own resolver: the kubelet's nameserver, search path and ndots:5.
    resolv = await in_client(env, "cat", "/etc/resolv.conf")
    assert f"nameserver {env.dns_ip}" in resolv, resolv
    search = next(line.split()[1:] for line in resolv.splitlines() if line.startswith("search"))
    assert search[:3] == ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"], resolv
    assert "ndots:5" in resolv, resolv
    # busybox nslookup walks the search list only for names without a dot, and exits 1 when any of
    # the names it tried failed: the answer is what counts. "web.default" is what the search list
    # turns into web.default.svc.cluster.local for a resolver that honours ndots (glibc, musl).
    for name in ("web", "web.default.svc.cluster.local"):
        result = await env.kubectl("exec", "client", "--", "nslookup", name)
        assert f"Name:\tweb.default.svc.cluster.local\nAddress: {cluster_ip}" in result.out, result

    # A pod failing readiness leaves the rotation; the others keep serving.
    leaving = sorted(names)[0]
    await kubectl.ok("exec", leaving, "--", "rm", "/w/ready")
    await eventually(lambda: endpoints_ready(2), message="the unready pod left the rotation")
    seen = [await http_from_client(env, cluster_ip) for _ in range(4)]
    assert leaving not in seen and len(set(seen)) == 2, seen

    # UDP through a Service: from the pod (DNS over UDP to the ClusterIP) and from the host (an echo).
    client = env.cluster.client()
    udp = await client.create(
        SERVICES,
        {"metadata": {"name": "udp"}, "spec": {"ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}},
        namespace="default",
    )
    await client.create(
        ENDPOINTSLICES,
        {
            "metadata": {"name": "udp-1", "labels": {"kubernetes.io/service-name": "udp"}},
            "addressType": "IPv4",
            "ports": [{"name": "dns", "port": env.responder_port, "protocol": "UDP"}],
            "endpoints": [{"addresses": [env.gateway], "conditions": {"ready": True}}],
        },
        namespace="default",
    )
    udp_ip = udp["spec"]["clusterIP"]
    await eventually(lambda: ("UDP", udp_ip, 53) in env.proxy.listeners, message="UDP listener")
    await eventually(lambda: env.proxy.services["default/udp"].balancers["dns/UDP"].endpoints)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (udp_ip, 53))
        await loop.sock_sendall(sock, b"hello")
        assert await asyncio.wait_for(loop.sock_recv(sock, 100), 5) == b"echo:hello"
    assert "192.0.2.7" in await in_client(env, "nslookup", "www.example.org", udp_ip)


async def test_addresses_follow_services_and_restarts(env: Env, docker: aiodocker.Docker) -> None:
    """A ClusterIP is on the bridge while its Service exists; a crashed kube-proxy releases it and the
    restarted one (the supervisor's) puts it back and listens again; deleting the Service releases it."""
    client = env.cluster.client()
    svc = await client.create(
        SERVICES, {"metadata": {"name": "short"}, "spec": {"ports": [{"port": 80}]}}, namespace="default"
    )
    ip = svc["spec"]["clusterIP"]
    await eventually(lambda: ("TCP", ip, 80) in env.proxy.listeners, message="listener on the ClusterIP")
    network = await (await docker.networks.get(f"kbox-{env.cluster.settings.name}")).show()
    manager = proxy_addresses.AddressManager(proxy_addresses.bridge_name(network))
    assert ip in await manager.present()
    with pytest.raises(ConnectionResetError):  # listening, and no endpoints: reset at once
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, 80), 5)
        try:
            await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()

    supervisor = env.cluster.supervisor
    state = supervisor.state("kube-proxy")
    assert state is not None
    restarts = state.restarts
    assert supervisor.inject_crash("kube-proxy")
    await eventually(
        lambda: state.restarts > restarts and env.proxy.healthy(), message="kube-proxy restarted"
    )
    await eventually(lambda: ("TCP", ip, 80) in env.proxy.listeners, message="listener back after restart")
    assert ip in await manager.present()

    await client.delete(SERVICES, "short", namespace="default")
    await eventually(lambda: _absent(manager, ip), message="a deleted Service's ClusterIP is released")
    assert ("TCP", ip, 80) not in env.proxy.listeners


async def _absent(manager: proxy_addresses.AddressManager, ip: str) -> bool:
    return ip not in await manager.present()
