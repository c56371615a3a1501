"""Pod status from runtime state, and the status manager that writes it.

``pod_status`` derives phase, conditions and container statuses the way the kubelet does: Pending until
every container has started, Running while any runs (or restarts), Succeeded or Failed once all have
terminated for good under the restart policy. ``StatusManager`` writes a pod's status through the
status subresource only when it changed, coalescing bursts: one writer task drains the pending set,
so a busy node does not flood the apiserver.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

from kbox.api.errors import StatusError
from kbox.client import interface
from kbox.client.interface import Client
from kbox.kubelet.runtime.interface import ContainerStatus
from kbox.util import aiotasks

_log = logging.getLogger(__name__)
Obj = dict[str, Any]


def rfc3339(epoch: float) -> str | None:
    if not epoch:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerView:
    """What the kubelet knows of one container of the spec."""

    name: str
    image: str
    current: ContainerStatus | None = None
    previous: ContainerStatus | None = None
    waiting_reason: str = ""
    waiting_message: str = ""
    restart_count: int = 0
    ready: bool = False


@dataclass
class PodView:
    pod_ip: str = ""
    host_ip: str = ""
    start_time: str | None = None
    init: list[ContainerView] = field(default_factory=list)
    containers: list[ContainerView] = field(default_factory=list)
    runtime_prefix: str = "docker"


def container_status(view: ContainerView, prefix: str) -> Obj:
    status: Obj = {
        "name": view.name,
        "image": view.image,
        "imageID": "",
        "ready": view.ready,
        "restartCount": view.restart_count,
        "started": False,
        "state": {},
        "lastState": {},
    }
    current = view.current
    if current is not None:
        status["containerID"] = f"{prefix}://{current.id}"
        status["imageID"] = current.image_id
    if view.waiting_reason or current is None or current.state == "created":
        waiting: Obj = {"reason": view.waiting_reason or "ContainerCreating"}
        if view.waiting_message:
            waiting["message"] = view.waiting_message
        status["state"] = {"waiting": waiting}
    elif current.state == "running":
        status["state"] = {"running": {"startedAt": rfc3339(current.started_at)}}
        status["started"] = True
    else:
        status["state"] = {"terminated": _terminated(current, prefix)}
    if view.previous is not None and view.previous.state == "exited":
        status["lastState"] = {"terminated": _terminated(view.previous, prefix)}
    elif view.waiting_reason and current is not None and current.state == "exited":
        status["lastState"] = {"terminated": _terminated(current, prefix)}
    return status


def _terminated(container: ContainerStatus, prefix: str) -> Obj:
    terminated: Obj = {
        "exitCode": container.exit_code,
        "reason": container.reason or ("Completed" if container.exit_code == 0 else "Error"),
        "startedAt": rfc3339(container.started_at),
        "finishedAt": rfc3339(container.finished_at),
        "containerID": f"{prefix}://{container.id}",
    }
    if container.message:
        terminated["message"] = container.message
    return terminated


def phase(spec: Obj, view: PodView) -> str:
    policy = spec.get("restartPolicy", "Always")
    states = [c.current.state if c.current else "" for c in view.containers]
    if any(c.waiting_reason in ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull") for c in view.init):
        return "Pending"
    if any(s == "running" for s in states):
        return "Running"
    if not states or any(s in ("", "created") for s in states):
        if any(c.restart_count for c in view.containers):
            return "Running"
        return "Pending"
    # Every container has exited.
    codes = [c.current.exit_code for c in view.containers if c.current]
    if policy == "Always":
        return "Running"  # they are restarting
    if all(code == 0 for code in codes):
        return "Succeeded"
    if policy == "Never":
        return "Failed"
    return "Running"  # OnFailure: the failed ones restart


def pod_status(pod: Obj, view: PodView, previous: Obj | None) -> Obj:
    """The status the kubelet reports for ``pod``; transition times are kept from ``previous``."""
    spec = pod.get("spec") or {}
    current_phase = phase(spec, view)
    initialized = all(
        c.current is not None and c.current.state == "exited" and c.current.exit_code == 0 for c in view.init
    )
    containers_ready = bool(view.containers) and all(c.ready for c in view.containers)
    if current_phase == "Succeeded":
        containers_ready = False
    old_conditions = {c.get("type"): c for c in (previous or {}).get("conditions") or []}
    now = rfc3339(datetime.datetime.now(datetime.UTC).timestamp())
    reason_not_ready = "PodCompleted" if current_phase in ("Succeeded", "Failed") else "ContainersNotReady"

    def condition(kind: str, ok: bool, reason: str = "") -> Obj:
        status = "True" if ok else "False"
        old = old_conditions.get(kind)
        moment = old.get("lastTransitionTime") if old and old.get("status") == status else now
        result: Obj = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": moment}
        if not ok and reason:
            result["reason"] = reason
            if reason == "ContainersNotReady":
                names = [c.name for c in view.containers if not c.ready]
                result["message"] = f"containers with unready status: [{' '.join(names)}]"
        return result

    conditions = [
        condition("PodReadyToStartContainers", bool(view.pod_ip)),
        condition("Initialized", initialized, "ContainersNotInitialized"),
        condition("Ready", containers_ready, reason_not_ready),
        condition("ContainersReady", containers_ready, reason_not_ready),
        condition("PodScheduled", True),
    ]
    status: Obj = {
        "phase": current_phase,
        "conditions": conditions,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}] if view.host_ip else [],
        "startTime": view.start_time,
        "qosClass": (previous or {}).get("qosClass")
        or (pod.get("status") or {}).get("qosClass", "BestEffort"),
        "containerStatuses": [container_status(c, view.runtime_prefix) for c in view.containers],
    }
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.init:
        status["initContainerStatuses"] = [container_status(c, view.runtime_prefix) for c in view.init]
    return status


class StatusManager:
    """Writes pod statuses through ``pods/status``, only when changed, one pod at a time per write."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._pending: dict[str, tuple[str, str, Obj]] = {}
        self._sent: dict[str, Obj] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.writes = 0

    def start(self, name: str) -> None:
        self._task = aiotasks.create_guarded_task(self._run(), name=f"{name}/status", logger=_log)

    def set(self, uid: str, namespace: str, name: str, status: Obj) -> None:
        if self._sent.get(uid) == status:
            self._pending.pop(uid, None)
            return
        self._pending[uid] = (namespace, name, status)
        self._wakeup.set()

    def forget(self, uid: str) -> None:
        self._pending.pop(uid, None)
        self._sent.pop(uid, None)

    def last(self, uid: str) -> Obj | None:
        return self._sent.get(uid)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                uid, (namespace, name, status) = self._pending.popitem()
                try:
                    await self.client.patch(
                        interface.PODS, name, {"status": status}, namespace=namespace, subresource="status"
                    )
                except StatusError as exc:
                    if exc.code != 404:
                        _log.warning("status of pod %s/%s not written: %s", namespace, name, exc)
                    continue
                self._sent[uid] = status
                self.writes += 1

    async def close(self) -> None:
        if self._task is not None:
            await aiotasks.stop([self._task], title="status manager")
