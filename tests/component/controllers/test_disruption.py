"""PodDisruptionBudgets end to end in the embedded cluster (fake runtime, two nodes) with the real
kubectl: the disruption controller's status (minAvailable and maxUnavailable, counts from the pods'
Deployment), the eviction subresource spending and refusing the budget (429 with kube-apiserver's
words, the evicted pod marked DisruptionTarget), ``kubectl drain`` held back by a budget and
succeeding under one that allows it, and the budget's validation."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kbox.testing.cluster import Cluster, SyncCluster
from tests.support.apiserver import KUBECTL
from tests.support.wait import until

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def c() -> Iterator[SyncCluster]:
    with Cluster(nodes=2, runtime="fake") as cluster:
        yield cluster


@pytest.fixture
def ns(c: SyncCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.node.name.replace("_", "-")[5:40].strip("-")
    c.create_namespace(name)
    yield name
    for node in c.node_names:
        kubectl(c, "uncordon", node)
    c.delete_namespace(name)


def kubectl(c: SyncCluster, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cache = Path(c.state_dir) / "kubectl-cache"
    return subprocess.run(
        [KUBECTL, f"--kubeconfig={c.kubeconfig_path}", f"--cache-dir={cache}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def deployment(name: str, replicas: int, **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            },
            **spec,
        },
    }


def budget(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, **spec},
    }


def status_of(c: SyncCluster, name: str, ns: str) -> Obj:
    pdb = c.get("PodDisruptionBudget", name, ns)
    status: Obj = pdb.get("status") or {}
    return status


def counts(status: Obj) -> tuple[int, int, int, int]:
    return (
        status.get("expectedPods", -1),
        status.get("desiredHealthy", -1),
        status.get("currentHealthy", -1),
        status.get("disruptionsAllowed", -1),
    )


def settles(c: SyncCluster, name: str, ns: str, expected: tuple[int, int, int, int]) -> Obj:
    """The budget's status once its (expected, desired, current, allowed) counts are ``expected``."""

    def check() -> Obj | None:
        status = status_of(c, name, ns)
        return status if counts(status) == expected else None

    result: Obj = until(check, 20)
    return result


def ready_pods(c: SyncCluster, ns: str, app: str) -> list[Obj]:
    pods = kubectl(c, "get", "pods", "-n", ns, "-l", f"app={app}", "-o", "json")
    return [
        p
        for p in json.loads(pods.stdout)["items"]
        if not p["metadata"].get("deletionTimestamp")
        and any(
            cond["type"] == "Ready" and cond["status"] == "True" for cond in p["status"].get("conditions", [])
        )
    ]


def evict(c: SyncCluster, ns: str, pod: str) -> subprocess.CompletedProcess[str]:
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod}})
    path = f"/api/v1/namespaces/{ns}/pods/{pod}/eviction"
    return kubectl(c, "create", "--raw", path, "-f", "-", stdin=body)


def test_status_counts_follow_the_pods_and_their_deployment(c: SyncCluster, ns: str) -> None:
    c.apply(deployment("web", 3), namespace=ns)
    c.apply(budget("web", minAvailable=2), namespace=ns)
    status = settles(c, "web", ns, (3, 2, 3, 1))
    assert status["observedGeneration"] == 1
    condition = next(x for x in status["conditions"] if x["type"] == "DisruptionAllowed")
    assert (condition["status"], condition["reason"]) == ("True", "SufficientPods")
    table = kubectl(c, "get", "pdb", "-n", ns).stdout.split("\n")
    assert table[0].split() == [
        "NAME",
        "MIN",
        "AVAILABLE",
        "MAX",
        "UNAVAILABLE",
        "ALLOWED",
        "DISRUPTIONS",
        "AGE",
    ]
    assert table[1].split()[:4] == ["web", "2", "N/A", "1"]

    # maxUnavailable as a percentage counts the Deployment's replicas, rounding up what may go.
    kubectl(
        c, "patch", "pdb", "web", "-n", ns, "--type=json",
        "-p", '[{"op":"remove","path":"/spec/minAvailable"},{"op":"add","path":"/spec/maxUnavailable","value":"50%"}]',
    )  # fmt: skip
    settles(c, "web", ns, (3, 1, 3, 2))
    kubectl(c, "scale", "deploy", "web", "-n", ns, "--replicas=5")
    status = settles(c, "web", ns, (5, 2, 5, 3))
    assert status["observedGeneration"] == 2


def bare_pod(name: str, app: str, **metadata: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}, **metadata},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }


