"""The Job controller: run a Job's pods until enough succeed, or give up (pkg/controller/job in shape).

Each sync of ``ns/name`` reads the Job and its pods (by controller reference) from the caches and:

1. **Counts finished pods with the tracking finalizer.** Every pod is created with the finalizer
   ``batch.kubernetes.io/job-tracking``, so a finished or deleted pod stays in the API until it is
   counted. A newly finished pod's uid goes to ``status.uncountedTerminatedPods`` (written first), then
   its finalizer is removed, then the uid moves into ``succeeded``/``failed``: a crash between any two
   steps neither loses nor double counts a pod. Indexed Jobs count succeeded indexes instead
   (``completedIndexes``, ``"0-2,5"``). A deleted unfinished pod counts as failed unless
   ``podReplacementPolicy`` is ``Failed`` (the default with a ``podFailurePolicy``).
2. **Decides whether the Job failed**: a ``podFailurePolicy`` FailJob rule matched (reason
   PodFailurePolicy), more failures than ``backoffLimit`` (or, with restartPolicy OnFailure, that many
   container restarts; BackoffLimitExceeded), or ``activeDeadlineSeconds`` past (DeadlineExceeded; the
   key is re-queued for the moment it will be). As Kubernetes 1.31+, the interim ``FailureTarget``
   condition is written first, the active pods are deleted, and ``Failed`` follows once no pod is left
   running. Success (enough completions, or an Indexed Job's ``successPolicy`` rule met) likewise
   writes ``SuccessCriteriaMet``, then ``Complete`` with ``completionTime``; pods still running are deleted.
3. **Manages pods**, once the cache shows this controller's own earlier creations and deletions (the
   expectations, as the ReplicaSet controller): a suspended Job's active pods are deleted (their
   finalizers removed first, so they count as neither success nor failure) and the Suspended condition
   set; otherwise up to ``min(parallelism, completions - succeeded)`` pods run, new ones created in
   slow-start batches after the back-off that failures earned (``backoff_base`` doubling per failure
   since the last success, capped at ``backoff_max``; 10 s and 6 min as Kubernetes). Indexed Jobs
   create the lowest pending indexes and delete duplicates.

Pods whose Job is gone, finished or replaced by a namesake get their finalizer removed (keys
``pod:ns/name``), so nothing is left stuck terminating. Events: SuccessfulCreate, SuccessfulDelete,
FailedCreate, Suspended, Resumed, Completed, and the failure reason as a Warning.

Orphaned pods matching a Job's selector are adopted (getting the finalizer) and owned pods whose labels
stop matching are released, as Kubernetes does. Differences from Kubernetes: backoffLimitPerIndex and
maxFailedIndexes are refused by validation; a deleted pod counts as finished once its kubelet let go of
it (deletion grace 0), since kbox's kubelet writes no Failed phase for deleted pods.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.events import EventRecorder
from kbox.client.interface import JOBS, PODS, STRATEGIC_PATCH, Client, Obj, StatusError
from kbox.controllers import base, jobsync, meta, podcontrol, refmanager
from kbox.controllers import jobpods as jp
from kbox.controllers.expectations import Expectations
from kbox.controllers.meta import controller_ref, version_number

_log = logging.getLogger(__name__)

MANAGED_BY = "kubernetes.io/job-controller"
ORPHANS = "job-controller/orphans"
"""Pod index: the namespace of each pod without a controller (the candidates for adoption)."""
ORPHAN_PREFIX = "pod:"
"""Queue keys of pods whose finalizer may have to go because their Job did."""


class JobController(base.Controller):
    """Pods for Jobs; see the module docstring."""

    name = "job"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        backoff_base: float = 10.0,
        backoff_max: float = 360.0,
        now: Callable[[], float] = time.time,
        events: bool = True,
        expectations_timeout: float = 300.0,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        """``backoff_base``/``backoff_max``: the delay before a failed pod is replaced (doubling per
        failure); ``now``: the wall clock for startTime, deadlines and back-off (tests inject one)."""
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.recorder = EventRecorder(self.client, component="job-controller")
        self.pod_control = podcontrol.PodControl(self.client, self.event)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.now = now
        self.events = events
        self.expectations = Expectations(timeout=expectations_timeout)
        self.jobs = self.informer(JOBS)
        self.pods = self.informer(PODS, keys=self._keys_for_pod)
        self.pods.add_index(cache.OWNER_UID, cache.by_owner_uid)
        self.pods.add_index(ORPHANS, _orphan_namespace)
        self.backoff: dict[str, jp.BackoffRecord] = {}
        self.removing: dict[str, dict[str, str]] = {}
        """Job key → uid → pod key: finalizer removals this controller made that the cache has yet to show."""
        self._selector = meta.SelectorCache()
        """The Job's parsed selector (immutable, so cached by uid); None if it selects nothing."""
        self._written: dict[str, int] = {}
        """Job key → the resourceVersion of this controller's last status write (older caches wait)."""

    # -- keys --------------------------------------------------------------------------------

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        metadata = pod.get("metadata") or {}
        namespace = metadata.get("namespace", "")
        keys = refmanager.owner_keys(
            pod, kind=jp.KIND, group="batch", owners=self.jobs, selector_of=self._selector
        )
        ref = controller_ref(pod)
        owned = (
            ref is not None and ref.get("kind") == jp.KIND and ref.get("apiVersion", "").startswith("batch/")
        )
        if jp.has_finalizer(pod) and (
            not owned or metadata.get("deletionTimestamp") or jp.phase(pod) in ("Succeeded", "Failed")
        ):
            keys.append(f"{ORPHAN_PREFIX}{namespace}/{metadata.get('name', '')}")
        return keys

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        if key.startswith(ORPHAN_PREFIX):
            await self._sync_orphan_pod(key[len(ORPHAN_PREFIX) :])
            return
        job = self.jobs.indexer.get(key)
        if job is None:
            await self._forget_job(key)
            return
        spec = job.get("spec") or {}
        if spec.get("managedBy") not in (None, MANAGED_BY):
            return  # another controller's Job
        if jp.is_job_finished(job):
            self.backoff.pop(key, None)
            await self.remove_finalizers(key, [p for p in self.owned(job) if jp.has_finalizer(p)])
            return
        if _revision(job) < self._written.get(key, 0):
            return  # the cache has not seen this controller's last status write; its event comes
        pods = await self.claim(job)
        await jobsync.JobSync(self, key, job, pods).run()

    def owned(self, job: Obj) -> list[Obj]:
        uid = job["metadata"]["uid"]
        return [
            pod
            for pod in self.pods.indexer.by_index(cache.OWNER_UID, uid)
            if (ref := controller_ref(pod)) is not None and ref.get("uid") == uid
        ]

    # -- adoption --------------------------------------------------------------------------------

    async def claim(self, job: Obj) -> list[Obj]:
        """The Job's pods after releasing those whose labels stopped matching its selector and adopting
        matching orphans (with the tracking finalizer), as client-go's ``PodControllerRefManager``."""
        owned = self.owned(job)
        selector = self._selector(job)
        if selector is None:
            return owned
        orphans = self.pods.indexer.by_index(ORPHANS, job["metadata"]["namespace"])
        return await refmanager.claim(
            self.client,
            PODS,
            [*owned, *orphans],
            owner=job,
            owner_resource=JOBS,
            owner_ref=jp.owner_reference(job),
            selector=selector,
            adopt_changes=_with_tracking_finalizer,
        )

    async def _forget_job(self, key: str) -> None:
        """The Job is gone: drop what was kept for it and free its pods from the finalizer."""
        self.expectations.forget(key)
        self.backoff.pop(key, None)
        self.removing.pop(key, None)
        self._written.pop(key, None)
        namespace, _, name = key.partition("/")
        stuck = [
            pod
            for pod in self.pods.indexer.by_index(cache.NAMESPACE, namespace)
            if jp.has_finalizer(pod)
            and (ref := controller_ref(pod)) is not None
            and ref.get("kind") == jp.KIND
            and ref.get("name") == name
        ]
        await self.remove_finalizers(None, stuck)

    async def _sync_orphan_pod(self, pod_key: str) -> None:
        """Remove the finalizer of a pod no live, unfinished Job of the same uid owns."""
        pod = self.pods.indexer.get(pod_key)
        if pod is None or not jp.has_finalizer(pod):
            return
        ref = controller_ref(pod)
        if ref is not None and ref.get("kind") == jp.KIND:
            job = self.jobs.indexer.get(f"{pod['metadata']['namespace']}/{ref.get('name', '')}")
            if (
                job is not None
                and job["metadata"].get("uid") == ref.get("uid")
                and not jp.is_job_finished(job)
            ):
                return  # its Job counts it
        await self.remove_finalizers(None, [pod])

    # -- writes shared by the sync -------------------------------------------------------------

    def expected_removals(self, key: str) -> set[str]:
        """Uids of pods whose finalizer removal the cache does not show yet."""
        pending = self.removing.get(key)
        if not pending:
            return set()
        for uid, pod_key in list(pending.items()):
            pod = self.pods.indexer.get(pod_key)
            if pod is None or pod["metadata"].get("uid") != uid or not jp.has_finalizer(pod):
                del pending[uid]
        if not pending:
            self.removing.pop(key, None)
        return set(pending)

    async def remove_finalizers(self, key: str | None, pods: list[Obj]) -> set[str]:
        """Remove the tracking finalizer from ``pods``; the uids whose finalizer is gone (a pod gone
        counts). Raises the first failure after trying them all."""
        if not pods:
            return set()
        if key is not None:
            pending = self.removing.setdefault(key, {})
            for pod in pods:
                pending[pod["metadata"]["uid"]] = cache.key_of(pod)
        results = await asyncio.gather(*(self.remove_finalizer(p) for p in pods), return_exceptions=True)
        removed: set[str] = set()
        failure: BaseException | None = None
        for pod, result in zip(pods, results, strict=True):
            uid = pod["metadata"]["uid"]
            if isinstance(result, BaseException):
                failure = failure or result
                if key is not None:
                    self.removing.get(key, {}).pop(uid, None)
            else:
                removed.add(uid)
        if failure is not None:
            raise failure
        return removed

    async def remove_finalizer(self, pod: Obj) -> None:
        metadata = pod["metadata"]
        patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [jp.TRACKING_FINALIZER]}}
        try:
            await self.client.patch(
                PODS, metadata["name"], patch, namespace=metadata["namespace"], patch_type=STRATEGIC_PATCH
            )
        except StatusError as exc:
            if exc.code != 404:
                raise

    async def write_status(self, key: str, job: Obj, status: Obj) -> Obj | None:
        """PUT ``status`` with the Job's resourceVersion (a stale sync gets a conflict and runs again);
        None when the Job is gone."""
        body = dict(job)
        body["status"] = status
        try:
            result = await self.client.update(
                JOBS, body, namespace=job["metadata"]["namespace"], subresource="status"
            )
        except StatusError as exc:
            if exc.code == 404:
                return None
            raise
        self._written[key] = _revision(result)
        return result

    def event(self, job: Obj, kind: str, reason: str, message: str) -> None:
        if self.events:
            self.recorder.record(job, kind, reason, message)


# -- helpers -----------------------------------------------------------------------------------


def _orphan_namespace(pod: Obj) -> list[str]:
    if controller_ref(pod) is not None:
        return []
    return [pod["metadata"].get("namespace", "")]


def _with_tracking_finalizer(pod: Obj) -> Obj:
    """An adopted pod gets the tracking finalizer, so the Job counts it before it can vanish."""
    finalizers = list(pod["metadata"].get("finalizers") or [])
    if jp.TRACKING_FINALIZER not in finalizers:
        finalizers.append(jp.TRACKING_FINALIZER)
    return {"finalizers": finalizers}


def _revision(obj: Obj) -> int:
    return version_number(cache.resource_version_of(obj))
