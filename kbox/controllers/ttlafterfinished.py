"""The TTL-after-finished controller: delete a finished Job ``spec.ttlSecondsAfterFinished`` seconds after
it finished (pkg/controller/ttlafterfinished in shape).

A Job's finish time is its ``completionTime``, or the ``lastTransitionTime`` of its Complete or Failed
condition. Until it expires the key is re-queued for the moment it will (no polling). When it has, a
fresh GET re-checks it (the TTL may have been changed or removed meanwhile), then the Job is deleted with
a uid precondition and ``propagationPolicy: Foreground``, as Kubernetes does: the garbage collector
deletes its pods first, then the Job. The clock (``now``) is injectable for tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kbox.client import informer as informers
from kbox.client.interface import JOBS, Client, Obj, StatusError
from kbox.controllers import base, meta
from kbox.controllers.jobpods import is_job_finished

_log = logging.getLogger(__name__)


class TTLAfterFinishedController(base.Controller):
    """Deletes finished Jobs whose TTL ran out; see the module docstring."""

    name = "ttl-after-finished"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        now: Callable[[], float] = time.time,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.now = now
        self.jobs = self.informer(JOBS)

    async def sync(self, key: str) -> None:
        job = self.jobs.indexer.get(key)
        if job is None:
            return
        remaining = self.time_left(job)
        if remaining is None:
            return
        if remaining > 0:
            # Timestamps have second precision: wake a little after the moment.
            self.queue.add_after(key, remaining + 0.05)
            return
        metadata = job["metadata"]
        try:
            fresh = await self.client.get(JOBS, metadata["name"], namespace=metadata["namespace"])
        except StatusError as exc:
            if exc.code == 404:
                return
            raise
        if fresh["metadata"].get("uid") != metadata.get("uid"):
            return
        remaining = self.time_left(fresh)
        if remaining is None:
            return
        if remaining > 0:
            self.queue.add_after(key, remaining + 0.05)
            return
        _log.info("%s: deleting %s, finished more than its ttlSecondsAfterFinished ago", self.name, key)
        await meta.delete_exact(self.client, JOBS, fresh, propagation_policy="Foreground")

    def time_left(self, job: Obj) -> float | None:
        """Seconds until ``job`` expires (<= 0: it has); None if it never does (no TTL, not finished,
        already being deleted)."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if not isinstance(ttl, int) or isinstance(ttl, bool):
            return None
        if job["metadata"].get("deletionTimestamp") or not is_job_finished(job):
            return None
        finished_at = finish_time(job)
        if finished_at is None:
            return None
        return finished_at + ttl - self.now()


def finish_time(job: Obj) -> float | None:
    """When the Job finished: completionTime, else its terminal condition's transition time."""
    status = job.get("status") or {}
    if status.get("completionTime"):
        return meta.epoch(status["completionTime"])
    for condition in status.get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return meta.epoch(condition.get("lastTransitionTime"))
    return None
