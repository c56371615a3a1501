"""The scheduler in process with the apiserver and three fake-runtime kubelets (node-1..3, node-3 tainted
``dedicated=special:NoSchedule``): pods are bound and run, spread over nodes, steered and blocked by
resources, selectors, affinity, anti-affinity, taints and tolerations; an unschedulable pod gets
PodScheduled=False/Unschedulable and a FailedScheduling event with upstream's counts, and is scheduled
once the cluster changes (a big node joins, a pod is deleted); pods with spec.nodeName or another
schedulerName are left alone. Every wait is on a condition with a timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.api import quantity
from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet.kubelet import Kubelet, KubeletSettings
from kbox.kubelet.runtime.fake import FakeRuntime
from kbox.scheduler.scheduler import Scheduler
from tests.support.apiserver import served
from tests.support.wait import eventually

Obj = dict[str, Any]
TAINT = {"key": "dedicated", "value": "special", "effect": "NoSchedule"}
TOLERATION = {"key": "dedicated", "operator": "Equal", "value": "special", "effect": "NoSchedule"}


class Cluster:
    def __init__(self, client: LocalClient, scheduler: Scheduler) -> None:
        self.client = client
        self.scheduler = scheduler

    async def create(self, name: str, **spec: Any) -> Obj:
        labels = spec.pop("labels", {})
        owner = spec.pop("owner", None)
        metadata: Obj = {"name": name, "labels": labels}
        if owner:
            metadata["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": owner,
                    "uid": f"uid-{owner}",
                    "controller": True,
                }
            ]
        container: Obj = {"name": "main", "image": "busybox"}
        if "cpu" in spec:
            container["resources"] = {"requests": {"cpu": spec.pop("cpu")}}
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {"containers": [container], **spec},
        }
        return await self.client.create(interface.PODS, body, namespace="default")

    async def get(self, name: str) -> Obj:
        return await self.client.get(interface.PODS, name, namespace="default")

    async def node_of(self, name: str, timeout: float = 5.0) -> str:
        async def bound() -> str:
            return str((await self.get(name))["spec"].get("nodeName") or "")

        return str(await eventually(bound, timeout))

    async def unschedulable(self, name: str) -> str:
        """Wait for PodScheduled=False/Unschedulable and the matching FailedScheduling event; the message."""

        async def condition() -> str | None:
            pod = await self.get(name)
            for c in pod.get("status", {}).get("conditions", []):
                if c["type"] == "PodScheduled" and c["status"] == "False" and c["reason"] == "Unschedulable":
                    return str(c["message"])
            return None

        message = await eventually(condition)

        async def event() -> bool:
            events = await self.client.list(
                interface.EVENTS, namespace="default", field_selector=f"involvedObject.name={name}"
            )
            return any(
                e["reason"] == "FailedScheduling" and e["type"] == "Warning" and e["message"] == message
                for e in events["items"]
            )

        await eventually(event)
        assert not (await self.get(name))["spec"].get("nodeName")
        return str(message)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with served(tmp_path) as server:
        client = LocalClient(server.plane.catalog)
        kubelets = []
        for n in (1, 2, 3):
            settings = KubeletSettings(
                node_name=f"node-{n}",
                cluster="test",
                state_dir=tmp_path / f"kubelet-{n}",
                control_plane=False,
                relist_interval=0.05,
                lease_interval=1.0,
            )
            kubelet = Kubelet(client, FakeRuntime(cluster="test"), settings)
            await kubelet.start()
            kubelets.append(kubelet)
        await client.patch(interface.NODES, "node-3", {"spec": {"taints": [TAINT]}})
        scheduler = Scheduler(client, seed=1)
        await scheduler.start()
        try:
            yield Cluster(client, scheduler)
        finally:
            await scheduler.stop()
            for kubelet in kubelets:
                await kubelet.stop()


async def node_cpu(cluster: Cluster, name: str) -> int:
    node = await cluster.client.get(interface.NODES, name)
    return int(quantity.parse(node["status"]["allocatable"]["cpu"]) * 1000)


async def test_pods_are_bound_run_and_spread(cluster: Cluster) -> None:
    for i in range(6):
        await cluster.create(f"web-{i}", owner="web", labels={"app": "web"})
    nodes = [await cluster.node_of(f"web-{i}") for i in range(6)]
    assert sorted(nodes) == ["node-1"] * 3 + ["node-2"] * 3  # node-3's taint keeps them off

    async def running() -> bool:
        phases = [(await cluster.get(f"web-{i}"))["status"].get("phase") for i in range(6)]
        return phases == ["Running"] * 6

    await eventually(running)
    pod = await cluster.get("web-0")
    scheduled = {c["type"]: c["status"] for c in pod["status"]["conditions"]}["PodScheduled"]
    assert scheduled == "True"

    async def scheduled_event() -> bool:
        events = await cluster.client.list(
            interface.EVENTS, namespace="default", field_selector="involvedObject.name=web-0"
        )
        return any(
            e["reason"] == "Scheduled"
            and e["message"] == f"Successfully assigned default/web-0 to {nodes[0]}"
            for e in events["items"]
        )

    await eventually(scheduled_event)


async def test_resources_steer_block_and_a_big_node_unblocks(cluster: Cluster) -> None:
    cpu = await node_cpu(cluster, "node-1")
    big = f"{cpu * 3 // 4}m"
    await cluster.create("big-1", cpu=big)
    first = await cluster.node_of("big-1")
    await cluster.create("big-2", cpu=big)
    assert await cluster.node_of("big-2") == ({"node-1", "node-2"} - {first}).pop()  # the emptier node
    await cluster.create("big-3", cpu=big)
    message = await cluster.unschedulable("big-3")
    assert message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: special}, 2 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod."
    )
    # A pod deleted frees its node: the parked pod is retried and lands there.
    await cluster.client.delete(interface.PODS, "big-1", namespace="default", grace_period_seconds=0)
    assert await cluster.node_of("big-3") == first

    huge = f"{cpu * 8}m"
    await cluster.create("huge", cpu=huge)
    await cluster.unschedulable("huge")
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "big-node", "labels": {"kubernetes.io/hostname": "big-node"}},
        "status": {
            "allocatable": {"cpu": str(cpu * 16 // 1000 + 1), "memory": "64Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    created = await cluster.client.create(interface.NODES, node)
    if not created.get("status", {}).get("conditions"):
        await cluster.client.patch(
            interface.NODES, "big-node", {"status": node["status"]}, subresource="status"
        )
    assert await cluster.node_of("huge") == "big-node"


async def test_selectors_affinity_taints_and_tolerations(cluster: Cluster) -> None:
    await cluster.create("pinned", nodeSelector={"kubernetes.io/hostname": "node-2"})
    assert await cluster.node_of("pinned") == "node-2"

    not_1_or_2 = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/hostname",
                                "operator": "NotIn",
                                "values": ["node-1", "node-2"],
                            }
                        ]
                    }
                ]
            }
        }
    }
    await cluster.create("tolerant", affinity=not_1_or_2, tolerations=[TOLERATION])
    assert await cluster.node_of("tolerant") == "node-3"

    by_field = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}
                ]
            }
        }
    }
    await cluster.create("by-field", affinity=by_field)
    assert await cluster.node_of("by-field") == "node-1"

    await cluster.create("intolerant", nodeSelector={"kubernetes.io/hostname": "node-3"})
    assert await cluster.unschedulable("intolerant") == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: special}, "
        "2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )


async def test_anti_affinity_spreads_one_per_node(cluster: Cluster) -> None:
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    for i in range(3):
        await cluster.create(f"db-{i}", labels={"app": "db"}, affinity=anti, tolerations=[TOLERATION])
    assert sorted([await cluster.node_of(f"db-{i}") for i in range(3)]) == ["node-1", "node-2", "node-3"]
    await cluster.create("db-3", labels={"app": "db"}, affinity=anti, tolerations=[TOLERATION])
    assert await cluster.unschedulable("db-3") == (
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    )
    await cluster.client.delete(interface.PODS, "db-1", namespace="default", grace_period_seconds=0)
    assert await cluster.node_of("db-3") in ("node-1", "node-2", "node-3")

    # A pod that must be with a db pod (required affinity) goes to a node that runs one.
    near = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    await cluster.create("cache", affinity=near)
    db_nodes = {(await cluster.get(n))["spec"]["nodeName"] for n in ("db-0", "db-2", "db-3")}
    assert await cluster.node_of("cache") in db_nodes - {"node-3"}


async def test_pods_of_others_are_left_alone(cluster: Cluster) -> None:
    await cluster.create("other", schedulerName="other-scheduler")
    await cluster.create("manual", nodeName="node-3", tolerations=[])  # nodeName bypasses the taint
    await cluster.create("after")
    await cluster.node_of("after")  # the scheduler has looked at everything created before

    async def manual_running() -> bool:
        return (await cluster.get("manual"))["status"].get("phase") == "Running"

    await eventually(manual_running)
    other = await cluster.get("other")
    assert not other["spec"].get("nodeName")
    assert not other.get("status", {}).get("conditions")
    events = await cluster.client.list(interface.EVENTS, namespace="default")
    assert not [
        e
        for e in events["items"]
        if e["involvedObject"]["name"] in ("other", "manual")
        and e["source"].get("component") == "default-scheduler"
    ]
