"""What the streaming subresources share: reading their query options as kube-apiserver's parameter codec
does, choosing and checking the container, refusing pods that cannot stream, and letting the server's
shutdown end long-lived streams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from kbox.api import errors

Pod = dict[str, Any]

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


def flag(query: Mapping[str, str], name: str) -> bool:
    """A boolean option: absent, ``false`` or ``0`` is false, anything else (even empty) is true."""
    value = query.get(name)
    return value is not None and value.lower() not in ("false", "0")


def integer(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


def namespace_and_name(pod: Pod) -> tuple[str, str]:
    metadata = pod.get("metadata") or {}
    return str(metadata.get("namespace") or "default"), str(metadata.get("name") or "")


def container(pod: Pod, requested: str | None) -> str:
    """The ``container`` option, else the default-container annotation, else the first container. A name
    the pod does not have is refused as kube-apiserver refuses it."""
    spec = pod.get("spec") or {}
    name = namespace_and_name(pod)[1]
    if requested:
        known = [
            c.get("name")
            for field in ("containers", "initContainers", "ephemeralContainers")
            for c in spec.get(field) or []
        ]
        if requested not in known:
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    containers = spec.get("containers") or []
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    if default and any(c.get("name") == default for c in containers):
        return str(default)
    if not containers:
        raise errors.bad_request(f"a container name must be specified for pod {name}")
    return str(containers[0].get("name"))


def require_host(pod: Pod) -> None:
    if not (pod.get("spec") or {}).get("nodeName"):
        raise errors.bad_request(f"pod {namespace_and_name(pod)[1]} does not have a host assigned")


def phase(pod: Pod) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def container_status(pod: Pod, name: str) -> dict[str, Any] | None:
    status = pod.get("status") or {}
    for field in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(field) or []:
            if entry.get("name") == name:
                return dict(entry)
    return None


def require_running_container(pod: Pod, name: str, *, action: str) -> None:
    """exec and attach need the container running: its status says so, or (no status for it yet) the pod
    is Running. ``action`` is ``exec into`` or ``attach to``."""
    current = phase(pod)
    if current in ("Succeeded", "Failed"):
        raise errors.bad_request(
            f"cannot {action} a container in a completed pod; current phase is {current}"
        )
    status = container_status(pod, name)
    running = "running" in (status.get("state") or {}) if status is not None else current == "Running"
    if not running:
        raise errors.bad_request(f'container not found ("{name}")')


def require_running_pod(pod: Pod) -> None:
    current = phase(pod)
    if current != "Running":
        raise errors.bad_request(
            f"unable to forward port because pod is not running. Current status={current}"
        )


def require_log_available(pod: Pod, name: str, *, previous: bool) -> None:
    """A container that has not started yet has no log: refuse with the kubelet's words."""
    if previous:
        return
    status = container_status(pod, name)
    pod_name = namespace_and_name(pod)[1]
    if status is None:
        if phase(pod) == "Pending":
            raise errors.bad_request(
                f'container "{name}" in pod "{pod_name}" is waiting to start: ContainerCreating'
            )
        return
    state = status.get("state") or {}
    last = status.get("lastState") or {}
    if "waiting" in state and "terminated" not in last:
        reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
        raise errors.bad_request(f'container "{name}" in pod "{pod_name}" is waiting to start: {reason}')


@contextmanager
def long_lived(request: web.Request) -> Iterator[None]:
    """Register the serving task with the apiserver's open watches, which its shutdown cancels, so an
    open log follow or exec session does not hold the server's exit for its grace period."""
    from kbox.api.app import HANDLER  # the app module imports the handlers, which import this one

    handler = request.app.get(HANDLER)
    task = asyncio.current_task()
    if handler is None or task is None:
        yield
        return
    handler.watch_tasks.add(task)
    try:
        yield
    finally:
        handler.watch_tasks.discard(task)


class UpgradeFailures:
    """Errors answered to WebSocket upgrades, remembered briefly by URL.

    kubectl retries a refused WebSocket upgrade as a SPDY/3.1 upgrade (POST) to the same URL and prints
    the error of that second attempt. kbox does not speak SPDY for exec and attach, so the second
    attempt is answered with the first one's error, which is the one worth showing; only when there is
    none does it say that SPDY is not served.
    """

    def __init__(self, ttl: float = 30.0, size: int = 256) -> None:
        self._ttl = ttl
        self._size = size
        self._errors: dict[str, tuple[float, errors.StatusError]] = {}

    @staticmethod
    def _key(request: web.Request) -> str:
        return f"{request.remote} {request.path_qs}"

    def remember(self, request: web.Request, error: errors.StatusError) -> None:
        now = time.monotonic()
        if len(self._errors) >= self._size:
            self._errors = {k: v for k, v in self._errors.items() if v[0] > now}
            while len(self._errors) >= self._size:
                self._errors.pop(next(iter(self._errors)))
        self._errors[self._key(request)] = (now + self._ttl, error)

    def recall(self, request: web.Request) -> errors.StatusError | None:
        entry = self._errors.pop(self._key(request), None)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]


def not_websocket(request: web.Request, protocols: tuple[str, ...]) -> errors.StatusError:
    """The answer to a streaming request that is not a WebSocket upgrade."""
    upgrade = request.headers.get("Upgrade", "")
    if upgrade.lower().startswith("spdy/"):
        return errors.bad_request(
            "unable to upgrade connection: kbox serves this subresource over WebSocket only "
            f"({', '.join(protocols)}); SPDY/3.1 is not supported"
        )
    return errors.bad_request("Upgrade request required")
