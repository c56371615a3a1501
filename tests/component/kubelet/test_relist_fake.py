"""The kubelet's relist (PLEG) and its handling of a runtime outage, on the simulated runtime.

Covered: one node-wide listing per relist whatever the number of pods (never a per-pod call), a quiet
node's relist skipped by the runtime's revision, a container exit and a dead sandbox noticed by the
relist; a runtime that stops answering turns the Node NotReady with Kubernetes' reason and message,
pauses pods without recording failures against them, and on recovery the Node is Ready again, paused
pods start and running containers are kept. The same outage over a real Docker transport is in
tests/e2e/test_kubelet_outage.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet.kubelet import Kubelet
from kbox.kubelet.runtime import interface as rt
from kbox.kubelet.runtime.fake import FakeRuntime
from tests.component.kubelet.test_kubelet_fake import get_pod, pod, settings
from tests.support.apiserver import Served, served
from tests.support.wait import eventually

Obj = dict[str, Any]


class CountingRuntime(FakeRuntime):
    """The fake runtime, counting the listing calls and able to play dead (an unreachable daemon)."""

    def __init__(self) -> None:
        super().__init__(cluster="test", job_duration=0.2)
        self.calls: dict[str, int] = {}
        self.down = False

    def _call(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1
        if self.down:
            raise rt.ContainerRuntimeError(
                f"{what}: Docker is not available (connection refused)", reason=rt.REASON_UNAVAILABLE
            )

    async def version(self) -> str:
        self._call("version")
        return await super().version()

    async def list_node(self, node: str) -> list[rt.ContainerBrief]:
        self._call("list_node")
        return await super().list_node(node)

    async def list_containers(self, sandbox_id: str) -> list[rt.ContainerStatus]:
        self._call("list_containers")
        return await super().list_containers(sandbox_id)

    async def run_sandbox(self, config: rt.SandboxConfig) -> rt.SandboxStatus:
        self._call("run_sandbox")
        return await super().run_sandbox(config)

    async def create_container(self, sandbox: rt.SandboxStatus, config: rt.ContainerConfig) -> str:
        self._call("create_container")
        return await super().create_container(sandbox, config)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture
def runtime() -> CountingRuntime:
    return CountingRuntime()


@pytest.fixture
async def kubelet(server: Served, runtime: CountingRuntime, tmp_path: Path) -> AsyncIterator[Kubelet]:
    client = LocalClient(server.plane.catalog)
    k = Kubelet(client, runtime, settings(tmp_path), connections=server.plane.catalog.node_connections)
    await k.start()
    yield k
    await k.stop()


async def _running(client: LocalClient, name: str) -> Obj | None:
    status = (await get_pod(client, name)).get("status") or {}
    containers = status.get("containerStatuses") or [{}]
    return (
        containers[0]
        if status.get("phase") == "Running" and "running" in containers[0].get("state", {})
        else None
    )


async def _ready_condition(client: LocalClient) -> Obj:
    node = await client.get(interface.NODES, "node-1")
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


async def test_relist_lists_the_node_once_whatever_the_pods(
    server: Served, runtime: CountingRuntime, kubelet: Kubelet
) -> None:
    client = LocalClient(server.plane.catalog)
    for i in range(20):
        await client.create(interface.PODS, pod(f"p{i}"), namespace="default")
    await eventually(lambda: all(s.current for s in kubelet.states.values()) and len(kubelet.states) == 20)
    for i in range(20):
        name = f"p{i}"
        await eventually(lambda: _running(client, name))  # noqa: B023 - awaited within the iteration

    runtime.calls.clear()
    runtime._revisions["node-1"] = runtime._revisions.get("node-1", 0) + 1  # force a real listing
    await kubelet.relist()
    assert runtime.calls.get("list_node") == 1
    assert "list_containers" not in runtime.calls  # no per-pod call in the relist

    # Nothing changed since: the runtime's node revision makes the next relist free.
    runtime.calls.clear()
    await kubelet.relist()
    await kubelet.relist()
    assert "list_node" not in runtime.calls


async def test_relist_notices_an_exit_and_a_dead_sandbox(
    server: Served, runtime: CountingRuntime, kubelet: Kubelet
) -> None:
    client = LocalClient(server.plane.catalog)
    annotations = {"fake.kbox.io/exit-after": "300ms", "fake.kbox.io/exit-code": "3"}
    await client.create(
        interface.PODS, pod("once", restartPolicy="Never", annotations=annotations), namespace="default"
    )

    async def failed() -> bool:
        return bool((await get_pod(client, "once")).get("status", {}).get("phase") == "Failed")

    await eventually(failed)

    await client.create(interface.PODS, pod("steady"), namespace="default")
    await eventually(lambda: _running(client, "steady"))
    uid = (await get_pod(client, "steady"))["metadata"]["uid"]
    old = kubelet.states[uid].sandbox
    assert old is not None
    # Age the sandbox past the relist's race guard, then kill it behind the kubelet's back.
    aged = dataclasses.replace(old, created_at=old.created_at - 10)
    runtime._sandboxes[old.id].status = kubelet.states[uid].sandbox = aged
    await runtime.remove_sandbox(old.id)

    async def new_sandbox() -> bool:
        sandboxes = [s for s in await runtime.list_sandboxes("node-1") if s.pod.uid == uid]
        return len(sandboxes) == 1 and sandboxes[0].id != old.id and sandboxes[0].ready

    await eventually(new_sandbox)
    await eventually(lambda: _running(client, "steady"))

    async def restarted() -> bool:  # a container started again in a new sandbox is a restart
        statuses = (await get_pod(client, "steady")).get("status", {}).get("containerStatuses") or [{}]
        return statuses[0].get("restartCount") == 1

    await eventually(restarted)


async def test_runtime_outage_pauses_pods_and_recovers(
    server: Served, runtime: CountingRuntime, kubelet: Kubelet
) -> None:
    client = LocalClient(server.plane.catalog)
    await client.create(interface.PODS, pod("before"), namespace="default")
    before = await eventually(lambda: _running(client, "before"))

    runtime.down = True
    runtime._revisions["node-1"] = runtime._revisions.get("node-1", 0) + 1  # the next relist must list

    async def not_ready() -> Obj | None:
        ready = await _ready_condition(client)
        return ready if ready["status"] == "False" else None

    ready = await eventually(not_ready)
    assert ready["reason"] == "KubeletNotReady"
    assert ready["message"].startswith("container runtime is down: ")
    assert "connection refused" in ready["message"]

    # A pod bound meanwhile waits: nothing fails, no event, no status written against it.
    await client.create(interface.PODS, pod("during"), namespace="default")
    await eventually(lambda: runtime.calls.get("list_node", 0) >= 3)  # the relist keeps probing
    during = await get_pod(client, "during")
    assert not (during.get("status") or {}).get("containerStatuses")
    events = await client.list(
        interface.EVENTS, namespace="default", field_selector="involvedObject.name=during"
    )
    assert [e["reason"] for e in events["items"]] == []

    runtime.down = False

    async def ready_again() -> Obj | None:
        ready = await _ready_condition(client)
        return ready if ready["status"] == "True" else None

    ready = await eventually(ready_again)
    assert ready["reason"] == "KubeletReady"
    await eventually(lambda: _running(client, "during"))
    after = await eventually(lambda: _running(client, "before"))
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == 0


async def test_kubelet_starts_while_the_runtime_is_down(
    server: Served, runtime: CountingRuntime, tmp_path: Path
) -> None:
    client = LocalClient(server.plane.catalog)
    runtime.down = True
    k = Kubelet(client, runtime, settings(tmp_path), connections=server.plane.catalog.node_connections)
    await k.start()  # registers NotReady instead of failing
    try:
        ready = await _ready_condition(client)
        assert (ready["status"], ready["reason"]) == ("False", "KubeletNotReady")
        node = await client.get(interface.NODES, "node-1")
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == "fake://unknown"
        await client.create(interface.PODS, pod("waits"), namespace="default")
        runtime.down = False
        await eventually(lambda: _running(client, "waits"))

        async def version_known() -> bool:
            node = await client.get(interface.NODES, "node-1")
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            return bool(
                node["status"]["nodeInfo"]["containerRuntimeVersion"] == "fake://1.0.0"
                and ready["status"] == "True"
            )

        await eventually(version_known)
    finally:
        await k.stop()
