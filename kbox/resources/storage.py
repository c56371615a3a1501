"""Storage kinds: PersistentVolumes and PersistentVolumeClaims (core group) and StorageClasses
(``storage.k8s.io/v1``).

The strategies follow kube-apiserver's: a new volume starts ``Pending`` and a new claim ``Pending`` (the
persistent-volume controller moves them on); a claim's spec is immutable once created except that the
binder may set ``volumeName`` once and ``resources.requests`` may grow; a class's provisioner,
parameters, reclaim policy and binding mode never change. New claims get the ``kubernetes.io/pvc-protection``
finalizer and new volumes ``kubernetes.io/pv-protection`` (what the StorageObjectInUseProtection
admission plugin adds); the persistent-volume controller removes them once nothing uses the object.
Defaulting a claim's class to the cluster's default StorageClass reads other objects, so it is admission's
business (``kbox/api/admission.py``), as in Kubernetes.
"""

from __future__ import annotations

from typing import Any

from kbox.api import errors, quantity, validation
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef, SubresourceDef
from kbox.api.strategy import StatusStrategy, Strategy

Obj = dict[str, Any]

PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"

ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]
BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]
VOLUME_MODES = ["Block", "Filesystem"]
PV_SOURCES = (
    "hostPath",
    "local",
    "nfs",
    "csi",
    "iscsi",
    "fc",
    "awsElasticBlockStore",
    "gcePersistentDisk",
    "azureDisk",
    "azureFile",
    "cephfs",
    "rbd",
    "cinder",
    "glusterfs",
    "flexVolume",
)


def _add_finalizer(obj: Obj, finalizer: str) -> None:
    metadata = obj.setdefault("metadata", {})
    finalizers = metadata.get("finalizers")
    if not isinstance(finalizers, list):
        finalizers = metadata["finalizers"] = []
    if finalizer not in finalizers:
        finalizers.append(finalizer)


