"""The Deployment controller: ReplicaSets per pod template, rolled out by strategy (pkg/controller/deployment
in shape; the arithmetic is upstream's, so rollouts step as on a real cluster).

Each sync of ``ns/name`` claims the ReplicaSets (adopting matching orphans, releasing owned ones that stop
matching), then:

- **New and old ReplicaSets.** The *new* ReplicaSet is the one whose template equals the Deployment's,
  ignoring the ``pod-template-hash`` label. A missing one is created as ``<deploy>-<hash>``, the hash a
  stable function of the template (and ``status.collisionCount``), added as a label to its selector and
  template so the ReplicaSets' pods never overlap. Its ``deployment.kubernetes.io/revision`` is one past the
  highest old revision, so reusing an old template (``kubectl rollout undo``) bumps that ReplicaSet's
  revision; the Deployment carries the same annotation.
- **Scaling**: when ``spec.replicas`` changed (the ``desired-replicas`` annotations disagree), replicas are
  spread over the active ReplicaSets in proportion to their size (``max-replicas`` annotation), leftovers
  to the largest, so a scale during a rollout keeps its shape. A paused Deployment only scales.
- **RollingUpdate**: the new ReplicaSet grows while the total stays within ``replicas + maxSurge`` (rounded
  up from a percentage); old ones shrink (unhealthy pods first) while the available pods stay at least
  ``replicas - maxUnavailable`` (rounded down). Old ReplicaSets are only shrunk once every ReplicaSet's
  status has observed its spec, so availability is never judged on a stale count.
- **Recreate**: old ReplicaSets to zero, wait for their pods to be gone, then the new one to ``replicas``.
- **Cleanup**: beyond ``revisionHistoryLimit``, the oldest old ReplicaSets at zero replicas are deleted.
- **Status** (through the status subresource, only when changed): replicas, updatedReplicas,
  readyReplicas, availableReplicas, unavailableReplicas, observedGeneration, and the conditions
  ``Available`` (MinimumReplicasAvailable / MinimumReplicasUnavailable) and ``Progressing``
  (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable, or False with
  ProgressDeadlineExceeded once ``progressDeadlineSeconds`` passed without progress; the key is re-queued
  for that deadline).

Every write depends only on the cached state and is made with the cached resourceVersion, so a stale cache
gets a conflict and a retry, never a wrong step; a controller restarted mid-rollout continues from the
ReplicaSets as it finds them.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import time
from typing import Any

import msgspec

from kbox.api import selectors
from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.events import EventRecorder
from kbox.client.interface import (
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    Client,
    Obj,
    StatusError,
)
from kbox.controllers import base, meta, refmanager
from kbox.controllers.meta import controller_ref, epoch, timestamp

_log = logging.getLogger(__name__)

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_NOT_COPIED = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS}
"""Deployment annotations that are not copied to its ReplicaSets."""

PROGRESSING = "Progressing"
AVAILABLE = "Available"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class DeploymentController(base.Controller):
    """ReplicaSets for Deployments; see the module docstring."""

    name = "deployment"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        events: bool = True,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.recorder = EventRecorder(self.client, component="deployment-controller")
        self.events = events
        self.deployments = self.informer(DEPLOYMENTS)
        self.replicasets = self.informer(REPLICASETS, keys=self._keys_for_rs)
        self.pods = self.informer(PODS, keys=self._keys_for_pod)
        self.pods.add_index(cache.OWNER_UID, cache.by_owner_uid)

    # -- keys --------------------------------------------------------------------------------

    def _keys_for_rs(self, rs: Obj) -> list[str]:
        return refmanager.owner_keys(
            rs, kind="Deployment", group="apps", owners=self.deployments, selector_of=_selector
        )

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        """Pods matter only to Recreate rollouts, which wait for the old pods to be gone."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return []
        namespace = pod["metadata"].get("namespace", "")
        rs = self.replicasets.indexer.get(f"{namespace}/{ref.get('name', '')}")
        owner = controller_ref(rs) if rs is not None else None
        if owner is None or owner.get("kind") != "Deployment":
            return []
        key = f"{namespace}/{owner.get('name', '')}"
        d = self.deployments.indexer.get(key)
        if d is None or ((d.get("spec") or {}).get("strategy") or {}).get("type") != "Recreate":
            return []
        return [key]

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.deployments.indexer.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        if d["metadata"].get("deletionTimestamp"):
            return
        selector = _selector(d)
        if selector is None or selector.empty:
            self._event(d, "Warning", "SelectingAll", "This deployment is selecting all pods or none.")
            if (d.get("status") or {}).get("observedGeneration") != d["metadata"].get("generation"):
                await self._patch_status(d, {"observedGeneration": d["metadata"].get("generation")})
            return
        rs_list = await self._claim(d, selector)
        spec = d["spec"]
        if spec.get("paused"):
            await self._sync_scale(d, rs_list)
            return
        if self._is_scaling_event(d, rs_list):
            await self._sync_scale(d, rs_list)
            return
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            await self._rollout_recreate(d, rs_list)
        else:
            await self._rollout_rolling(d, rs_list)

    # -- claiming ----------------------------------------------------------------------------

    async def _claim(self, d: Obj, selector: selectors.LabelSelector) -> list[Obj]:
        claimed = await refmanager.claim(
            self.client,
            REPLICASETS,
            self.replicasets.indexer.by_index(cache.NAMESPACE, d["metadata"]["namespace"]),
            owner=d,
            owner_resource=DEPLOYMENTS,
            owner_ref=owner_reference(d),
            selector=selector,
        )
        return [copy.deepcopy(rs) for rs in claimed]

    # -- new and old ReplicaSets ---------------------------------------------------------------

    async def _new_and_old(self, d: Obj, rs_list: list[Obj], *, create: bool) -> tuple[Obj | None, list[Obj]]:
        """Find (or with ``create``, make) the new ReplicaSet and bring revisions up to date."""
        template = d["spec"]["template"]
        matching = sorted(
            (rs for rs in rs_list if equal_ignore_hash(rs["spec"]["template"], template)), key=_creation_order
        )
        existing = matching[0] if matching else None
        old = [rs for rs in rs_list if rs is not existing]
        max_old = max((revision(rs) for rs in old), default=0)
        new_revision = str(max_old + 1)
        if existing is not None:
            new_rs = await self._sync_new_rs(d, existing, new_revision)
            await self._sync_deployment_revision(d, new_rs, found=True)
            return new_rs, old
        if not create:
            return None, old
        new_rs = await self._create_new_rs(d, rs_list, new_revision, old)
        await self._sync_deployment_revision(d, new_rs, found=False)
        return new_rs, old

    async def _sync_new_rs(self, d: Obj, rs: Obj, new_revision: str) -> Obj:
        annotations = dict(rs["metadata"].get("annotations") or {})
        changed = _set_new_rs_annotations(d, annotations, new_revision)
        min_ready = d["spec"].get("minReadySeconds", 0)
        if not changed and rs["spec"].get("minReadySeconds", 0) == min_ready:
            return rs
        updated = copy.deepcopy(rs)
        updated["metadata"]["annotations"] = annotations
        updated["spec"]["minReadySeconds"] = min_ready
        result: Obj = await self.client.update(REPLICASETS, updated, namespace=rs["metadata"]["namespace"])
        return result

    async def _create_new_rs(self, d: Obj, rs_list: list[Obj], new_revision: str, old: list[Obj]) -> Obj:
        namespace = d["metadata"]["namespace"]
        status = d.get("status") or {}
        collisions = int(status.get("collisionCount") or 0)
        template_hash = compute_hash(d["spec"]["template"], collisions)
        template = copy.deepcopy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = template_hash
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = template_hash
        labels = dict(template["metadata"]["labels"])
        annotations = {
            k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in _NOT_COPIED
        }
        replicas = self._new_rs_replicas(d, rs_list, None)
        annotations[REVISION] = new_revision
        annotations[DESIRED_REPLICAS] = str(d["spec"]["replicas"])
        annotations[MAX_REPLICAS] = str(d["spec"]["replicas"] + max_surge(d))
        body: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{template_hash}",
                "namespace": namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [owner_reference(d)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
        }
        body["spec"]["replicas"] = replicas
        try:
            created: Obj = await self.client.create(REPLICASETS, body, namespace=namespace)
        except StatusError as exc:
            if exc.code != 409:
                raise
            existing = await self.client.get(REPLICASETS, body["metadata"]["name"], namespace=namespace)
            ref = controller_ref(existing)
            if (
                ref is not None
                and ref.get("uid") == d["metadata"]["uid"]
                and equal_ignore_hash(existing["spec"]["template"], d["spec"]["template"])
            ):
                return existing  # ours, not yet in the cache
            # A hash collision: count it, and the next sync hashes differently.
            await self._patch_status(d, {"collisionCount": collisions + 1})
            raise
        if replicas > 0:
            self._event(
                d, "Normal", "ScalingReplicaSet",
                f"Scaled up replica set {created['metadata']['name']} from 0 to {replicas}",
            )  # fmt: skip
        status = d.setdefault("status", {})
        set_condition(
            status,
            PROGRESSING,
            "True",
            NEW_RS_CREATED,
            f'Created new replica set "{created["metadata"]["name"]}"',
        )
        await self._patch_status(d, {"conditions": status["conditions"]})
        return created

    async def _sync_deployment_revision(self, d: Obj, new_rs: Obj, *, found: bool) -> None:
        wanted = (new_rs["metadata"].get("annotations") or {}).get(REVISION)
        annotations = d["metadata"].setdefault("annotations", {})
        if wanted and annotations.get(REVISION) != wanted:
            annotations[REVISION] = wanted
            patch = {"metadata": {"annotations": {REVISION: wanted}}}
            result = await self.client.patch(
                DEPLOYMENTS, d["metadata"]["name"], patch, namespace=d["metadata"]["namespace"]
            )
            d["metadata"]["resourceVersion"] = result["metadata"]["resourceVersion"]
        status = d.setdefault("status", {})
        if found and get_condition(status, PROGRESSING) is None and has_deadline(d):
            set_condition(
                status,
                PROGRESSING,
                "True",
                FOUND_NEW_RS,
                f'Found new replica set "{new_rs["metadata"]["name"]}"',
            )
            await self._patch_status(d, {"conditions": status["conditions"]})

    # -- scaling -------------------------------------------------------------------------------

    def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        replicas = d["spec"]["replicas"]
        for rs in rs_list:
            if rs["spec"].get("replicas", 0) <= 0:
                continue
            desired = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
            if desired is not None and desired.isdigit() and int(desired) != replicas:
                return True
        return False

    async def _sync_scale(self, d: Obj, rs_list: list[Obj]) -> None:
        """Scale only (a paused Deployment, or replicas changed): no new ReplicaSet, no rollout step."""
        new_rs, old = await self._new_and_old(d, rs_list, create=False)
        await self._scale(d, new_rs, old)
        if d["spec"].get("paused"):
            await self._cleanup(d, old)
        all_rs = old + ([new_rs] if new_rs else [])
        await self._write_status(d, all_rs, new_rs, progress=False)

    async def _scale(self, d: Obj, new_rs: Obj | None, old: list[Obj]) -> None:
        replicas = d["spec"]["replicas"]
        target = find_active_or_latest(new_rs, old)
        if target is not None:
            if target["spec"]["replicas"] != replicas:
                await self._scale_rs(d, target, replicas)
            return
        if new_rs is not None and is_saturated(d, new_rs):
            for rs in old:
                if rs["spec"]["replicas"] > 0:
                    await self._scale_rs(d, rs, 0)
            return
        if not is_rolling(d):
            return
        active = [rs for rs in old + ([new_rs] if new_rs else []) if rs["spec"]["replicas"] > 0]
        current = sum(rs["spec"]["replicas"] for rs in active)
        allowed = replicas + max_surge(d) if replicas > 0 else 0
        to_add = allowed - current
        if to_add != 0:
            # Largest first; among equals the newest first when growing, the oldest when shrinking.
            active.sort(key=_creation_order, reverse=to_add > 0)
            active.sort(key=lambda rs: -rs["spec"]["replicas"])
        added = 0
        sizes: dict[str, int] = {}
        for rs in active:
            if to_add != 0:
                proportion = get_proportion(rs, d, to_add, added)
                sizes[rs["metadata"]["name"]] = rs["spec"]["replicas"] + proportion
                added += proportion
            else:
                sizes[rs["metadata"]["name"]] = rs["spec"]["replicas"]
        if to_add != 0 and active:
            first = active[0]["metadata"]["name"]
            sizes[first] = max(sizes[first] + to_add - added, 0)
        for rs in active:
            await self._scale_rs(d, rs, sizes[rs["metadata"]["name"]])

    async def _scale_rs(self, d: Obj, rs: Obj, replicas: int) -> Obj:
        """Set ``rs``'s replicas (and the replicas annotations) with its cached resourceVersion."""
        size_changed = rs["spec"]["replicas"] != replicas
        annotations = dict(rs["metadata"].get("annotations") or {})
        desired = str(d["spec"]["replicas"])
        maximum = str(d["spec"]["replicas"] + max_surge(d))
        annotations_changed = (
            annotations.get(DESIRED_REPLICAS) != desired or annotations.get(MAX_REPLICAS) != maximum
        )
        if not size_changed and not annotations_changed:
            return rs
        old_replicas = rs["spec"]["replicas"]
        updated = copy.deepcopy(rs)
        updated["spec"]["replicas"] = replicas
        annotations[DESIRED_REPLICAS] = desired
        annotations[MAX_REPLICAS] = maximum
        updated["metadata"]["annotations"] = annotations
        result: Obj = await self.client.update(REPLICASETS, updated, namespace=rs["metadata"]["namespace"])
        # Later steps of this sync see the write (the caller's list holds ``rs``).
        rs["spec"]["replicas"] = replicas
        rs["metadata"] = result["metadata"]
        if size_changed:
            direction = "up" if replicas > old_replicas else "down"
            self._event(
                d, "Normal", "ScalingReplicaSet",
                f"Scaled {direction} replica set {rs['metadata']['name']} from {old_replicas} to {replicas}",
            )  # fmt: skip
        return result

    # -- strategies ----------------------------------------------------------------------------

    async def _rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old = await self._new_and_old(d, rs_list, create=True)
        assert new_rs is not None
        all_rs = [*old, new_rs]
        if await self._reconcile_new_rs(d, all_rs, new_rs):
            await self._write_status(d, all_rs, new_rs, progress=True)
            return
        if await self._reconcile_old_rss(d, all_rs, old, new_rs):
            await self._write_status(d, all_rs, new_rs, progress=True)
            return
        if deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old)
        await self._write_status(d, all_rs, new_rs, progress=True)

    async def _reconcile_new_rs(self, d: Obj, all_rs: list[Obj], new_rs: Obj) -> bool:
        replicas = d["spec"]["replicas"]
        current = new_rs["spec"]["replicas"]
        if current == replicas:
            return False
        if current > replicas:
            await self._scale_rs(d, new_rs, replicas)
            return True
        wanted = self._new_rs_replicas(d, all_rs, new_rs)
        if wanted == current:
            return False
        await self._scale_rs(d, new_rs, wanted)
        return True

    def _new_rs_replicas(self, d: Obj, all_rs: list[Obj], new_rs: Obj | None) -> int:
        replicas: int = d["spec"]["replicas"]
        if not is_rolling(d):
            return replicas
        current_new: int = new_rs["spec"]["replicas"] if new_rs is not None else 0
        total: int = sum(rs["spec"]["replicas"] for rs in all_rs)
        max_total = replicas + max_surge(d)
        if total >= max_total:
            return current_new
        return current_new + min(max_total - total, replicas - current_new)

    async def _reconcile_old_rss(self, d: Obj, all_rs: list[Obj], old: list[Obj], new_rs: Obj) -> bool:
        old_count = sum(rs["spec"]["replicas"] for rs in old)
        if old_count == 0:
            return False
        if not all(rs_synced(rs) for rs in all_rs):
            return False  # availability counts may be stale; the status update brings the key back
        all_count = sum(rs["spec"]["replicas"] for rs in all_rs)
        min_available = d["spec"]["replicas"] - max_unavailable(d)
        new_unavailable = new_rs["spec"]["replicas"] - _status(new_rs, "availableReplicas")
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = await self._cleanup_unhealthy(d, old, max_scaled_down)
        scaled = await self._scale_down_old_for_rolling(d, all_rs, old)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, d: Obj, old: list[Obj], max_cleanup: int) -> int:
        total = 0
        for rs in sorted(old, key=_creation_order):
            if total >= max_cleanup:
                break
            replicas = rs["spec"]["replicas"]
            available = _status(rs, "availableReplicas")
            if replicas == 0 or replicas == available:
                continue
            count = min(max_cleanup - total, replicas - available)
            await self._scale_rs(d, rs, replicas - count)
            total += count
        return total

    async def _scale_down_old_for_rolling(self, d: Obj, all_rs: list[Obj], old: list[Obj]) -> int:
        min_available = d["spec"]["replicas"] - max_unavailable(d)
        available = sum(_status(rs, "availableReplicas") for rs in all_rs)
        if available <= min_available:
            return 0
        to_scale = available - min_available
        total = 0
        for rs in sorted(old, key=_creation_order):
            if total >= to_scale:
                break
            replicas = rs["spec"]["replicas"]
            if replicas == 0:
                continue
            count = min(replicas, to_scale - total)
            await self._scale_rs(d, rs, replicas - count)
            total += count
        return total

    async def _rollout_recreate(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old = await self._new_and_old(d, rs_list, create=False)
        all_rs = old + ([new_rs] if new_rs else [])
        scaled = False
        for rs in old:
            if rs["spec"]["replicas"] > 0:
                await self._scale_rs(d, rs, 0)
                scaled = True
        if scaled or self._old_pods_running(old):
            await self._write_status(d, all_rs, new_rs, progress=True)
            return
        if new_rs is None:
            new_rs, old = await self._new_and_old(d, rs_list, create=True)
            assert new_rs is not None
            all_rs = [*old, new_rs]
        if new_rs["spec"]["replicas"] != d["spec"]["replicas"]:
            await self._scale_rs(d, new_rs, d["spec"]["replicas"])
        if deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old)
        await self._write_status(d, all_rs, new_rs, progress=True)

    def _old_pods_running(self, old: list[Obj]) -> bool:
        if any(_status(rs, "replicas") > 0 for rs in old):
            return True
        for rs in old:
            for pod in self.pods.indexer.by_index(cache.OWNER_UID, rs["metadata"]["uid"]):
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    async def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        cleanable = [
            rs
            for rs in old
            if _status(rs, "replicas") == 0
            and rs["spec"]["replicas"] == 0
            and not rs["metadata"].get("deletionTimestamp")
        ]
        excess = len(cleanable) - int(limit)
        if excess <= 0:
            return
        cleanable.sort(key=lambda rs: (revision(rs), _creation_order(rs)))
        for rs in cleanable[:excess]:
            if not rs_synced(rs):
                continue
            metadata = rs["metadata"]
            try:
                await self.client.delete(
                    REPLICASETS, metadata["name"], namespace=metadata["namespace"],
                    preconditions={"uid": metadata["uid"], "resourceVersion": metadata["resourceVersion"]},
                )  # fmt: skip
            except StatusError as exc:
                if exc.code not in (404, 409):
                    raise

    # -- status ----------------------------------------------------------------------------------

    async def _write_status(self, d: Obj, all_rs: list[Obj], new_rs: Obj | None, *, progress: bool) -> None:
        old_status = d.get("status") or {}
        new_status = calculate_status(d, all_rs, new_rs)
        if has_deadline(d):
            # Pausing and resuming show in the Progressing condition (upstream's checkPausedConditions).
            current = get_condition(new_status, PROGRESSING)
            reason = current.get("reason") if current else None
            if d["spec"].get("paused") and reason != PAUSED:
                set_condition(new_status, PROGRESSING, "Unknown", PAUSED, "Deployment is paused")
            elif not d["spec"].get("paused") and reason == PAUSED:
                set_condition(new_status, PROGRESSING, "Unknown", RESUMED, "Deployment is resumed")
            if progress:
                self._progress(d, old_status, new_status, new_rs)
        patch = meta.status_diff(old_status, new_status)
        if patch:
            await self._patch_status(d, patch)
        self._requeue_stuck(d, new_status)

    def _progress(self, d: Obj, old_status: Obj, new_status: Obj, new_rs: Obj | None) -> None:
        current = get_condition(new_status, PROGRESSING)
        complete_before = (
            new_status["replicas"] == new_status.get("updatedReplicas", 0)
            and current is not None
            and current.get("reason") == NEW_RS_AVAILABLE
        )
        if complete_before:
            return
        if deployment_complete(d, new_status):
            name = new_rs["metadata"]["name"] if new_rs else d["metadata"]["name"]
            set_condition(
                new_status,
                PROGRESSING,
                "True",
                NEW_RS_AVAILABLE,
                f'ReplicaSet "{name}" has successfully progressed.',
            )
        elif deployment_progressing(old_status, new_status):
            message = (
                f'ReplicaSet "{new_rs["metadata"]["name"]}" is progressing.'
                if new_rs
                else f'Deployment "{d["metadata"]["name"]}" is progressing.'
            )
            transition = (
                current.get("lastTransitionTime") if current and current["status"] == "True" else None
            )
            remove_condition(new_status, PROGRESSING)
            set_condition(new_status, PROGRESSING, "True", RS_UPDATED, message)
            if transition:
                cond = get_condition(new_status, PROGRESSING)
                assert cond is not None
                cond["lastTransitionTime"] = transition
        elif timed_out(d, new_status):
            name = new_rs["metadata"]["name"] if new_rs else d["metadata"]["name"]
            set_condition(
                new_status, PROGRESSING, "False", TIMED_OUT, f'ReplicaSet "{name}" has timed out progressing.'
            )

    def _requeue_stuck(self, d: Obj, status: Obj) -> None:
        """Sync again when the progress deadline would pass without news."""
        current = get_condition(status, PROGRESSING)
        if (
            current is None
            or not has_deadline(d)
            or d["spec"].get("paused")
            or current.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT)
            or deployment_complete(d, status)
        ):
            return
        updated = epoch(current.get("lastUpdateTime")) or time.time()
        after = updated + d["spec"]["progressDeadlineSeconds"] - time.time()
        self.queue.add_after(cache.key_of(d), max(after, 0) + 1.0)

    async def _patch_status(self, d: Obj, patch: Obj) -> None:
        result = await meta.patch_status(self.client, DEPLOYMENTS, d, patch)
        if result is not None:
            d["status"] = result.get("status") or {}

    def _event(self, d: Obj, kind: str, reason: str, message: str) -> None:
        if self.events:
            self.recorder.record(d, kind, reason, message)


