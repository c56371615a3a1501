"""The CronJob controller: Jobs from a CronJob's ``jobTemplate`` at the times its schedule names
(pkg/controller/cronjob's ControllerV2 in shape).

Keys are CronJobs; a Job's events map to the CronJob that controls it. Each sync of ``ns/name`` works on
a copy of the cached CronJob and the Jobs it controls (owner-reference uid) and:

1. **Cleans up history**: finished Jobs beyond ``successfulJobsHistoryLimit`` (default 3) and
   ``failedJobsHistoryLimit`` (default 1) are deleted, oldest start first (``SuccessfulDelete``).
2. **Reconciles ``status.active``** with the Jobs: a finished one leaves the list (``SawCompletedJob``)
   and a successful one moves ``lastSuccessfulTime`` to its ``completionTime``; an unfinished one that is
   not listed, even in the apiserver's copy of the CronJob (the cache may not show this controller's
   last status write yet), is reported (``UnexpectedJob``: a Job made by hand, such as ``kubectl create
   job --from=cronjob/...``); a listed one that is gone (asked to the apiserver, not just
   the cache) leaves it (``MissingJob``).
3. **Starts the due run**, unless the CronJob is being deleted, suspended, or has an unusable schedule
   or time zone (``UnparseableSchedule``, ``InvalidSchedule``, ``UnknownTimeZone``): the most recent
   schedule time since ``lastScheduleTime`` (or creation) — only that one, however many were missed
   while kbox was down, so a restart never starts a storm; more than 100 missed times also earn the
   ``TooManyMissedTimes`` warning. A run later than ``startingDeadlineSeconds`` is skipped
   (``MissSchedule``); with ``concurrencyPolicy: Forbid`` and a Job still active it waits
   (``JobAlreadyActive``); with ``Replace`` the active Jobs are deleted first. The Job is named
   ``<cronjob>-<scheduled time in minutes since the epoch>`` — that name is the lock that keeps one
   time from running twice — and carries the template's labels and annotations, the annotation
   ``batch.kubernetes.io/cronjob-scheduled-timestamp`` and a controller reference
   (``SuccessfulCreate``); it joins ``status.active`` and its time becomes ``lastScheduleTime``.
4. **Writes status** (an update of the status subresource with the cached resourceVersion: a stale
   cache conflicts and retries) when anything changed, and **re-queues the key for the next schedule
   time** (plus 100 ms) with the work queue's ``add_after``: nothing polls.

Time comes from a :class:`~kbox.controllers.cronschedule.Clock`: ``now()`` for schedules, and the same
clock drives the work queue's delays, so a test's :class:`~kbox.controllers.cronschedule.ManualClock`
that jumps an hour ahead makes a due CronJob run at once.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import logging
from typing import Any

from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.events import EventRecorder
from kbox.client.interface import CRONJOBS, JOBS, Client, Obj, StatusError
from kbox.controllers import base, cronschedule, meta
from kbox.controllers.meta import controller_ref, epoch

_log = logging.getLogger(__name__)

KIND = "CronJob"
API_VERSION = "batch/v1"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = 0.1
"""Seconds added to each wake-up, so a clock a little behind still finds the time has come."""
MANY_MISSED = 100

_NONE_MISSED, _FEW_MISSED, _MANY_MISSED = 0, 1, 2


class CronJobController(base.Controller):
    """Jobs for CronJobs on their schedules; see the module docstring."""

    name = "cronjob"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        clock: cronschedule.Clock | None = None,
        events: bool = True,
        name: str | None = None,
        max_retries: int | None = None,
    ) -> None:
        self.cron_clock: cronschedule.Clock = clock or cronschedule.SystemClock()
        super().__init__(factory, name=name, max_retries=max_retries, clock=self.cron_clock)
        self.client = client or factory.client
        self.recorder = EventRecorder(self.client, component="cronjob-controller")
        self.events = events
        # CronJob events go through this controller's own handlers (see :meth:`run`): a changed
        # schedule is synced at its next time, not at once.
        self.cronjobs = self.informer(CRONJOBS, enqueue=False)
        self.jobs = self.informer(JOBS, keys=self._keys_for_job)
        self.jobs.add_index(cache.OWNER_UID, cache.by_owner_uid)

    async def run(self, *, workers: int = 1, ready: asyncio.Event | None = None) -> None:
        registration = self.cronjobs.add_handler(
            self._cronjob_added, self._cronjob_updated, self._cronjob_gone
        )
        try:
            await super().run(workers=workers, ready=ready)
        finally:
            registration.remove()

    def _cronjob_added(self, cj: Obj) -> None:
        self.queue.add(cache.key_of(cj))

    def _cronjob_gone(self, cj: Obj | cache.DeletedFinalStateUnknown) -> None:
        self.queue.add(cache.key_of(cj))

    def _cronjob_updated(self, old: Obj, new: Obj) -> None:
        """A new schedule or time zone: sync at the new schedule's next time (as Kubernetes does, so an
        edit does not start a run the new schedule "missed"); any other change: sync now."""
        key = cache.key_of(new)
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        if (old_spec.get("schedule"), old_spec.get("timeZone")) == (
            new_spec.get("schedule"),
            new_spec.get("timeZone"),
        ):
            self.queue.add(key)
            return
        text = str(new_spec.get("schedule") or "")
        try:
            zone = (
                None
                if "TZ" in text or new_spec.get("timeZone") is None
                else cronschedule.load_zone(new_spec["timeZone"])
            )
            schedule = cronschedule.parse(text, zone)
        except cronschedule.ScheduleError:
            body = {"apiVersion": API_VERSION, "kind": KIND, **new}
            self._event(
                body, "Warning", "UnParseableCronJobSchedule", f"unparseable schedule for cronjob: {text}"
            )
            return
        delay = next_schedule_delay(new, self.cron_clock.now(), schedule)
        if delay is not None:
            self.queue.add_after(key, delay)

    def _keys_for_job(self, job: Obj) -> list[str]:
        ref = controller_ref(job)
        if ref is None or ref.get("kind") != KIND or not str(ref.get("apiVersion", "")).startswith("batch/"):
            return []
        return [f"{job['metadata'].get('namespace', '')}/{ref.get('name', '')}"]

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.cronjobs.indexer.get(key)
        if cached is None:
            return
        uid = cached["metadata"]["uid"]
        jobs = [
            job
            for job in self.jobs.indexer.by_index(cache.OWNER_UID, uid)
            if (ref := controller_ref(job)) is not None and ref.get("uid") == uid
        ]
        if any(finished_condition(j) is None and not _in_active(cached, j["metadata"]["uid"]) for j in jobs):
            # A running Job the cached status does not list: most likely this controller's own
            # status write has not reached the cache yet. Work from the apiserver's copy.
            cached = await self._fresh_cronjob(cached)
            if cached is None or cached["metadata"]["uid"] != uid:
                return
        cj = copy.deepcopy(cached)
        cj.setdefault("apiVersion", API_VERSION)
        cj.setdefault("kind", KIND)
        cj["status"] = dict(cj.get("status") or {})
        original = copy.deepcopy(cj["status"])
        jobs = await self._cleanup_finished(cj, jobs)
        requeue: float | None = None
        error: Exception | None = None
        try:
            requeue = await self._sync_cronjob(cj, jobs)
        except Exception as exc:  # still write what this sync learned, then retry
            error = exc
        if cj["status"] != original:
            await self._write_status(cj)
        if requeue is not None:
            self.queue.add_after(key, requeue)
        elif error is not None:
            raise error

    async def _sync_cronjob(self, cj: Obj, jobs: list[Obj]) -> float | None:
        """Steps 2 and 3 of the module docstring on ``cj`` (mutating its status); returns the seconds
        until the key should be synced again, if it should."""
        now = self.cron_clock.now()
        status = cj["status"]
        seen_uids = set()
        for job in jobs:
            job_uid = job["metadata"]["uid"]
            seen_uids.add(job_uid)
            listed = _in_active(cj, job_uid)
            condition = finished_condition(job)
            if condition is None:
                if not listed:  # not in the apiserver's copy either (see sync)
                    message = (
                        f"Saw a job that the controller did not create or forgot: {job['metadata']['name']}"
                    )
                    self._event(cj, "Warning", "UnexpectedJob", message)
                continue
            if listed:
                _remove_active(cj, job_uid)
                self._event(
                    cj, "Normal", "SawCompletedJob", f"Saw completed job: {job['metadata']['name']}, "
                    f"condition: {condition}"
                )  # fmt: skip
            if condition == "Complete":
                completed = (job.get("status") or {}).get("completionTime")
                last = status.get("lastSuccessfulTime")
                if completed and (not last or (epoch(completed) or 0) > (epoch(last) or 0)):
                    status["lastSuccessfulTime"] = completed

        for ref in list(status.get("active") or []):
            if ref.get("uid") in seen_uids:
                continue
            try:
                await self.client.get(JOBS, ref["name"], namespace=ref.get("namespace") or _namespace(cj))
            except StatusError as exc:
                if exc.code != 404:
                    raise
                self._event(cj, "Normal", "MissingJob", f"Active job went missing: {ref['name']}")
                _remove_active(cj, ref.get("uid"))

        if cj["metadata"].get("deletionTimestamp"):
            return None
        spec = cj.get("spec") or {}
        time_zone = spec.get("timeZone")
        zone: datetime.tzinfo | None = None
        if time_zone is not None:
            try:
                zone = cronschedule.load_zone(time_zone)
            except cronschedule.ScheduleError as exc:
                self._event(cj, "Warning", "UnknownTimeZone", f'invalid timeZone: "{time_zone}": {exc}')
                return None
        if spec.get("suspend"):
            return None
        schedule_text = str(spec.get("schedule") or "")
        if "TZ" in schedule_text:
            message = (
                f'CRON_TZ or TZ used in schedule "{schedule_text}" is not officially supported, see '
                "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details"
            )
            self._event(cj, "Warning", "UnsupportedSchedule", message)
            zone = None
        try:
            schedule = cronschedule.parse(schedule_text, zone)
        except cronschedule.ScheduleError as exc:
            self._event(
                cj, "Warning", "UnparseableSchedule", f'unparseable schedule: "{schedule_text}" : {exc}'
            )
            return None

        try:
            scheduled = self._next_schedule_time(cj, now, schedule)
        except ValueError as exc:
            self._event(cj, "Warning", "InvalidSchedule", f"invalid schedule: {schedule_text} : {exc}")
            return None
        if scheduled is None:
            return next_schedule_delay(cj, now, schedule)

        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + datetime.timedelta(seconds=deadline) < now:
            self._event(
                cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: {rfc1123z(scheduled)}"
            )
            return next_schedule_delay(cj, now, schedule)
        name = job_name(cj, scheduled)
        last = status.get("lastScheduleTime")
        if any(ref.get("name") == name for ref in status.get("active") or []) or (
            last and epoch(last) == scheduled.timestamp()
        ):
            return next_schedule_delay(cj, now, schedule)
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            message = "Not starting job because prior execution is running and concurrency policy is Forbid"
            self._event(cj, "Normal", "JobAlreadyActive", message)
            return next_schedule_delay(cj, now, schedule)
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                await self._delete_job(cj, ref["name"], ref.get("uid"))

        job = job_from_template(cj, scheduled)
        try:
            created = await self.client.create(JOBS, job, namespace=_namespace(cj))
        except StatusError as exc:
            if exc.code != 409 or exc.reason != "AlreadyExists":
                if not _namespace_terminating(exc):
                    self._event(cj, "Warning", "FailedCreate", f"Error creating job: {exc.message}")
                raise
            # Created by an earlier sync whose status write was lost: adopt it into the list again.
            created = await self.client.get(JOBS, name, namespace=_namespace(cj))
            ref = controller_ref(created)
            if ref is None or ref.get("uid") != cj["metadata"]["uid"]:
                return None
            if _in_active(cj, created["metadata"]["uid"]):
                return None
            _log.info("%s: job %s/%s already exists", self.name, _namespace(cj), name)
        else:
            self._event(cj, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}")
        status["active"] = [*(status.get("active") or []), job_reference(created)]
        status["lastScheduleTime"] = _timestamp(scheduled)
        return next_schedule_delay(cj, now, schedule)

    def _next_schedule_time(
        self, cj: Obj, now: datetime.datetime, schedule: cronschedule.Schedule
    ) -> datetime.datetime | None:
        _, recent, missed = most_recent_schedule_time(cj, now, schedule, include_deadline=True)
        if recent is None or recent > now:
            return None
        if missed == _MANY_MISSED:
            self._event(cj, "Warning", "TooManyMissedTimes", "too many missed start times. Set or decrease "
                        ".spec.startingDeadlineSeconds or check clock skew")  # fmt: skip
            _log.info("%s: too many missed times for %s", self.name, cache.key_of(cj))
        return recent

    async def _fresh_cronjob(self, cj: Obj) -> Obj | None:
        try:
            return await self.client.get(CRONJOBS, cj["metadata"]["name"], namespace=_namespace(cj))
        except StatusError as exc:
            if exc.code == 404:
                return None
            raise

    # -- history -----------------------------------------------------------------------------

    async def _cleanup_finished(self, cj: Obj, jobs: list[Obj]) -> list[Obj]:
        """Delete finished Jobs past the history limits; returns the Jobs left."""
        spec = cj.get("spec") or {}
        succeeded = [j for j in jobs if finished_condition(j) == "Complete"]
        failed = [j for j in jobs if finished_condition(j) == "Failed"]
        removed: set[str] = set()
        for group, limit in ((succeeded, spec.get("successfulJobsHistoryLimit")),
                             (failed, spec.get("failedJobsHistoryLimit"))):  # fmt: skip
            if limit is None or len(group) <= limit:
                continue
            for job in sorted(group, key=_start_order)[: len(group) - limit]:
                if await self._delete_job(cj, job["metadata"]["name"], job["metadata"]["uid"]):
                    removed.add(job["metadata"]["uid"])
        return [j for j in jobs if j["metadata"]["uid"] not in removed]

    async def _delete_job(self, cj: Obj, name: str, uid: str | None) -> bool:
        """Delete one Job (its pods follow, in the background) and drop it from ``status.active``."""
        try:
            await self.client.delete(
                JOBS, name, namespace=_namespace(cj), propagation_policy="Background",
                preconditions={"uid": uid} if uid else None,
            )  # fmt: skip
        except StatusError as exc:
            if exc.code not in (404, 409):
                self._event(cj, "Warning", "FailedDelete", f"Deleted job: {exc.message}")
                return False
        _remove_active(cj, uid)
        self._event(cj, "Normal", "SuccessfulDelete", f"Deleted job {name}")
        return True

    # -- status ------------------------------------------------------------------------------

    async def _write_status(self, cj: Obj) -> None:
        status = cj["status"]
        if not status.get("active"):
            status.pop("active", None)
        try:
            await self.client.update(CRONJOBS, cj, namespace=_namespace(cj), subresource="status")
        except StatusError as exc:
            if exc.code != 404:
                raise

    def _event(self, cj: Obj, kind: str, reason: str, message: str) -> None:
        if self.events:
            self.recorder.record(cj, kind, reason, message)


# -- schedule arithmetic (pkg/controller/cronjob/utils.go in shape) -------------------------------


def most_recent_schedule_time(
    cj: Obj, now: datetime.datetime, schedule: cronschedule.Schedule, *, include_deadline: bool
) -> tuple[datetime.datetime, datetime.datetime | None, int]:
    """The earliest time to look from (``lastScheduleTime``, else creation, moved up to ``now -
    startingDeadlineSeconds`` when asked), the most recent schedule time in (earliest, now] if any, and
    how many were missed (none, a few, more than 100). Counting uses the gap between the first two
    times, so a schedule missed for years costs a few steps, not one per missed time. Raises
    ``ValueError`` for a schedule whose two next times are less than a second apart."""
    status = cj.get("status") or {}
    earliest = _parse_time(status.get("lastScheduleTime")) or _parse_time(
        cj["metadata"].get("creationTimestamp")
    ) or now  # fmt: skip
    deadline = (cj.get("spec") or {}).get("startingDeadlineSeconds")
    if include_deadline and deadline is not None:
        earliest = max(earliest, now - datetime.timedelta(seconds=deadline))
    t1 = schedule.next(earliest)
    if t1 is None or now < t1:
        return earliest, None, _NONE_MISSED
    t2 = schedule.next(t1)
    if t2 is None or now < t2:
        return earliest, t1, _NONE_MISSED
    between = round((t2 - t1).total_seconds())
    if between < 1:
        raise ValueError("time difference between two schedules is less than 1 second")
    missed = int((now - t1).total_seconds()) // between + 1
    recent: datetime.datetime | None = None
    candidate = schedule.next(t1 + datetime.timedelta(seconds=(missed - 2) * between))
    while candidate is not None and candidate <= now:
        recent = candidate
        candidate = schedule.next(candidate)
    return earliest, recent, _MANY_MISSED if missed > MANY_MISSED else _FEW_MISSED


def next_schedule_delay(cj: Obj, now: datetime.datetime, schedule: cronschedule.Schedule) -> float | None:
    """Seconds from ``now`` until the next schedule time (plus :data:`NEXT_SCHEDULE_DELTA`), or ``None``
    when the schedule never fires again."""
    try:
        earliest, recent, missed = most_recent_schedule_time(cj, now, schedule, include_deadline=False)
    except ValueError:
        earliest, recent, missed = now, now, _FEW_MISSED
    if recent is None:
        recent = earliest if missed == _NONE_MISSED else now
    upcoming = schedule.next(recent)
    if upcoming is None:
        return None
    return (upcoming - now).total_seconds() + NEXT_SCHEDULE_DELTA


# -- jobs --------------------------------------------------------------------------------------


def job_name(cj: Obj, scheduled: datetime.datetime) -> str:
    """``<cronjob>-<minutes since the epoch>``: one name per scheduled time."""
    return f"{cj['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cj: Obj, scheduled: datetime.datetime) -> Obj:
    """The Job for the run at ``scheduled``: the template's labels, annotations and spec, the scheduled
    time annotation (in the CronJob's zone, UTC without one) and a controller reference."""
    metadata = cj["metadata"]
    template = (cj.get("spec") or {}).get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    time_zone = (cj.get("spec") or {}).get("timeZone")
    try:
        zone = cronschedule.load_zone(time_zone or "")
    except cronschedule.ScheduleError:
        zone = cronschedule.UTC
    annotations = dict(template_meta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = rfc3339(scheduled.astimezone(zone))
    job_meta: Obj = {
        "name": job_name(cj, scheduled),
        "namespace": metadata["namespace"],
        "annotations": annotations,
        "ownerReferences": [meta.owner_reference(cj, api_version=API_VERSION, kind=KIND)],
    }
    if template_meta.get("labels"):
        job_meta["labels"] = dict(template_meta["labels"])
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": job_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def job_reference(job: Obj) -> Obj:
    """The ``ObjectReference`` ``status.active`` lists."""
    metadata = job["metadata"]
    return {
        "kind": "Job",
        "namespace": metadata.get("namespace", ""),
        "name": metadata["name"],
        "uid": metadata["uid"],
        "apiVersion": API_VERSION,
        "resourceVersion": metadata.get("resourceVersion", ""),
    }


def finished_condition(job: Obj) -> str | None:
    """``"Complete"`` or ``"Failed"`` when that condition is True, else ``None``."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def _start_order(job: Obj) -> tuple[bool, float, str]:
    started = epoch((job.get("status") or {}).get("startTime"))
    return (started is None, started or 0.0, job["metadata"]["name"])


def _in_active(cj: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in (cj.get("status") or {}).get("active") or [])


def _remove_active(cj: Obj, uid: str | None) -> None:
    status = cj["status"]
    status["active"] = [ref for ref in status.get("active") or [] if ref.get("uid") != uid]


def _namespace(cj: Obj) -> str:
    return str(cj["metadata"].get("namespace") or "default")


def _namespace_terminating(exc: StatusError) -> bool:
    causes = (exc.details or {}).get("causes") or []
    return any(cause.get("reason") == "NamespaceTerminating" for cause in causes)


def _parse_time(text: Any) -> datetime.datetime | None:
    seconds = epoch(text) if isinstance(text, str) else None
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds, cronschedule.UTC)


def _timestamp(when: datetime.datetime) -> str:
    return when.astimezone(cronschedule.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339(when: datetime.datetime) -> str:
    """Go's ``time.RFC3339``: ``Z`` for UTC, else the numeric offset."""
    text = when.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if when.utcoffset() == datetime.timedelta(0) else text


def rfc1123z(when: datetime.datetime) -> str:
    """Go's ``time.RFC1123Z`` of the UTC time: ``Mon, 30 Nov 2026 00:00:00 +0000``."""
    return when.astimezone(cronschedule.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
