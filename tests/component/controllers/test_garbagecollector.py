"""The garbage collector with the Deployment and ReplicaSet controllers, fake-runtime kubelets and a test
binder: deleting a Deployment in the background removes its ReplicaSets and pods; in the foreground it
stays (with the finalizer) until they are gone, which the watched deletion revisions prove; orphaning
keeps them and removes the references; an object with two owners loses only the deleted one; a
collector stopped half way through a foreground deletion and started again finishes it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.client import interface
from kbox.controllers.deployment import DeploymentController
from kbox.controllers.garbagecollector import FOREGROUND, GarbageCollector, served_kinds
from kbox.controllers.replicaset import ReplicaSetController
from kbox.util import aiotasks
from tests.component.controllers import Cluster, active_pods, cluster, eventually, is_ready, template

Obj = dict[str, Any]
NS = "default"
HOLD = "test.kbox.dev/hold"


def collector(c: Cluster) -> GarbageCollector:
    return GarbageCollector(c.factory, served_kinds(c.server.plane.catalog.resources()), c.client)


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path) as running:
        running.start(ReplicaSetController(running.factory, running.client))
        running.start(DeploymentController(running.factory, running.client))
        running.start(collector(running))
        yield running


async def deploy(c: Cluster, name: str = "web", replicas: int = 2) -> Obj:
    labels = {"app": name}
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template(labels)},
    }
    created: Obj = await c.client.create(interface.DEPLOYMENTS, body, namespace=NS)

    async def ready() -> bool:
        return len([p for p in await active_pods(c.client, f"app={name}") if is_ready(p)]) == replicas

    await eventually(ready, message=f"{replicas} pods of {name} ready")
    return created


async def items(c: Cluster, resource: interface.Resource, selector: str | None = None) -> list[Obj]:
    result: list[Obj] = (await c.client.list(resource, namespace=NS, label_selector=selector))["items"]
    return result


async def exists(c: Cluster, resource: interface.Resource, name: str) -> bool:
    try:
        await c.client.get(resource, name, namespace=NS)
    except StatusError as exc:
        if exc.code != 404:
            raise
        return False
    return True


async def all_gone(c: Cluster, name: str = "web") -> bool:
    return (
        not await exists(c, interface.DEPLOYMENTS, name)
        and not await items(c, interface.REPLICASETS, f"app={name}")
        and not await items(c, interface.PODS, f"app={name}")
    )


class Deletions:
    """The revision at which each object of some types was deleted, from watches started now."""

    def __init__(self, c: Cluster, *resources: interface.Resource) -> None:
        self.c = c
        self.resources = resources
        self.revisions: dict[tuple[str, str], int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Deletions:
        for resource in self.resources:
            listed = await self.c.client.list(resource, namespace=NS)
            version = listed["metadata"]["resourceVersion"]
            self._tasks.append(
                aiotasks.create_guarded_task(self._follow(resource, version), name="test/deletions")
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await aiotasks.stop(self._tasks, title="test")

    async def _follow(self, resource: interface.Resource, version: str) -> None:
        async for event in self.c.client.watch(resource, namespace=NS, resource_version=version):
            if event.type == "DELETED":
                metadata = event.object["metadata"]
                self.revisions[(resource.plural, metadata["name"])] = int(metadata["resourceVersion"])

    def of(self, plural: str) -> list[int]:
        return [rv for (kind, _), rv in self.revisions.items() if kind == plural]


async def test_background_deletion_removes_replicasets_and_pods(c: Cluster) -> None:
    await deploy(c)
    assert len(await items(c, interface.REPLICASETS, "app=web")) == 1
    await c.client.delete(interface.DEPLOYMENTS, "web", namespace=NS)
    await eventually(lambda: all_gone(c), message="deployment, replicasets and pods gone")


async def test_foreground_deletion_waits_for_dependents(c: Cluster) -> None:
    await deploy(c)
    [rs] = await items(c, interface.REPLICASETS, "app=web")
    pod_names = {p["metadata"]["name"] for p in await items(c, interface.PODS, "app=web")}
    async with Deletions(c, interface.DEPLOYMENTS, interface.REPLICASETS, interface.PODS) as deletions:
        await c.client.delete(interface.DEPLOYMENTS, "web", namespace=NS, propagation_policy="Foreground")
        d = await c.client.get(interface.DEPLOYMENTS, "web", namespace=NS)
        assert d["metadata"]["deletionTimestamp"] and FOREGROUND in d["metadata"]["finalizers"]
        await eventually(lambda: all_gone(c), message="deployment, replicasets and pods gone")
        await eventually(lambda: ("deployments", "web") in deletions.revisions, message="deployment deleted")
    # Everything it owned went first: the Deployment's deletion revision is the last.
    assert set(deletions.revisions) >= {("replicasets", rs["metadata"]["name"])} | {
        ("pods", name) for name in pod_names
    }
    assert (
        max(deletions.of("pods") + deletions.of("replicasets")) < deletions.revisions[("deployments", "web")]
    )
    # The ReplicaSet (which had dependents) was itself deleted in the foreground, after its pods.
    assert max(deletions.of("pods")) < deletions.revisions[("replicasets", rs["metadata"]["name"])]


async def test_orphan_deletion_keeps_dependents_without_the_reference(c: Cluster) -> None:
    await deploy(c)
    [rs] = await items(c, interface.REPLICASETS, "app=web")
    pods = {p["metadata"]["uid"] for p in await items(c, interface.PODS, "app=web")}
    await c.client.delete(interface.DEPLOYMENTS, "web", namespace=NS, propagation_policy="Orphan")

    async def deployment_gone() -> bool:
        return not await exists(c, interface.DEPLOYMENTS, "web")

    await eventually(deployment_gone, message="deployment gone")
    [kept] = await items(c, interface.REPLICASETS, "app=web")
    assert kept["metadata"]["uid"] == rs["metadata"]["uid"]
    assert not kept["metadata"].get("ownerReferences") and not kept["metadata"].get("deletionTimestamp")
    # The pods are untouched: still there, still owned by the ReplicaSet, none replaced.
    await asyncio.sleep(0.3)
    remaining = await items(c, interface.PODS, "app=web")
    assert {p["metadata"]["uid"] for p in remaining} == pods
    assert all(not p["metadata"].get("deletionTimestamp") for p in remaining)
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in remaining)


async def test_object_with_two_owners_loses_only_the_deleted_one(c: Cluster) -> None:
    owners = [
        await c.client.create(
            interface.CONFIGMAPS,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}},
            namespace=NS,
        )
        for name in ("owner-a", "owner-b")
    ]
    refs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]}
        for o in owners
    ]
    pod = {"apiVersion": "v1", "kind": "Pod", **template({"app": "shared"})}
    pod["metadata"].update(name="shared", ownerReferences=refs)
    await c.client.create(interface.PODS, pod, namespace=NS)
    await c.client.delete(interface.CONFIGMAPS, "owner-a", namespace=NS)

    async def one_owner_left() -> bool:
        current = await c.client.get(interface.PODS, "shared", namespace=NS)
        return current["metadata"].get("ownerReferences") == [refs[1]]

    await eventually(one_owner_left, message="only the reference to owner-b left")
    current = await c.client.get(interface.PODS, "shared", namespace=NS)
    assert not current["metadata"].get("deletionTimestamp")
    await c.client.delete(interface.CONFIGMAPS, "owner-b", namespace=NS)

    async def pod_gone() -> bool:
        return not await exists(c, interface.PODS, "shared")

    await eventually(pod_gone, message="the pod collected with its last owner")


async def test_restarted_collector_finishes_a_foreground_deletion(c: Cluster) -> None:
    await deploy(c)
    [rs] = await items(c, interface.REPLICASETS, "app=web")
    held = (await items(c, interface.PODS, "app=web"))[0]["metadata"]["name"]
    # A finalizer of the test's holds one pod, so the deletion stops half way.
    await c.client.patch(interface.PODS, held, {"metadata": {"finalizers": [HOLD]}}, namespace=NS)
    await c.client.delete(interface.DEPLOYMENTS, "web", namespace=NS, propagation_policy="Foreground")

    async def half_way() -> bool:
        pods = await items(c, interface.PODS, "app=web")
        current = await c.client.get(interface.REPLICASETS, rs["metadata"]["name"], namespace=NS)
        return [p["metadata"]["name"] for p in pods] == [held] and FOREGROUND in (
            current["metadata"].get("finalizers") or []
        )

    await eventually(half_way, message="the ReplicaSet deleting in the foreground, only the held pod left")
    await c.stop("garbagecollector")
    await c.client.patch(interface.PODS, held, {"metadata": {"finalizers": None}}, namespace=NS)
    await eventually(lambda: pod_gone(c, held), message="the held pod gone")
    # Without a collector the finalizers stay: nothing finishes.
    await asyncio.sleep(0.2)
    assert await exists(c, interface.DEPLOYMENTS, "web")
    assert await exists(c, interface.REPLICASETS, rs["metadata"]["name"])
    c.start(collector(c))
    await eventually(lambda: all_gone(c), message="the new collector finished the deletion")


async def pod_gone(c: Cluster, name: str) -> bool:
    return not await exists(c, interface.PODS, name)