def _validate_access_modes(modes: Any, path: str) -> list[FieldError]:
    if not isinstance(modes, list) or not modes:
        return [errors.required(path)]
    problems = [errors.not_supported(path, mode, ACCESS_MODES) for mode in modes if mode not in ACCESS_MODES]
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        problems.append(errors.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return problems


def _validate_storage(value: Any, path: str) -> list[FieldError]:
    if value is None:
        return [errors.required(path)]
    try:
        amount = quantity.parse(value)
    except (ValueError, ArithmeticError):
        return [errors.invalid(path, value, "quantities must match the regular expression")]
    if amount <= 0:
        return [errors.invalid(path, value, "must be greater than zero")]
    return []


def _validate_class_name(value: Any, path: str) -> list[FieldError]:
    if value in (None, ""):
        return []
    if not isinstance(value, str):
        return [errors.invalid(path, value, "must be a string")]
    return [errors.invalid(path, value, message) for message in validation.is_dns1123_subdomain(value)]


# -- PersistentVolume ----------------------------------------------------------------------------------


class PersistentVolumeStrategy(Strategy):
    status_subresource = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
            spec.setdefault("volumeMode", "Filesystem")
            host = spec.get("hostPath")
            if isinstance(host, dict):
                host.setdefault("type", "")

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Pending"}
        _add_finalizer(obj, PV_PROTECTION)

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        problems: list[FieldError] = []
        capacity = spec.get("capacity")
        if not isinstance(capacity, dict) or not capacity:
            problems.append(errors.required("spec.capacity"))
        else:
            problems += _validate_storage(capacity.get("storage"), "spec.capacity[storage]")
        problems += _validate_access_modes(spec.get("accessModes"), "spec.accessModes")
        policy = spec.get("persistentVolumeReclaimPolicy")
        if policy not in RECLAIM_POLICIES:
            problems.append(
                errors.not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES)
            )
        if spec.get("volumeMode") not in VOLUME_MODES:
            problems.append(errors.not_supported("spec.volumeMode", spec.get("volumeMode"), VOLUME_MODES))
        problems += _validate_class_name(spec.get("storageClassName"), "spec.storageClassName")
        sources = [kind for kind in PV_SOURCES if kind in spec]
        if not sources:
            problems.append(errors.required("spec", "must specify a volume type"))
        elif len(sources) > 1:
            problems.append(errors.forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type"))
        for kind in ("hostPath", "local"):
            source = spec.get(kind)
            if kind in spec and (not isinstance(source, dict) or not source.get("path")):
                problems.append(errors.required(f"spec.{kind}.path"))
        claim = spec.get("claimRef")
        if claim is not None and (not isinstance(claim, dict) or not claim.get("name")):
            problems.append(errors.required("spec.claimRef.name"))
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        for kind in PV_SOURCES:
            if kind in old_spec and new_spec.get(kind) != old_spec.get(kind):
                problems.append(
                    errors.forbidden(
                        "spec.persistentvolumesource",
                        "spec.persistentvolumesource is immutable after creation",
                    )
                )
                break
        if old_spec.get("volumeMode") != new_spec.get("volumeMode"):
            problems.append(
                errors.invalid("spec.volumeMode", new_spec.get("volumeMode"), "field is immutable")
            )
        return problems


class PersistentVolumeStatusStrategy(StatusStrategy):
    def validate_status(self, new: Obj, old: Obj) -> list[FieldError]:
        phase = (new.get("status") or {}).get("phase")
        phases = ["Available", "Bound", "Failed", "Pending", "Released"]
        if phase is not None and phase not in phases:
            return [errors.not_supported("status.phase", phase, phases)]
        return []


# -- PersistentVolumeClaim -----------------------------------------------------------------------------

CLAIM_IMMUTABLE = (
    "spec is immutable after creation except resources.requests and volumeAttributesClassName "
    "for bound claims"
)


class PersistentVolumeClaimStrategy(Strategy):
    status_subresource = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Pending"}
        _add_finalizer(obj, PVC_PROTECTION)

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        return validate_claim_spec(spec, "spec")

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        new_spec, old_spec = dict(new.get("spec") or {}), dict(old.get("spec") or {})
        new_requests = (new_spec.get("resources") or {}).get("requests") or {}
        old_requests = (old_spec.get("resources") or {}).get("requests") or {}
        try:
            shrunk = quantity.parse(new_requests.get("storage", 0)) < quantity.parse(
                old_requests.get("storage", 0)
            )
        except (ValueError, ArithmeticError):
            shrunk = False  # validate() reported it
        if new_requests != old_requests and (old.get("status") or {}).get("phase") != "Bound":
            problems.append(errors.forbidden("spec", CLAIM_IMMUTABLE))  # only a bound claim may grow
        elif shrunk:
            problems.append(
                errors.forbidden(
                    "spec.resources.requests.storage", "field can not be less than previous value"
                )
            )
        for spec in (new_spec, old_spec):
            spec.pop("resources", None)
        if not old_spec.get("volumeName"):
            new_spec.pop("volumeName", None)  # the binder sets it once
            old_spec.pop("volumeName", None)
        if old_spec.get("storageClassName") is None:
            new_spec.pop("storageClassName", None)  # a class may be given to a claim without one
            old_spec.pop("storageClassName", None)
        if new_spec != old_spec:
            problems.append(errors.forbidden("spec", CLAIM_IMMUTABLE))
        return problems


def validate_claim_spec(spec: Obj, path: str) -> list[FieldError]:
    """A claim's spec (also a StatefulSet's volumeClaimTemplates' specs)."""
    problems = _validate_access_modes(spec.get("accessModes"), f"{path}.accessModes")
    requests = (
        (spec.get("resources") or {}).get("requests") if isinstance(spec.get("resources"), dict) else None
    )
    if not isinstance(requests, dict):
        problems.append(errors.required(f"{path}.resources[storage]"))
    else:
        problems += _validate_storage(requests.get("storage"), f"{path}.resources[storage]")
    problems += _validate_class_name(spec.get("storageClassName"), f"{path}.storageClassName")
    if spec.get("volumeMode", "Filesystem") not in VOLUME_MODES:
        problems.append(errors.not_supported(f"{path}.volumeMode", spec.get("volumeMode"), VOLUME_MODES))
    if spec.get("selector") is not None:
        problems += validation.validate_label_selector(spec["selector"], f"{path}.selector")
    return problems


class PersistentVolumeClaimStatusStrategy(StatusStrategy):
    def validate_status(self, new: Obj, old: Obj) -> list[FieldError]:
        phase = (new.get("status") or {}).get("phase")
        phases = ["Bound", "Lost", "Pending"]
        if phase is not None and phase not in phases:
            return [errors.not_supported("status.phase", phase, phases)]
        return []


# -- StorageClass --------------------------------------------------------------------------------------


class StorageClassStrategy(Strategy):
    non_spec_fields = ("apiVersion", "kind", "metadata")

    def default(self, obj: Obj) -> None:
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")

    def validate(self, obj: Obj) -> list[FieldError]:
        problems: list[FieldError] = []
        provisioner = obj.get("provisioner")
        if not provisioner:
            problems.append(errors.required("provisioner"))
        elif not isinstance(provisioner, str):
            problems.append(errors.invalid("provisioner", provisioner, "must be a string"))
        if obj.get("reclaimPolicy") not in ("Delete", "Retain"):
            problems.append(
                errors.not_supported("reclaimPolicy", obj.get("reclaimPolicy"), ["Delete", "Retain"])
            )
        if obj.get("volumeBindingMode") not in BINDING_MODES:
            problems.append(
                errors.not_supported("volumeBindingMode", obj.get("volumeBindingMode"), BINDING_MODES)
            )
        parameters = obj.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            problems.append(errors.invalid("parameters", parameters, "must be a map"))
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        for name in ("parameters", "provisioner", "reclaimPolicy"):
            if new.get(name) != old.get(name):
                problems.append(errors.forbidden(name, f"updates to {name} are forbidden."))
        if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
            problems.append(
                errors.invalid("volumeBindingMode", new.get("volumeBindingMode"), "field is immutable")
            )
        return problems


def is_default_class(storage_class: Obj) -> bool:
    """Whether the class carries ``storageclass.kubernetes.io/is-default-class: "true"``."""
    annotations = (storage_class.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(DEFAULT_CLASS_ANNOTATION, "")).lower() == "true"


_pv = PersistentVolumeStrategy()
_pvc = PersistentVolumeClaimStrategy()

RESOURCES = [
    ResourceDef(
        group="",
        version="v1",
        kind="PersistentVolume",
        plural="persistentvolumes",
        namespaced=False,
        strategy=_pv,
        short_names=("pv",),
        subresources=(SubresourceDef("status", "PersistentVolume", ("get", "patch", "update")),),
        status_strategy=PersistentVolumeStatusStrategy(_pv),
    ),
    ResourceDef(
        group="",
        version="v1",
        kind="PersistentVolumeClaim",
        plural="persistentvolumeclaims",
        namespaced=True,
        strategy=_pvc,
        short_names=("pvc",),
        subresources=(SubresourceDef("status", "PersistentVolumeClaim", ("get", "patch", "update")),),
        status_strategy=PersistentVolumeClaimStatusStrategy(_pvc),
    ),
    ResourceDef(
        group="storage.k8s.io",
        version="v1",
        kind="StorageClass",
        plural="storageclasses",
        namespaced=False,
        strategy=StorageClassStrategy(),
        short_names=("sc",),
    ),
]