def test_eviction_spends_the_budget_and_is_refused_when_none_is_left(c: SyncCluster, ns: str) -> None:
    # Pods without a controller: nothing replaces an evicted one behind the test's back. The finalizer
    # keeps the first one visible after its deletion, to show what the eviction wrote on it.
    c.apply(bare_pod("one", "api", finalizers=["example.com/hold"]), namespace=ns)
    c.apply(bare_pod("two", "api"), namespace=ns)
    c.apply(budget("api", minAvailable=1), namespace=ns)
    settles(c, "api", ns, (2, 1, 2, 1))

    assert evict(c, ns, "one").returncode == 0
    evicted = c.get("Pod", "one", ns)
    assert evicted["metadata"].get("deletionTimestamp")
    target = [x for x in evicted["status"]["conditions"] if x["type"] == "DisruptionTarget"]
    assert (target[0]["status"], target[0]["reason"]) == ("True", "EvictionByEvictionAPI")
    status = settles(c, "api", ns, (2, 1, 1, 0))
    condition = next(x for x in status["conditions"] if x["type"] == "DisruptionAllowed")
    assert (condition["status"], condition["reason"]) == ("False", "InsufficientPods")

    refused = evict(c, ns, "two")
    assert refused.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in refused.stderr
    assert kubectl(c, "get", "pod", "two", "-n", ns).returncode == 0, "a refused eviction deletes nothing"

    kubectl(c, "patch", "pod", "one", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    c.apply(bare_pod("three", "api"), namespace=ns)
    settles(c, "api", ns, (2, 1, 2, 1))
    assert evict(c, ns, "two").returncode == 0


def test_drain_is_held_back_by_a_budget_then_evicts_under_one_that_allows_it(c: SyncCluster, ns: str) -> None:
    c.apply(deployment("db", 1), namespace=ns)
    c.apply(budget("db", maxUnavailable=0), namespace=ns)
    settles(c, "db", ns, (1, 1, 1, 0))
    pod = ready_pods(c, ns, "db")[0]
    node = pod["spec"]["nodeName"]

    held = kubectl(c, "drain", node, "--ignore-daemonsets", "--timeout=3s")
    assert held.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in held.stderr
    assert c.get("Node", node)["spec"].get("unschedulable") is True, "drain cordons first"
    assert kubectl(c, "get", "pod", pod["metadata"]["name"], "-n", ns).returncode == 0

    kubectl(c, "patch", "pdb", "db", "-n", ns, "--type=merge", "-p", '{"spec":{"maxUnavailable":1}}')
    settles(c, "db", ns, (1, 0, 1, 1))
    drained = kubectl(c, "drain", node, "--ignore-daemonsets", "--timeout=30s")
    assert drained.returncode == 0, drained.stderr
    assert f"pod/{pod['metadata']['name']} evicted" in drained.stdout
    replacement = until(lambda: ready_pods(c, ns, "db"), 20)
    assert replacement[0]["spec"]["nodeName"] != node, "the cordoned node takes no new pods"


def test_budget_validation_speaks_as_kube_apiserver(c: SyncCluster, ns: str) -> None:
    both = kubectl(
        c, "apply", "-n", ns, "-f", "-", stdin=json.dumps(budget("bad", minAvailable=1, maxUnavailable=1))
    )
    assert both.returncode != 0 and "minAvailable and maxUnavailable cannot be both set" in both.stderr
    over = kubectl(c, "apply", "-n", ns, "-f", "-", stdin=json.dumps(budget("bad", minAvailable="120%")))
    assert 'spec.minAvailable: Invalid value: "120%": must not be greater than 100%' in over.stderr
    negative = kubectl(c, "apply", "-n", ns, "-f", "-", stdin=json.dumps(budget("bad", maxUnavailable=-1)))
    assert "spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0" in negative.stderr


def test_drain_without_eviction_deletes_through_protobuf_delete_options(c: SyncCluster, ns: str) -> None:
    """``--disable-eviction`` deletes pods instead; kubectl's drain library sends the DeleteOptions of
    those DELETEs as protobuf, which the apiserver must read (it ignores budgets, as Kubernetes)."""
    node = c.node_names[0]
    c.apply(
        bare_pod("loose", "loose")
        | {"spec": {"nodeName": node, "containers": [{"name": "main", "image": "busybox"}]}},
        namespace=ns,
    )
    c.apply(budget("loose", maxUnavailable=0), namespace=ns)
    c.wait_for("Pod", "loose", ns, condition="Running", timeout=20)
    drained = kubectl(
        c, "drain", node, "--ignore-daemonsets", "--force", "--disable-eviction", "--pod-selector=app=loose",
        "--timeout=30s",
    )  # fmt: skip
    assert drained.returncode == 0, drained.stderr
    assert "pod/loose deleted" in drained.stdout
    assert kubectl(c, "get", "pod", "loose", "-n", ns).returncode != 0
