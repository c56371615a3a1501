"""The DaemonSet controller in the embedded cluster (fake runtime, three nodes, the real scheduler) with
the real kubectl: one pod per node, pinned by node affinity and carrying the daemon tolerations; a
nodeSelector following node labels; taints (NoSchedule keeps a running pod and blocks new ones,
NoExecute removes it, a toleration lets it in); a rolling update that never has more than maxUnavailable
nodes without an available pod, and a surging one that never has fewer than all; OnDelete; ``kubectl
rollout status / history / undo`` through ControllerRevisions; validation of the update strategy; a
node joining and leaving. The ControllerRevision helpers' pure parts are checked on their own at the end.

Deletion of a DaemonSet's pods when it is deleted is the garbage collector's business, not covered here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kbox.client.interface import NODES, PODS
from kbox.controllers import daemonsetpods, history
from kbox.testing.cluster import Cluster, SyncCluster
from kbox.util import aiotasks
from tests.support.apiserver import KUBECTL
from tests.support.wait import until

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def c() -> Iterator[SyncCluster]:
    with Cluster(nodes=3, runtime="fake") as cluster:
        yield cluster


@pytest.fixture
def ns(c: SyncCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.node.name.replace("_", "-")[5:40].strip("-")
    c.create_namespace(name)
    yield name
    c.delete_namespace(name)


def kubectl(c: SyncCluster, *args: str, stdin: str | None = None, timeout: float = 60) -> Any:
    cache = Path(c.state_dir) / "kubectl-cache"
    return subprocess.run(
        [KUBECTL, f"--kubeconfig={c.kubeconfig_path}", f"--cache-dir={cache}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(c: SyncCluster, *args: str, stdin: str | None = None) -> str:
    result = kubectl(c, *args, stdin=stdin)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}{result.stdout}"
    out: str = result.stdout
    return out


def daemon_set(name: str, image: str = "agent:1", *, pod: Obj | None = None, **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "agent", "image": image}], **(pod or {})},
            },
            **spec,
        },
    }


def pods(c: SyncCluster, ns: str, name: str) -> list[Obj]:
    """The DaemonSet's pods that are not terminating."""
    items: list[Obj] = c.run(c.client.list(PODS, namespace=ns, label_selector=f"app={name}"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def nodes_of(found: list[Obj]) -> list[str]:
    return sorted(p["spec"].get("nodeName", "") for p in found)


def settled(c: SyncCluster, ns: str, name: str, nodes: list[str], timeout: float = 20) -> Obj:
    """Wait until exactly ``nodes`` run an available, up-to-date pod and the status says so."""

    def check() -> Obj | None:
        ds = c.get("DaemonSet", name, ns)
        status = ds.get("status") or {}
        running = pods(c, ns, name)
        done = (
            status.get("observedGeneration") == ds["metadata"]["generation"]
            and status.get("desiredNumberScheduled") == len(nodes)
            and status.get("updatedNumberScheduled", 0) == len(nodes)
            and status.get("numberAvailable", 0) == len(nodes)
            and nodes_of(running) == sorted(nodes)
            and all(p["status"].get("phase") == "Running" for p in running)
        )
        return ds if done else None

    result: Obj = until(check, timeout)
    return result


def _status_is(c: SyncCluster, ns: str, name: str, **wanted: int) -> Obj | None:
    ds = c.get("DaemonSet", name, ns)
    status = ds.get("status") or {}
    return ds if all(status.get(k, 0) == v for k, v in wanted.items()) else None


def set_node(c: SyncCluster, node: str, patch: Obj) -> None:
    c.run(c.client.patch(NODES, node, patch))


class Unavailability:
    """Watches one DaemonSet's pods on the cluster's loop and records, after every event, how many of
    ``nodes`` have no ready, non-terminating pod, and how many pods one node held at most."""

    def __init__(self, c: SyncCluster, ns: str, name: str, nodes: list[str]) -> None:
        self.c, self.ns, self.name, self.nodes = c, ns, name, nodes
        self.peak_unavailable = 0
        self.peak_per_node = 0
        self.events = 0
        self.started = False
        self._task: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        self._task = aiotasks.create_guarded_task(self._watch(), name="test/ds-watch")

    async def _stop(self) -> None:
        if self._task is not None:
            await aiotasks.stop([self._task], title="test")

    async def _watch(self) -> None:
        selector = f"app={self.name}"
        listed = await self.c.client.list(PODS, namespace=self.ns, label_selector=selector)
        current: dict[str, Obj] = {p["metadata"]["name"]: p for p in listed["items"]}
        self.started = True
        version = listed["metadata"]["resourceVersion"]
        async for event in self.c.client.watch(
            PODS, namespace=self.ns, label_selector=selector, resource_version=version
        ):
            key = event.object["metadata"]["name"]
            if event.type == "DELETED":
                current.pop(key, None)
            elif event.type in ("ADDED", "MODIFIED"):
                current[key] = event.object
            else:
                continue
            self.events += 1
            live = [p for p in current.values() if not p["metadata"].get("deletionTimestamp")]
            ready_nodes = {daemonsetpods.target_node(p) for p in live if _ready(p)}
            self.peak_unavailable = max(self.peak_unavailable, len(set(self.nodes) - ready_nodes))
            for node in self.nodes:
                held = sum(1 for p in live if daemonsetpods.target_node(p) == node)
                self.peak_per_node = max(self.peak_per_node, held)

    def __enter__(self) -> Unavailability:
        self.c.run(self._start())
        until(lambda: self.started, 10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.c.run(self._stop())


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(x.get("type") == "Ready" and x.get("status") == "True" for x in conditions)


# -- placement ---------------------------------------------------------------------------------------


def test_one_pod_per_node_pinned_and_tolerating(c: SyncCluster, ns: str) -> None:
    c.apply(daemon_set("agent"), namespace=ns)
    ds = settled(c, ns, "agent", c.node_names)
    status = ds["status"]
    assert (status["currentNumberScheduled"], status["numberMisscheduled"], status["numberReady"]) == (
        3,
        0,
        3,
    )
    assert "numberUnavailable" not in status
    revisions = c.run(c.client.list(history.CONTROLLERREVISIONS, namespace=ns))["items"]
    assert len(revisions) == 1 and revisions[0]["revision"] == 1
    hash_text = revisions[0]["metadata"]["labels"]["controller-revision-hash"]
    assert revisions[0]["metadata"]["name"] == f"agent-{hash_text}"
    for pod in pods(c, ns, "agent"):
        spec = pod["spec"]
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        field = {"key": "metadata.name", "operator": "In", "values": [spec["nodeName"]]}
        assert terms["nodeSelectorTerms"] == [{"matchFields": [field]}]
        keys = {(t.get("key"), t.get("effect")) for t in spec["tolerations"]}
        assert {
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        } <= keys
        assert ("node.kubernetes.io/network-unavailable", "NoSchedule") not in keys  # not hostNetwork
        assert all("tolerationSeconds" not in t for t in spec["tolerations"])
        assert pod["metadata"]["labels"]["controller-revision-hash"] == hash_text
        assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
        owner = pod["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("DaemonSet", "agent", True)

    table = ok(c, "get", "controllerrevisions", "-n", ns)
    assert table.split("\n")[0].split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert table.split("\n")[1].split()[:3] == [f"agent-{hash_text}", "daemonset.apps/agent", "1"]
    assert ok(c, "get", "ds", "agent", "-n", ns).split("\n")[1].split()[1:6] == ["3"] * 5


def test_cordoned_node_keeps_its_daemon_pod(c: SyncCluster, ns: str) -> None:
    node = c.node_names[1]
    ok(c, "cordon", node)
    try:
        c.apply(daemon_set("cordoned"), namespace=ns)
        settled(c, ns, "cordoned", c.node_names)  # daemon pods tolerate unschedulable nodes
    finally:
        ok(c, "uncordon", node)


def test_node_selector_follows_node_labels(c: SyncCluster, ns: str) -> None:
    first, second, _ = c.node_names
    c.apply(daemon_set("edge", pod={"nodeSelector": {"role": "edge"}}), namespace=ns)
    try:
        ds = settled(c, ns, "edge", [])
        assert ds["status"]["desiredNumberScheduled"] == 0
        set_node(c, first, {"metadata": {"labels": {"role": "edge"}}})
        set_node(c, second, {"metadata": {"labels": {"role": "edge"}}})
        settled(c, ns, "edge", [first, second])
        set_node(c, first, {"metadata": {"labels": {"role": None}}})
        settled(c, ns, "edge", [second])
    finally:
        for node in (first, second):
            set_node(c, node, {"metadata": {"labels": {"role": None}}})


def test_taints_and_tolerations(c: SyncCluster, ns: str) -> None:
    node = c.node_names[2]
    others = c.node_names[:2]
    c.apply(daemon_set("plain"), namespace=ns)
    settled(c, ns, "plain", c.node_names)
    before = {p["spec"]["nodeName"]: p["metadata"]["uid"] for p in pods(c, ns, "plain")}
    try:
        ok(c, "taint", "node", node, "dedicated=db:NoSchedule")
        # A new DaemonSet does not go there; the running pod stays (only NoExecute evicts).
        c.apply(daemon_set("late"), namespace=ns)
        late = settled(c, ns, "late", others)
        assert late["status"]["desiredNumberScheduled"] == 2
        tolerant = daemon_set(
            "tolerant", pod={"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db"}]}
        )
        c.apply(tolerant, namespace=ns)
        settled(c, ns, "tolerant", c.node_names)
        # The pod that stays counts as misscheduled: the node no longer qualifies for a new one.
        plain = until(lambda: _status_is(c, ns, "plain", desiredNumberScheduled=2, numberMisscheduled=1), 10)
        assert plain["status"]["currentNumberScheduled"] == 2
        assert {p["spec"]["nodeName"]: p["metadata"]["uid"] for p in pods(c, ns, "plain")} == before

        ok(c, "taint", "node", node, "dedicated=db:NoSchedule-", "evict=now:NoExecute")
        plain = settled(c, ns, "plain", others)
        assert plain["status"]["desiredNumberScheduled"] == 2
        settled(c, ns, "late", others)
    finally:
        set_node(c, node, {"spec": {"taints": None}})
    settled(c, ns, "plain", c.node_names)
    settled(c, ns, "late", c.node_names)


# -- updates -----------------------------------------------------------------------------------------


def test_rolling_update_within_max_unavailable_and_rollout_with_kubectl(c: SyncCluster, ns: str) -> None:
    manifest = json.dumps(daemon_set("logs", "logs:1"))
    ok(c, "apply", "-n", ns, "-f", "-", stdin=manifest)
    assert "successfully rolled out" in ok(c, "rollout", "status", "ds/logs", "-n", ns, "--timeout=30s")
    settled(c, ns, "logs", c.node_names)

    with Unavailability(c, ns, "logs", c.node_names) as watch:
        ok(c, "set", "image", "ds/logs", "agent=logs:2", "-n", ns)
        out = ok(c, "rollout", "status", "ds/logs", "-n", ns, "--timeout=30s")
        images = {p["spec"]["containers"][0]["image"] for p in pods(c, ns, "logs")}
        assert images == {"logs:2"}, out  # rollout status returned only once every pod was replaced
        settled(c, ns, "logs", c.node_names)
    assert 'daemon set "logs" successfully rolled out' in out
    assert watch.peak_unavailable == 1  # maxUnavailable 1: one node at a time
    assert watch.peak_per_node == 1

    listing = ok(c, "rollout", "history", "ds/logs", "-n", ns)
    assert [line.split()[0] for line in listing.strip().split("\n")[2:]] == ["1", "2"], listing
    detail = ok(c, "rollout", "history", "ds/logs", "-n", ns, "--revision=1")
    assert "logs:1" in detail and "logs:2" not in detail

    assert "rolled back" in ok(c, "rollout", "undo", "ds/logs", "-n", ns)
    ok(c, "rollout", "status", "ds/logs", "-n", ns, "--timeout=30s")
    settled(c, ns, "logs", c.node_names)
    assert {p["spec"]["containers"][0]["image"] for p in pods(c, ns, "logs")} == {"logs:1"}
    revisions = c.run(c.client.list(history.CONTROLLERREVISIONS, namespace=ns))["items"]
    numbers = {
        r["data"]["spec"]["template"]["spec"]["containers"][0]["image"]: r["revision"] for r in revisions
    }
    assert numbers == {"logs:1": 3, "logs:2": 2}  # the old revision reused, renumbered
    listing = ok(c, "rollout", "history", "ds/logs", "-n", ns)
    assert [line.split()[0] for line in listing.strip().split("\n")[2:]] == ["2", "3"], listing
    # kubectl compares the revision's bytes with the DaemonSet's template to see it is current.
    skipped = ok(c, "rollout", "undo", "ds/logs", "-n", ns, "--to-revision=3")
    assert "skipped rollback (current template already matches revision 3)" in skipped


def test_surge_keeps_every_node_available(c: SyncCluster, ns: str) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "34%", "maxUnavailable": 0}}
    c.apply(daemon_set("surge", "s:1", updateStrategy=strategy), namespace=ns)
    settled(c, ns, "surge", c.node_names)
    with Unavailability(c, ns, "surge", c.node_names) as watch:
        c.apply(daemon_set("surge", "s:2", updateStrategy=strategy), namespace=ns)
        settled(c, ns, "surge", c.node_names)
    assert {p["spec"]["containers"][0]["image"] for p in pods(c, ns, "surge")} == {"s:2"}
    assert watch.peak_unavailable == 0
    assert watch.peak_per_node == 2  # 34% of 3 nodes rounds up to 1 node with two pods at a time


