"""The ReplicaSet controller: keep exactly ``spec.replicas`` pods that match the selector and are owned by
the ReplicaSet (pkg/controller/replicaset in shape).

Each sync of ``ns/name`` reads the ReplicaSet and the namespace's pods from the caches and:

1. **Claims pods.** A pod whose controller reference names this ReplicaSet (by uid) is owned; an owned pod
   whose labels stopped matching is released (its reference removed); an orphan that matches is adopted
   (a controller reference added), after a fresh GET proved the ReplicaSet still exists and is not being
   deleted. Pods owned by someone else are never touched. Terminating and finished pods do not count.
2. **Manages replicas**, only when the cache has caught up with this controller's own earlier writes
   (the *expectations*: every pod it created is in the cache, every pod it deleted is gone or
   terminating; without them a sync that runs before the watch delivered its creations would create them
   twice). Missing pods are created in slow-start batches of 1, 2, 4, ... (a failing batch stops the
   rest, so a quota or admission refusal costs one request, not hundreds) with ``generateName: <rs>-``,
   labels and annotations from the template and a controller reference (``blockOwnerDeletion``). Surplus
   pods are deleted least valuable first: unscheduled before scheduled, pending before running, not
   ready before ready, ready for less time before ready for longer, more restarts before fewer, newer
   before older.
3. **Writes status** through the status subresource, only when it changed: ``replicas`` (active owned
   pods), ``fullyLabeledReplicas`` (their labels carry all the template's labels), ``readyReplicas``,
   ``availableReplicas`` (ready for at least ``minReadySeconds``; the key is re-queued when the next
   pod will cross it), ``observedGeneration``, and a ``ReplicaFailure`` condition while creations fail.
   The status counts the pods as they are after this sync's own writes (deleted pods no longer count,
   created ones are not ready), so a reader never sees availability this controller just removed.

Events ``SuccessfulCreate``/``SuccessfulDelete`` (and ``FailedCreate``/``FailedDelete``) are recorded on
the ReplicaSet, fire and forget.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.events import EventRecorder
from kbox.client.interface import PODS, REPLICASETS, Client, Obj, StatusError
from kbox.controllers import base, meta, podcontrol, podutil, refmanager
from kbox.controllers.expectations import Expectations
from kbox.controllers.meta import epoch, timestamp
from kbox.controllers.podutil import is_active, ready_since

_log = logging.getLogger(__name__)

KIND = "ReplicaSet"
API_VERSION = "apps/v1"
STATUS_INT_FIELDS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas")


class ReplicaSetController(base.Controller):
    """Pods for ReplicaSets; see the module docstring."""

    name = "replicaset"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        burst_replicas: int = 500,
        expectations_timeout: float = 300.0,
        events: bool = True,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.recorder = EventRecorder(self.client, component="replicaset-controller")
        self.pod_control = podcontrol.PodControl(self.client, self._event)
        self.burst_replicas = burst_replicas
        """At most this many pods are created or deleted by one sync."""
        self.events = events
        self.expectations = Expectations(timeout=expectations_timeout)
        self.replicasets = self.informer(REPLICASETS)
        self.pods = self.informer(PODS, keys=self._keys_for_pod)
        self.pods.add_index(cache.OWNER_UID, cache.by_owner_uid)
        self._selector = meta.SelectorCache()
        """The ReplicaSet's parsed selector (immutable, so cached by uid); ``None`` if unusable."""

    # -- keys --------------------------------------------------------------------------------

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        return refmanager.owner_keys(
            pod, kind=KIND, group="apps", owners=self.replicasets, selector_of=self._selector
        )

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        rs = self.replicasets.indexer.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        namespace = rs["metadata"]["namespace"]
        selector = self._selector(rs)
        if selector is None:
            _log.warning("%s: %s has an invalid or empty selector; ignoring it", self.name, key)
            return
        deleting = bool(rs["metadata"].get("deletionTimestamp"))

        owned = await refmanager.claim(
            self.client,
            PODS,
            self.pods.indexer.by_index(cache.NAMESPACE, namespace),
            owner=rs,
            owner_resource=REPLICASETS,
            owner_ref=owner_reference(rs),
            selector=selector,
            adoptable=is_active,
        )
        active = [pod for pod in owned if is_active(pod)]

        error: Exception | None = None
        create_error: StatusError | None = None
        if not deleting and self.expectations.satisfied(key, self.pods):
            try:
                active = await self._manage(rs, active, key)
            except _ManageError as exc:
                active = exc.remaining
                error = exc.cause
                if isinstance(exc.cause, StatusError) and exc.creating:
                    create_error = exc.cause

        await self._write_status(rs, active, create_error)
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        podutil.requeue_for_availability(self.queue, key, active, min_ready)
        if error is not None:
            raise error

    async def _manage(self, rs: Obj, active: list[Obj], key: str) -> list[Obj]:
        """Create or delete pods towards ``spec.replicas``; returns the active pods after the writes."""
        wanted = int((rs.get("spec") or {}).get("replicas", 1))
        diff = len(active) - wanted
        if diff < 0:
            created, failure = await self._create_pods(rs, min(-diff, self.burst_replicas), key)
            if failure is not None:
                raise _ManageError(active + created, failure, creating=True)
            return active + created
        if diff > 0:
            victims = sorted(active, key=deletion_rank)[: min(diff, self.burst_replicas)]
            gone = {id(p) for p in victims}
            remaining = [p for p in active if id(p) not in gone]
            try:
                await self._delete_pods(rs, victims, key)
            except Exception as exc:
                raise _ManageError(remaining, exc, creating=False) from exc
            return remaining
        return active

    async def _create_pods(self, rs: Obj, count: int, key: str) -> tuple[list[Obj], Exception | None]:
        """Slow start: batches of 1, 2, 4, ...; the first failing batch stops the rest."""
        return await podutil.slow_start(
            range(count),
            lambda _: self._create_pod(rs),
            on_created=lambda pod: self.expectations.created(key, pod),
        )

    async def _create_pod(self, rs: Obj) -> Obj:
        return await self.pod_control.create(rs, pod_from_template(rs))

    async def _delete_pods(self, rs: Obj, victims: list[Obj], key: str) -> None:
        for pod in victims:
            self.expectations.deleting(key, pod)
        results = await asyncio.gather(
            *(self._delete_pod(rs, pod) for pod in victims), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _delete_pod(self, rs: Obj, pod: Obj) -> None:
        await self.pod_control.delete(rs, pod)

    # -- status ------------------------------------------------------------------------------

    async def _write_status(self, rs: Obj, active: list[Obj], create_error: StatusError | None) -> None:
        current = rs.get("status") or {}
        new = self.calculate_status(rs, active, create_error)
        patch = meta.status_diff(current, new)
        if patch:
            await meta.patch_status(self.client, REPLICASETS, rs, patch)

    def calculate_status(self, rs: Obj, active: list[Obj], create_error: StatusError | None = None) -> Obj:
        spec = rs.get("spec") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = time.time()
        fully_labeled = ready = available = 0
        for pod in active:
            labels = pod["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in template_labels.items()):
                fully_labeled += 1
            since = ready_since(pod)
            if since is not None:
                ready += 1
                if min_ready == 0 or since + min_ready <= now:
                    available += 1
        status: Obj = {
            "replicas": len(active),
            "fullyLabeledReplicas": fully_labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        # Zero counts are left out, as the Go types' omitempty leaves them out (replicas always shows).
        for field_name in STATUS_INT_FIELDS[1:]:
            if not status[field_name]:
                del status[field_name]
        conditions = [
            c for c in (rs.get("status") or {}).get("conditions") or [] if c["type"] != "ReplicaFailure"
        ]
        if create_error is not None:
            old = next(
                (
                    c
                    for c in (rs.get("status") or {}).get("conditions") or []
                    if c["type"] == "ReplicaFailure"
                ),
                None,
            )
            conditions.append(
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "lastTransitionTime": old["lastTransitionTime"] if old else timestamp(),
                    "reason": "FailedCreate",
                    "message": create_error.message,
                }
            )
        if conditions:
            status["conditions"] = conditions
        return status

    # -- events ------------------------------------------------------------------------------

    def _event(self, rs: Obj, kind: str, reason: str, message: str) -> None:
        if self.events:
            self.recorder.record(rs, kind, reason, message)


class _ManageError(Exception):
    """A failed create or delete, carrying the pods that are active after the writes that worked."""

    def __init__(self, remaining: list[Obj], cause: Exception, *, creating: bool) -> None:
        super().__init__(str(cause))
        self.remaining = remaining
        self.cause = cause
        self.creating = creating


# -- pods --------------------------------------------------------------------------------------


def owner_reference(rs: Obj) -> Obj:
    return meta.owner_reference(rs, api_version=API_VERSION, kind=KIND)


def pod_from_template(rs: Obj) -> Obj:
    """A new pod for ``rs``: template labels, annotations and finalizers, ``generateName: <rs>-``."""
    metadata = rs["metadata"]
    template = (rs.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    pod_meta: Obj = {"generateName": f"{metadata['name']}-", "namespace": metadata["namespace"]}
    for key in ("labels", "annotations", "finalizers"):
        if template_meta.get(key):
            pod_meta[key] = copy.deepcopy(template_meta[key])
    pod_meta["ownerReferences"] = [owner_reference(rs)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_rank(pod: Obj) -> tuple[Any, ...]:
    """Sort key putting the least valuable pods first (controller.ActivePods' order)."""
    status = pod.get("status") or {}
    assigned = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    phase = _PHASE_RANK.get(status.get("phase", "Pending"), 0)
    since = ready_since(pod)
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    created = epoch(pod["metadata"].get("creationTimestamp")) or 0.0
    return (
        assigned,
        phase,
        since is not None,
        -(since or 0.0),  # ready for less time first
        -restarts,
        -created,  # newer first
        pod["metadata"].get("name", ""),
    )
