"""Pod DNS on the real Docker runtime: with cluster DNS configured, a ClusterFirst pod's containers
read the kubelet's resolv.conf (the cluster nameserver, the namespace search path, ndots:5) and the
kubelet-managed /etc/hosts (FQDN from hostname and subdomain, hostAliases); a Default pod keeps
Docker's own resolver setup."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet import dns
from kbox.kubelet.kubelet import Kubelet
from kbox.kubelet.runtime import podnet
from kbox.kubelet.runtime.docker import DockerRuntime
from tests.e2e.conftest import BuiltImages, kubelet_settings
from tests.support.apiserver import Served
from tests.support.wait import eventually

pytestmark = pytest.mark.docker
Obj = dict[str, Any]


@pytest.fixture
async def dns_kubelet(server: Served, runtime: DockerRuntime, tmp_path: Path) -> AsyncIterator[Kubelet]:
    settings = dataclasses.replace(kubelet_settings(tmp_path), cluster_dns=["10.96.0.10"])
    k = Kubelet(
        LocalClient(server.plane.catalog),
        runtime,
        settings,
        connections=server.plane.catalog.node_connections,
    )
    await k.start()
    yield k
    await k.stop()


def _pod(name: str, image: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": "node-1",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": image, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}
            ],
            **spec,
        },
    }


async def _cat(server: Served, pod: str, path: str) -> str:
    connection = server.plane.catalog.node_connections.get("node-1")
    session = await connection.exec("default", pod, "main", ["cat", path], stdin=False, tty=False)
    output = b"".join([chunk async for _, chunk in session.output()])
    assert await session.wait() == 0
    return output.decode()


async def _running(client: LocalClient, name: str) -> bool:
    status = (await client.get(interface.PODS, name, namespace="default")).get("status") or {}
    return status.get("phase") == "Running"


async def test_cluster_first_pod_reads_the_kubelets_resolv_conf_and_hosts(
    server: Served, dns_kubelet: Kubelet, docker_images: BuiltImages
) -> None:
    client = LocalClient(server.plane.catalog)
    body = _pod(
        "web",
        docker_images.busybox,
        hostname="web-0",
        subdomain="front",
        hostAliases=[{"ip": "10.1.2.3", "hostnames": ["legacy.local"]}],
    )
    await client.create(interface.PODS, body, namespace="default")
    await eventually(lambda: _running(client, "web"))

    resolv = dns.parse_resolv_conf(await _cat(server, "web", "/etc/resolv.conf"))
    assert resolv.nameservers == ("10.96.0.10",)
    assert resolv.searches[:3] == ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
    assert resolv.searches[3:] == dns_kubelet.host_dns.searches
    assert resolv.options == ("ndots:5",)

    pod_ip = (await client.get(interface.PODS, "web", namespace="default"))["status"]["podIP"]
    hosts = (await _cat(server, "web", "/etc/hosts")).splitlines()
    assert hosts[0] == "# Kubernetes-managed hosts file."
    assert f"{pod_ip}\tweb-0.front.default.svc.cluster.local\tweb-0" in hosts
    assert "10.1.2.3\tlegacy.local" in hosts


async def test_default_policy_uses_the_hosts_resolvers(
    server: Served, dns_kubelet: Kubelet, docker_images: BuiltImages
) -> None:
    client = LocalClient(server.plane.catalog)
    await client.create(
        interface.PODS, _pod("plain", docker_images.busybox, dnsPolicy="Default"), namespace="default"
    )
    await eventually(lambda: _running(client, "plain"))
    resolv = dns.parse_resolv_conf(await _cat(server, "plain", "/etc/resolv.conf"))
    host = dns.read_host_config("/etc/resolv.conf").nameservers
    reachable = tuple(n for n in host if not ipaddress.ip_address(n.split("%", 1)[0]).is_loopback)
    if podnet.can_wire() and reachable:
        # kbox wired the pod (no Docker network): Docker wrote the host's servers, as the kubelet would.
        assert resolv.nameservers == reachable
    else:
        assert resolv.nameservers == ("127.0.0.11",)  # Docker's embedded resolver, forwarding to the host's
    assert "ndots:5" not in resolv.options


async def test_host_network_pods(server: Served, dns_kubelet: Kubelet, docker_images: BuiltImages) -> None:
    client = LocalClient(server.plane.catalog)
    image = docker_images.busybox
    await client.create(
        interface.PODS,
        _pod("hostnet-cluster", image, hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"),
        namespace="default",
    )
    await client.create(interface.PODS, _pod("hostnet-plain", image, hostNetwork=True), namespace="default")
    await eventually(lambda: _running(client, "hostnet-cluster"))
    await eventually(lambda: _running(client, "hostnet-plain"))
    cluster = dns.parse_resolv_conf(await _cat(server, "hostnet-cluster", "/etc/resolv.conf"))
    assert cluster.nameservers == ("10.96.0.10",) and cluster.options == ("ndots:5",)
    # ClusterFirst on the host network means the host's resolver, as in Kubernetes.
    plain = dns.parse_resolv_conf(await _cat(server, "hostnet-plain", "/etc/resolv.conf"))
    assert plain.nameservers == dns_kubelet.host_dns.nameservers
