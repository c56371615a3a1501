"""The node lifecycle and taint eviction controllers in an embedded two-node cluster (fake runtime, a
1.5 s grace period, 1 s default tolerations): a node whose kubelet stops turns Unknown and is tainted, its
Deployment pods are evicted (event, DisruptionTarget) and replaced on the other node, tolerations are
honoured (forever: kept; tolerationSeconds: deleted when it runs out), and recovery removes the taints;
with every node down nothing is evicted (full-disruption mode) until one comes back; a kubelet
reporting NotReady gets the not-ready taints; ``kubectl cordon``/``uncordon`` add and remove the
unschedulable taint; admission adds the default tolerations. The rate limits and zone states are
covered through their functions. One cluster serves the module; each test leaves every node running."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kbox import nodes
from kbox.client.interface import EVENTS, NODES, PODS
from kbox.controllers import meta, nodelifecycle, taintmanager
from kbox.testing import Cluster, SyncCluster
from tests.support.apiserver import Kubectl
from tests.support.wait import until

Obj = dict[str, Any]
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


@pytest.fixture(scope="module")
def c() -> Iterator[SyncCluster]:
    with Cluster(
        nodes=2,
        lease_interval=0.3,
        node_monitor_grace_period=1.5,
        default_not_ready_toleration_seconds=1,
        default_unreachable_toleration_seconds=1,
        node_eviction_rate=10.0,  # the token bucket is covered on its own below
    ) as cluster:
        yield cluster


def node(c: SyncCluster, name: str) -> Obj:
    return c.get("Node", name)


def taints(c: SyncCluster, name: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node(c, name)["spec"].get("taints") or []}


def ready(obj: Obj) -> str:
    return nodelifecycle.ready_status(obj)


def pods(c: SyncCluster, **selectors: str) -> list[Obj]:
    field = ",".join(f"{k}={v}" for k, v in selectors.items()) or None
    listing = c.run(c.client.list(PODS, namespace="default", field_selector=field))
    items: list[Obj] = listing["items"]
    return items


def bare_pod(name: str, node_name: str, tolerations: list[Obj] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "main", "image": "busybox"}],
            **({"tolerations": tolerations} if tolerations is not None else {}),
        },
    }


def recovered(c: SyncCluster, name: str) -> bool:
    """Ready again, and none of the controller's taints left."""
    managed = {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute"), (NOT_READY, "NoSchedule")}
    managed.add((NOT_READY, "NoExecute"))
    return ready(node(c, name)) == "True" and not taints(c, name) & managed


def test_admission_adds_the_default_tolerations(c: SyncCluster) -> None:
    plain = c.apply(bare_pod("plain", c.node_names[0]))
    assert {
        (t["key"], t["effect"], t["tolerationSeconds"], t["operator"]) for t in plain["spec"]["tolerations"]
    } == {(NOT_READY, "NoExecute", 1, "Exists"), (UNREACHABLE, "NoExecute", 1, "Exists")}
    everything = c.apply(bare_pod("everything", c.node_names[0], [{"operator": "Exists"}]))
    assert everything["spec"]["tolerations"] == [{"operator": "Exists"}]
    own = c.apply(
        bare_pod("own", c.node_names[0], [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}])
    )
    assert [t["key"] for t in own["spec"]["tolerations"]] == [UNREACHABLE, NOT_READY]
    for name in ("plain", "everything", "own"):
        c.delete("Pod", name, grace_period_seconds=0)


