"""Container lifecycle hooks: ``postStart`` after a container starts, ``preStop`` before it is stopped.

Handlers are the probe handlers (exec, httpGet, tcpSocket — run by the ``ProbeManager``) plus
``sleep``. As in Kubernetes: a failed postStart hook kills the container (``FailedPostStartHook``),
which the restart policy then restarts; preStop runs within the termination grace period, and the
container's stop gets what is left of it (at least 2 s, like the kubelet). On the fake runtime hooks
succeed at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from kbox.kubelet.probes import ProbeResult

if TYPE_CHECKING:
    from kbox.kubelet.kubelet import Kubelet

Obj = dict[str, Any]
MIN_STOP_GRACE = 2.0


def handler(container: Obj, kind: str) -> Obj | None:
    """The container's ``lifecycle.<kind>`` handler, if any."""
    lifecycle = container.get("lifecycle") or {}
    found = lifecycle.get(kind)
    return found if isinstance(found, dict) and found else None


async def run(
    kubelet: Kubelet, uid: str, container: Obj, action: Obj, container_id: str, *, limit: float
) -> ProbeResult:
    """Run one hook handler for at most ``limit`` seconds; never raises."""
    if "sleep" in action:
        seconds = float((action.get("sleep") or {}).get("seconds") or 0)
        await asyncio.sleep(min(seconds, limit))
        return ProbeResult(True)
    return await kubelet.probes.probe(
        uid, container, {**action, "timeoutSeconds": max(limit, 1.0)}, container_id
    )


async def pre_stop(
    kubelet: Kubelet, pod: Obj | None, uid: str, container: Obj | None, container_id: str, grace: float
) -> float:
    """Run the preStop hook (if any) and return the grace left for the stop itself."""
    action = handler(container, "preStop") if container is not None else None
    if action is None:
        return grace
    started = time.monotonic()
    result = await run(kubelet, uid, container or {}, action, container_id, limit=grace)
    if not result.success and pod is not None:
        kubelet.event(pod, "Warning", "FailedPreStopHook", f"PreStopHook failed: {result.message}")
    return max(grace - (time.monotonic() - started), MIN_STOP_GRACE)
