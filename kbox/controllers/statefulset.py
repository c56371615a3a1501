"""The StatefulSet controller: pods with stable names, network identities and storage, created, updated
and removed in order (pkg/controller/statefulset in shape; the pods' shape is in
:mod:`kbox.controllers.statefulsetpods`).

Each sync of ``ns/name`` reads the set, its pods, revisions and claims from the caches and:

1. **Revisions.** The set's pod template is snapshotted in a ControllerRevision
   (:mod:`kbox.controllers.history`): the update revision is the one equal to the current template
   (an older equal one is renumbered as the newest, as ``rollout undo`` expects; none: a new one,
   ``status.collisionCount`` bumped on a hash collision), the current revision the one
   ``status.currentRevision`` names. Old revisions no pod uses beyond ``revisionHistoryLimit`` go.
2. **Pods**, for ordinals ``start .. start+replicas-1``: a failed or succeeded pod is deleted (and made
   again next time); a missing one gets its claims (``<template>-<set>-<ordinal>``, created if missing and
   never deleted here) and is created from the current revision when a RollingUpdate's partition holds its
   ordinal back, else from the update revision. With ``podManagementPolicy: OrderedReady`` (the default)
   one step at a time: nothing happens past a pod that is missing, terminating, or not Running and Ready;
   with ``Parallel`` every ordinal is handled at once.
3. **Scale down**: pods past the last ordinal go highest first: one at a time, each gone before the next,
   under OrderedReady; all together under Parallel.
4. **Rolling update** (``updateStrategy.type: RollingUpdate``): from the highest ordinal down to the
   partition, the first pod not at the update revision is deleted (the next sync makes it again at the
   update revision), and the walk stops at a pod that is not healthy yet. ``OnDelete`` leaves pods alone:
   a pod someone deletes comes back at the update revision.
5. **Claims' owners** follow ``persistentVolumeClaimRetentionPolicy``: ``whenDeleted: Delete`` makes the
   set an owner of its claims (the garbage collector deletes them with the set), ``whenScaled: Delete``
   makes a pod being scaled away the owner of its claims (they go with it); Retain removes those owners.
6. **Status**: replicas, ready/available/current/updated counts, revisions, collision count, observed
   generation, written through the status subresource when they changed.

Creates use fixed names, so a stale cache costs an AlreadyExists (taken as "made, not ready yet"), never
a second pod; deletions carry the uid seen. Events are worded as Kubernetes words them
(``create Pod web-0 in StatefulSet web successful``).
"""

from __future__ import annotations

import logging
from typing import Any

from kbox.api import selectors
from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.events import EventRecorder
from kbox.client.interface import (
    CONTROLLERREVISIONS,
    MERGE_PATCH,
    PODS,
    PVCS,
    STATEFULSETS,
    Client,
    Obj,
    StatusError,
)
from kbox.controllers import base, history, meta, podutil, refmanager
from kbox.controllers import statefulsetpods as sp
from kbox.controllers.meta import controller_ref

_log = logging.getLogger(__name__)


class _Stop(Exception):
    """This sync has done what it may; the next event continues (OrderedReady waits)."""


