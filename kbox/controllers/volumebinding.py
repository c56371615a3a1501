"""What the persistent-volume controller decides without I/O: which volume fits a claim, what a
provisioned volume looks like, kbox's default StorageClass, and the names Kubernetes uses for the
binding's annotations and finalizers (pkg/controller/volume/persistentvolume's util in shape)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from kbox.api import quantity, selectors
from kbox.client.interface import STORAGE_CLASSES, Client, Obj, StatusError

PROVISIONER = "kbox.io/hostpath"
"""The provisioner name of kbox's local-path volumes (minikube's is ``k8s.io/minikube-hostpath``)."""
DEFAULT_CLASS = "standard"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
BY_CLAIM = "spec.volumes.persistentVolumeClaim"
"""Pod index: ``<namespace>/<claim>`` of each claim a pod mounts."""


def default_class() -> Obj:
    """kbox's default StorageClass (minikube's ``standard``, with kbox's provisioner)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": DEFAULT_CLASS,
            "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
            "labels": {"addonmanager.kubernetes.io/mode": "EnsureExists"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


async def ensure_default_class(client: Client) -> None:
    """Create the default StorageClass when it is missing (minikube's addon does the same, "EnsureExists":
    an existing one, edited or not, is left alone)."""
    try:
        await client.create(STORAGE_CLASSES, default_class())
    except StatusError as exc:
        if exc.code != 409:
            raise


def claims_of(pod: Obj) -> list[str]:
    """``<namespace>/<claim>`` for each persistentVolumeClaim volume of ``pod``."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    return [
        f"{namespace}/{(v.get('persistentVolumeClaim') or {}).get('claimName', '')}"
        for v in (pod.get("spec") or {}).get("volumes") or []
        if isinstance(v, dict) and v.get("persistentVolumeClaim")
    ]


def storage_of(obj: Obj, *path: str) -> Decimal:
    value: Any = obj
    for key in path:
        value = (value or {}).get(key) if isinstance(value, dict) else None
    try:
        return quantity.parse(value) if value is not None else Decimal(0)
    except (ValueError, ArithmeticError):
        return Decimal(0)


def class_of(obj: Obj) -> str:
    return str((obj.get("spec") or {}).get("storageClassName") or "")


def finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def volume_fits(claim: Obj, volume: Obj) -> bool:
    """Whether ``volume`` could serve ``claim``: unclaimed (or pre-bound to it), same class, the access
    modes and capacity it asks for, and labels matching its selector."""
    spec = claim.get("spec") or {}
    vspec = volume.get("spec") or {}
    metadata = claim["metadata"]
    ref = vspec.get("claimRef")
    if ref:
        if ref.get("name") != metadata["name"] or ref.get("namespace") != metadata["namespace"]:
            return False
        if ref.get("uid") and ref["uid"] != metadata.get("uid"):
            return False
    elif (volume.get("status") or {}).get("phase") not in ("Available", "Pending", None):
        return False
    if volume["metadata"].get("deletionTimestamp"):
        return False
    if class_of(volume) != class_of(claim):
        return False
    if spec.get("volumeMode", "Filesystem") != vspec.get("volumeMode", "Filesystem"):
        return False
    if not set(spec.get("accessModes") or []) <= set(vspec.get("accessModes") or []):
        return False
    if storage_of(volume, "spec", "capacity", "storage") < storage_of(
        claim, "spec", "resources", "requests", "storage"
    ):
        return False
    selector = spec.get("selector")
    if selector:
        try:
            parsed = selectors.from_label_selector(selector)
        except StatusError:
            return False
        if not parsed.matches(volume["metadata"].get("labels") or {}):
            return False
    return True


def provisioned_volume(claim: Obj, storage_class: Obj, path: Path) -> Obj:
    """The hostPath PersistentVolume ``pvc-<claim uid>`` made for ``claim``: its request as capacity,
    its access modes, the class's reclaim policy, pre-bound to the claim (``claimRef`` with its uid)."""
    metadata = claim["metadata"]
    spec = claim.get("spec") or {}
    name = f"pvc-{metadata['uid']}"
    volume: Obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": (spec.get("resources") or {}).get("requests", {}).get("storage", "0")},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "storageClassName": storage_class["metadata"]["name"],
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "hostPath": {"path": str(path), "type": ""},
            "claimRef": {
                "kind": "PersistentVolumeClaim",
                "apiVersion": "v1",
                "namespace": metadata["namespace"],
                "name": metadata["name"],
                "uid": metadata["uid"],
                "resourceVersion": metadata.get("resourceVersion", ""),
            },
        },
    }
    return volume


def make_folder(path: Path) -> None:
    """A provisioned volume's folder, writable by any container user (as minikube's provisioner makes it)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
