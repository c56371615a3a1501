"""What the workload controllers do with their pods the same way (pkg/api/v1/pod and pkg/controller's
pod helpers, in shape): whether a pod still counts, since when it is Ready, whether it has been Ready for
``minReadySeconds``, when the next one will have been, and creating many in slow-start batches.

Kept in one place so the ReplicaSet, DaemonSet, StatefulSet and Job controllers count availability
alike (a controller never imports another; see the package docstring)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from kbox.client import workqueue
from kbox.client.interface import Obj
from kbox.controllers.meta import epoch

T = TypeVar("T")

SLOW_START_INITIAL_BATCH = 1
AVAILABILITY_SLACK = 0.05
"""Timestamps have second precision: a re-sync for availability wakes this long after the boundary."""


def is_active(pod: Obj) -> bool:
    """Counts towards replicas: not terminating, not finished (controller.FilterActivePods)."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def ready_since(pod: Obj) -> float | None:
    """When the pod's Ready condition became True (epoch seconds; 0.0 when the time is missing or
    malformed), or ``None`` if it is not ready."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            if condition.get("status") != "True":
                return None
            since = epoch(condition.get("lastTransitionTime"))
            return since if since is not None else 0.0
    return None


def is_available(pod: Obj, min_ready: int, now: float) -> bool:
    """Ready for at least ``min_ready`` seconds at ``now`` (podutil.IsPodAvailable)."""
    since = ready_since(pod)
    return since is not None and (min_ready == 0 or since + min_ready <= now)


def next_available(pods: Iterable[Obj], min_ready: int, now: float | None = None) -> float | None:
    """Seconds until the next ready pod becomes available (plus :data:`AVAILABILITY_SLACK`), or
    ``None`` when no ready pod is still waiting for ``min_ready``: when to sync again, as the
    controllers' ``minReadySeconds`` requeue does."""
    if now is None:
        now = time.time()
    waits = [
        since + min_ready - now
        for pod in pods
        if (since := ready_since(pod)) is not None and since + min_ready > now
    ]
    return min(waits) + AVAILABILITY_SLACK if waits else None


def requeue_for_availability(
    queue: workqueue.WorkQueue, key: str, pods: Iterable[Obj], min_ready: int
) -> None:
    """With ``minReadySeconds``, sync ``key`` again when the next ready pod becomes available: no event
    marks that moment, yet the owner's available count changes then."""
    if min_ready <= 0:
        return
    wait = next_available(pods, min_ready)
    if wait is not None:
        queue.add_after(key, wait)


async def slow_start(
    items: Sequence[T],
    create: Callable[[T], Awaitable[Obj]],
    *,
    on_created: Callable[[Obj], None] | None = None,
    initial_batch: int = SLOW_START_INITIAL_BATCH,
) -> tuple[list[Obj], Exception | None]:
    """``create(item)`` for each of ``items`` in concurrent batches of 1, 2, 4, ... (upstream's
    slowStartBatch): the first batch with a failure stops the rest, so a quota or admission refusal
    costs one request, not hundreds. ``on_created`` sees each object as its batch ends (before the
    next starts: a controller records its expectations there). Returns the objects made, in order, and
    the first failure; a cancellation is raised once its batch's successes were seen."""
    created: list[Obj] = []
    batch = initial_batch
    position = 0
    while position < len(items):
        chunk = items[position : position + batch]
        results = await asyncio.gather(*(create(item) for item in chunk), return_exceptions=True)
        failure: BaseException | None = None
        for result in results:
            if isinstance(result, BaseException):
                failure = failure or result
            else:
                created.append(result)
                if on_created is not None:
                    on_created(result)
        if failure is not None:
            if not isinstance(failure, Exception):
                raise failure
            return created, failure
        position += len(chunk)
        batch *= 2
    return created, None
