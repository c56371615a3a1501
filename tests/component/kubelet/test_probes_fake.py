"""Probes on the simulated runtime: nothing runs there, so probes are simulated as passing, but their
timing holds (a readiness probe keeps the container not ready until its initial delay has passed),
and the probe workers end with the pod."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet.kubelet import Kubelet, KubeletSettings
from kbox.kubelet.probes import resolve_port
from kbox.kubelet.runtime.fake import FakeRuntime
from tests.support.apiserver import Served, served

Obj = dict[str, Any]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture
def client(server: Served) -> LocalClient:
    return LocalClient(server.plane.catalog)


@pytest.fixture
async def kubelet(client: LocalClient, server: Served, tmp_path: Path) -> AsyncIterator[Kubelet]:
    settings = KubeletSettings(
        node_name="node-1", cluster="test", state_dir=tmp_path / "kubelet", relist_interval=0.05
    )
    k = Kubelet(
        client, FakeRuntime(cluster="test"), settings, connections=server.plane.catalog.node_connections
    )
    await k.start()
    yield k
    await k.stop()


async def until(check: Any, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
    return result


async def test_probes_pass_after_their_delay_and_stop_with_the_pod(
    client: LocalClient, kubelet: Kubelet
) -> None:
    handler = {"exec": {"command": ["false"]}, "periodSeconds": 1}
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probed"},
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "readinessProbe": {**handler, "initialDelaySeconds": 1},
                    "livenessProbe": handler,
                    "startupProbe": {"tcpSocket": {"port": 1}, "periodSeconds": 1},
                }
            ],
        },
    }
    await client.create(interface.PODS, body, namespace="default")

    async def status() -> Obj:
        return (await client.get(interface.PODS, "probed", namespace="default")).get("status") or {}

    async def running_not_ready() -> bool:
        s = await status()
        ready = {c["type"]: c["status"] for c in s.get("conditions") or []}
        return s.get("phase") == "Running" and ready.get("Ready") == "False"

    async def ready() -> bool:
        s = await status()
        return any(c["type"] == "Ready" and c["status"] == "True" for c in s.get("conditions") or [])

    await until(running_not_ready)
    await until(ready)
    assert (await status())["containerStatuses"][0]["restartCount"] == 0
    await client.delete(interface.PODS, "probed", namespace="default")

    async def gone() -> bool:
        return not kubelet.states

    await until(gone)
    assert kubelet.probes.active == 0
    assert not [t for t in asyncio.all_tasks() if "/probe/" in t.get_name() and not t.done()]


def test_named_ports_resolve_from_the_container() -> None:
    container = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port(container, "http") == 8080
    assert resolve_port(container, 81) == 81
    assert resolve_port(container, "82") == 82
    with pytest.raises(ValueError, match="not a port"):
        resolve_port(container, "grpc")