# -- pure helpers ----------------------------------------------------------------------------------


def _selector(d: Obj) -> selectors.LabelSelector | None:
    try:
        return selectors.from_label_selector((d.get("spec") or {}).get("selector"))
    except StatusError:
        return None


def _status(rs: Obj, field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def rs_synced(rs: Obj) -> bool:
    """The ReplicaSet controller has observed this ReplicaSet's latest spec."""
    return _status(rs, "observedGeneration") >= int(rs["metadata"].get("generation") or 1)


def _creation_order(rs: Obj) -> tuple[float, str]:
    return (epoch(rs["metadata"].get("creationTimestamp")) or 0.0, rs["metadata"].get("name", ""))


def owner_reference(d: Obj) -> Obj:
    return meta.owner_reference(d, api_version="apps/v1", kind="Deployment")


def revision(rs: Obj) -> int:
    text = (rs["metadata"].get("annotations") or {}).get(REVISION, "")
    return int(text) if text.isdigit() else 0


def _without_hash(template: Obj) -> Obj:
    result = copy.deepcopy(template)
    labels = (result.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return result


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Templates equal once the ``pod-template-hash`` label is taken out of both."""
    return bool(_without_hash(a) == _without_hash(b))


def compute_hash(template: Obj, collision_count: int = 0) -> str:
    """A stable hash of the template (key order does not matter), spelled as upstream spells it: the
    decimal digits of a 32-bit value mapped onto a vowel-free alphabet."""
    encoded = msgspec.json.encode(_without_hash(template), order="sorted")
    digest = hashlib.sha256(encoded)
    if collision_count:
        digest.update(collision_count.to_bytes(4, "little"))
    value = int.from_bytes(digest.digest()[:4], "little")
    return "".join(_SAFE_ALPHABET[int(ch) % len(_SAFE_ALPHABET)] for ch in str(value))


def _set_new_rs_annotations(d: Obj, annotations: dict[str, str], new_revision: str) -> bool:
    """Copy the Deployment's annotations and bump the revision; True when something changed."""
    changed = False
    for key, value in (d["metadata"].get("annotations") or {}).items():
        if key in _NOT_COPIED:
            continue
        if annotations.get(key) != value:
            annotations[key] = value
            changed = True
    old_revision = annotations.get(REVISION, "")
    old_number = int(old_revision) if old_revision.isdigit() else 0
    if old_number < int(new_revision):
        annotations[REVISION] = new_revision
        changed = True
        if old_revision:
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
            annotations[REVISION_HISTORY] = ",".join([*history, old_revision])
    for key, value in (
        (DESIRED_REPLICAS, str(d["spec"]["replicas"])),
        (MAX_REPLICAS, str(d["spec"]["replicas"] + max_surge(d))),
    ):
        if key not in annotations:
            annotations[key] = value
            changed = True
    return changed


def is_rolling(d: Obj) -> bool:
    return ((d["spec"].get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable): surge rounds up, unavailable down; never both zero."""
    rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    replicas = d["spec"]["replicas"]
    surge = meta.scaled_value(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = meta.scaled_value(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return resolve_fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    replicas: int = d["spec"]["replicas"]
    if not is_rolling(d) or replicas == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas)


def find_active_or_latest(new_rs: Obj | None, old: list[Obj]) -> Obj | None:
    if new_rs is None and not old:
        return None
    newest_first = sorted(old, key=_creation_order, reverse=True)
    active = [rs for rs in [*newest_first, new_rs] if rs is not None and rs["spec"]["replicas"] > 0]
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    if len(active) == 1:
        return active[0]
    return None


def is_saturated(d: Obj, rs: Obj) -> bool:
    desired = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS, "")
    replicas = d["spec"]["replicas"]
    return bool(
        rs["spec"]["replicas"] == replicas
        and desired == str(replicas)
        and _status(rs, "availableReplicas") == replicas
    )


def get_proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    if rs["spec"]["replicas"] == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _rs_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _rs_fraction(rs: Obj, d: Obj) -> int:
    replicas = d["spec"]["replicas"]
    if replicas == 0:
        return -int(rs["spec"]["replicas"])
    deployment_replicas = replicas + max_surge(d)
    annotated = (rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS, "")
    base_size = int(annotated) if annotated.isdigit() else _status(d, "replicas")
    if base_size == 0:
        return 0
    exact = rs["spec"]["replicas"] * deployment_replicas / base_size
    rounded = math.floor(exact + 0.5)  # Go's math.Round for positive values
    return int(rounded) - int(rs["spec"]["replicas"])


def calculate_status(d: Obj, all_rs: list[Obj], new_rs: Obj | None) -> Obj:
    available = sum(_status(rs, "availableReplicas") for rs in all_rs)
    total = sum(rs["spec"]["replicas"] for rs in all_rs)
    old = d.get("status") or {}
    status: Obj = {
        "observedGeneration": d["metadata"].get("generation", 1),
        "replicas": sum(_status(rs, "replicas") for rs in all_rs),
        "updatedReplicas": _status(new_rs, "replicas") if new_rs else 0,
        "readyReplicas": sum(_status(rs, "readyReplicas") for rs in all_rs),
        "availableReplicas": available,
        "unavailableReplicas": max(total - available, 0),
    }
    for key in ("updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
        if not status[key]:
            del status[key]
    if old.get("collisionCount"):
        status["collisionCount"] = old["collisionCount"]
    status["conditions"] = copy.deepcopy(old.get("conditions") or [])
    if available >= d["spec"]["replicas"] - max_unavailable(d):
        set_condition(status, AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.")
    else:
        set_condition(
            status, AVAILABLE, "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability."
        )
    return status


def deployment_complete(d: Obj, status: Obj) -> bool:
    replicas = d["spec"]["replicas"]
    return bool(
        status.get("updatedReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
        and status.get("observedGeneration", 0) >= d["metadata"].get("generation", 1)
    )


def deployment_progressing(old: Obj, new: Obj) -> bool:
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = new.get("replicas", 0) - new.get("updatedReplicas", 0)
    return bool(
        new.get("updatedReplicas", 0) > old.get("updatedReplicas", 0)
        or new_old < old_old
        or new.get("readyReplicas", 0) > old.get("readyReplicas", 0)
        or new.get("availableReplicas", 0) > old.get("availableReplicas", 0)
    )


def has_deadline(d: Obj) -> bool:
    deadline = d["spec"].get("progressDeadlineSeconds")
    return deadline is not None and deadline != 2**31 - 1


def timed_out(d: Obj, status: Obj) -> bool:
    condition = get_condition(status, PROGRESSING)
    if condition is None or not has_deadline(d):
        return False
    if condition.get("reason") == NEW_RS_AVAILABLE:
        return False
    if condition.get("reason") == TIMED_OUT:
        return True
    updated = epoch(condition.get("lastUpdateTime"))
    return updated is not None and updated + d["spec"]["progressDeadlineSeconds"] < time.time()


def get_condition(status: Obj, kind: str) -> Obj | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            result: Obj = condition
            return result
    return None


def remove_condition(status: Obj, kind: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != kind]


def set_condition(status: Obj, kind: str, value: str, reason: str, message: str) -> None:
    """Upstream's SetDeploymentCondition: same status and reason is no change; same status keeps the
    transition time."""
    current = get_condition(status, kind)
    if current is not None and current.get("status") == value and current.get("reason") == reason:
        return
    now = timestamp()
    condition = {
        "type": kind,
        "status": value,
        "lastUpdateTime": now,
        "lastTransitionTime": current["lastTransitionTime"]
        if current and current.get("status") == value
        else now,
        "reason": reason,
        "message": message,
    }
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    conditions.append(condition)
    conditions.sort(key=lambda c: 0 if c.get("type") == AVAILABLE else 1)
    status["conditions"] = conditions
