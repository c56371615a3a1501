"""``kbox cordon``, ``uncordon`` and ``drain`` on the fake-runtime profile's one node, against kubectl.

Covers: cordon/uncordon and their "already" lines; drain's refusals (unmanaged, emptyDir and DaemonSet
pods) worded byte for byte as kubectl words them, and the warnings when all are overridden (a dry run
that leaves the node schedulable and the control plane's mirror pods alone); a PodDisruptionBudget
refusing an eviction (the 429 retry line, then ``--timeout``); a pod a finalizer keeps (the timeout
while waiting for it to go, byte for byte as kubectl); a drain that evicts the pods ``--pod-selector``
picks and waits until they are gone; ``--disable-eviction`` deleting a pod no controller manages, with
``--force``; a missing node.
"""

from __future__ import annotations

import json

import pytest

from tests.component.cli.conftest import PROFILE, KboxCluster, assert_same_as_kubectl, one_line_error

NODE = PROFILE  # the fake profile's node is named after the profile


def pod(name: str, ns: str) -> dict:
    spec = {"containers": [{"name": "main", "image": "busybox"}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def workload(kind: str, name: str, ns: str, replicas: int = 1, *, empty_dir: bool = False) -> dict:
    labels = {"app": name}
    spec: dict = {"containers": [{"name": "m", "image": "x"}]}
    if empty_dir:
        spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    obj: dict = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }
    if kind == "Deployment":
        obj["spec"]["replicas"] = replicas
    return obj


def pods_on_node(cluster: KboxCluster, ns: str) -> set[str]:
    listing = json.loads(cluster.kubectl_ok("get", "pods", "-n", ns, "-o", "json"))
    return {p["metadata"]["name"] for p in listing["items"] if p["spec"].get("nodeName") == NODE}


@pytest.fixture(scope="module")
def ns(cluster: KboxCluster) -> str:
    name = cluster.namespace("drain")
    ready = [
        workload("Deployment", "web", name, 2),
        workload("Deployment", "guarded", name),
        workload("Deployment", "cache", name, empty_dir=True),
        workload("DaemonSet", "agent", name),
        pod("bare", name),
        {**pod("held", name), "metadata": {"name": "held", "namespace": name, "labels": {"app": "held"}}},
    ]
    cluster.ok("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": ready}))
    cluster.kubectl_ok("create", "pdb", "guarded", "--selector=app=guarded", "--min-available=1", "-n", name)
    cluster.kubectl_ok("wait", "pods", "--all", "--for=condition=Ready", "-n", name, "--timeout=30s")
    return name


async def test_cordon_and_refusals(cluster: KboxCluster, ns: str) -> None:
    assert cluster.ok("cordon", NODE).strip() == f"node/{NODE} cordoned"
    assert cluster.ok("cordon", NODE).strip() == f"node/{NODE} already cordoned"
    node = json.loads(cluster.kubectl_ok("get", "node", NODE, "-o", "json"))
    assert node["spec"]["unschedulable"] is True
    assert cluster.ok("uncordon", NODE).strip() == f"node/{NODE} uncordoned"
    assert cluster.ok("uncordon", NODE).strip() == f"node/{NODE} already uncordoned"

    # One kind of refusal at a time: kubectl orders several by Go map iteration (random).
    pods = pods_on_node(cluster, ns)
    cache = next(name for name in pods if name.startswith("cache-"))
    agent = next(name for name in pods if name.startswith("agent-"))
    for flags, refusal in (
        (
            ("--ignore-daemonsets", "--delete-emptydir-data"),
            f"cannot delete cannot delete Pods that declare no controller (use --force to override): {ns}/bare, {ns}/held",
        ),
        (
            ("--ignore-daemonsets", "--force"),
            f"cannot delete Pods with local storage (use --delete-emptydir-data to override): {ns}/{cache}",
        ),
        (
            ("--force", "--delete-emptydir-data"),
            f"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {ns}/{agent}",
        ),
    ):
        result = await assert_same_as_kubectl(cluster, "drain", NODE, "--dry-run=client", *flags)
        assert result.returncode == 1 and result.stderr.splitlines()[-1] == refusal

    flags = ("--force", "--delete-emptydir-data", "--ignore-daemonsets")
    result = cluster.kbox("drain", NODE, "--dry-run=client", *flags)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"Warning: deleting Pods that declare no controller: {ns}/bare, {ns}/held; "
        f"deleting Pods with local storage: "
        f"{ns}/{cache}; ignoring DaemonSet-managed Pods: {ns}/{agent}"
    ]
    evicted = {line for line in result.stdout.splitlines() if line.startswith("evicting pod")}
    assert {f"evicting pod {ns}/bare (dry run)", f"evicting pod {ns}/{cache} (dry run)"} <= evicted
    assert f"evicting pod {ns}/{agent} (dry run)" not in evicted
    assert not any("kube-system/" in line for line in evicted)  # the control plane's mirror pods stay
    assert result.stdout.splitlines()[-1] == f"node/{NODE} drained (dry run)"
    assert "unschedulable" not in json.loads(cluster.kubectl_ok("get", "node", NODE, "-o", "json"))["spec"]

    line = one_line_error(cluster.kbox("drain", "ghost"))
    assert line == 'Error from server (NotFound): nodes "ghost" not found'