def test_stopped_kubelet_node_turns_unknown_and_its_pods_move(c: SyncCluster) -> None:
    c.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox"}]},
                },
            },
        }
    )
    running = until(lambda: [p for p in pods(c) if _running(p) and p["metadata"]["name"].startswith("web-")])
    victim = running[0]["spec"]["nodeName"]
    other = next(n for n in c.node_names if n != victim)
    forever = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]
    short = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]
    c.apply(bare_pod("forever", victim, forever))
    c.apply(bare_pod("short", victim, short))
    until(lambda: all(_running(c.get("Pod", n)) for n in ("forever", "short")))
    on_victim = {p["metadata"]["name"] for p in pods(c, **{"spec.nodeName": victim})}

    c.node(victim).stop()
    until(lambda: ready(node(c, victim)) == "Unknown", timeout=20)
    down = node(c, victim)
    by_type = {cond["type"]: cond for cond in down["status"]["conditions"]}
    for kind in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
        assert by_type[kind]["status"] == "Unknown"
        assert by_type[kind]["reason"] == "NodeStatusUnknown"
        assert by_type[kind]["message"] == "Kubelet stopped posting node status."
    until(lambda: {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")} <= taints(c, victim))
    assert all(t.get("timeAdded") for t in node(c, victim)["spec"]["taints"])
    until(lambda: [e for e in _events(c, "NodeNotReady") if e["involvedObject"]["kind"] == "Node"])
    registered = {e["message"] for e in _events(c, "RegisteredNode")}
    assert f"Node {victim} event: Registered Node {victim} in Controller" in registered
    # The pods kept on the node are marked not Ready, as the kubelet can no longer say so.
    until(lambda: _condition(c.get("Pod", "forever"), "Ready") == "False")
    assert f"Node {victim} status is now: NodeNotReady" in {e["message"] for e in _events(c, "NodeNotReady")}

    # The Deployment's pods there (1 s default toleration) are evicted and replaced on the other node.
    def moved() -> bool:
        live = [p for p in pods(c) if p["metadata"]["name"].startswith("web-")]
        fresh = [p for p in live if not p["metadata"].get("deletionTimestamp")]
        return len(fresh) == 2 and all(p["spec"]["nodeName"] == other and _running(p) for p in fresh)

    until(moved, timeout=20)
    evicted = [
        p
        for p in pods(c, **{"spec.nodeName": victim})
        if p["metadata"]["name"].startswith("web-") and p["metadata"].get("deletionTimestamp")
    ]
    assert evicted, "the evicted pods stay Terminating while their node is unreachable"
    for pod in evicted:
        assert _condition(pod, "DisruptionTarget") == "True"
        target = next(x for x in pod["status"]["conditions"] if x["type"] == "DisruptionTarget")
        assert target["reason"] == "DeletionByTaintManager"
    name = f"default/{evicted[0]['metadata']['name']}"
    until(
        lambda: any(
            e["message"] == f"Marking for deletion Pod {name}" for e in _events(c, "TaintManagerEviction")
        )
    )
    # tolerationSeconds runs out later; a toleration without it keeps the pod.
    deleted = until(lambda: c.get("Pod", "short")["metadata"].get("deletionTimestamp"), timeout=20)
    taint = next(
        t for t in node(c, victim)["spec"]["taints"] if t["key"] == UNREACHABLE and t["effect"] == "NoExecute"
    )
    assert (meta.epoch(deleted) or 0) - (meta.epoch(taint["timeAdded"]) or 0) >= 2  # not before it ran out
    assert not c.get("Pod", "forever")["metadata"].get("deletionTimestamp")

    c.node(victim).start()
    until(lambda: recovered(c, victim), timeout=20)
    # The kubelet back on the node finishes the deletions; the tolerating pod runs on.
    until(
        lambda: (
            {p["metadata"]["name"] for p in pods(c, **{"spec.nodeName": victim})} & on_victim == {"forever"}
        )
    )
    until(lambda: _condition(c.get("Pod", "forever"), "Ready") == "True")
    c.delete("Deployment", "web")
    c.delete("Pod", "forever", grace_period_seconds=0)
    until(lambda: not pods(c))


def test_no_evictions_when_every_node_is_down(c: SyncCluster) -> None:
    first, second = c.node_names
    long = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 600}]
    c.apply(bare_pod("a", first, long))
    c.apply(bare_pod("b", second, long))
    until(lambda: all(_running(c.get("Pod", n)) for n in ("a", "b")))
    c.node(second).stop()
    until(lambda: (UNREACHABLE, "NoExecute") in taints(c, second), timeout=20)
    c.node(first).stop()
    # Full disruption: the NoExecute taint is taken back and none is added; the NoSchedule ones stay.
    until(lambda: ready(node(c, first)) == "Unknown", timeout=20)
    until(lambda: (UNREACHABLE, "NoExecute") not in taints(c, second), timeout=20)
    assert (UNREACHABLE, "NoSchedule") in taints(c, second)
    until(lambda: (UNREACHABLE, "NoSchedule") in taints(c, first))
    assert (UNREACHABLE, "NoExecute") not in taints(c, first)
    assert all(not c.get("Pod", n)["metadata"].get("deletionTimestamp") for n in ("a", "b"))
    # One node back: normal mode again, so the node still down gets its NoExecute taint back.
    c.node(first).start()
    until(lambda: recovered(c, first), timeout=20)
    until(lambda: (UNREACHABLE, "NoExecute") in taints(c, second), timeout=20)
    c.node(second).start()
    until(lambda: recovered(c, second), timeout=20)
    for name in ("a", "b"):
        c.delete("Pod", name, grace_period_seconds=0)