def test_revision_history_limit_keeps_the_newest_old_revisions(c: SyncCluster, ns: str) -> None:
    fast = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}}
    for version in range(1, 5):
        body = daemon_set("short", f"v:{version}", updateStrategy=fast, revisionHistoryLimit=1)
        c.apply(body, namespace=ns)
        settled(c, ns, "short", c.node_names)

    def two_left() -> list[Obj] | None:
        found = c.run(c.client.list(history.CONTROLLERREVISIONS, namespace=ns))["items"]
        return found if len(found) == 2 else None

    left = history.sort_revisions(until(two_left, 10))
    images = [history.template_of(r)["spec"]["containers"][0]["image"] for r in left]
    assert images == ["v:3", "v:4"] and [r["revision"] for r in left] == [3, 4]


def test_on_delete_replaces_only_deleted_pods(c: SyncCluster, ns: str) -> None:
    strategy = {"type": "OnDelete"}
    c.apply(daemon_set("manual", "m:1", updateStrategy=strategy), namespace=ns)
    settled(c, ns, "manual", c.node_names)
    c.apply(daemon_set("manual", "m:2", updateStrategy=strategy), namespace=ns)

    def observed() -> Obj | None:
        ds = c.get("DaemonSet", "manual", ns)
        done = (ds.get("status") or {}).get("observedGeneration") == ds["metadata"]["generation"]
        return ds if done else None

    ds = until(observed, 10)
    assert "updatedNumberScheduled" not in ds["status"]
    victim = pods(c, ns, "manual")[0]
    c.run(c.client.delete(PODS, victim["metadata"]["name"], namespace=ns))

    def replaced() -> list[str] | None:
        images = sorted(p["spec"]["containers"][0]["image"] for p in pods(c, ns, "manual"))
        return images if images == ["m:1", "m:1", "m:2"] else None

    until(replaced, 15)
    assert c.get("DaemonSet", "manual", ns)["status"].get("updatedNumberScheduled") == 1
    result = kubectl(c, "rollout", "status", "ds/manual", "-n", ns)
    assert result.returncode != 0 and "only available for RollingUpdate strategy type" in result.stderr