async def test_drain_evicts_respecting_budgets(cluster: KboxCluster, ns: str) -> None:
    guarded = sorted(name for name in pods_on_node(cluster, ns) if name.startswith("guarded-"))
    result = cluster.kbox("drain", NODE, "--pod-selector=app=guarded", "--timeout=1s")
    assert result.returncode == 1
    assert f"evicting pod {ns}/{guarded[0]}" in result.stdout
    assert (
        f'error when evicting pods/"{guarded[0]}" -n "{ns}" (will retry after 5s): '
        "Cannot evict pod as it would violate the pod's disruption budget." in result.stderr
    )
    assert result.stderr.strip().splitlines()[-1] == (
        f'error when evicting pods/"{guarded[0]}" -n "{ns}": global timeout reached: 1s'
    )
    assert guarded[0] in pods_on_node(cluster, ns)

    # A pod a finalizer keeps: evicted, it never goes, and drain says which stage timed out.
    patch = json.dumps({"metadata": {"finalizers": ["example.com/hold"]}})
    cluster.kubectl_ok("patch", "pod", "held", "-n", ns, "-p", patch)
    result = await assert_same_as_kubectl(
        cluster, "drain", NODE, "--pod-selector=app=held", "--force", "--timeout=1s"
    )
    assert result.stderr.splitlines()[-1] == (
        f'error when waiting for pod "held" in namespace "{ns}" to terminate: context deadline exceeded'
    )
    unhold = '[{"op": "remove", "path": "/metadata/finalizers"}]'
    cluster.kubectl_ok("patch", "pod", "held", "-n", ns, "--type=json", "-p", unhold)

    web = sorted(name for name in pods_on_node(cluster, ns) if name.startswith("web-"))
    out = cluster.ok("drain", NODE, "--pod-selector=app=web", "--grace-period=0", "--timeout=30s")
    lines = out.splitlines()
    assert lines[0] == f"node/{NODE} already cordoned"
    assert sorted(lines[1:3]) == [f"evicting pod {ns}/{name}" for name in web]
    assert sorted(lines[3:5]) == [f"pod/{name} evicted" for name in web]
    assert lines[5:] == [f"node/{NODE} drained"]
    left = pods_on_node(cluster, ns)
    assert not any(name in left for name in web)  # gone: replacements cannot land on a cordoned node

    out = cluster.ok("drain", NODE, "--pod-selector=!app", "--force", "--disable-eviction")
    assert out.splitlines()[-2:] == ["pod/bare deleted", f"node/{NODE} drained"]
    assert "bare" not in pods_on_node(cluster, ns)
    assert cluster.ok("uncordon", NODE).strip() == f"node/{NODE} uncordoned"
