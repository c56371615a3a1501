"""PersistentVolumes, claims and StorageClasses in the embedded cluster (fake runtime, real scheduler,
kubelet and controllers) with the real kubectl: the default ``standard`` class and DefaultStorageClass
admission; dynamic provisioning of a hostPath volume under the profile's state directory and its
reclaim (Delete removes volume and folder, Retain leaves it Released); binding a static volume (the
smallest that fits, access modes and class respected); WaitForFirstConsumer; the pvc-protection
finalizer holding a claim a pod uses; the scheduler's and kubelet's words for a pod whose claim is
missing or unbound; validation; and ``kubectl get`` columns."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.client.interface import Resource
from kbox.testing.cluster import Cluster, SyncCluster
from tests.support.apiserver import KUBECTL
from tests.support.wait import until

Obj = dict[str, Any]
PVS = Resource("", "v1", "persistentvolumes", namespaced=False)
PVCS = Resource("", "v1", "persistentvolumeclaims")
CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False)
EVENTS = Resource("", "v1", "events")


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


def claim(name: str, size: str = "1Mi", modes: tuple[str, ...] = ("ReadWriteOnce",), **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, **spec},
    }


def volume(
    name: str, size: str, path: Path, *, klass: str, modes: tuple[str, ...] = ("ReadWriteOnce",)
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": list(modes),
            "storageClassName": klass,
            "hostPath": {"path": str(path)},
        },
    }


def storage_class(name: str, **fields: Any) -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": "kbox.io/hostpath",
        **fields,
    }


def pod(name: str, claim_name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}],
            "terminationGracePeriodSeconds": 0,
        },
    }


def phase(obj: Obj | None) -> str | None:
    return None if obj is None else (obj.get("status") or {}).get("phase")


def bound(c: SyncCluster, ns: str, name: str) -> Obj:
    result = c.wait_for(
        "persistentvolumeclaims", name, ns, predicate=lambda o: phase(o) == "Bound", timeout=10
    )
    assert result is not None
    return result


def events(c: SyncCluster, ns: str, name: str) -> list[tuple[str, str]]:
    items = c.run(c.client.list(EVENTS, namespace=ns))["items"]
    return [(e["reason"], e["message"]) for e in items if e["involvedObject"].get("name") == name]


def kubectl(c: SyncCluster, *args: str) -> subprocess.CompletedProcess[str]:
    cache = Path(c.state_dir) / "kubectl-cache"
    return subprocess.run(
        [KUBECTL, f"--kubeconfig={c.kubeconfig_path}", f"--cache-dir={cache}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_default_class_provisions_a_host_folder_and_delete_reclaims_it(c: SyncCluster, ns: str) -> None:
    standard = c.get("storageclasses", "standard")
    assert standard["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert (standard["provisioner"], standard["reclaimPolicy"], standard["volumeBindingMode"]) == (
        "kbox.io/hostpath",
        "Delete",
        "Immediate",
    )
    c.apply(claim("data", "5Mi"), namespace=ns)
    pvc = bound(c, ns, "data")
    assert pvc["spec"]["storageClassName"] == "standard"  # DefaultStorageClass admission
    assert pvc["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == "kbox.io/hostpath"
    assert pvc["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert pvc["status"]["capacity"] == {"storage": "5Mi"} and pvc["status"]["accessModes"] == [
        "ReadWriteOnce"
    ]
    name = pvc["spec"]["volumeName"]
    assert name == f"pvc-{pvc['metadata']['uid']}"
    pv = c.wait_for("persistentvolumes", name, predicate=lambda o: phase(o) == "Bound", timeout=10)
    assert pv is not None
    folder = Path(pv["spec"]["hostPath"]["path"])
    assert folder == Path(c.state_dir) / "volumes" / name and folder.is_dir()
    assert (
        pv["spec"]["claimRef"]["name"] == "data" and pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    )
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "kbox.io/hostpath"
    reasons = [reason for reason, _ in events(c, ns, "data")]
    assert "Provisioning" in reasons and (
        "ProvisioningSucceeded",
        f"Successfully provisioned volume {name}",
    ) in events(c, ns, "data")

    (folder / "kept").write_text("x")
    c.delete("persistentvolumeclaims", "data", ns)
    c.wait_for("persistentvolumes", name, condition="delete", timeout=10)
    until(lambda: not folder.exists(), timeout=5)


def test_retain_leaves_the_volume_released_with_its_data(c: SyncCluster, ns: str) -> None:
    c.apply(storage_class("keep", reclaimPolicy="Retain"))
    try:
        c.apply(claim("data", storageClassName="keep"), namespace=ns)
        name = bound(c, ns, "data")["spec"]["volumeName"]
        folder = Path(c.get("persistentvolumes", name)["spec"]["hostPath"]["path"])
        (folder / "file").write_text("kept")
        c.delete("persistentvolumeclaims", "data", ns)
        pv = c.wait_for("persistentvolumes", name, predicate=lambda o: phase(o) == "Released", timeout=10)
        assert pv is not None and (folder / "file").read_text() == "kept"
        out = kubectl(c, "get", "pv", name)
        assert out.returncode == 0, out.stderr
        header, row = out.stdout.splitlines()
        assert header.split() == [
            "NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM", "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS", "REASON", "AGE",
        ]  # fmt: skip
        assert row.split()[:7] == [name, "1Mi", "RWO", "Retain", "Released", f"{ns}/data", "keep"]
    finally:
        c.delete("storageclasses", "keep")
        for item in c.run(c.client.list(PVS))["items"]:
            if item["spec"].get("storageClassName") == "keep":
                c.delete("persistentvolumes", item["metadata"]["name"], missing_ok=True)


def test_static_volume_smallest_fit_is_bound(c: SyncCluster, ns: str, tmp_path: Path) -> None:
    klass = f"manual-{ns}"[:60]
    c.apply(volume(f"{ns}-big", "1Gi", tmp_path / "big", klass=klass))
    c.apply(volume(f"{ns}-small", "100Mi", tmp_path / "small", klass=klass))
    c.apply(volume(f"{ns}-rox", "10Mi", tmp_path / "rox", klass=klass, modes=("ReadOnlyMany",)))
    try:
        for name in ("big", "small", "rox"):
            c.wait_for(
                "persistentvolumes", f"{ns}-{name}", predicate=lambda o: phase(o) == "Available", timeout=10
            )
        c.apply(claim("want", "50Mi", storageClassName=klass), namespace=ns)
        pvc = bound(c, ns, "want")
        assert pvc["spec"]["volumeName"] == f"{ns}-small"
        assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
        assert pvc["status"]["capacity"] == {"storage": "100Mi"}
        assert c.get("persistentvolumes", f"{ns}-small")["status"]["phase"] == "Bound"
        assert c.get("persistentvolumes", f"{ns}-big")["status"]["phase"] == "Available"

        out = kubectl(c, "get", "pvc", "want", "-n", ns)
        assert out.returncode == 0, out.stderr
        header, row = out.stdout.splitlines()
        assert header.split() == [
            "NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"
        ]  # fmt: skip
        assert row.split()[:7] == ["want", "Bound", f"{ns}-small", "100Mi", "RWO", klass, "<unset>"]

        # A static volume keeps the default reclaim policy, Retain.
        c.delete("persistentvolumeclaims", "want", ns)
        pv = c.wait_for(
            "persistentvolumes", f"{ns}-small", predicate=lambda o: phase(o) == "Released", timeout=10
        )
        assert pv is not None and (pv["spec"]["persistentVolumeReclaimPolicy"]) == "Retain"
    finally:
        for name in ("big", "small", "rox"):
            c.delete("persistentvolumes", f"{ns}-{name}", missing_ok=True)


def test_no_class_and_no_volume_stays_pending(c: SyncCluster, ns: str) -> None:
    c.apply(claim("none", storageClassName=""), namespace=ns)
    until(lambda: events(c, ns, "none"), timeout=10)
    assert c.get("persistentvolumeclaims", "none", ns)["status"]["phase"] == "Pending"
    assert (
        "FailedBinding",
        "no persistent volumes available for this claim and no storage class is set",
    ) in events(c, ns, "none")


def test_wait_for_first_consumer_provisions_once_a_pod_is_scheduled(c: SyncCluster, ns: str) -> None:
    c.apply(storage_class("later", volumeBindingMode="WaitForFirstConsumer"))
    try:
        c.apply(claim("late", storageClassName="later"), namespace=ns)
        until(
            lambda: (
                ("WaitForFirstConsumer", "waiting for first consumer to be created before binding")
                in events(c, ns, "late")
            ),
            timeout=10,
        )
        assert c.get("persistentvolumeclaims", "late", ns)["status"]["phase"] == "Pending"
        c.apply(pod("user", "late"), namespace=ns)
        pvc = bound(c, ns, "late")
        assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == c.node_names[0]
        c.wait_for("pods", "user", ns, condition="Ready", timeout=10)
    finally:
        c.delete("storageclasses", "later")


def test_claim_in_use_is_protected_until_its_pod_goes(c: SyncCluster, ns: str) -> None:
    c.apply(claim("used"), namespace=ns)
    bound(c, ns, "used")
    c.apply(pod("user", "used"), namespace=ns)
    c.wait_for("pods", "user", ns, condition="Ready", timeout=10)
    c.delete("persistentvolumeclaims", "used", ns)
    pvc = c.get("persistentvolumeclaims", "used", ns)
    assert pvc["metadata"].get("deletionTimestamp") and pvc["metadata"]["finalizers"] == [
        "kubernetes.io/pvc-protection"
    ]
    out = kubectl(c, "get", "pvc", "used", "-n", ns, "--no-headers")
    assert out.stdout.split()[1] == "Terminating", out
    c.delete("pods", "user", ns)
    c.wait_for("persistentvolumeclaims", "used", ns, condition="delete", timeout=10)


def test_pod_with_a_missing_or_unbound_claim_waits_with_upstream_words(c: SyncCluster, ns: str) -> None:
    c.apply(pod("orphan", "absent"), namespace=ns)
    scheduled = c.wait_for(
        "pods",
        "orphan",
        ns,
        predicate=lambda p: any(
            cond.get("reason") == "Unschedulable" for cond in (p.get("status") or {}).get("conditions") or []
        ),
        timeout=10,
    )
    assert scheduled is not None
    message = next(
        cond["message"] for cond in scheduled["status"]["conditions"] if cond["type"] == "PodScheduled"
    )
    assert message == (
        '0/1 nodes are available: persistentvolumeclaim "absent" not found. '
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )
    # An unbound claim of a class nobody provisions: unschedulable too, with VolumeBinding's reason.
    c.apply(storage_class(f"{ns}-ext"[:60], provisioner="example.com/nobody"))
    try:
        c.apply(claim("stuck", storageClassName=f"{ns}-ext"[:60]), namespace=ns)
        c.apply(pod("waiter", "stuck"), namespace=ns)

        def unbound_message(p: Obj) -> bool:
            return any(
                "pod has unbound immediate PersistentVolumeClaims" in str(cond.get("message"))
                for cond in (p.get("status") or {}).get("conditions") or []
            )

        assert c.wait_for("pods", "waiter", ns, predicate=unbound_message, timeout=10) is not None
        reasons = [reason for reason, _ in events(c, ns, "stuck")]
        assert "ExternalProvisioning" in reasons
        # Once the claim exists and a volume appears, the parked pod is scheduled and starts.
        c.apply(claim("absent"), namespace=ns)
        c.wait_for("pods", "orphan", ns, condition="Ready", timeout=15)
    finally:
        c.delete("storageclasses", f"{ns}-ext"[:60])


def test_validation(c: SyncCluster, ns: str) -> None:
    with pytest.raises(StatusError) as caught:
        c.apply({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "nothing"}, "spec": {}})
    message = caught.value.message
    assert "spec.capacity: Required value" in message and "spec.accessModes: Required value" in message
    assert "spec: Required value: must specify a volume type" in message

    with pytest.raises(StatusError) as caught:
        c.apply(claim("bad", modes=("ReadWriteSometimes",)), namespace=ns)
    assert 'spec.accessModes: Unsupported value: "ReadWriteSometimes"' in caught.value.message

    c.apply(claim("fixed"), namespace=ns)
    with pytest.raises(StatusError) as caught:
        c.run(c.client.patch(PVCS, "fixed", {"spec": {"accessModes": ["ReadWriteMany"]}}, namespace=ns))
    assert "spec is immutable after creation" in caught.value.message

    bound(c, ns, "fixed")
    with pytest.raises(StatusError) as caught:
        c.run(
            c.client.patch(
                PVCS, "fixed", {"spec": {"resources": {"requests": {"storage": "1Ki"}}}}, namespace=ns
            )
        )
    assert "spec.resources.requests.storage: Forbidden: field can not be less than previous value" in (
        caught.value.message
    )
    c.apply(claim("unbound", storageClassName=""), namespace=ns)
    with pytest.raises(StatusError) as caught:
        c.run(
            c.client.patch(
                PVCS, "unbound", {"spec": {"resources": {"requests": {"storage": "2Mi"}}}}, namespace=ns
            )
        )
    assert "spec is immutable after creation" in caught.value.message

    with pytest.raises(StatusError) as caught:
        c.run(c.client.patch(CLASSES, "standard", {"provisioner": "other"}))
    assert "provisioner: Forbidden: updates to provisioner are forbidden." in caught.value.message


def test_kubectl_get_storageclass(c: SyncCluster) -> None:
    out = kubectl(c, "get", "storageclass")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == [
        "NAME",
        "PROVISIONER",
        "RECLAIMPOLICY",
        "VOLUMEBINDINGMODE",
        "ALLOWVOLUMEEXPANSION",
        "AGE",
    ]
    assert lines[1].split()[:6] == [
        "standard",
        "(default)",
        "kbox.io/hostpath",
        "Delete",
        "Immediate",
        "false",
    ]


def test_kubelet_waits_for_an_unbound_claim_with_failed_mount(c: SyncCluster, ns: str) -> None:
    # Placed on the node directly (no scheduler): the kubelet itself must hold the pod back.
    body = pod("direct", "later-claim")
    body["spec"]["nodeName"] = c.node_names[0]
    c.apply(body, namespace=ns)
    expected = (
        "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], failed to "
        "process volumes=[data]: failed to fetch PVC from API server: "
        'persistentvolumeclaims "later-claim" not found'
    )
    until(lambda: ("FailedMount", expected) in events(c, ns, "direct"), timeout=10)
    assert c.get("pods", "direct", ns)["status"]["phase"] == "Pending"
    c.apply(claim("later-claim"), namespace=ns)
    ready = c.wait_for("pods", "direct", ns, condition="Ready", timeout=15)
    assert ready is not None
    volume_name = c.get("persistentvolumeclaims", "later-claim", ns)["spec"]["volumeName"]
    folder = c.get("persistentvolumes", volume_name)["spec"]["hostPath"]["path"]
    runtime = c.cluster.runtime
    mounts = [
        m
        for box in runtime._containers.values()  # type: ignore[union-attr]
        if box.config.name == "main" and box.sandbox.config.pod.name == "direct"
        for m in box.config.mounts
    ]
    assert any(m.host_path == folder and m.container_path == "/data" and not m.read_only for m in mounts)


def test_pre_bound_volumes_and_claims(c: SyncCluster, ns: str, tmp_path: Path) -> None:
    klass = f"pre-{ns}"[:60]
    (tmp_path / "reserved").mkdir()
    reserved = volume(f"{ns}-reserved", "10Mi", tmp_path / "reserved", klass=klass)
    reserved["spec"]["claimRef"] = {"namespace": ns, "name": "mine"}  # an administrator's reservation
    reserved["spec"]["persistentVolumeReclaimPolicy"] = "Delete"  # no deleter for a hand-made hostPath
    c.apply(reserved)
    c.apply(volume(f"{ns}-chosen", "10Mi", tmp_path / "chosen", klass=klass))
    try:
        c.wait_for(
            "persistentvolumes", f"{ns}-reserved", predicate=lambda o: phase(o) == "Available", timeout=10
        )
        c.apply(claim("other", storageClassName=klass), namespace=ns)
        assert bound(c, ns, "other")["spec"]["volumeName"] == f"{ns}-chosen"  # the reserved one is not taken
        c.delete("persistentvolumeclaims", "other", ns)
        c.wait_for(
            "persistentvolumes", f"{ns}-chosen", predicate=lambda o: phase(o) == "Released", timeout=10
        )

        c.apply(claim("mine", storageClassName=klass), namespace=ns)
        assert bound(c, ns, "mine")["spec"]["volumeName"] == f"{ns}-reserved"
        c.delete("persistentvolumeclaims", "mine", ns)
        failed = c.wait_for(
            "persistentvolumes", f"{ns}-reserved", predicate=lambda o: phase(o) == "Failed", timeout=10
        )
        assert failed is not None and "no deletable volume plugin matched" in failed["status"]["message"]
        assert (tmp_path / "reserved").is_dir()  # never removed: kbox did not make it

        # A claim naming its volume (spec.volumeName) binds to exactly that one.
        c.apply(volume(f"{ns}-named", "10Mi", tmp_path / "named", klass=klass))
        c.apply(claim("named", storageClassName=klass, volumeName=f"{ns}-named"), namespace=ns)
        bound(c, ns, "named")
        pv = c.wait_for(
            "persistentvolumes", f"{ns}-named", predicate=lambda o: phase(o) == "Bound", timeout=10
        )
        assert pv is not None and pv["spec"]["claimRef"]["name"] == "named"
    finally:
        for name in ("reserved", "chosen", "named"):
            c.delete("persistentvolumes", f"{ns}-{name}", missing_ok=True)
