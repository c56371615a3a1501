"""The persistent-volume controller: binds claims to volumes, provisions hostPath volumes for claims of
kbox's StorageClass, reclaims released volumes, and lifts the pvc/pv-protection finalizers
(pkg/controller/volume/persistentvolume and .../pvcprotection, pvprotection in shape).

Keys are ``pvc/<namespace>/<name>`` and ``pv/<name>``; every event about a claim, a volume, a class or a
pod that mounts a claim maps to the keys it may change. A sync is level-triggered:

**Claim.** Being deleted: its ``kubernetes.io/pvc-protection`` finalizer goes once no pod that has not
finished uses it. Bound (``spec.volumeName``): its status says Bound with the volume's capacity and access
modes (Lost, with a ClaimLost event, if the volume vanished). Unbound: a volume pre-bound to it
(``claimRef``) or else the smallest Available volume of the same class whose access modes, capacity and
labels (``selector``) fit is bound — volume first (``claimRef``), then claim (``volumeName``, the
``pv.kubernetes.io/bind-completed`` annotation), then their statuses. With no fit and a class whose
provisioner is kbox's (:data:`PROVISIONER`), a volume ``pvc-<claim uid>`` is provisioned: a folder
``<volumes_dir>/pvc-<claim uid>`` and a hostPath PersistentVolume pre-bound to the claim, carrying the
class's reclaim policy; a class with ``volumeBindingMode: WaitForFirstConsumer`` provisions only once a
pod using the claim has been scheduled (Kubernetes' scheduler picks the node first; kbox's nodes share
one host, so any node would do).

**Volume.** Pending → Available; bound to a live claim → Bound; its claim gone (checked with a fresh
GET, never from the cache alone) → Released, then its reclaim policy: Delete removes the folder (volumes
this provisioner made) and the PersistentVolume, Retain leaves it Released for an administrator,
anything else marks it Failed as Kubernetes does for volumes no deleter handles. Being deleted: its
``kubernetes.io/pv-protection`` finalizer goes once it is not Bound.

The controller is the one writer of these bindings, with resourceVersion preconditions on every update,
so a stale cache costs a conflict and a retry, never a double binding. What it decides without I/O (which
volume fits, what a provisioned volume looks like, the default class) is in
:mod:`kbox.controllers.volumebinding`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import shutil
from pathlib import Path
from typing import Any

from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.events import EventRecorder
from kbox.client.interface import (
    MERGE_PATCH,
    PODS,
    PVCS,
    PVS,
    STORAGE_CLASSES,
    Client,
    Obj,
    Resource,
    StatusError,
)
from kbox.controllers import base, meta
from kbox.controllers import volumebinding as vb
from kbox.controllers.meta import timestamp

_log = logging.getLogger(__name__)

# Re-exported: the composition root creates the default class through this module.
ensure_default_class = vb.ensure_default_class
PVS, PVCS = PVS, PVCS


class PersistentVolumeController(base.Controller):
    """Binder, provisioner, reclaimer and storage-object protection; see the module docstring."""

    name = "persistentvolume"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        volumes_dir: Path,
        events: bool = True,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.volumes_dir = Path(volumes_dir)
        """Where provisioned volumes' folders live (``<profile state dir>/volumes``)."""
        self.events = events
        self.recorder = EventRecorder(self.client, component="persistentvolume-controller")
        self.claims = self.informer(PVCS, keys=self._keys_for_claim)
        self.volumes = self.informer(PVS, keys=self._keys_for_volume)
        self.classes = self.informer(STORAGE_CLASSES, keys=self._keys_for_class)
        self.pods = self.informer(PODS, keys=self._keys_for_pod)
        self.pods.add_index(vb.BY_CLAIM, vb.claims_of)

    # -- keys --------------------------------------------------------------------------------

    def _keys_for_claim(self, claim: Obj) -> list[str]:
        keys = [f"pvc/{cache.key_of(claim)}"]
        volume = (claim.get("spec") or {}).get("volumeName")
        if volume:
            keys.append(f"pv/{volume}")
        return keys

    def _keys_for_volume(self, volume: Obj) -> list[str]:
        keys = [f"pv/{volume['metadata']['name']}"]
        ref = (volume.get("spec") or {}).get("claimRef")
        if ref and ref.get("name"):
            keys.append(f"pvc/{ref.get('namespace', '')}/{ref['name']}")
        return keys

    def _keys_for_class(self, storage_class: Obj) -> list[str]:
        name = storage_class["metadata"]["name"]
        return [
            f"pvc/{cache.key_of(c)}"
            for c in self.claims.indexer.list()
            if vb.class_of(c) == name and not (c.get("spec") or {}).get("volumeName")
        ]

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        return [f"pvc/{key}" for key in vb.claims_of(pod)]

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        kind, _, rest = key.partition("/")
        if kind == "pvc":
            claim = self.claims.indexer.get(rest)
            if claim is not None:
                await self._sync_claim(claim)
        elif kind == "pv":
            volume = self.volumes.indexer.get(rest)
            if volume is not None:
                await self._sync_volume(volume)

    # -- claims ------------------------------------------------------------------------------

    async def _sync_claim(self, claim: Obj) -> None:
        metadata = claim["metadata"]
        if metadata.get("deletionTimestamp"):
            await self._release_claim_protection(claim)
            return
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:
            await self._sync_bound_claim(claim, volume_name)
            return
        candidates = [v for v in self.volumes.indexer.list() if vb.volume_fits(claim, v)]
        if candidates:
            # A volume pre-bound to this claim first, then the smallest that fits.
            candidates.sort(
                key=lambda v: (
                    not (v.get("spec") or {}).get("claimRef"),
                    vb.storage_of(v, "spec", "capacity", "storage"),
                    v["metadata"]["name"],
                )
            )
            await self._bind(claim, candidates[0])
            return
        await self._provision_or_wait(claim)

    async def _sync_bound_claim(self, claim: Obj, volume_name: str) -> None:
        volume = self.volumes.indexer.get(volume_name)
        if volume is None:
            try:
                volume = await self.client.get(PVS, volume_name)
            except StatusError as exc:
                if exc.code != 404:
                    raise
                if (claim.get("status") or {}).get("phase") == "Bound":
                    self._event(
                        claim,
                        "Warning",
                        "ClaimLost",
                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                    )
                    await self._claim_status(claim, {"phase": "Lost"})
                return
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        metadata = claim["metadata"]
        if not ref:
            # Pre-bound by the user through spec.volumeName: complete the volume's side.
            volume = await self._bind_volume(volume, claim)
            if volume is None:
                return
        elif ref.get("uid") and ref["uid"] != metadata["uid"]:
            if (claim.get("status") or {}).get("phase") != "Lost":
                self._event(
                    claim,
                    "Warning",
                    "ClaimMisbound",
                    "Two claims are bound to the same volume, this one is bound incorrectly",
                )
            return
        await self._claim_bound_status(claim, volume)

    async def _bind(self, claim: Obj, volume: Obj) -> None:
        """Volume first (its claimRef is the binding), then the claim, then both statuses."""
        bound_volume = await self._bind_volume(volume, claim)
        if bound_volume is None:
            return
        metadata = claim["metadata"]
        annotations = dict(metadata.get("annotations") or {})
        annotations[vb.BIND_COMPLETED] = "yes"
        annotations[vb.BOUND_BY_CONTROLLER] = "yes"
        patch = {
            "metadata": {"annotations": annotations, "resourceVersion": metadata["resourceVersion"]},
            "spec": {"volumeName": volume["metadata"]["name"]},
        }
        try:
            updated = await self.client.patch(
                PVCS, metadata["name"], patch, namespace=metadata["namespace"], patch_type=MERGE_PATCH
            )
        except StatusError as exc:
            if exc.code == 404:
                return  # the volume's sync releases it
            raise
        await self._claim_bound_status(updated, bound_volume)

    async def _bind_volume(self, volume: Obj, claim: Obj) -> Obj | None:
        """Point the volume's claimRef at the claim and mark it Bound; None when it is gone."""
        metadata = claim["metadata"]
        ref = {
            "kind": "PersistentVolumeClaim",
            "namespace": metadata["namespace"],
            "name": metadata["name"],
            "uid": metadata["uid"],
            "apiVersion": "v1",
            "resourceVersion": metadata.get("resourceVersion", ""),
        }
        current = (volume.get("spec") or {}).get("claimRef") or {}
        vmeta = volume["metadata"]
        if current.get("uid") != metadata["uid"]:
            patch: Obj = {
                "metadata": {"resourceVersion": vmeta["resourceVersion"]},
                "spec": {"claimRef": ref},
            }
            if not current:
                patch["metadata"]["annotations"] = {vb.BOUND_BY_CONTROLLER: "yes"}
            try:
                volume = await self.client.patch(PVS, vmeta["name"], patch, patch_type=MERGE_PATCH)
            except StatusError as exc:
                if exc.code == 404:
                    return None
                raise
        return await self._volume_phase(volume, "Bound")

    async def _claim_bound_status(self, claim: Obj, volume: Obj) -> None:
        vspec = volume.get("spec") or {}
        status = {
            "phase": "Bound",
            "accessModes": list(vspec.get("accessModes") or []),
            "capacity": dict(vspec.get("capacity") or {}),
        }
        await self._claim_status(claim, status)

    async def _claim_status(self, claim: Obj, wanted: Obj) -> None:
        current = claim.get("status") or {}
        if all(current.get(k) == v for k, v in wanted.items()):
            return
        await meta.patch_status(self.client, PVCS, claim, wanted)

    async def _provision_or_wait(self, claim: Obj) -> None:
        class_name = vb.class_of(claim)
        if not class_name:
            self._event(
                claim,
                "Normal",
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            )
            return
        storage_class = self.classes.indexer.get(class_name)
        if storage_class is None:
            self._event(
                claim,
                "Warning",
                "ProvisioningFailed",
                f'storageclass.storage.k8s.io "{class_name}" not found',
            )
            return
        provisioner = str(storage_class.get("provisioner") or "")
        # Who is to provision the claim, as Kubernetes marks it (kubectl describe shows it).
        annotations = {vb.STORAGE_PROVISIONER: provisioner, vb.BETA_STORAGE_PROVISIONER: provisioner}
        if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer":
            node = self._consumer_node(claim)
            if node is None:
                self._event(
                    claim,
                    "Normal",
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding",
                )
                return
            annotations[vb.SELECTED_NODE] = node
        await self._annotate(claim, annotations)
        if provisioner != vb.PROVISIONER:
            self._event(
                claim,
                "Normal",
                "ExternalProvisioning",
                f"Waiting for a volume to be created either by the external provisioner '{provisioner}' or "
                "manually by the system administrator. If volume creation is delayed, please verify that "
                "your external provisioner is running and correctly registered.",
            )
            return
        await self._provision(claim, storage_class)

    def _consumer_node(self, claim: Obj) -> str | None:
        """The node of a scheduled, unfinished pod that uses ``claim`` (WaitForFirstConsumer)."""
        for pod in self.pods.indexer.by_index(vb.BY_CLAIM, cache.key_of(claim)):
            node = (pod.get("spec") or {}).get("nodeName")
            if node and not vb.finished(pod) and not pod["metadata"].get("deletionTimestamp"):
                return str(node)
        return None

    async def _annotate(self, claim: Obj, annotations: dict[str, str]) -> None:
        current = claim["metadata"].get("annotations") or {}
        if all(current.get(k) == v for k, v in annotations.items()):
            return
        metadata = claim["metadata"]
        await self.client.patch(
            PVCS,
            metadata["name"],
            {"metadata": {"annotations": annotations}},
            namespace=metadata["namespace"],
            patch_type=MERGE_PATCH,
        )

    async def _provision(self, claim: Obj, storage_class: Obj) -> None:
        metadata = claim["metadata"]
        name = f"pvc-{metadata['uid']}"
        if self.volumes.indexer.get(name) is not None or await self._exists(name):
            return  # made already (the cache may lag); its event brings the claim back to bind it
        claim_key = cache.key_of(claim)
        self._event(
            claim,
            "Normal",
            "Provisioning",
            f'External provisioner is provisioning volume for claim "{claim_key}"',
        )
        path = self.volumes_dir / name
        try:
            await asyncio.to_thread(vb.make_folder, path)
        except OSError as exc:
            self._event(
                claim,
                "Warning",
                "ProvisioningFailed",
                f'failed to provision volume with StorageClass "{storage_class["metadata"]["name"]}": {exc}',
            )
            raise
        volume = vb.provisioned_volume(claim, storage_class, path)
        try:
            await self.client.create(PVS, volume)
        except StatusError as exc:
            if exc.code != 409:
                self._event(
                    claim, "Warning", "ProvisioningFailed", f"failed to provision volume: {exc.message}"
                )
                raise
            return
        self._event(claim, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {name}")

    async def _exists(self, volume_name: str) -> bool:
        try:
            await self.client.get(PVS, volume_name)
        except StatusError as exc:
            if exc.code == 404:
                return False
            raise
        return True

    async def _release_claim_protection(self, claim: Obj) -> None:
        metadata = claim["metadata"]
        finalizers = metadata.get("finalizers") or []
        if vb.PVC_PROTECTION not in finalizers:
            return
        for pod in self.pods.indexer.by_index(vb.BY_CLAIM, cache.key_of(claim)):
            if not vb.finished(pod):
                return  # still in use; the pod's events bring the claim back
        # The cache may lag a pod just created: ask the apiserver before letting the claim go.
        listed = await self.client.list(PODS, namespace=metadata["namespace"])
        if any(cache.key_of(claim) in vb.claims_of(p) and not vb.finished(p) for p in listed["items"]):
            return
        await self._drop_finalizer(PVCS, claim, vb.PVC_PROTECTION)

    async def _drop_finalizer(self, resource: Resource, obj: Obj, finalizer: str) -> None:
        metadata = obj["metadata"]
        remaining = [f for f in metadata.get("finalizers") or [] if f != finalizer]
        patch = {
            "metadata": {"finalizers": remaining or None, "resourceVersion": metadata["resourceVersion"]}
        }
        try:
            await self.client.patch(
                resource, metadata["name"], patch, namespace=metadata.get("namespace"), patch_type=MERGE_PATCH
            )
        except StatusError as exc:
            if exc.code != 404:
                raise

    # -- volumes -----------------------------------------------------------------------------

    async def _sync_volume(self, volume: Obj) -> None:
        metadata = volume["metadata"]
        phase = (volume.get("status") or {}).get("phase")
        if metadata.get("deletionTimestamp"):
            if phase != "Bound" and vb.PV_PROTECTION in (metadata.get("finalizers") or []):
                await self._drop_finalizer(PVS, volume, vb.PV_PROTECTION)
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref:
            await self._volume_phase(volume, "Available")
            return
        claim = self.claims.indexer.get(f"{ref.get('namespace', '')}/{ref.get('name', '')}")
        if claim is not None and ref.get("uid") in (None, "", claim["metadata"]["uid"]):
            if (claim.get("spec") or {}).get("volumeName") == metadata["name"]:
                await self._volume_phase(volume, "Bound")
            elif phase not in ("Available", "Bound"):
                await self._volume_phase(volume, "Available")
            return
        if not ref.get("uid"):
            # Pre-bound by an administrator to a claim that does not exist yet: it waits for it.
            await self._volume_phase(volume, "Available")
            return
        if phase != "Released" and await self._claim_exists(ref):
            return  # the cache lags; the claim's events come
        released: Obj | None = volume
        if phase not in ("Released", "Failed"):
            released = await self._volume_phase(volume, "Released")
        if released is not None and (released.get("status") or {}).get("phase") == "Released":
            await self._reclaim(released)

    async def _claim_exists(self, ref: Obj) -> bool:
        try:
            claim = await self.client.get(PVCS, ref.get("name", ""), namespace=ref.get("namespace", ""))
        except StatusError as exc:
            if exc.code == 404:
                return False
            raise
        return bool(claim["metadata"].get("uid") == ref.get("uid"))

    async def _reclaim(self, volume: Obj) -> None:
        spec = volume.get("spec") or {}
        policy = spec.get("persistentVolumeReclaimPolicy", "Retain")
        if policy == "Retain":
            return
        metadata = volume["metadata"]
        if policy != "Delete":
            message = f"No recycler plugin found for volume {metadata['name']}; kbox does not recycle volumes"
            self._event(volume, "Warning", "VolumeFailedRecycle", message)
            await self._volume_phase(volume, "Failed", message)
            return
        path = self._own_folder(volume)
        if path is None:
            message = (
                f'error getting deleter volume plugin for volume "{metadata["name"]}": '
                "no deletable volume plugin matched"
            )
            self._event(volume, "Warning", "VolumeFailedDelete", message)
            await self._volume_phase(volume, "Failed", message)
            return
        await asyncio.to_thread(shutil.rmtree, path, True)
        try:
            await self.client.delete(PVS, metadata["name"], preconditions={"uid": metadata["uid"]})
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise

    def _own_folder(self, volume: Obj) -> Path | None:
        """The folder of a volume this provisioner made (never a path outside ``volumes_dir``)."""
        if (volume["metadata"].get("annotations") or {}).get(vb.PROVISIONED_BY) != vb.PROVISIONER:
            return None
        raw = ((volume.get("spec") or {}).get("hostPath") or {}).get("path")
        if not raw:
            return None
        path = Path(raw)
        if path.parent != self.volumes_dir or not path.name.startswith("pvc-"):
            return None
        return path

    async def _volume_phase(self, volume: Obj, phase: str, message: str = "") -> Obj | None:
        status = volume.get("status") or {}
        if status.get("phase") == phase and status.get("message", "") == message:
            return volume
        wanted: Obj = {"phase": phase, "message": message or None}
        if status.get("phase") != phase:
            wanted["lastPhaseTransitionTime"] = timestamp()
        return await meta.patch_status(self.client, PVS, volume, wanted)

    # -- events ------------------------------------------------------------------------------

    def _event(self, obj: Obj, kind: str, reason: str, message: str) -> None:
        if self.events:
            self.recorder.record(copy.deepcopy(obj), kind, reason, message)
