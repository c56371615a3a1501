"""The kubelet on the simulated runtime, through the apiserver pipeline (LocalClient): node
registration and lease, pods bound to the node becoming Running and Ready with an IP, Job pods
completing, crash loops with back-off and restart counts, graceful deletion finished by the kubelet,
and adoption of running pods by a restarted kubelet without restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet.kubelet import Kubelet, KubeletSettings
from kbox.kubelet.runtime.fake import FakeRuntime
from tests.support.apiserver import Served, served
from tests.support.wait import eventually

Obj = dict[str, Any]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture
def client(server: Served) -> LocalClient:
    return LocalClient(server.plane.catalog)


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime(cluster="test", job_duration=0.2)


def settings(tmp_path: Path) -> KubeletSettings:
    return KubeletSettings(
        node_name="node-1",
        cluster="test",
        state_dir=tmp_path / "kubelet",
        relist_interval=0.05,
        backoff_base=0.3,
        backoff_max=1.0,
        lease_interval=0.2,
    )


@pytest.fixture
async def kubelet(
    client: LocalClient, runtime: FakeRuntime, server: Served, tmp_path: Path
) -> AsyncIterator[Kubelet]:
    k = Kubelet(client, runtime, settings(tmp_path), connections=server.plane.catalog.node_connections)
    await k.start()
    yield k
    await k.stop()


def pod(name: str, **extra: Any) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": extra.pop("annotations", {})},
        "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "busybox"}], **extra},
    }
    return body


async def get_pod(client: LocalClient, name: str) -> Obj:
    return await client.get(interface.PODS, name, namespace="default")


async def test_node_registers_with_status_and_lease(client: LocalClient, kubelet: Kubelet) -> None:
    node = await client.get(interface.NODES, "node-1")
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True"
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"] == "fake://1.0.0"
    assert info["kubeletVersion"] == "v1.32.4"
    assert set(info) >= {"machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "architecture"}
    assert node["status"]["capacity"]["pods"] == "110"
    assert node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == ""
    lease = await client.get(interface.LEASES, "node-1", namespace="kube-node-lease")
    first = lease["spec"]["renewTime"]
    await eventually(
        lambda: _renewed(client, first),
    )


async def _renewed(client: LocalClient, first: str) -> bool:
    lease = await client.get(interface.LEASES, "node-1", namespace="kube-node-lease")
    return bool(lease["spec"]["renewTime"] != first)


async def test_pod_runs_and_is_ready(client: LocalClient, kubelet: Kubelet) -> None:
    await client.create(interface.PODS, pod("web"), namespace="default")

    async def running() -> Obj | None:
        current = await get_pod(client, "web")
        status = current.get("status", {})
        ready = {c["type"]: c["status"] for c in status.get("conditions", [])}
        return current if status.get("phase") == "Running" and ready.get("Ready") == "True" else None

    current = await eventually(running)
    status = current["status"]
    assert status["podIP"].startswith("10.244.")
    container = status["containerStatuses"][0]
    assert container["ready"] is True and "running" in container["state"]
    assert container["containerID"].startswith("fake://")
    events = await client.list(
        interface.EVENTS, namespace="default", field_selector="involvedObject.name=web"
    )
    assert {"Created", "Started"} <= {e["reason"] for e in events["items"]}


async def test_job_pod_completes(client: LocalClient, kubelet: Kubelet) -> None:
    body = pod("job-1", restartPolicy="Never")
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "1234", "controller": True}
    ]
    await client.create(interface.PODS, body, namespace="default")

    async def succeeded() -> bool:
        return bool((await get_pod(client, "job-1")).get("status", {}).get("phase") == "Succeeded")

    await eventually(succeeded)
    terminated = (await get_pod(client, "job-1"))["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")


async def test_crash_loop_backs_off_and_counts_restarts(client: LocalClient, kubelet: Kubelet) -> None:
    annotations = {"fake.kbox.io/exit-after": "50ms", "fake.kbox.io/exit-code": "2"}
    await client.create(interface.PODS, pod("crash", annotations=annotations), namespace="default")

    async def looping() -> Obj | None:
        status = (await get_pod(client, "crash")).get("status", {})
        containers = status.get("containerStatuses") or [{}]
        waiting = containers[0].get("state", {}).get("waiting", {})
        return (
            containers[0]
            if containers[0].get("restartCount", 0) >= 2 and waiting.get("reason") == "CrashLoopBackOff"
            else None
        )

    container = await eventually(looping)
    assert container["lastState"]["terminated"]["exitCode"] == 2
    assert container["lastState"]["terminated"]["reason"] == "Error"


async def test_graceful_deletion_is_finished_by_the_kubelet(client: LocalClient, kubelet: Kubelet) -> None:
    await client.create(interface.PODS, pod("doomed"), namespace="default")
    await eventually(lambda: kubelet.states)
    await client.delete(interface.PODS, "doomed", namespace="default")

    async def gone() -> bool:
        try:
            await get_pod(client, "doomed")
        except StatusError as exc:
            return exc.code == 404
        return False

    await eventually(gone)
    assert not kubelet.states


async def test_restarted_kubelet_adopts_running_pods(
    client: LocalClient, runtime: FakeRuntime, server: Served, tmp_path: Path
) -> None:
    first = Kubelet(client, runtime, settings(tmp_path), connections=server.plane.catalog.node_connections)
    await first.start()
    await client.create(interface.PODS, pod("steady"), namespace="default")

    async def container_id() -> str | None:
        statuses = (await get_pod(client, "steady")).get("status", {}).get("containerStatuses") or []
        return statuses[0].get("containerID") if statuses and "running" in statuses[0]["state"] else None

    before = await eventually(container_id)
    await first.stop()
    second = Kubelet(client, runtime, settings(tmp_path), connections=server.plane.catalog.node_connections)
    await second.start()
    try:
        await asyncio.sleep(0.5)
        after = (await get_pod(client, "steady"))["status"]["containerStatuses"][0]
        assert after["containerID"] == before
        assert after["restartCount"] == 0
        assert len(await runtime.list_sandboxes("node-1")) == 1
    finally:
        await second.stop()


async def test_repeated_events_are_aggregated(client: LocalClient, kubelet: Kubelet) -> None:
    annotations = {"fake.kbox.io/exit-after": "50ms", "fake.kbox.io/exit-code": "1"}
    await client.create(interface.PODS, pod("flaky", annotations=annotations), namespace="default")

    async def counted() -> Obj | None:
        events = await client.list(
            interface.EVENTS, namespace="default", field_selector="involvedObject.name=flaky"
        )
        started = [e for e in events["items"] if e["reason"] == "Started"]
        return started[0] if len(started) == 1 and started[0]["count"] >= 3 else None

    event = await eventually(counted)
    assert event["lastTimestamp"] >= event["firstTimestamp"]