def test_kubelet_reporting_not_ready_gets_the_not_ready_taints(c: SyncCluster) -> None:
    name = c.node_names[1]

    def set_ready(status: str) -> None:
        current = node(c, name)
        updated = copy.deepcopy(current)
        for cond in updated["status"]["conditions"]:
            if cond["type"] == "Ready":
                cond.update(status=status, reason="KubeletNotReady", message="runtime is down")
        c.run(c.client.update(NODES, updated, subresource="status"))

    set_ready("False")
    until(lambda: {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")} <= taints(c, name), timeout=20)
    set_ready("True")
    until(lambda: recovered(c, name), timeout=20)


def test_kubectl_cordon_and_uncordon(c: SyncCluster, tmp_path: Path) -> None:
    real = Kubectl(c.kubeconfig_path, tmp_path / "kubectl-cache")

    def kubectl(*args: str) -> str:
        return asyncio.run(real.ok(*args))

    name = c.node_names[1]
    assert "cordoned" in kubectl("cordon", name)
    assert node(c, name)["spec"]["unschedulable"] is True
    until(lambda: ("node.kubernetes.io/unschedulable", "NoSchedule") in taints(c, name))
    assert "SchedulingDisabled" in kubectl("get", "node", name)
    assert "uncordoned" in kubectl("uncordon", name)
    until(lambda: ("node.kubernetes.io/unschedulable", "NoSchedule") not in taints(c, name))
    assert "unschedulable" not in node(c, name)["spec"]


def test_kbox_stop_stops_the_pods_of_a_stopped_node(c: SyncCluster) -> None:
    """What ``kbox stop`` runs for a node the node manager holds stopped: its pods' containers stop
    (nothing else would: it has no kubelet), and a kubelet started there later runs them again."""
    name = c.node_names[1]
    c.apply(bare_pod("sleeper", name, [{"operator": "Exists"}]))
    until(lambda: _running(c.get("Pod", "sleeper")))
    c.node(name).stop()
    runtime = c.cluster.runtime
    assert runtime is not None
    c.run(nodes.stop_containers(runtime, name))
    sandboxes = c.run(runtime.list_sandboxes(name))
    assert sandboxes and not any(s.ready for s in sandboxes)
    assert {x.state for s in sandboxes for x in c.run(runtime.list_containers(s.id))} == {"exited"}
    c.node(name).start()

    def restarted() -> bool:
        pod = c.get("Pod", "sleeper")
        return _running(pod) and pod["status"]["containerStatuses"][0]["restartCount"] >= 1

    until(restarted, timeout=20)
    c.delete("Pod", "sleeper", grace_period_seconds=0)
    until(lambda: recovered(c, name), timeout=20)


def test_zone_states_and_rates() -> None:
    assert nodelifecycle.zone_state(["True", "True"], 0.55) == nodelifecycle.NORMAL
    assert nodelifecycle.zone_state(["Unknown", "False"], 0.55) == nodelifecycle.FULL_DISRUPTION
    assert nodelifecycle.zone_state(["Unknown", "False", "True"], 0.55) == nodelifecycle.NORMAL  # only 2
    assert nodelifecycle.zone_state(["Unknown"] * 3 + ["True"] * 2, 0.55) == nodelifecycle.PARTIAL_DISRUPTION
    assert nodelifecycle.zone_state(["Unknown"] * 3 + ["True"] * 3, 0.55) == nodelifecycle.NORMAL

    settings = nodelifecycle.NodeLifecycleSettings()
    assert nodelifecycle.eviction_rate(settings, nodelifecycle.NORMAL, 3) == 0.1
    assert nodelifecycle.eviction_rate(settings, nodelifecycle.FULL_DISRUPTION, 3) == 0.1  # others not
    assert nodelifecycle.eviction_rate(settings, nodelifecycle.PARTIAL_DISRUPTION, 50) == 0.0
    assert nodelifecycle.eviction_rate(settings, nodelifecycle.PARTIAL_DISRUPTION, 51) == 0.01

    class Clock:
        now = 0.0

        def time(self) -> float:
            return self.now

    clock = Clock()
    bucket = nodelifecycle.TokenBucket(0.1, clock)
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(10.0)
    clock.now = 4.0
    assert bucket.take() == pytest.approx(6.0)
    clock.now = 10.0
    assert bucket.take() == 0.0
    bucket.set_rate(0.0)
    assert bucket.take() is None


def test_toleration_seconds() -> None:
    taint = {"key": UNREACHABLE, "effect": "NoExecute"}
    other = {"key": "example.com/x", "effect": "NoExecute"}
    assert taintmanager.toleration_seconds([], [taint]) == 0.0
    assert taintmanager.toleration_seconds([{"operator": "Exists"}], [taint, other]) is None
    tolerations = [
        {"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 30},
        {"key": "example.com/x", "operator": "Exists", "tolerationSeconds": 5},
    ]
    assert taintmanager.toleration_seconds(tolerations, [taint, other]) == 5.0
    assert taintmanager.toleration_seconds(tolerations[:1], [taint, other]) == 0.0
    negative = [{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": -3}]
    assert taintmanager.toleration_seconds(negative, [taint]) == 0.0


def test_settings_from_the_environment() -> None:
    settings = nodelifecycle.NodeLifecycleSettings.from_env(
        {
            "KBOX_NODE_MONITOR_GRACE_PERIOD": "5",
            "KBOX_DEFAULT_UNREACHABLE_TOLERATION_SECONDS": "30",
            "KBOX_NODE_EVICTION_RATE": "bad",
        }
    )
    assert settings.node_monitor_grace_period == 5.0
    assert settings.default_unreachable_toleration_seconds == 30
    assert settings.node_eviction_rate == 0.1


def _running(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and _condition(pod, "Ready") == "True"


def _condition(obj: Obj, kind: str) -> str | None:
    found = nodelifecycle.condition(obj, kind)
    return str(found.get("status")) if found else None


def _events(c: SyncCluster, reason: str) -> list[Obj]:
    listing = c.run(c.client.list(EVENTS, namespace="default"))
    return [e for e in listing["items"] if e.get("reason") == reason]
