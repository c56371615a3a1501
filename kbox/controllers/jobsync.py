"""One sync of one Job (the steps the :mod:`kbox.controllers.job` docstring lists): the state read at
its start, the decision whether the Job succeeded or failed, the pods created or deleted, and the
counting of finished pods through ``uncountedTerminatedPods`` and their tracking finalizers.

The controller keeps what outlives a sync (back-off records, finalizer removals in flight, its last
status write) and the writes every path shares; a :class:`JobSync` is made per sync and thrown away.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kbox.client.interface import Obj
from kbox.controllers import jobpods as jp
from kbox.controllers import meta, podutil
from kbox.controllers.meta import epoch

if TYPE_CHECKING:
    from kbox.controllers.job import JobController

MAX_UNCOUNTED = 500
"""At most this many pods move through ``uncountedTerminatedPods`` per sync (Kubernetes: 500)."""
BURST = 500
"""At most this many pods created or deleted per sync."""


@dataclass(frozen=True)
class Finish:
    """A terminal (or interim) condition the sync arrived at."""

    type: str
    reason: str
    message: str

    @property
    def failing(self) -> bool:
        return self.type in ("FailureTarget", "Failed")


class JobSync:
    """One sync of one Job: the state read at its start and the steps of the module docstring."""

    def __init__(self, controller: JobController, key: str, job: Obj, pods: list[Obj]) -> None:
        self.c = controller
        self.key = key
        self.job = job
        self.spec: Obj = job.get("spec") or {}
        self.status: Obj = copy.deepcopy(job.get("status") or {})
        self.now = controller.now()
        self.pods = pods
        self.indexed = self.spec.get("completionMode") == "Indexed"
        completions = self.spec.get("completions")
        self.completions: int | None = completions if isinstance(completions, int) else None
        self.suspended = self.spec.get("suspend") is True
        self.deleting = bool(job["metadata"].get("deletionTimestamp"))
        self.active_pods = [p for p in self.pods if jp.is_active(p)]
        self.active = len(self.active_pods)
        self.ready = sum(1 for p in self.active_pods if jp.is_ready(p))
        self.terminating = sum(1 for p in self.pods if jp.is_terminating(p))
        uncounted = self.status.get("uncountedTerminatedPods") or {}
        self.uncounted_succeeded: list[str] = list(uncounted.get("succeeded") or [])
        self.uncounted_failed: list[str] = list(uncounted.get("failed") or [])
        self.removing = controller.expected_removals(key)
        self.prev_indexes = (
            jp.parse_indexes(self.status.get("completedIndexes"), self.completions or 0)
            if self.indexed
            else set()
        )

    # -- helpers -----------------------------------------------------------------------------

    def _index_ok(self, pod: Obj) -> bool:
        if not self.indexed:
            return True
        index = jp.completion_index(pod)
        return index is not None and index < (self.completions or 0)

    def _uncounted(self, pod: Obj) -> bool:
        """Finished or deleted with the finalizer still on, and not yet in uncountedTerminatedPods."""
        uid = pod["metadata"]["uid"]
        return (
            jp.has_finalizer(pod)
            and uid not in self.removing
            and uid not in self.uncounted_succeeded
            and uid not in self.uncounted_failed
            and self._index_ok(pod)
        )

    def _condition(self, kind: str) -> Obj | None:
        for condition in self.status.get("conditions") or []:
            if condition.get("type") == kind:
                result: Obj = condition
                return result
        return None

    def _set_condition(self, kind: str, state: str, reason: str, message: str) -> bool:
        """Add or change the condition (never adding one that is False); whether anything changed."""
        conditions: list[Obj] = self.status.setdefault("conditions", [])
        stamp = _timestamp(self.now)
        fresh = {
            "type": kind,
            "status": state,
            "lastProbeTime": stamp,
            "lastTransitionTime": stamp,
            "reason": reason,
            "message": message,
        }
        for n, condition in enumerate(conditions):
            if condition.get("type") == kind:
                if (condition.get("status"), condition.get("reason"), condition.get("message")) == (
                    state,
                    reason,
                    message,
                ):
                    return False
                conditions[n] = fresh
                return True
        if state == "False":
            if not conditions:
                self.status.pop("conditions")
            return False
        conditions.append(fresh)
        return True

    # -- the sync ----------------------------------------------------------------------------

    async def run(self) -> None:
        c, key, job, spec = self.c, self.key, self.job, self.spec
        satisfied = c.expectations.satisfied(key, c.pods)
        new_succeeded = [p for p in self.pods if self._uncounted(p) and jp.phase(p) == "Succeeded"]
        new_failed = [p for p in self.pods if self._uncounted(p) and jp.is_failed(p, job)]
        succeeded = (
            int(self.status.get("succeeded") or 0) + len(new_succeeded) + len(self.uncounted_succeeded)
        )
        failed = (
            int(self.status.get("failed") or 0)
            + sum(1 for p in new_failed if jp.match_failure_policy(job, p).counts)
            + len(self.uncounted_failed)
        )
        if not self.status.get("startTime") and not self.suspended:
            self.status["startTime"] = _timestamp(self.now)
        record = c.backoff.get(key, jp.BackoffRecord()).after(new_succeeded, new_failed, self.now)

        finish = self._finish_so_far()
        if finish is None:
            backoff_limit = int(spec.get("backoffLimit") or 0)
            if failed > backoff_limit or self._past_backoff_on_failure(backoff_limit):
                finish = Finish(
                    "FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
                )
            elif self._past_deadline():
                finish = Finish(
                    "FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline"
                )
            elif spec.get("activeDeadlineSeconds") is not None and not self.suspended:
                c.queue.add_after(key, self._deadline_in() + 0.05)

        succeeded_indexes: set[int] = set()
        if self.indexed:
            succeeded_indexes = self.prev_indexes | {
                index
                for p in self.pods
                if jp.phase(p) == "Succeeded"
                and jp.has_finalizer(p)
                and self._index_ok(p)
                and (index := jp.completion_index(p)) is not None
            }
            succeeded = len(succeeded_indexes)
            if finish is None:
                finish = self._success_policy(succeeded_indexes)

        error: Exception | None = None
        if finish is not None:
            # Failing, or succeeded by policy: nothing more may run.
            deleted, deleted_ready, error = await self._delete_pods(self.active_pods, keep_finalizers=True)
            if deleted != self.active or not satisfied:
                finish = None  # pods or finalizers the cache has yet to show
            self.active -= deleted
            self.terminating += deleted
            self.ready -= deleted_ready
        else:
            managed = False
            if satisfied and not self.deleting:
                error = await self._manage(succeeded, succeeded_indexes, record)
                managed = True
            if self.completions is None:
                complete = succeeded > 0 and self.active == 0
            else:
                complete = succeeded >= self.completions and self.active == 0
            if complete:
                finish = Finish(
                    "SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"
                )
            elif managed:
                self._suspension()

        self.status["active"] = self.active
        if not self.active:
            del self.status["active"]  # omitempty, as the Go type
        self.status["ready"] = self.ready
        self.status["terminating"] = self.terminating
        await self._track(finish, record)
        if error is not None:
            raise error

    def _finish_so_far(self) -> Finish | None:
        """A decision an earlier sync wrote down (interim condition), or a FailJob rule matching now."""
        met = self._condition("SuccessCriteriaMet")
        if met is not None and met.get("status") == "True":
            return Finish("SuccessCriteriaMet", met.get("reason", ""), met.get("message", ""))
        target = self._condition("FailureTarget")
        if target is not None and target.get("status") == "True":
            return Finish("Failed", target.get("reason", ""), target.get("message", ""))
        for pod in self.pods:
            if jp.is_failed(pod, self.job):
                message = jp.match_failure_policy(self.job, pod).message
                if message is not None:
                    return Finish("FailureTarget", "PodFailurePolicy", message)
        return None

    def _success_policy(self, succeeded: set[int]) -> Finish | None:
        """An Indexed Job's successPolicy: the first rule its succeeded indexes satisfy (enough of
        ``succeededIndexes``, all of them without ``succeededCount``, or ``succeededCount`` of any)."""
        policy = self.spec.get("successPolicy")
        if not isinstance(policy, dict) or not succeeded:
            return None
        for n, rule in enumerate(policy.get("rules") or []):
            count = rule.get("succeededCount")
            if rule.get("succeededIndexes") is not None:
                wanted = jp.parse_indexes(rule["succeededIndexes"], self.completions or 0)
                if not wanted:
                    continue
                matched = len(wanted & succeeded)
                met = matched == len(wanted) if count is None else matched >= count
            else:
                met = count is not None and len(succeeded) >= count
            if met:
                return Finish("SuccessCriteriaMet", "SuccessPolicy", f"Matched rules at index {n}")
        return None

    def _past_backoff_on_failure(self, limit: int) -> bool:
        """restartPolicy OnFailure: container restarts of running pods count as failures."""
        template_spec = (self.spec.get("template") or {}).get("spec") or {}
        if template_spec.get("restartPolicy") != "OnFailure":
            return False
        total = sum(jp.restarts(p) for p in self.pods if jp.phase(p) in ("Pending", "Running"))
        return total > 0 if limit == 0 else total >= limit

    def _deadline_in(self) -> float:
        started = epoch(self.status.get("startTime")) or self.now
        return started + float(self.spec["activeDeadlineSeconds"]) - self.now

    def _past_deadline(self) -> bool:
        deadline = self.spec.get("activeDeadlineSeconds")
        if deadline is None or not self.status.get("startTime") or self.suspended:
            return False
        return self._deadline_in() <= 0

    def _suspension(self) -> None:
        c = self.c
        if self.suspended:
            if self._set_condition("Suspended", "True", "JobSuspended", "Job suspended"):
                c.event(self.job, "Normal", "Suspended", "Job suspended")
        elif self._set_condition("Suspended", "False", "JobResumed", "Job resumed"):
            c.event(self.job, "Normal", "Resumed", "Job resumed")
            # The deadline counts the time a Job is continuously active: it starts again on resume.
            self.status["startTime"] = _timestamp(self.now)

    # -- managing pods -----------------------------------------------------------------------

    async def _manage(
        self, succeeded: int, succeeded_indexes: set[int], record: jp.BackoffRecord
    ) -> Exception | None:
        c, spec = self.c, self.spec
        if self.suspended:
            victims = sorted(self.active_pods, key=jp.removal_rank)[:BURST]
            return await self._delete_active(victims)
        parallelism = int(spec.get("parallelism") or 0)
        if self.completions is None:
            wanted = self.active if succeeded > 0 else parallelism
        else:
            wanted = max(0, min(self.completions - succeeded, parallelism))
        victims = self._for_removal(max(0, self.active - wanted))[:BURST]
        if victims:
            # Creating and deleting in one sync could fight itself (duplicate indexes): deletion first.
            return await self._delete_active(victims)
        blocked = self.terminating if jp.only_replace_failed(self.job) else 0
        missing = min(wanted - blocked - self.active, BURST)
        if missing <= 0:
            return None
        wait = record.remaining(self.now, base=c.backoff_base, cap=c.backoff_max)
        if wait > 0:
            c.queue.add_after(self.key, wait)
            return None
        indexes: list[int | None] = [None] * missing
        if self.indexed:
            held = {jp.completion_index(p) for p in self.active_pods}
            pending = [
                i for i in range(self.completions or 0) if i not in succeeded_indexes and i not in held
            ]
            indexes = list(pending[:missing])
        return await self._create_pods(indexes)

    def _for_removal(self, at_least: int) -> list[Obj]:
        """Active pods to delete: for Indexed Jobs first those with a duplicate, missing or out of
        range index; then the cheapest to lose."""
        chosen: list[Obj] = []
        rest = list(self.active_pods)
        if self.indexed:
            seen: set[int] = set()
            rest = []
            for pod in sorted(self.active_pods, key=jp.removal_rank, reverse=True):
                index = jp.completion_index(pod)
                if index is None or index >= (self.completions or 0) or index in seen:
                    chosen.append(pod)
                else:
                    seen.add(index)
                    rest.append(pod)
        if len(chosen) < at_least:
            chosen += sorted(rest, key=jp.removal_rank)[: at_least - len(chosen)]
        return chosen

    async def _delete_active(self, victims: list[Obj]) -> Exception | None:
        """Delete pods the Job no longer wants, removing their finalizers first: they count as
        neither success nor failure."""
        deleted, deleted_ready, error = await self._delete_pods(victims, keep_finalizers=False)
        self.active -= deleted
        self.terminating += deleted
        self.ready -= deleted_ready
        return error

    async def _delete_pods(
        self, victims: list[Obj], *, keep_finalizers: bool
    ) -> tuple[int, int, Exception | None]:
        """Delete ``victims``; how many went, how many of those were ready, and the first failure."""
        if not victims:
            return 0, 0, None
        c = self.c
        for pod in victims:
            c.expectations.deleting(self.key, pod)
        results = await asyncio.gather(
            *(self._delete_pod(p, keep_finalizers=keep_finalizers) for p in victims), return_exceptions=True
        )
        deleted = deleted_ready = 0
        failure: Exception | None = None
        for pod, result in zip(victims, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                failure = failure or result
                continue
            deleted += 1
            deleted_ready += jp.is_ready(pod)
        return deleted, deleted_ready, failure

    async def _delete_pod(self, pod: Obj, *, keep_finalizers: bool) -> None:
        c = self.c
        if not keep_finalizers and jp.has_finalizer(pod):
            await c.remove_finalizer(pod)
        await c.pod_control.delete(self.job, pod)

    async def _create_pods(self, indexes: list[int | None]) -> Exception | None:
        """Slow start: batches of 1, 2, 4, ...; the first failing batch stops the rest."""
        _, failure = await podutil.slow_start(indexes, self._create_pod, on_created=self._created)
        return failure

    def _created(self, pod: Obj) -> None:
        self.c.expectations.created(self.key, pod)
        self.active += 1

    async def _create_pod(self, index: int | None) -> Obj:
        return await self.c.pod_control.create(self.job, jp.pod_from_template(self.job, index))

    # -- counting finished pods --------------------------------------------------------------

    async def _track(self, finish: Finish | None, record: jp.BackoffRecord) -> None:
        """Count finished pods through uncountedTerminatedPods and their finalizers, then write the
        terminal condition once nothing is left to count or running."""
        c, job = self.c, self.job
        with_finalizer = {
            p["metadata"]["uid"]
            for p in self.pods
            if jp.has_finalizer(p) and p["metadata"]["uid"] not in self.removing
        }
        self._settle(with_finalizer)
        to_release: list[Obj] = []
        new_indexes: set[int] = set()
        capped = False
        for pod in self.pods:
            uid = pod["metadata"]["uid"]
            if uid not in with_finalizer:
                continue
            failed = jp.is_failed(pod, job)
            if not (self.deleting or finish is not None or jp.phase(pod) == "Succeeded" or failed):
                continue
            to_release.append(pod)
            if jp.phase(pod) == "Succeeded" and uid not in self.uncounted_failed:
                if self.indexed:
                    index = jp.completion_index(pod)
                    if self._index_ok(pod) and index is not None and index not in self.prev_indexes:
                        new_indexes.add(index)
                elif uid not in self.uncounted_succeeded:
                    self.uncounted_succeeded.append(uid)
            elif (
                # A Job that failed counts every pod it had left as failed.
                (failed or (finish is not None and finish.failing))
                and uid not in self.uncounted_failed
                and self._index_ok(pod)
                and jp.match_failure_policy(job, pod).counts
            ):
                self.uncounted_failed.append(uid)
            if len(new_indexes) + len(self.uncounted_succeeded) + len(self.uncounted_failed) >= MAX_UNCOUNTED:
                capped = True
                break
        if self.indexed:
            indexes = self.prev_indexes | new_indexes
            self.status["completedIndexes"] = jp.format_indexes(indexes)
            self.status["succeeded"] = len(indexes)
            if not self.status["completedIndexes"]:
                del self.status["completedIndexes"]
        if finish is not None and finish.type == "FailureTarget":
            # The interim condition records why, before the finalizers that let the pods go are removed.
            self._set_condition("FailureTarget", "True", finish.reason, finish.message)
            finish = Finish("Failed", finish.reason, finish.message)
        if finish is not None and finish.type == "SuccessCriteriaMet":
            self._set_condition("SuccessCriteriaMet", "True", finish.reason, finish.message)
            finish = Finish("Complete", finish.reason, finish.message)
        self._put_uncounted()

        flushed = await self._flush(job)
        if flushed is None:
            return
        job = flushed
        c.backoff[self.key] = record
        failure: BaseException | None = None
        if to_release:
            try:
                removed = await c.remove_finalizers(self.key, to_release)
            except Exception as exc:  # some went: count those, then retry the rest
                failure = exc
                removed = {
                    p["metadata"]["uid"]
                    for p in to_release
                    if p["metadata"]["uid"] in c.removing.get(self.key, {})
                }
            with_finalizer -= removed
        self._settle(with_finalizer)
        self._put_uncounted()
        finished = (
            failure is None
            and not capped
            and finish is not None
            and not self.uncounted_succeeded
            and not self.uncounted_failed
            and self.terminating == 0
        )
        if finished and finish is not None:
            self._set_condition(finish.type, "True", finish.reason, finish.message)
            if finish.type == "Complete":
                self.status["completionTime"] = _timestamp(self.now)
        written = await self._flush(job)
        if written is not None and finished and finish is not None:
            if finish.type == "Complete":
                completions = self.completions
                if completions is not None and int(self.status.get("succeeded") or 0) > completions:
                    c.event(
                        written,
                        "Warning",
                        "TooManySucceededPods",
                        "Too many succeeded pods running after completion count reached",
                    )
                c.event(written, "Normal", "Completed", "Job completed")
            else:
                c.event(written, "Warning", finish.reason, finish.message)
        if failure is not None:
            raise failure

    def _settle(self, with_finalizer: set[str]) -> None:
        """Uncounted pods whose finalizer is gone are counted now."""
        keep = [uid for uid in self.uncounted_succeeded if uid in with_finalizer]
        if not self.indexed:
            moved = len(self.uncounted_succeeded) - len(keep)
            if moved:
                self.status["succeeded"] = int(self.status.get("succeeded") or 0) + moved
        self.uncounted_succeeded = keep
        keep = [uid for uid in self.uncounted_failed if uid in with_finalizer]
        moved = len(self.uncounted_failed) - len(keep)
        if moved:
            self.status["failed"] = int(self.status.get("failed") or 0) + moved
        self.uncounted_failed = keep

    def _put_uncounted(self) -> None:
        uncounted: Obj = {}
        if self.uncounted_succeeded:
            uncounted["succeeded"] = list(self.uncounted_succeeded)
        if self.uncounted_failed:
            uncounted["failed"] = list(self.uncounted_failed)
        self.status["uncountedTerminatedPods"] = uncounted
        for field in ("succeeded", "failed"):
            if not self.status.get(field):
                self.status.pop(field, None)

    async def _flush(self, job: Obj) -> Obj | None:
        """Write the status if it changed; the Job as written (or as it was), None if it is gone."""
        if self.status == (job.get("status") or {}):
            return job
        written = await self.c.write_status(self.key, job, copy.deepcopy(self.status))
        if written is not None:
            self.job = written
        return written


# -- helpers -----------------------------------------------------------------------------------


def _timestamp(moment: float) -> str:
    return meta.timestamp(datetime.datetime.fromtimestamp(moment, datetime.UTC))
