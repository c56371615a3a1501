"""What the workload controllers read from their pods the same way (pkg/api/v1/pod and
pkg/controller's pod helpers, in shape): whether a pod still counts, since when it is Ready, whether it
has been Ready for ``minReadySeconds``, and when the next one will have been.

Kept in one place so the ReplicaSet, DaemonSet, StatefulSet and Job controllers count availability
alike (a controller never imports another; see the package docstring)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from kbox.client.interface import Obj
from kbox.controllers.meta import epoch

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