def test_update_strategy_defaults_and_validation(c: SyncCluster, ns: str) -> None:
    made = c.apply(daemon_set("checked"), namespace=ns)
    assert made["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert made["spec"]["revisionHistoryLimit"] == 10
    assert made["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"

    def refused(strategy: Obj) -> str:
        body = json.dumps(daemon_set("bad", updateStrategy=strategy))
        result = kubectl(c, "apply", "-n", ns, "-f", "-", stdin=body)
        assert result.returncode != 0, result.stdout
        err: str = result.stderr
        return err

    both_zero = refused({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})
    assert "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0" in both_zero
    assert "may not be 0 when `maxSurge` is 0" in both_zero
    assert "Unsupported value" in refused({"type": "Sometimes"})
    assert "must not be greater than 100%" in refused(
        {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "120%"}}
    )
    assert "may not be set when maxUnavailable is non-zero" in refused(
        {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}
    )
    # The template generation is the server's: a client cannot set it, a template change bumps it.
    changed = daemon_set("checked", "other:1")
    changed["metadata"]["annotations"] = {"deprecated.daemonset.template.generation": "7"}
    updated = c.apply(changed, namespace=ns)
    assert updated["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"


def test_min_ready_seconds_and_a_failed_pod_replaced(c: SyncCluster, ns: str) -> None:
    c.apply(daemon_set("slow", minReadySeconds=2), namespace=ns)
    ready = until(lambda: _status_is(c, ns, "slow", numberReady=3), 10)
    assert ready["status"].get("numberAvailable", 0) < 3  # ready, but not for 2 seconds yet
    assert ready["status"]["numberUnavailable"] == 3 - ready["status"].get("numberAvailable", 0)
    settled(c, ns, "slow", c.node_names)  # then available, without any other event

    victim = pods(c, ns, "slow")[0]
    name = victim["metadata"]["name"]
    c.run(c.client.patch(PODS, name, {"status": {"phase": "Failed"}}, namespace=ns, subresource="status"))

    def replaced() -> list[Obj] | None:
        now = pods(c, ns, "slow")
        return now if len(now) == 3 and name not in {p["metadata"]["name"] for p in now} else None

    until(replaced, 10)
    events = ok(c, "get", "events", "-n", ns, "--field-selector", "reason=FailedDaemonPod")
    assert f"Found failed daemon pod {ns}/{name} on node {victim['spec']['nodeName']}" in events


# -- nodes joining and leaving (last: it changes the module's cluster) --------------------------------


def test_a_joining_node_gets_a_pod_and_a_leaving_one_loses_it(c: SyncCluster, ns: str) -> None:
    c.apply(daemon_set("everywhere"), namespace=ns)
    settled(c, ns, "everywhere", c.node_names)
    extra = f"{c.name}-extra"
    c.run(c.cluster.start_kubelet(extra))
    try:
        settled(c, ns, "everywhere", [*c.node_names, extra])
    finally:
        c.run(c.cluster.stop_kubelet(extra))
        with contextlib.suppress(Exception):
            c.run(c.client.delete(NODES, extra))
    settled(c, ns, "everywhere", c.node_names)

    def stranded_pod_gone() -> bool:
        # Not merely terminating: with no kubelet to confirm, the controller deletes it at once.
        every = c.run(c.client.list(PODS, namespace=ns, label_selector="app=everywhere"))["items"]
        return len(every) == len(c.node_names)

    until(stranded_pod_gone, 10)


# -- the history helpers -----------------------------------------------------------------------------


def test_hash_is_stable_and_ignores_key_order_and_the_hash_label() -> None:
    a = {"metadata": {"labels": {"x": "1", "y": "2"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    b = {"spec": {"containers": [{"image": "i", "name": "c"}]}, "metadata": {"labels": {"y": "2", "x": "1"}}}
    labelled = {**a, "metadata": {"labels": {"x": "1", "y": "2", "controller-revision-hash": "zzz"}}}
    assert history.hash_template(a) == history.hash_template(b) == history.hash_template(labelled)
    assert history.hash_template(a, 1) != history.hash_template(a)
    assert set(history.hash_template(a)) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert len(history.revision_name("x" * 300, "abc")) == 253


def _revision(name: str, number: int, hash_text: str = "") -> Obj:
    labels = {history.REVISION_HASH_LABEL: hash_text or name}
    return {"metadata": {"name": name, "labels": labels}, "revision": number}


def test_truncation_keeps_live_revisions() -> None:
    revisions = [_revision(f"r{n}", n) for n in range(1, 6)]
    # StatefulSet rule: the limit counts revisions that are not live.
    doomed = history.revisions_to_delete(revisions, limit=2, live={"r1", "r5"})
    assert [r["metadata"]["name"] for r in doomed] == ["r2"]
    # DaemonSet rule: the limit counts all the (old) revisions passed, live ones are never deleted.
    doomed = history.revisions_to_delete(revisions, limit=2, live={"r1", "r5"}, count_live=True)
    assert [r["metadata"]["name"] for r in doomed] == ["r2", "r3", "r4"]
    assert history.revisions_to_delete(revisions, limit=10, live=set()) == []
    assert history.max_revision(revisions) == 5
    template = {"spec": {"containers": []}}
    assert history.template_of({"data": history.template_patch({"spec": {"template": template}})}) == template


# -- the decisions, on their own ---------------------------------------------------------------------


def _node(name: str) -> Obj:
    return {"metadata": {"name": name, "labels": {}}, "spec": {}}


def _pod(name: str, node: str, hash_text: str, *, ready: bool = True) -> Obj:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {
        "metadata": {"name": name, "labels": {"controller-revision-hash": hash_text}},
        "spec": {"nodeName": node},
        "status": {"phase": "Running", "conditions": conditions},
    }


def test_rolling_step_rounds_percentages_up_and_replaces_unavailable_pods_first() -> None:
    nodes = [_node(f"n{i}") for i in range(5)]
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "30%", "maxSurge": 0}}
    ds = daemon_set("x", updateStrategy=rolling)
    ds["metadata"].update(namespace="default", uid="u", annotations={})
    pods_now = [_pod(f"p{i}", f"n{i}", "old", ready=i != 4) for i in range(5)]
    deletes, creates = daemonsetpods.rolling_update_plan(ds, nodes, pods_now, "new")
    # 30% of 5 rounds up to 2; the not-ready old pod goes besides, without counting against them.
    assert sorted(p["metadata"]["name"] for p in deletes) == ["p0", "p1", "p4"] and creates == []
    # A new pod that is not available yet uses up one of the two.
    pods_now[0] = _pod("p0", "n0", "new", ready=False)
    deletes, _ = daemonsetpods.rolling_update_plan(ds, nodes, pods_now, "new")
    assert sorted(p["metadata"]["name"] for p in deletes) == ["p1", "p4"]


def test_daemon_tolerations_replace_a_matching_one_and_cover_host_network() -> None:
    spec: Obj = {
        "hostNetwork": True,
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 5,
            },
            {"key": "mine", "operator": "Exists"},
        ],
    }
    daemonsetpods.add_daemon_tolerations(spec)
    not_ready = [t for t in spec["tolerations"] if t["key"] == "node.kubernetes.io/not-ready"]
    assert not_ready == [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]
    keys = [t["key"] for t in spec["tolerations"]]
    assert "mine" in keys and "node.kubernetes.io/network-unavailable" in keys and len(keys) == 8
