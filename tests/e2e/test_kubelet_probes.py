"""Container probes on the real Docker runtime: an httpGet readiness probe (named port) holds a pod
not Ready until the served file exists, a failing exec liveness probe gets the container killed and
restarted (restart count, last state, Killing and Unhealthy events), a tcpSocket readiness probe
waits for the listener, a startup probe holds readiness back until it passes, and deleting a pod
stops its probe workers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet.kubelet import Kubelet
from tests.e2e.conftest import BuiltImages
from tests.support.apiserver import Served
from tests.support.wait import eventually

pytestmark = pytest.mark.docker
Obj = dict[str, Any]


@pytest.fixture
def client(server: Served) -> LocalClient:
    return LocalClient(server.plane.catalog)


def pod(name: str, image: str, container: Obj) -> Obj:
    container = {"name": "main", "image": image, "imagePullPolicy": "Never", **container}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": "node-1", "containers": [container], "terminationGracePeriodSeconds": 1},
    }


def probe(handler: Obj, **timing: int) -> Obj:
    return {"periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 1, **timing, **handler}


async def get(client: LocalClient, name: str) -> Obj:
    return await client.get(interface.PODS, name, namespace="default")


def conditions(body: Obj) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (body.get("status") or {}).get("conditions") or []}


def container(body: Obj) -> Obj:
    statuses = (body.get("status") or {}).get("containerStatuses") or [{}]
    return statuses[0]


async def events(client: LocalClient, reason: str) -> list[str]:
    listing = await client.list(interface.EVENTS, namespace="default")
    return [e["message"] for e in listing["items"] if e.get("reason") == reason]


async def running_not_ready(client: LocalClient, name: str) -> bool:
    body = await get(client, name)
    status = container(body)
    return "running" in (status.get("state") or {}) and conditions(body).get("Ready") == "False"


async def ready(client: LocalClient, name: str) -> bool:
    body = await get(client, name)
    return container(body).get("ready") is True and conditions(body).get("Ready") == "True"


async def test_http_readiness_waits_for_the_file_and_delete_stops_probers(
    client: LocalClient, kubelet: Kubelet, docker_images: BuiltImages
) -> None:
    body = pod(
        "web",
        docker_images.busybox,
        {
            "command": ["sh", "-c", "mkdir -p /www && exec httpd -f -p 8080 -h /www"],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": probe(
                {
                    "httpGet": {
                        "path": "/ready",
                        "port": "http",
                        "httpHeaders": [{"name": "X-Probe", "value": "1"}],
                    }
                }
            ),
        },
    )
    await client.create(interface.PODS, body, namespace="default")
    await eventually(lambda: running_not_ready(client, "web"))
    await eventually(lambda: events(client, "Unhealthy"))
    await asyncio.sleep(1.5)  # several failed probes later: still not ready, and never restarted
    current = await get(client, "web")
    assert conditions(current)["Ready"] == "False"
    assert conditions(current)["ContainersReady"] == "False"
    assert container(current)["ready"] is False
    assert container(current)["restartCount"] == 0
    unhealthy = await events(client, "Unhealthy")
    assert all(
        m.startswith("Readiness probe failed: HTTP probe failed with statuscode: 404") for m in unhealthy
    )

    container_id = container(current)["containerID"].split("://", 1)[1]
    session = await kubelet.runtime.exec(
        container_id, ["sh", "-c", "echo ok > /www/ready"], stdin=False, tty=False
    )
    assert await session.wait() == 0
    await session.close()
    await eventually(lambda: ready(client, "web"))
    assert container(await get(client, "web"))["restartCount"] == 0

    assert kubelet.probes.active == 1
    await client.delete(interface.PODS, "web", namespace="default")
    await eventually(lambda: not kubelet.states)
    assert kubelet.probes.active == 0
    assert not [t for t in asyncio.all_tasks() if "/probe/" in t.get_name() and not t.done()]


async def test_failing_liveness_exec_restarts_the_container(
    client: LocalClient, kubelet: Kubelet, docker_images: BuiltImages
) -> None:
    body = pod(
        "alive",
        docker_images.busybox,
        {
            "command": ["sh", "-c", "touch /tmp/healthy; sleep 2; rm -f /tmp/healthy; exec sleep 600"],
            "livenessProbe": probe({"exec": {"command": ["test", "-f", "/tmp/healthy"]}}, failureThreshold=2),
        },
    )
    await client.create(interface.PODS, body, namespace="default")

    async def restarted() -> Obj | None:
        status = container(await get(client, "alive"))
        return status if status.get("restartCount", 0) >= 1 and "running" in status.get("state", {}) else None

    status = await eventually(restarted, timeout=25)
    assert "terminated" in status["lastState"]
    assert status["lastState"]["terminated"]["exitCode"] != 0
    killing = await eventually(lambda: events(client, "Killing"))
    assert "Container main failed liveness probe, will be restarted" in killing
    unhealthy = await events(client, "Unhealthy")
    assert any(m.startswith("Liveness probe failed") for m in unhealthy)


async def test_tcp_readiness_and_startup_probe_gate_readiness(
    client: LocalClient, kubelet: Kubelet, docker_images: BuiltImages
) -> None:
    tcp = pod(
        "tcp",
        docker_images.busybox,
        {
            "command": ["sh", "-c", "sleep 3; exec httpd -f -p 9000"],
            "readinessProbe": probe({"tcpSocket": {"port": 9000}}),
        },
    )
    startup = pod(
        "slow",
        docker_images.busybox,
        {
            "command": ["sh", "-c", "sleep 3; touch /tmp/started; exec sleep 600"],
            "startupProbe": probe({"exec": {"command": ["test", "-f", "/tmp/started"]}}, failureThreshold=30),
            # Would fail (and restart the container) during the first 3 s if startup did not gate it.
            "livenessProbe": probe({"exec": {"command": ["test", "-f", "/tmp/started"]}}),
        },
    )
    await client.create(interface.PODS, tcp, namespace="default")
    await client.create(interface.PODS, startup, namespace="default")
    await eventually(lambda: running_not_ready(client, "tcp"))
    await eventually(lambda: running_not_ready(client, "slow"))
    await eventually(lambda: ready(client, "tcp"))
    await eventually(lambda: ready(client, "slow"))
    for name in ("tcp", "slow"):
        assert container(await get(client, name))["restartCount"] == 0
    messages = await events(client, "Unhealthy")
    assert any(m.startswith("Readiness probe failed: ") for m in messages)
    assert any(m.startswith("Startup probe failed: ") for m in messages)
