"""StatefulSets in the embedded cluster (fake runtime, the real scheduler, kubelet and controllers, kbox's
default StorageClass): stable names, labels and DNS identity; OrderedReady creation in order and scale
down in reverse, one pod at a time (read back from the watch history, so the order is exact); Parallel;
claims from volumeClaimTemplates kept across pod deletion and removed as the retention policy says;
RollingUpdate in reverse ordinal order with a partition, OnDelete; status and revisions; events;
``kubectl rollout status``; and the StatefulSet validation. Pod readiness in the fake runtime is
immediate unless a test delays it (``fake.kbox.io/start-delay``)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
import pytest

from kbox.addons.dns import records
from kbox.api.errors import StatusError
from kbox.client.interface import Resource
from kbox.testing.cluster import Cluster, SyncCluster
from tests.support.apiserver import KUBECTL
from tests.support.wait import until

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods")
STS = Resource("apps", "v1", "statefulsets")
PVCS = Resource("", "v1", "persistentvolumeclaims")
REVISIONS = Resource("apps", "v1", "controllerrevisions")
EVENTS = Resource("", "v1", "events")
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices")


@pytest.fixture(scope="module")
def c() -> Iterator[SyncCluster]:
    with Cluster(nodes=1, runtime="fake") as cluster:
        yield cluster


@pytest.fixture
def ns(c: SyncCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.node.name.replace("_", "-")[5:45].strip("-")
    c.create_namespace(name)
    yield name
    c.delete_namespace(name)


def statefulset(name: str, replicas: int, *, claims: bool = True, grace: int = 0, **spec: Any) -> Obj:
    annotations = spec.pop("annotations", None)
    template: Obj = {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "containers": [{"name": "main", "image": "busybox:1"}],
            "terminationGracePeriodSeconds": grace,
        },
    }
    if annotations:
        template["metadata"]["annotations"] = annotations
    body: Obj = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": template,
            **spec,
        },
    }
    if claims:
        body["spec"]["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
            }
        ]
    return body


def settled(c: SyncCluster, ns: str, name: str, replicas: int, *, timeout: float = 20) -> Obj:
    """Wait until the set reports ``replicas`` ready pods, all at one revision, for its generation."""

    def done(sts: Obj) -> bool:
        status = sts.get("status") or {}
        return bool(
            status.get("observedGeneration") == sts["metadata"]["generation"]
            and status.get("replicas") == replicas
            and status.get("readyReplicas", 0) == replicas
            and status.get("updatedReplicas", 0) == replicas
            and status.get("currentRevision") == status.get("updateRevision")
        )

    result = c.wait_for("statefulsets", name, ns, predicate=done, timeout=timeout)
    assert result is not None
    return result


def pod_names(c: SyncCluster, ns: str, *, live: bool = True) -> list[str]:
    items = c.run(c.client.list(PODS, namespace=ns))["items"]
    return sorted(
        p["metadata"]["name"] for p in items if not (live and p["metadata"].get("deletionTimestamp"))
    )


def revision_now(c: SyncCluster, ns: str) -> str:
    return str(c.run(c.client.list(PODS, namespace=ns))["metadata"]["resourceVersion"])


def history(c: SyncCluster, ns: str, since: str) -> list[tuple[str, Obj]]:
    """Every pod event in ``ns`` after revision ``since``, in commit order: a watch from ``since``
    replays them at once; it is read until it has nothing more to say."""

    async def collect() -> list[tuple[str, Obj]]:
        seen: list[tuple[str, Obj]] = []
        stream = aiter(c.client.watch(PODS, namespace=ns, resource_version=since))
        while True:
            try:
                event = await asyncio.wait_for(anext(stream), 0.5)
            except (TimeoutError, StopAsyncIteration):
                return seen
            if event.type not in ("BOOKMARK", "ERROR"):
                seen.append((event.type, event.object))

    return c.run(collect())


def is_ready(pod: Obj) -> bool:
    return any(
        cond.get("type") == "Ready" and cond.get("status") == "True"
        for cond in (pod.get("status") or {}).get("conditions") or []
    )


def events_of(c: SyncCluster, ns: str, name: str) -> list[str]:
    items = c.run(c.client.list(EVENTS, namespace=ns))["items"]
    return [e["message"] for e in items if e["involvedObject"].get("name") == name]


def kubectl(c: SyncCluster, *args: str) -> subprocess.CompletedProcess[str]:
    cache = Path(c.state_dir) / "kubectl-cache"
    return subprocess.run(
        [KUBECTL, f"--kubeconfig={c.kubeconfig_path}", f"--cache-dir={cache}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ordered_ready_creates_in_order_with_identity_and_claims(c: SyncCluster, ns: str) -> None:
    since = revision_now(c, ns)
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    c.apply(headless, namespace=ns)
    # Each pod becomes ready a moment after it starts, so an early successor would be visible.
    c.apply(statefulset("web", 3, annotations={"fake.kbox.io/start-delay": "200ms"}), namespace=ns)
    sts = settled(c, ns, "web", 3)

    added = []
    latest: dict[str, Obj] = {}
    for kind, pod in history(c, ns, since):
        name = pod["metadata"]["name"]
        if kind == "ADDED":
            added.append(name)
            ordinal = int(name.rsplit("-", 1)[1])
            if ordinal:
                before = latest.get(f"web-{ordinal - 1}")
                assert before is not None and is_ready(before), (
                    f"{name} was created before web-{ordinal - 1} was ready"
                )
        latest[name] = pod
    assert added == ["web-0", "web-1", "web-2"]

    status = sts["status"]
    assert status["currentRevision"].startswith("web-") and status["collisionCount"] == 0
    assert status["availableReplicas"] == 3 and status["currentReplicas"] == 3
    for ordinal in range(3):
        pod = c.get("pods", f"web-{ordinal}", ns)
        labels = pod["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == f"web-{ordinal}"
        assert labels["apps.kubernetes.io/pod-index"] == str(ordinal)
        assert labels["controller-revision-hash"] == status["updateRevision"]
        assert pod["spec"]["hostname"] == f"web-{ordinal}" and pod["spec"]["subdomain"] == "web"
        assert {"name": "data", "persistentVolumeClaim": {"claimName": f"data-web-{ordinal}"}} in pod["spec"][
            "volumes"
        ]
        claim = c.get("persistentvolumeclaims", f"data-web-{ordinal}", ns)
        assert claim["status"]["phase"] == "Bound" and claim["spec"]["storageClassName"] == "standard"
        assert claim["metadata"]["labels"] == {"app": "web"}
        assert not claim["metadata"].get("ownerReferences")  # Retain, Retain
    revision = c.get("controllerrevisions", status["updateRevision"], ns)
    assert revision["revision"] == 1 and revision["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    # The governing headless Service's endpoints carry the pods' hostnames: what the cluster DNS
    # answers web-0.web.<namespace>.svc.cluster.local from.
    until(lambda: len(_hostnames(c, ns, "web")) == 3, timeout=10)
    assert _hostnames(c, ns, "web") == ["web-0", "web-1", "web-2"]
    until(lambda: _resolve(c, ns, f"web-1.web.{ns}.svc.cluster.local"), timeout=10)
    assert _resolve(c, ns, f"web-1.web.{ns}.svc.cluster.local") == [
        c.get("pods", "web-1", ns)["status"]["podIP"]
    ]
    messages = events_of(c, ns, "web")
    assert "create Pod web-0 in StatefulSet web successful" in messages
    assert "create Claim data-web-0 Pod web-0 in StatefulSet web success" in messages


def _resolve(c: SyncCluster, ns: str, name: str) -> list[str]:
    """A records for ``name`` as the DNS addon's zone answers them from the cluster's Services and
    EndpointSlices."""
    slices = c.run(c.client.list(SLICES, namespace=ns))["items"]
    zone = records.ClusterZone(
        "cluster.local",
        service=lambda namespace, service: c.get("services", service, namespace),
        slices=lambda namespace, service: [
            s for s in slices if s["metadata"].get("labels", {}).get("kubernetes.io/service-name") == service
        ],
        namespace_has_services=lambda namespace: True,
    )
    answer = zone.resolve(dns.name.from_text(name), dns.rdatatype.A)
    return sorted(rdata.address for rrset in answer.answer for rdata in rrset)


def _hostnames(c: SyncCluster, ns: str, service: str) -> list[str]:
    endpoints = c.get("endpoints", service, ns)
    return sorted(
        address.get("hostname", "")
        for subset in endpoints.get("subsets") or []
        for address in subset.get("addresses") or []
    )


def test_scale_down_goes_in_reverse_one_at_a_time_and_keeps_claims(c: SyncCluster, ns: str) -> None:
    c.apply(statefulset("db", 3, grace=1), namespace=ns)
    settled(c, ns, "db", 3)
    since = revision_now(c, ns)
    c.run(c.client.patch(STS, "db", {"spec": {"replicas": 1}}, namespace=ns, subresource="scale"))
    settled(c, ns, "db", 1)
    until(lambda: pod_names(c, ns, live=False) == ["db-0"], timeout=10)

    steps: list[str] = []
    for kind, pod in history(c, ns, since):
        name = pod["metadata"]["name"]
        step = f"gone:{name}" if kind == "DELETED" else f"terminating:{name}"
        if (kind == "DELETED" or pod["metadata"].get("deletionTimestamp")) and step not in steps:
            steps.append(step)
    assert steps == ["terminating:db-2", "gone:db-2", "terminating:db-1", "gone:db-1"]
    claims = sorted(p["metadata"]["name"] for p in c.run(c.client.list(PVCS, namespace=ns))["items"])
    assert claims == ["data-db-0", "data-db-1", "data-db-2"]  # whenScaled: Retain
    assert "delete Pod db-2 in StatefulSet db successful" in events_of(c, ns, "db")


def test_parallel_creates_every_pod_at_once(c: SyncCluster, ns: str) -> None:
    since = revision_now(c, ns)
    body = statefulset(
        "par", 3, claims=False, podManagementPolicy="Parallel", annotations={"fake.kbox.io/start-delay": "1s"}
    )
    c.apply(body, namespace=ns)
    settled(c, ns, "par", 3)
    events = history(c, ns, since)
    first_ready = next(i for i, (_, pod) in enumerate(events) if is_ready(pod))
    created = {pod["metadata"]["name"] for kind, pod in events[:first_ready] if kind == "ADDED"}
    assert created == {"par-0", "par-1", "par-2"}


def test_pod_deleted_comes_back_with_its_name_and_claim(c: SyncCluster, ns: str) -> None:
    c.apply(statefulset("keep", 2), namespace=ns)
    settled(c, ns, "keep", 2)
    claim_uid = c.get("persistentvolumeclaims", "data-keep-0", ns)["metadata"]["uid"]
    old_uid = c.get("pods", "keep-0", ns)["metadata"]["uid"]
    c.delete("pods", "keep-0", ns)
    pod = c.wait_for(
        "pods", "keep-0", ns, predicate=lambda p: p["metadata"]["uid"] != old_uid and is_ready(p), timeout=15
    )
    assert pod is not None
    assert c.get("persistentvolumeclaims", "data-keep-0", ns)["metadata"]["uid"] == claim_uid
    settled(c, ns, "keep", 2)


def test_rolling_update_in_reverse_order_holds_at_the_partition(c: SyncCluster, ns: str) -> None:
    c.apply(statefulset("roll", 3, claims=False), namespace=ns)
    first = settled(c, ns, "roll", 3)["status"]["currentRevision"]
    since = revision_now(c, ns)
    c.run(
        c.client.patch(
            STS,
            "roll",
            {
                "spec": {
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
                    "template": {"metadata": {"annotations": {"version": "2"}}},
                }
            },
            namespace=ns,
        )
    )

    def partitioned(sts: Obj) -> bool:
        status = sts.get("status") or {}
        return bool(
            status.get("observedGeneration") == sts["metadata"]["generation"]
            and status.get("updatedReplicas") == 2
            and status.get("readyReplicas") == 3
        )

    sts = c.wait_for("statefulsets", "roll", ns, predicate=partitioned, timeout=20)
    assert sts is not None
    status = sts["status"]
    second = status["updateRevision"]
    assert status["currentRevision"] == first != second and status["currentReplicas"] == 1
    revisions = {
        p: c.get("pods", p, ns)["metadata"]["labels"]["controller-revision-hash"]
        for p in ("roll-0", "roll-1", "roll-2")
    }
    assert revisions == {"roll-0": first, "roll-1": second, "roll-2": second}
    deletions = []
    for kind, pod in history(c, ns, since):
        name = pod["metadata"]["name"]
        if (kind == "DELETED" or pod["metadata"].get("deletionTimestamp")) and name not in deletions:
            deletions.append(name)
    assert deletions == ["roll-2", "roll-1"]
    out = kubectl(c, "rollout", "status", "statefulset/roll", "-n", ns, "--watch=false")
    assert "partitioned roll out complete: 2 new pods have been updated..." in out.stdout, out

    c.run(
        c.client.patch(
            STS, "roll", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}, namespace=ns
        )
    )
    done = settled(c, ns, "roll", 3)
    assert done["status"]["currentRevision"] == second
    out = kubectl(c, "rollout", "status", "statefulset/roll", "-n", ns, "--timeout=20s")
    assert (
        out.returncode == 0
        # kubectl words any RollingUpdate with a partition (0 by default) this way, as on Kubernetes.
        and "partitioned roll out complete: 3 new pods have been updated..." in out.stdout
    ), out
    undo = kubectl(c, "rollout", "undo", "statefulset/roll", "-n", ns)
    assert undo.returncode == 0, undo
    back = settled(c, ns, "roll", 3)
    # The first template again: its revision is reused, renumbered as the newest.
    assert back["status"]["updateRevision"] == first == back["status"]["currentRevision"]
    assert c.get("controllerrevisions", first, ns)["revision"] == 3
    history_out = kubectl(c, "rollout", "history", "statefulset/roll", "-n", ns)
    assert history_out.returncode == 0, history_out
    assert [line.split()[0] for line in history_out.stdout.splitlines()[2:] if line.strip()] == ["2", "3"]


def test_on_delete_replaces_only_deleted_pods(c: SyncCluster, ns: str) -> None:
    c.apply(statefulset("od", 2, claims=False, updateStrategy={"type": "OnDelete"}), namespace=ns)
    old = settled(c, ns, "od", 2)["status"]["currentRevision"]
    c.run(
        c.client.patch(
            STS, "od", {"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}}, namespace=ns
        )
    )
    sts = c.wait_for(
        "statefulsets",
        "od",
        ns,
        predicate=lambda s: (s.get("status") or {}).get("observedGeneration") == 2,
        timeout=10,
    )
    assert sts is not None and sts["status"]["updateRevision"] != old
    assert c.get("pods", "od-1", ns)["metadata"]["labels"]["controller-revision-hash"] == old
    c.delete("pods", "od-1", ns)
    new = sts["status"]["updateRevision"]
    pod = c.wait_for(
        "pods",
        "od-1",
        ns,
        predicate=lambda p: p["metadata"]["labels"].get("controller-revision-hash") == new and is_ready(p),
        timeout=15,
    )
    assert pod is not None
    assert c.get("pods", "od-0", ns)["metadata"]["labels"]["controller-revision-hash"] == old


def test_retention_policy_delete_removes_claims_when_scaled_and_deleted(c: SyncCluster, ns: str) -> None:
    policy = {"whenDeleted": "Delete", "whenScaled": "Delete"}
    c.apply(statefulset("tmp", 2, persistentVolumeClaimRetentionPolicy=policy), namespace=ns)
    settled(c, ns, "tmp", 2)
    sts_uid = c.get("statefulsets", "tmp", ns)["metadata"]["uid"]
    claim = c.get("persistentvolumeclaims", "data-tmp-0", ns)
    assert [r["uid"] for r in claim["metadata"]["ownerReferences"]] == [sts_uid]
    volume = claim["spec"]["volumeName"]

    c.run(c.client.patch(STS, "tmp", {"spec": {"replicas": 1}}, namespace=ns))
    c.wait_for("persistentvolumeclaims", "data-tmp-1", ns, condition="delete", timeout=15)
    settled(c, ns, "tmp", 1)

    c.delete("statefulsets", "tmp", ns)
    c.wait_for("persistentvolumeclaims", "data-tmp-0", ns, condition="delete", timeout=15)
    # The claim's volume (reclaim policy Delete) goes with it.
    c.wait_for("persistentvolumes", volume, condition="delete", timeout=15)


def test_claim_of_a_set_with_retain_outlives_the_set(c: SyncCluster, ns: str) -> None:
    c.apply(statefulset("ret", 1), namespace=ns)
    settled(c, ns, "ret", 1)
    c.delete("statefulsets", "ret", ns)
    c.wait_for("pods", "ret-0", ns, condition="delete", timeout=15)
    assert c.get("persistentvolumeclaims", "data-ret-0", ns)["status"]["phase"] == "Bound"


def test_validation(c: SyncCluster, ns: str) -> None:
    bad = statefulset("bad", 1, podManagementPolicy="Sometimes")
    bad["spec"]["volumeClaimTemplates"][0]["spec"]["resources"] = {}
    with pytest.raises(StatusError) as caught:
        c.apply(bad, namespace=ns)
    message = caught.value.message
    assert 'spec.podManagementPolicy: Unsupported value: "Sometimes"' in message
    assert "spec.volumeClaimTemplates[0].spec.resources[storage]: Required value" in message

    c.apply(statefulset("fixed", 1, claims=False), namespace=ns)
    with pytest.raises(StatusError) as caught:
        c.run(c.client.patch(STS, "fixed", {"spec": {"serviceName": "other"}}, namespace=ns))
    assert (
        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template'"
        in caught.value.message
    )


def test_orphaned_pods_and_revisions_are_adopted_by_a_new_set(c: SyncCluster, ns: str) -> None:
    c.apply(statefulset("again", 2, claims=False), namespace=ns)
    revision = settled(c, ns, "again", 2)["status"]["currentRevision"]
    uids = {p: c.get("pods", p, ns)["metadata"]["uid"] for p in ("again-0", "again-1")}
    c.delete("statefulsets", "again", ns, propagation_policy="Orphan")
    c.wait_for("statefulsets", "again", ns, condition="delete", timeout=10)
    until(lambda: not c.get("pods", "again-0", ns)["metadata"].get("ownerReferences"), timeout=10)

    c.apply(statefulset("again", 2, claims=False), namespace=ns)
    sts = settled(c, ns, "again", 2)
    assert sts["status"]["currentRevision"] == revision  # the orphaned revision, adopted
    owner = sts["metadata"]["uid"]
    for name, uid in uids.items():
        pod = c.get("pods", name, ns)
        assert pod["metadata"]["uid"] == uid  # the same pods, not new ones
        assert [r["uid"] for r in pod["metadata"]["ownerReferences"]] == [owner]
    assert c.get("controllerrevisions", revision, ns)["metadata"]["ownerReferences"][0]["uid"] == owner


def test_claim_owner_references_follow_the_retention_policy() -> None:
    from kbox.controllers import statefulsetpods as sp

    def sts(when_deleted: str, when_scaled: str) -> Obj:
        policy = {"whenDeleted": when_deleted, "whenScaled": when_scaled}
        return {
            "metadata": {"name": "s", "uid": "set"},
            "spec": {"persistentVolumeClaimRetentionPolicy": policy},
        }

    pod = {"metadata": {"name": "s-1", "uid": "pod"}}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "other"}
    claim = {"metadata": {"ownerReferences": [other]}}

    def owners(policy: Obj, *, condemned: bool, current: Obj = claim) -> list[str] | None:
        refs = sp.claim_owner_refs(current, policy, pod, condemned=condemned)
        return None if refs is None else [r["uid"] for r in refs]

    assert owners(sts("Retain", "Retain"), condemned=True) is None  # nothing to change
    assert owners(sts("Delete", "Retain"), condemned=False) == ["other", "set"]
    assert owners(sts("Delete", "Retain"), condemned=True) == ["other", "set"]
    assert owners(sts("Retain", "Delete"), condemned=False) is None
    assert owners(sts("Retain", "Delete"), condemned=True) == ["other", "pod"]
    # Both Delete: a pod scaled away becomes the only owner among the two (else the claim would outlive it).
    assert owners(sts("Delete", "Delete"), condemned=True) == ["other", "pod"]
    owned = {
        "metadata": {
            "ownerReferences": [other, sp.owner_reference(sts("Delete", "Delete"), controller=False)]
        }
    }
    assert owners(sts("Retain", "Retain"), condemned=False, current=owned) == ["other"]  # Retain drops it


def test_ordinals_start_numbers_the_pods_from_it(c: SyncCluster, ns: str) -> None:
    c.apply(statefulset("num", 2, claims=False, ordinals={"start": 3}), namespace=ns)
    settled(c, ns, "num", 2)
    assert pod_names(c, ns) == ["num-3", "num-4"]
    assert c.get("pods", "num-3", ns)["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "3"
    c.run(c.client.patch(STS, "num", {"spec": {"ordinals": {"start": 0}}}, namespace=ns))
    settled(c, ns, "num", 2)
    until(lambda: pod_names(c, ns, live=False) == ["num-0", "num-1"], timeout=15)
