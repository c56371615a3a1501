"""Pod DNS through the kubelet on the simulated runtime: the runtime receives the pod's DNS settings
and the kubelet writes the pod's resolv.conf and hosts files; a kubelet without cluster DNS falls back
to the host's resolver and records a MissingClusterDNS Warning, as Kubernetes' kubelet does."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet import dns, volumes
from kbox.kubelet.kubelet import Kubelet
from kbox.kubelet.runtime.fake import FakeRuntime
from tests.component.kubelet.test_kubelet_fake import get_pod, pod, settings
from tests.support.apiserver import Served, served
from tests.support.wait import eventually


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


async def _start(server: Served, runtime: FakeRuntime, tmp_path: Path, cluster_dns: list[str]) -> Kubelet:
    resolv = tmp_path / "host-resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch corp.example\noptions edns0\n")
    config = dataclasses.replace(settings(tmp_path), cluster_dns=cluster_dns, resolv_conf=str(resolv))
    k = Kubelet(
        LocalClient(server.plane.catalog), runtime, config, connections=server.plane.catalog.node_connections
    )
    await k.start()
    return k


async def test_cluster_first_pod_gets_the_cluster_resolver(server: Served, tmp_path: Path) -> None:
    runtime = FakeRuntime(cluster="test")
    kubelet = await _start(server, runtime, tmp_path, ["10.96.0.10"])
    try:
        client = LocalClient(server.plane.catalog)
        await client.create(interface.PODS, pod("web", hostname="web-0"), namespace="default")
        await eventually(lambda: any(s.current for s in kubelet.states.values()))
        uid = (await get_pod(client, "web"))["metadata"]["uid"]
        [sandbox] = [s for s in runtime._sandboxes.values() if s.status.pod.uid == uid]
        assert sandbox.config.dns_servers == ("10.96.0.10",)
        assert sandbox.config.dns_searches == (
            "default.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
            "corp.example",
        )
        assert sandbox.config.dns_options == ("ndots:5",)
        etc = dns.etc_dir(volumes.pod_dir(kubelet.settings.state_dir, uid))
        assert (etc / "resolv.conf").read_text() == dns.DnsConfig(
            sandbox.config.dns_servers, sandbox.config.dns_searches, sandbox.config.dns_options
        ).render()
        assert f"{sandbox.status.ip}\tweb-0" in (etc / "hosts").read_text().splitlines()
    finally:
        await kubelet.stop()


async def test_without_cluster_dns_cluster_first_falls_back_with_a_warning(
    server: Served, tmp_path: Path
) -> None:
    runtime = FakeRuntime(cluster="test")
    kubelet = await _start(server, runtime, tmp_path, [])
    try:
        client = LocalClient(server.plane.catalog)
        await client.create(interface.PODS, pod("web"), namespace="default")

        async def warned() -> list[str]:
            events = await client.list(
                interface.EVENTS, namespace="default", field_selector="involvedObject.name=web"
            )
            return [e["message"] for e in events["items"] if e["reason"] == "MissingClusterDNS"]

        [message] = await eventually(warned)
        assert 'Falling back to "Default" policy.' in message
        uid = (await get_pod(client, "web"))["metadata"]["uid"]
        etc = dns.etc_dir(volumes.pod_dir(kubelet.settings.state_dir, uid))
        await eventually(lambda: (etc / "hosts").exists())
        assert not (etc / "resolv.conf").exists()  # the runtime's own resolver setup stays
    finally:
        await kubelet.stop()