class StatefulSetController(base.Controller):
    """Pods, claims and revisions for StatefulSets; see the module docstring."""

    name = "statefulset"

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
        self.events = events
        self.recorder = EventRecorder(self.client, component="statefulset-controller")
        self.sets = self.informer(STATEFULSETS)
        self.pods = self.informer(PODS, keys=self._keys_for_pod)
        self.pods.add_index(cache.OWNER_UID, cache.by_owner_uid)
        self.revisions = self.informer(CONTROLLERREVISIONS, keys=self._keys_for_revision)
        self.revisions.add_index(cache.OWNER_UID, cache.by_owner_uid)
        self.claims = self.informer(PVCS, enqueue=False)

    # -- keys --------------------------------------------------------------------------------

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        return refmanager.owner_keys(
            pod, kind=sp.KIND, group="apps", owners=self.sets, selector_of=meta.selector_of
        )

    def _keys_for_revision(self, revision: Obj) -> list[str]:
        """Only a controlled revision's events concern a set: orphans are adopted when a set syncs."""
        return refmanager.owner_keys(
            revision,
            kind=sp.KIND,
            group="apps",
            owners=self.sets,
            selector_of=meta.selector_of,
            orphans=False,
        )

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        sts = self.sets.indexer.get(key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return  # the garbage collector removes what it owned
        selector = meta.selector_of(sts)
        if selector is None:
            _log.warning("%s: %s has an invalid or empty selector; ignoring it", self.name, key)
            return
        pods = await self._claim_pods(sts, selector)
        current, update, collisions = await self._revisions(sts)
        state = {
            ordinal: pod
            for pod in pods
            if (ordinal := sp.ordinal_of(sts["metadata"]["name"], pod)) is not None
        }
        error: Exception | None = None
        try:
            await self._update(sts, state, current, update)
        except _Stop:
            pass
        except Exception as exc:
            error = exc
        try:
            await self._sync_claim_owners(sts, state)
        except StatusError as exc:
            error = error or exc
        await self._write_status(sts, list(state.values()), current, update, collisions)
        await self._truncate_history(sts, state, current, update)
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        podutil.requeue_for_availability(self.queue, key, state.values(), min_ready)
        if error is not None:
            raise error

    async def _claim_pods(self, sts: Obj, selector: selectors.LabelSelector) -> list[Obj]:
        """The set's pods: those it controls, plus orphans that match its selector and carry one of its
        names (adopted); a controlled pod that stopped matching is released."""
        name = sts["metadata"]["name"]
        return await refmanager.claim(
            self.client,
            PODS,
            self.pods.indexer.by_index(cache.NAMESPACE, sts["metadata"]["namespace"]),
            owner=sts,
            owner_resource=STATEFULSETS,
            owner_ref=sp.owner_reference(sts),
            selector=selector,
            adoptable=lambda pod: sp.ordinal_of(name, pod) is not None,
        )

    # -- revisions ---------------------------------------------------------------------------

    async def _revisions(self, sts: Obj) -> tuple[Obj, Obj, int]:
        """(current revision, update revision, collision count), creating the update revision if needed."""
        uid = sts["metadata"]["uid"]
        revisions = [
            r
            for r in self.revisions.indexer.by_index(cache.OWNER_UID, uid)
            if history.is_controlled_by(r, sts)
        ]
        revisions += await self._adopt_revisions(sts)
        status = sts.get("status") or {}
        collisions = int(status.get("collisionCount") or 0)
        data = history.template_patch(sts)
        latest = history.max_revision(revisions)
        equal = history.find_equal(revisions, data)
        if equal:
            update = equal[-1]
            if int(update.get("revision") or 0) != latest:
                update = await history.renumber(self.client, update, latest + 1)
        else:
            body = history.new_revision(sts, kind=sp.KIND, data=data, number=latest + 1)
            update, collisions = await history.create_revision(
                self.client, sts, body, collision_count=collisions, hash_label=history.HISTORY_HASH_LABEL
            )
        wanted = status.get("currentRevision")
        current = next((r for r in revisions if r["metadata"]["name"] == wanted), None)
        return current or update, update, collisions

    async def _adopt_revisions(self, sts: Obj) -> list[Obj]:
        """Orphaned revisions of this set (it was deleted with ``--cascade=orphan`` and made again):
        named ``<set>-<hash>`` and labelled as its template, they are adopted, so its history and its
        pods' revision labels carry over."""
        selector = meta.selector_of(sts)
        prefix = f"{sts['metadata']['name']}-"
        adopted: list[Obj] = []
        for revision in self.revisions.indexer.by_index(cache.NAMESPACE, sts["metadata"]["namespace"]):
            metadata = revision["metadata"]
            if controller_ref(revision) is not None or metadata.get("deletionTimestamp"):
                continue
            if not metadata["name"].startswith(prefix) or selector is None:
                continue
            if not selector.matches(metadata.get("labels") or {}):
                continue
            result = await refmanager.adopt(
                self.client, CONTROLLERREVISIONS, revision, sp.owner_reference(sts)
            )
            if result is not None:
                adopted.append(result)
        return adopted

    async def _truncate_history(self, sts: Obj, state: dict[int, Obj], current: Obj, update: Obj) -> None:
        uid = sts["metadata"]["uid"]
        revisions = [
            r
            for r in self.revisions.indexer.by_index(cache.OWNER_UID, uid)
            if history.is_controlled_by(r, sts)
        ]
        live = {sp.revision_of(p) for p in state.values()} | {
            current["metadata"]["name"],
            update["metadata"]["name"],
        }
        limit = (sts.get("spec") or {}).get("revisionHistoryLimit")
        await history.truncate(self.client, revisions, limit=10 if limit is None else int(limit), live=live)

    # -- pods --------------------------------------------------------------------------------

    async def _update(self, sts: Obj, state: dict[int, Obj], current: Obj, update: Obj) -> None:
        """Steps 2 to 4 of the module docstring; raises :class:`_Stop` where OrderedReady must wait."""
        spec = sts.get("spec") or {}
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        start = sp.start_ordinal(sts)
        end = start + sp.replicas_of(sts)
        for ordinal in range(start, end):
            pod = state.get(ordinal)
            if pod is not None and sp.is_finished(pod) and not sp.is_terminating(pod):
                self._event(
                    sts,
                    "Warning",
                    "RecreatingFailedPod",
                    f"StatefulSet {cache.key_of(sts)} is recreating {_phase(pod)} "
                    f"Pod {pod['metadata']['name']}",
                )
                await self._delete_pod(sts, pod)
                del state[ordinal]
                pod = None
                if ordered:
                    raise _Stop
            if pod is None:
                revision = current if self._held_back(sts, ordinal - start) else update
                created = await self._create_pod(sts, ordinal, revision)
                if created is not None:
                    state[ordinal] = created
                if ordered:
                    raise _Stop
                continue
            if ordered and not sp.is_healthy(pod):
                raise _Stop
        condemned = sorted((o for o in state if o < start or o >= end), reverse=True)
        for ordinal in condemned:
            pod = state[ordinal]
            if sp.is_terminating(pod):
                if ordered:
                    raise _Stop
                continue
            await self._condemn_claims(sts, pod, ordinal)
            await self._delete_pod(sts, pod)
            state[ordinal] = _terminating(pod)
            if ordered:
                raise _Stop
        if sp.update_type(sts) != "RollingUpdate":
            return
        update_name = update["metadata"]["name"]
        for ordinal in range(end - 1, start + sp.partition_of(sts) - 1, -1):
            pod = state.get(ordinal)
            if pod is None:
                raise _Stop
            if sp.revision_of(pod) != update_name and not sp.is_terminating(pod):
                await self._delete_pod(sts, pod)
                state[ordinal] = _terminating(pod)
                raise _Stop
            if not sp.is_healthy(pod):
                raise _Stop

    def _held_back(self, sts: Obj, index: int) -> bool:
        """Whether a new pod at this position stays at the current revision (below the partition)."""
        return sp.update_type(sts) == "RollingUpdate" and index < sp.partition_of(sts)

    async def _create_pod(self, sts: Obj, ordinal: int, revision: Obj) -> Obj | None:
        name = f"{sts['metadata']['name']}-{ordinal}"
        await self._ensure_claims(sts, ordinal, name)
        pod = sp.new_pod(sts, history.template_of(revision), ordinal, revision["metadata"]["name"])
        sts_name = sts["metadata"]["name"]
        try:
            created: Obj = await self.client.create(PODS, pod, namespace=sts["metadata"]["namespace"])
        except StatusError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                return None  # the cache has not shown it yet
            self._event(
                sts,
                "Warning",
                "FailedCreate",
                f"create Pod {name} in StatefulSet {sts_name} failed error: {exc.message}",
            )
            raise
        self._event(
            sts, "Normal", "SuccessfulCreate", f"create Pod {name} in StatefulSet {sts_name} successful"
        )
        return created

    async def _ensure_claims(self, sts: Obj, ordinal: int, pod_name: str) -> None:
        """Create the ordinal's missing claims; a claim still being deleted holds the pod back."""
        namespace = sts["metadata"]["namespace"]
        sts_name = sts["metadata"]["name"]
        for template in sp.claim_templates(sts):
            claim = sp.new_claim(sts, template, ordinal)
            name = claim["metadata"]["name"]
            existing = self.claims.indexer.get(f"{namespace}/{name}")
            if existing is not None:
                if existing["metadata"].get("deletionTimestamp"):
                    raise StatusError(
                        f"pod {pod_name} can't be created because claim {name} is being deleted",
                        409,
                        "Conflict",
                    )
                continue
            refs = sp.claim_owner_refs(claim, sts, None, condemned=False)
            if refs:
                claim["metadata"]["ownerReferences"] = refs
            try:
                await self.client.create(PVCS, claim, namespace=namespace)
            except StatusError as exc:
                if exc.code == 409 and exc.reason == "AlreadyExists":
                    continue
                self._event(
                    sts,
                    "Warning",
                    "FailedCreate",
                    f"create Claim {name} for Pod {pod_name} in StatefulSet {sts_name} "
                    f"failed error: {exc.message}",
                )
                raise
            self._event(
                sts,
                "Normal",
                "SuccessfulCreate",
                f"create Claim {name} Pod {pod_name} in StatefulSet {sts_name} success",
            )

    async def _delete_pod(self, sts: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        sts_name = sts["metadata"]["name"]
        try:
            if not await meta.delete_exact(self.client, PODS, pod):
                return
        except StatusError as exc:
            self._event(
                sts,
                "Warning",
                "FailedDelete",
                f"delete Pod {name} in StatefulSet {sts_name} failed error: {exc.message}",
            )
            raise
        self._event(
            sts, "Normal", "SuccessfulDelete", f"delete Pod {name} in StatefulSet {sts_name} successful"
        )

    # -- claims' owners ----------------------------------------------------------------------

    async def _condemn_claims(self, sts: Obj, pod: Obj, ordinal: int) -> None:
        """Before a pod is scaled away: whenScaled=Delete hands its claims to it."""
        for template in sp.claim_templates(sts):
            await self._set_claim_owners(
                sts, sp.claim_name(template, sts["metadata"]["name"], ordinal), pod, condemned=True
            )

    async def _sync_claim_owners(self, sts: Obj, state: dict[int, Obj]) -> None:
        templates = sp.claim_templates(sts)
        if not templates:
            return
        start, end = sp.start_ordinal(sts), sp.start_ordinal(sts) + sp.replicas_of(sts)
        for ordinal, pod in state.items():
            if sp.is_terminating(pod):
                continue
            condemned = not start <= ordinal < end
            for template in templates:
                await self._set_claim_owners(
                    sts, sp.claim_name(template, sts["metadata"]["name"], ordinal), pod, condemned=condemned
                )

    async def _set_claim_owners(self, sts: Obj, name: str, pod: Obj | None, *, condemned: bool) -> None:
        namespace = sts["metadata"]["namespace"]
        claim = self.claims.indexer.get(f"{namespace}/{name}")
        if claim is None or claim["metadata"].get("deletionTimestamp"):
            return
        refs = sp.claim_owner_refs(claim, sts, pod, condemned=condemned)
        if refs is None:
            return
        patch = {
            "metadata": {
                "ownerReferences": refs or None,
                "resourceVersion": claim["metadata"]["resourceVersion"],
            }
        }
        try:
            await self.client.patch(PVCS, name, patch, namespace=namespace, patch_type=MERGE_PATCH)
        except StatusError as exc:
            if exc.code != 404:
                raise

    # -- status ------------------------------------------------------------------------------

    async def _write_status(
        self, sts: Obj, pods: list[Obj], current: Obj, update: Obj, collisions: int
    ) -> None:
        new = sp.status_of(
            sts,
            pods,
            current=current["metadata"]["name"],
            update=update["metadata"]["name"],
            collision_count=collisions,
        )
        # Conditions are not this controller's to remove (it writes none).
        patch = meta.status_diff(sts.get("status") or {}, new, keep=("conditions",))
        if patch:
            await meta.patch_status(self.client, STATEFULSETS, sts, patch)

    def _event(self, sts: Obj, kind: str, reason: str, message: str) -> None:
        if self.events:
            self.recorder.record(sts, kind, reason, message)


def _terminating(pod: Obj) -> Obj:
    """The pod as this sync leaves it: deleted, so terminating (status counts it no more)."""
    marked = dict(pod)
    marked["metadata"] = {**pod["metadata"], "deletionTimestamp": meta.timestamp()}
    return marked


def _phase(pod: Obj) -> str:
    return "failed" if (pod.get("status") or {}).get("phase") == "Failed" else "succeeded"
