"""The Deployment controller with the ReplicaSet controller, fake-runtime kubelets and a test binder, and
the real kubectl: 3 replicas becoming available with generation/observedGeneration and conditions right;
a rolling update that never drops below replicas - maxUnavailable ready pods (asserted on the watched pod
stream) and ends on the new template; ``rollout status``, ``rollout undo`` (revisions), ``rollout
restart``, ``scale``; Recreate never running old and new pods together; pause and resume; proportional
scaling of a stalled rollout and its progress deadline; a controller stopped mid-rollout and restarted.
Deletion propagation is the garbage collector's business and is not covered here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.client import interface
from kbox.controllers import deployment
from kbox.controllers.deployment import DeploymentController
from kbox.controllers.replicaset import ReplicaSetController
from kbox.util import aiotasks
from tests.component.controllers import Cluster, active_pods, cluster, eventually, is_ready, template
from tests.support.apiserver import Kubectl

Obj = dict[str, Any]


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path) as running:
        running.start(ReplicaSetController(running.factory, running.client))
        running.start(DeploymentController(running.factory, running.client))
        yield running


@pytest.fixture
def kubectl(c: Cluster, tmp_path: Path) -> Kubectl:
    return Kubectl(c.server.kubeconfig, tmp_path / "kubectl-cache")


def deploy_body(name: str = "web", replicas: int = 3, image: str = "busybox:1", **spec: Any) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": template(labels, image),
            **spec,
        },
    }


async def get(c: Cluster, name: str = "web") -> Obj:
    return await c.client.get(interface.DEPLOYMENTS, name, namespace="default")


async def replicasets(c: Cluster) -> list[Obj]:
    items: list[Obj] = (await c.client.list(interface.REPLICASETS, namespace="default"))["items"]
    return sorted(items, key=deployment.revision)


async def rolled_out(c: Cluster, name: str = "web", *, timeout: float = 15.0) -> Obj:
    """What ``kubectl rollout status`` waits for, read from the API."""

    async def check() -> Obj | None:
        d = await get(c, name)
        status = d.get("status") or {}
        replicas = d["spec"]["replicas"]
        done = (
            status.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == replicas
            and status.get("replicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas
        )
        return d if done else None

    result: Obj = await eventually(check, timeout=timeout, message=f"{name} rolled out")
    return result


def condition(d: Obj, kind: str) -> Obj:
    found = deployment.get_condition(d.get("status") or {}, kind)
    assert found is not None, f"no {kind} condition in {d.get('status')}"
    return found


class PodStream:
    """Follows the pods of one label selector through a watch and checks an invariant at every event."""

    def __init__(self, c: Cluster, selector: str) -> None:
        self.c = c
        self.selector = selector
        self.pods: dict[str, Obj] = {}
        self.min_ready: int | None = None
        self.states: list[dict[str, Obj]] = []
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def __aenter__(self) -> PodStream:
        listed = await self.c.client.list(interface.PODS, namespace="default", label_selector=self.selector)
        self.pods = {p["metadata"]["name"]: p for p in listed["items"]}
        self._task = aiotasks.create_guarded_task(
            self._follow(listed["metadata"]["resourceVersion"]), name="test/pod-stream"
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        await aiotasks.stop([self._task], title="test")

    async def _follow(self, version: str) -> None:
        async for event in self.c.client.watch(
            interface.PODS, namespace="default", label_selector=self.selector, resource_version=version
        ):
            name = event.object["metadata"]["name"]
            if event.type == "DELETED":
                self.pods.pop(name, None)
            else:
                self.pods[name] = event.object
            ready = sum(1 for p in self.pods.values() if is_ready(p))
            self.min_ready = ready if self.min_ready is None else min(self.min_ready, ready)
            self.states.append(dict(self.pods))


async def test_three_replicas_become_available(c: Cluster, kubectl: Kubectl) -> None:
    await c.client.create(interface.DEPLOYMENTS, deploy_body(), namespace="default")
    out = await kubectl.ok("rollout", "status", "deployment/web", "--timeout=20s")
    assert 'deployment "web" successfully rolled out' in out
    d = await rolled_out(c)
    assert d["metadata"]["generation"] == 1 and d["status"]["observedGeneration"] == 1
    assert d["status"]["readyReplicas"] == 3 and "unavailableReplicas" not in d["status"]
    assert d["metadata"]["annotations"][deployment.REVISION] == "1"
    assert condition(d, "Available")["reason"] == "MinimumReplicasAvailable"
    assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
    [rs] = await replicasets(c)
    template_hash = rs["metadata"]["labels"][deployment.HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{template_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", deployment.HASH_LABEL: template_hash}
    assert rs["spec"]["template"]["metadata"]["labels"][deployment.HASH_LABEL] == template_hash
    assert template_hash == deployment.compute_hash(d["spec"]["template"])
    assert rs["metadata"]["annotations"][deployment.REVISION] == "1"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    pods = await active_pods(c.client, "app=web")
    assert len(pods) == 3 and all(p["metadata"]["name"].startswith(f"web-{template_hash}-") for p in pods)
    assert len({p["spec"]["nodeName"] for p in pods}) == 2
    events = await c.client.list(
        interface.EVENTS, namespace="default", field_selector="involvedObject.name=web"
    )
    assert any(e["reason"] == "ScalingReplicaSet" for e in events["items"])

    # A spec change bumps the generation; the status catches up.
    await c.client.patch(
        interface.DEPLOYMENTS, "web", {"spec": {"minReadySeconds": 0, "replicas": 2}}, namespace="default"
    )
    d = await rolled_out(c)
    assert d["metadata"]["generation"] == 2 and d["status"]["observedGeneration"] == 2


async def test_rolling_update_keeps_minimum_availability(c: Cluster, kubectl: Kubectl) -> None:
    # 4 replicas, maxSurge 50% → 2 (rounded up), maxUnavailable 30% → 1 (rounded down): at least 3 ready.
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": "30%"}}
    await c.client.create(
        interface.DEPLOYMENTS, deploy_body(replicas=4, strategy=strategy), namespace="default"
    )
    await rolled_out(c)
    new_template = template({"app": "web"}, "busybox:2", **{"fake.kbox.io/start-delay": "100ms"})
    async with PodStream(c, "app=web") as stream:
        await c.client.patch(
            interface.DEPLOYMENTS, "web", {"spec": {"template": new_template}}, namespace="default"
        )
        out = await kubectl.ok("rollout", "status", "deployment/web", "--timeout=30s")
        assert 'deployment "web" successfully rolled out' in out
        await eventually(
            lambda: len([p for p in stream.pods.values() if is_ready(p)]) == 4 and len(stream.pods) == 4
        )
    assert stream.min_ready is not None and stream.min_ready >= 3, stream.min_ready
    assert len(stream.states) > 10
    pods = await active_pods(c.client, "app=web")
    assert len(pods) == 4 and {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:2"}
    d = await rolled_out(c)
    assert d["metadata"]["annotations"][deployment.REVISION] == "2"
    old, new = await replicasets(c)
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 4
    assert new["metadata"]["annotations"][deployment.MAX_REPLICAS] == "6"


async def test_rollout_undo_restores_the_previous_image(c: Cluster, kubectl: Kubectl) -> None:
    await c.client.create(interface.DEPLOYMENTS, deploy_body(), namespace="default")
    await kubectl.ok("rollout", "status", "deployment/web", "--timeout=20s")
    await kubectl.ok("set", "image", "deployment/web", "main=busybox:2")
    await kubectl.ok("rollout", "status", "deployment/web", "--timeout=20s")
    history = await kubectl.ok("rollout", "history", "deployment/web")
    assert "1 " in history and "2 " in history

    await kubectl.ok("rollout", "undo", "deployment/web")
    out = await kubectl.ok("rollout", "status", "deployment/web", "--timeout=20s")
    assert 'deployment "web" successfully rolled out' in out
    d = await rolled_out(c)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    pods = await active_pods(c.client, "app=web")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:1"} and len(pods) == 3
    # The first ReplicaSet is reused with the next revision.
    rss = await replicasets(c)
    assert len(rss) == 2
    assert [deployment.revision(rs) for rs in rss] == [2, 3]
    reused = rss[1]
    assert reused["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    assert reused["metadata"]["annotations"][deployment.REVISION_HISTORY] == "1"
    assert d["metadata"]["annotations"][deployment.REVISION] == "3"


async def test_rollout_restart_and_scale(c: Cluster, kubectl: Kubectl) -> None:
    await c.client.create(interface.DEPLOYMENTS, deploy_body(), namespace="default")
    await kubectl.ok("rollout", "status", "deployment/web", "--timeout=20s")
    before = {p["metadata"]["name"] for p in await active_pods(c.client, "app=web")}
    await kubectl.ok("rollout", "restart", "deployment/web")
    await kubectl.ok("rollout", "status", "deployment/web", "--timeout=20s")
    rss = await replicasets(c)
    assert len(rss) == 2 and rss[1]["spec"]["replicas"] == 3 and rss[0]["spec"]["replicas"] == 0
    annotations = rss[1]["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    await eventually(lambda: _names_disjoint(c, before))

    await kubectl.ok("scale", "deployment/web", "--replicas=5")
    out = await kubectl.ok("rollout", "status", "deployment/web", "--timeout=20s")
    assert 'deployment "web" successfully rolled out' in out
    d = await rolled_out(c)
    assert d["status"]["availableReplicas"] == 5 and d["status"]["replicas"] == 5
    assert len(await active_pods(c.client, "app=web")) == 5
    assert (await replicasets(c))[1]["metadata"]["annotations"][deployment.DESIRED_REPLICAS] == "5"


async def _names_disjoint(c: Cluster, before: set[str]) -> bool:
    now = {p["metadata"]["name"] for p in await active_pods(c.client, "app=web")}
    return len(now) == 3 and not (now & before)


async def test_recreate_never_runs_old_and_new_pods_together(c: Cluster) -> None:
    await c.client.create(
        interface.DEPLOYMENTS, deploy_body(strategy={"type": "Recreate"}), namespace="default"
    )
    await rolled_out(c)
    [first] = await replicasets(c)
    old_hash = first["metadata"]["labels"][deployment.HASH_LABEL]
    async with PodStream(c, "app=web") as stream:
        patch = {"spec": {"template": template({"app": "web"}, "busybox:2")}}
        await c.client.patch(interface.DEPLOYMENTS, "web", patch, namespace="default")
        await rolled_out(c)
        await eventually(lambda: len(stream.pods) == 3 and all(is_ready(p) for p in stream.pods.values()))
    for state in stream.states:
        hashes = {p["metadata"]["labels"][deployment.HASH_LABEL] for p in state.values()}
        assert len(hashes) <= 1, f"old and new pods together: {sorted(state)}"
    pods = await active_pods(c.client, "app=web")
    assert old_hash not in {p["metadata"]["labels"][deployment.HASH_LABEL] for p in pods}


async def test_pause_holds_the_rollout_until_resumed(c: Cluster) -> None:
    await c.client.create(interface.DEPLOYMENTS, deploy_body(replicas=2), namespace="default")
    await rolled_out(c)
    await c.client.patch(interface.DEPLOYMENTS, "web", {"spec": {"paused": True}}, namespace="default")
    patch = {"spec": {"template": template({"app": "web"}, "busybox:2")}}
    await c.client.patch(interface.DEPLOYMENTS, "web", patch, namespace="default")

    async def paused() -> Obj | None:
        d = await get(c)
        observed = d["status"].get("observedGeneration") == d["metadata"]["generation"]
        return d if observed and condition(d, "Progressing")["reason"] == "DeploymentPaused" else None

    await eventually(paused)
    assert len(await replicasets(c)) == 1
    await c.client.patch(interface.DEPLOYMENTS, "web", {"spec": {"paused": False}}, namespace="default")
    await rolled_out(c)
    pods = await active_pods(c.client, "app=web")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:2"}


async def test_scaling_a_stalled_rollout_is_proportional_and_it_times_out(
    c: Cluster, kubectl: Kubectl
) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    body = deploy_body(replicas=10, strategy=strategy, progressDeadlineSeconds=2)
    await c.client.create(interface.DEPLOYMENTS, body, namespace="default")
    await rolled_out(c)
    # The new pods never become ready within the test: the rollout stalls at old 8 + new 5.
    stuck = template({"app": "web"}, "busybox:2", **{"fake.kbox.io/start-delay": "60s"})
    await c.client.patch(interface.DEPLOYMENTS, "web", {"spec": {"template": stuck}}, namespace="default")
    assert await eventually(lambda: _sizes(c, [8, 5]))

    await kubectl.ok("scale", "deployment/web", "--replicas=15")
    # 18 allowed (15 + surge 3): old 8 → round(8·18/13) = 11, new 5 → round(5·18/13) = 7.
    assert await eventually(lambda: _sizes(c, [11, 7]))

    async def timed_out() -> Obj | None:
        d = await get(c)
        found = deployment.get_condition(d.get("status") or {}, "Progressing")
        return d if found and found["reason"] == "ProgressDeadlineExceeded" else None

    d = await eventually(timed_out, timeout=10)
    assert condition(d, "Progressing")["status"] == "False"
    err = await kubectl.fails("rollout", "status", "deployment/web", "--timeout=10s")
    assert "exceeded its progress deadline" in err


async def _sizes(c: Cluster, wanted: list[int]) -> bool:
    return [rs["spec"]["replicas"] for rs in await replicasets(c)] == wanted


async def test_controller_restarted_mid_rollout_finishes_it(c: Cluster, kubectl: Kubectl) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    await c.client.create(
        interface.DEPLOYMENTS, deploy_body(replicas=4, strategy=strategy), namespace="default"
    )
    await rolled_out(c)
    slow = template({"app": "web"}, "busybox:2", **{"fake.kbox.io/start-delay": "300ms"})
    await c.client.patch(interface.DEPLOYMENTS, "web", {"spec": {"template": slow}}, namespace="default")

    async def mid_rollout() -> bool:
        rss = await replicasets(c)
        return len(rss) == 2 and rss[1]["spec"]["replicas"] >= 1 and rss[0]["spec"]["replicas"] >= 2

    await eventually(mid_rollout)
    await c.stop("deployment")
    rss = await replicasets(c)
    assert rss[0]["spec"]["replicas"] > 0, "the rollout finished before the controller stopped"
    with contextlib.suppress(AssertionError):
        await eventually(lambda: _sizes(c, [0, 4]), timeout=1.0)
    assert (await replicasets(c))[0]["spec"]["replicas"] > 0, "the rollout went on without a controller"

    c.start(DeploymentController(c.factory, c.client))
    await kubectl.ok("rollout", "status", "deployment/web", "--timeout=30s")
    d = await rolled_out(c)
    assert d["metadata"]["annotations"][deployment.REVISION] == "2"
    pods = await active_pods(c.client, "app=web")
    assert len(pods) == 4 and {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:2"}


def test_fenceposts_and_hash() -> None:
    def d(replicas: int, surge: Any, unavailable: Any) -> Obj:
        rolling = {"maxSurge": surge, "maxUnavailable": unavailable}
        return {
            "spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate", "rollingUpdate": rolling}}
        }

    assert deployment.resolve_fenceposts(d(10, "25%", "25%")) == (3, 2)
    assert deployment.resolve_fenceposts(d(3, 0, 0)) == (0, 1)
    assert deployment.resolve_fenceposts(d(4, 1, "30%")) == (1, 1)
    assert deployment.max_unavailable(d(2, 0, 5)) == 2
    t1 = template({"app": "web"}, "busybox:1")
    t2 = {"spec": t1["spec"], "metadata": {"labels": {"app": "web", deployment.HASH_LABEL: "x"}}}
    assert deployment.compute_hash(t1) == deployment.compute_hash(t2)
    assert deployment.compute_hash(t1) != deployment.compute_hash(t1, 1)
    assert set(deployment.compute_hash(t1)) <= set("bcdfghjklmnpqrstvwxz2456789")
