"""kubectl commands that follow objects over time against kbox's apiserver: `wait --for=condition`,
`get <name> -w`, `delete` waiting for a graceful deletion to finish, `edit` through an editor,
`describe` with events, `get all`, `cluster-info`, and dry-run on the server.

A second client (the in-process ``LocalClient``) plays the part of the missing kubelet and
controllers, writing status and finishing deletions while kubectl waits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kbox.client import interface
from kbox.client.local import LocalClient
from tests.support.apiserver import Kubectl, Served, served
from tests.support.wait import eventually

POD = """
apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  containers: [{name: main, image: busybox}]
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture
def kubectl(server: Served, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "cache"
    cache.mkdir()
    return Kubectl(server.kubeconfig, cache)


@pytest.fixture
def kubelet(server: Served) -> LocalClient:
    return LocalClient(server.plane.catalog, field_manager="kubelet")


async def test_wait_for_condition(kubectl: Kubectl, kubelet: LocalClient) -> None:
    await kubectl.ok("create", "-f", "-", stdin=POD % "p1")
    waiting = asyncio.ensure_future(
        kubectl("wait", "--for=condition=Ready", "pod/p1", "--timeout=20s", timeout=30)
    )
    await asyncio.sleep(0.5)
    assert not waiting.done()
    status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    await kubelet.patch(interface.PODS, "p1", status, namespace="default", subresource="status")
    result = await waiting
    assert result.code == 0, result.err
    assert result.out.strip() == "pod/p1 condition met"
    row = (await kubectl.ok("get", "pod", "p1")).splitlines()[1].split()
    assert row[:3] == ["p1", "0/1", "Running"]


async def test_get_named_watch_sees_changes(kubectl: Kubectl, kubelet: LocalClient) -> None:
    await kubectl.ok("create", "-f", "-", stdin=POD % "p2")
    watching = asyncio.ensure_future(kubectl("get", "pod", "p2", "-w", "--request-timeout=4s", timeout=20))
    await asyncio.sleep(1.0)
    status = {"status": {"phase": "Succeeded"}}
    await kubelet.patch(interface.PODS, "p2", status, namespace="default", subresource="status")
    result = await watching
    lines = [line.split() for line in result.out.splitlines() if line.strip()]
    assert lines[0][:1] == ["NAME"]
    assert lines[1][0] == "p2"
    assert any(line[0] == "p2" and "Succeeded" in line for line in lines[2:]), result.out


async def test_delete_waits_for_graceful_deletion(kubectl: Kubectl, kubelet: LocalClient) -> None:
    await kubectl.ok("create", "-f", "-", stdin=POD % "p3")
    await kubelet.bind("p3", "node-1", namespace="default")
    deleting = asyncio.ensure_future(kubectl("delete", "pod", "p3", "--timeout=20s", timeout=30))

    async def terminating() -> bool:
        pod = await kubelet.get(interface.PODS, "p3", namespace="default")
        return bool(pod["metadata"].get("deletionTimestamp"))

    await eventually(terminating, 5)
    assert not deleting.done()
    table = await kubectl.ok("get", "pod", "p3")
    assert "Terminating" in table
    # The kubelet finishes: containers stopped, the pod is removed.
    await kubelet.delete(interface.PODS, "p3", namespace="default", grace_period_seconds=0)
    result = await deleting
    assert result.code == 0, result.err
    assert result.out.strip() == 'pod "p3" deleted'


async def test_edit_with_an_editor(kubectl: Kubectl, tmp_path: Path) -> None:
    await kubectl.ok("create", "configmap", "conf", "--from-literal=mode=old")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/mode: old/mode: new/' \"$1\"\n")
    editor.chmod(0o755)
    kubectl.env["KUBE_EDITOR"] = str(editor)
    out = await kubectl.ok("edit", "configmap", "conf")
    assert out.strip() == "configmap/conf edited"
    data = json.loads(await kubectl.ok("get", "cm", "conf", "-o", "json"))["data"]
    assert data == {"mode": "new"}


async def test_describe_shows_events(kubectl: Kubectl, kubelet: LocalClient) -> None:
    await kubectl.ok("create", "-f", "-", stdin=POD % "p4")
    pod = await kubelet.get(interface.PODS, "p4", namespace="default")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "p4.1", "namespace": "default"},
        "involvedObject": {
            "kind": "Pod",
            "name": "p4",
            "namespace": "default",
            "uid": pod["metadata"]["uid"],
        },
        "reason": "Scheduled",
        "message": "Successfully assigned default/p4 to node-1",
        "type": "Normal",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": pod["metadata"]["creationTimestamp"],
        "lastTimestamp": pod["metadata"]["creationTimestamp"],
        "count": 1,
    }
    await kubelet.create(interface.EVENTS, event, namespace="default")
    described = await kubectl.ok("describe", "pod", "p4")
    assert "Successfully assigned default/p4 to node-1" in described
    assert "default-scheduler" in described
    events = await kubectl.ok("get", "events")
    assert events.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]


async def test_get_all_cluster_info_and_server_dry_run(kubectl: Kubectl) -> None:
    await kubectl.ok("create", "deployment", "web", "--image=nginx")
    everything = await kubectl.ok("get", "all")
    assert "deployment.apps/web" in everything
    assert "service/kubernetes" in everything
    info = await kubectl.ok("cluster-info")
    assert "Kubernetes control plane is running at https://127.0.0.1:" in info
    out = await kubectl.ok("create", "-f", "-", "--dry-run=server", stdin=POD % "dry")
    assert out.strip() == "pod/dry created (server dry run)"
    err = await kubectl.fails("get", "pod", "dry")
    assert "NotFound" in err
