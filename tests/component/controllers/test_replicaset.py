"""The ReplicaSet controller against the apiserver, fake-runtime kubelets and a test binder: keeping N
pods (a deleted one is replaced), owner references, scale up and down removing the least valuable pods
(unscheduled first), adoption of matching orphans and release of pods that stop matching, status
counts with minReadySeconds, events; and the deletion order itself on synthetic pods. Garbage
collection of a deleted ReplicaSet's pods is the garbage collector's business and is not covered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.client import interface
from kbox.controllers import replicaset
from kbox.controllers.replicaset import ReplicaSetController
from tests.component.controllers import Cluster, active_pods, cluster, eventually, is_ready, template

Obj = dict[str, Any]


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path) as running:
        controller = ReplicaSetController(running.factory, running.client)
        running.start(controller)
        yield running


def rs_body(name: str, replicas: int, labels: dict[str, str], **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": template(labels),
            **spec,
        },
    }


async def get_rs(c: Cluster, name: str) -> Obj:
    return await c.client.get(interface.REPLICASETS, name, namespace="default")


async def settled(c: Cluster, name: str, replicas: int, selector: str) -> list[Obj]:
    """Wait until the ReplicaSet has exactly ``replicas`` ready pods and says so in its status."""

    async def check() -> list[Obj] | None:
        rs = await get_rs(c, name)
        current = await active_pods(c.client, selector)
        status = rs.get("status") or {}
        if (
            len(current) == replicas
            and all(is_ready(p) for p in current)
            and status.get("replicas") == replicas
            and status.get("readyReplicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas
            and status.get("observedGeneration") == rs["metadata"]["generation"]
        ):
            return current
        return None

    result: list[Obj] = await eventually(check, message=f"{name} settled at {replicas}")
    return result


async def scale(c: Cluster, name: str, replicas: int) -> None:
    await c.client.patch(
        interface.REPLICASETS,
        name,
        {"spec": {"replicas": replicas}},
        namespace="default",
        subresource="scale",
    )


async def test_keeps_replicas_and_replaces_a_deleted_pod(c: Cluster) -> None:
    created = await c.client.create(
        interface.REPLICASETS, rs_body("web", 3, {"app": "web"}), namespace="default"
    )
    current = await settled(c, "web", 3, "app=web")
    for pod in current:
        assert pod["metadata"]["name"].startswith("web-")
        assert pod["metadata"]["labels"] == {"app": "web"}
        assert pod["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": created["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    rs = await get_rs(c, "web")
    assert rs["status"]["fullyLabeledReplicas"] == 3 and rs["status"]["observedGeneration"] == 1

    victim = current[0]["metadata"]["name"]
    await c.client.delete(interface.PODS, victim, namespace="default")
    after = await settled(c, "web", 3, "app=web")
    assert victim not in {p["metadata"]["name"] for p in after}

    async def events() -> set[str]:
        found = await c.client.list(
            interface.EVENTS, namespace="default", field_selector="involvedObject.name=web"
        )
        return {e["reason"] for e in found["items"]}

    await eventually(lambda: _contains(events(), {"SuccessfulCreate"}))
    messages = await c.client.list(
        interface.EVENTS, namespace="default", field_selector="involvedObject.name=web"
    )
    assert any(e["message"].startswith("Created pod: web-") for e in messages["items"])


async def _contains(found: Any, wanted: set[str]) -> bool:
    return wanted <= await found


async def test_scale_up_then_down_removes_unscheduled_pods_first(c: Cluster) -> None:
    await c.client.create(interface.REPLICASETS, rs_body("web", 3, {"app": "web"}), namespace="default")
    running = {p["metadata"]["name"] for p in await settled(c, "web", 3, "app=web")}

    c.binder.pause()
    await scale(c, "web", 5)

    async def five_pods() -> list[Obj] | None:
        current = await active_pods(c.client, "app=web")
        return current if len(current) == 5 else None

    current = await eventually(five_pods)
    unscheduled = {p["metadata"]["name"] for p in current if not p["spec"].get("nodeName")}
    assert len(unscheduled) == 2
    rs = await eventually(lambda: _status_is(c, "web", replicas=5, readyReplicas=3))
    assert rs["status"]["observedGeneration"] == rs["metadata"]["generation"]

    await scale(c, "web", 3)

    async def back_to_three() -> set[str] | None:
        names = {p["metadata"]["name"] for p in await active_pods(c.client, "app=web")}
        return names if len(names) == 3 else None

    assert await eventually(back_to_three) == running
    c.binder.resume()
    await settled(c, "web", 3, "app=web")

    await scale(c, "web", 1)
    remaining = await settled(c, "web", 1, "app=web")
    assert remaining[0]["metadata"]["name"] in running
    await scale(c, "web", 0)
    await eventually(lambda: _status_is(c, "web", replicas=0))
    assert "readyReplicas" not in (await get_rs(c, "web"))["status"]


async def _status_is(c: Cluster, name: str, **wanted: int) -> Obj | None:
    rs = await get_rs(c, name)
    status = rs.get("status") or {}
    return rs if all(status.get(k, 0) == v for k, v in wanted.items()) else None


async def test_adopts_matching_orphans_and_releases_pods_that_stop_matching(c: Cluster) -> None:
    orphan = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "main", "image": "busybox:1"}]},
    }
    await c.client.create(interface.PODS, orphan, namespace="default")
    await eventually(lambda: _ready_pod(c, "orphan"))
    created = await c.client.create(
        interface.REPLICASETS, rs_body("web", 2, {"app": "web"}), namespace="default"
    )
    current = await settled(c, "web", 2, "app=web")
    names = {p["metadata"]["name"] for p in current}
    assert "orphan" in names
    adopted = await c.client.get(interface.PODS, "orphan", namespace="default")
    assert adopted["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]

    # Relabel the adopted pod: it is released, and a new pod takes its place.
    await c.client.patch(
        interface.PODS, "orphan", {"metadata": {"labels": {"app": "other"}}}, namespace="default"
    )
    after = await settled(c, "web", 2, "app=web")
    assert "orphan" not in {p["metadata"]["name"] for p in after}

    async def released() -> bool:
        pod = await c.client.get(interface.PODS, "orphan", namespace="default")
        return not pod["metadata"].get("ownerReferences") and not pod["metadata"].get("deletionTimestamp")

    await eventually(released)

    # A pod owned by another controller is never adopted.
    foreign = dict(orphan, metadata={"name": "foreign", "labels": {"app": "web"}, "ownerReferences": [
        {"apiVersion": "v1", "kind": "ReplicationController", "name": "x", "uid": "1234", "controller": True}
    ]})  # fmt: skip
    await c.client.create(interface.PODS, foreign, namespace="default")
    await eventually(lambda: _ready_pod(c, "foreign"))
    await scale(c, "web", 3)
    await eventually(lambda: _status_is(c, "web", replicas=3, readyReplicas=3, availableReplicas=3))
    pod = await c.client.get(interface.PODS, "foreign", namespace="default")
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "1234"
    assert len(await active_pods(c.client, "app=web")) == 4


async def _ready_pod(c: Cluster, name: str) -> bool:
    return is_ready(await c.client.get(interface.PODS, name, namespace="default"))


async def test_available_replicas_wait_for_min_ready_seconds(c: Cluster) -> None:
    await c.client.create(
        interface.REPLICASETS, rs_body("slow", 2, {"app": "slow"}, minReadySeconds=1), namespace="default"
    )
    rs = await eventually(lambda: _status_is(c, "slow", replicas=2, readyReplicas=2))
    assert rs["status"].get("availableReplicas", 0) < 2
    await eventually(
        lambda: _status_is(c, "slow", replicas=2, readyReplicas=2, availableReplicas=2), timeout=5
    )


def test_deletion_order_puts_the_least_valuable_first() -> None:
    def pod(
        name: str, *, node: str = "n", phase: str = "Running", ready: str | None = None, **extra: Any
    ) -> Obj:
        conditions = [{"type": "Ready", "status": "True", "lastTransitionTime": ready}] if ready else []
        return {
            "metadata": {"name": name, "creationTimestamp": extra.get("created", "2024-01-01T00:00:00Z")},
            "spec": {"nodeName": node} if node else {},
            "status": {
                "phase": phase,
                "conditions": conditions,
                "containerStatuses": [{"restartCount": extra.get("restarts", 0)}],
            },
        }

    pods = [
        pod("old-ready", ready="2024-01-01T00:00:10Z", created="2024-01-01T00:00:00Z"),
        pod("new-ready", ready="2024-01-01T00:00:10Z", created="2024-01-01T00:00:05Z"),
        pod("recently-ready", ready="2024-01-01T00:01:00Z"),
        pod("crashy-ready", ready="2024-01-01T00:00:10Z", restarts=3),
        pod("running-not-ready"),
        pod("pending", phase="Pending"),
        pod("unscheduled", node="", phase="Pending"),
    ]
    order = [p["metadata"]["name"] for p in sorted(pods, key=replicaset.deletion_rank)]
    assert order == [
        "unscheduled",
        "pending",
        "running-not-ready",
        "recently-ready",
        "crashy-ready",
        "new-ready",
        "old-ready",
    ]
