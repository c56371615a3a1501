"""The kubelet: one node's agent, a component that talks to the apiserver only through a ``Client``.

It registers its Node, renews its Lease every ``lease_interval`` and rewrites Node status at least every
``node_status_interval``; it watches the pods bound to its node and, per pod (``PodWorkers``), makes the
runtime match the spec: a sandbox, init containers in order, app containers restarted per the restart
policy with exponential back-off, graceful termination on deletion and then the final delete. A relist
loop polls the runtime (the kubelet's PLEG) and re-syncs pods whose containers changed. Pod status goes
out through the ``StatusManager``. On start it adopts the sandboxes its runtime already has.

Liveness, readiness and startup probes run in ``probes.ProbeManager`` (one worker per container and
probe kind); on the simulated runtime they pass (nothing runs there to probe).

Not yet: resource-based eviction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbox.api import objects
from kbox.api.errors import StatusError
from kbox.api.nodeconnection import NodeConnections
from kbox.client import interface
from kbox.client.events import EventRecorder
from kbox.client.interface import Client
from kbox.kubelet import containers, hooks, node, probes, status, volumes
from kbox.kubelet.connection import KubeletConnection
from kbox.kubelet.runtime import interface as rt
from kbox.kubelet.runtime.interface import ContainerRuntimeError, ContainerStatus, Runtime, SandboxStatus
from kbox.kubelet.workers import PodWorkers
from kbox.util import aiotasks

_log = logging.getLogger(__name__)
Obj = dict[str, Any]


@dataclass(frozen=True)
class KubeletSettings:
    node_name: str
    cluster: str
    state_dir: Path
    control_plane: bool = True
    address: str = ""
    lease_interval: float = 10.0
    node_status_interval: float = 60.0
    relist_interval: float = 1.0
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    events: bool = True


@dataclass
class PodState:
    """What the kubelet keeps about one pod it runs."""

    namespace: str
    name: str
    uid: str
    sandbox: SandboxStatus | None = None
    current: dict[str, ContainerStatus] = field(default_factory=dict)
    previous: dict[str, ContainerStatus] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    backoff_until: dict[str, float] = field(default_factory=dict)
    backoff_delay: dict[str, float] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    start_time: str | None = None
    fingerprint: tuple[tuple[str, str, str], ...] = ()


class Kubelet:
    def __init__(
        self,
        client: Client,
        runtime: Runtime,
        settings: KubeletSettings,
        *,
        connections: NodeConnections | None = None,
    ) -> None:
        self.client = client
        self.runtime = runtime
        self.settings = settings
        self.name = settings.node_name
        self.pods: dict[str, Obj] = {}
        self.states: dict[str, PodState] = {}
        self.workers = PodWorkers(self.sync, name=f"kubelet/{self.name}")
        self.status = status.StatusManager(client)
        self.recorder = EventRecorder(client, component="kubelet", host=settings.node_name)
        self.probes = probes.ProbeManager(self)
        self.connections = connections
        self.connection = KubeletConnection(self)
        self.address = settings.address or node.host_address()
        self.node_uid = ""
        self._tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Register the node, adopt what the runtime runs, and start the loops."""
        await self._register()
        await self._adopt()
        self.status.start(f"kubelet/{self.name}")
        if self.connections is not None:
            self.connections.register(self.name, self.connection)
        prefix = f"kubelet/{self.name}"
        self._tasks = [
            aiotasks.create_guarded_task(self._lease_loop(), name=f"{prefix}/lease", logger=_log),
            aiotasks.create_guarded_task(self._node_status_loop(), name=f"{prefix}/node-status", logger=_log),
            aiotasks.create_guarded_task(self._watch_pods(), name=f"{prefix}/watch", logger=_log),
            aiotasks.create_guarded_task(self._relist_loop(), name=f"{prefix}/relist", logger=_log),
        ]

    async def stop(self) -> None:
        """Stop heartbeating and syncing; containers keep running (a restarted kubelet adopts them)."""
        if self.connections is not None:
            self.connections.unregister(self.name, self.connection)
        await aiotasks.stop(self._tasks, title=f"kubelet {self.name}")
        await self.probes.close()
        await self.workers.close()
        await self.probes.close()  # a sync cut short may have started workers meanwhile
        await self.status.close()

    # -- node ----------------------------------------------------------------------------------

    async def _register(self) -> None:
        version = await self.runtime.version()
        desired = node.node_object(
            self.name,
            address=self.address,
            runtime_version=version,
            control_plane=self.settings.control_plane,
            state_dir=self.settings.state_dir,
        )
        try:
            created = await self.client.create(interface.NODES, desired)
            self.node_uid = created["metadata"]["uid"]
        except StatusError as exc:
            if exc.code != 409:
                raise
            current = await self.client.get(interface.NODES, self.name)
            self.node_uid = current["metadata"]["uid"]
            labels = {**current["metadata"].get("labels", {}), **desired["metadata"]["labels"]}
            await self.client.patch(interface.NODES, self.name, {"metadata": {"labels": labels}})
            await self._write_node_status(desired["status"])

    async def _write_node_status(self, fresh: Obj | None = None) -> None:
        current = await self.client.get(interface.NODES, self.name)
        previous = (current.get("status") or {}).get("conditions")
        status_body = dict(fresh or current.get("status") or {})
        status_body["conditions"] = node.conditions(
            ready=True, message="kubelet is posting ready status", previous=previous
        )
        await self.client.patch(interface.NODES, self.name, {"status": status_body}, subresource="status")

    async def _lease_loop(self) -> None:
        while True:
            lease = node.lease_object(self.name, self.node_uid)
            try:
                await self.client.patch(
                    interface.LEASES,
                    self.name,
                    lease,
                    namespace="kube-node-lease",
                    patch_type=interface.APPLY_PATCH,
                    field_manager="kubelet",
                    force=True,
                )
            except StatusError as exc:
                _log.warning("renewing the lease of node %s failed: %s", self.name, exc)
            await asyncio.sleep(self.settings.lease_interval)

    async def _node_status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.node_status_interval)
            try:
                await self._write_node_status()
            except StatusError as exc:
                _log.warning("updating the status of node %s failed: %s", self.name, exc)

    # -- pods ----------------------------------------------------------------------------------

    async def _watch_pods(self) -> None:
        """List and watch the pods bound to this node; re-list after 410 Gone."""
        selector = f"spec.nodeName={self.name}"
        while True:
            listing = await self.client.list(interface.PODS, field_selector=selector)
            seen = {p["metadata"]["uid"]: p for p in listing["items"]}
            for uid in set(self.pods) - set(seen):
                self.pods.pop(uid, None)
                self.workers.update(uid)
            for uid, pod in seen.items():
                self.pods[uid] = pod
                self.workers.update(uid)
            for uid in set(self.states) - set(seen):  # adopted sandboxes of pods that are gone
                self.workers.update(uid)
            version = listing["metadata"]["resourceVersion"]
            try:
                async for event in self.client.watch(
                    interface.PODS, field_selector=selector, resource_version=version, bookmarks=True
                ):
                    if event.type == "BOOKMARK":
                        continue
                    uid = event.object["metadata"]["uid"]
                    if event.type == "DELETED":
                        self.pods.pop(uid, None)
                    else:
                        self.pods[uid] = event.object
                    self.workers.update(uid)
            except StatusError as exc:
                if exc.code != 410:
                    raise
                _log.info("pod watch of node %s expired; re-listing", self.name)

    async def _relist_loop(self) -> None:
        """Poll the runtime for container state changes (exits, OOM kills) and re-sync those pods."""
        while True:
            await asyncio.sleep(self.settings.relist_interval)
            for uid, state in list(self.states.items()):
                if state.sandbox is None:
                    continue
                try:
                    listed = await self.runtime.list_containers(state.sandbox.id)
                except ContainerRuntimeError:
                    self.workers.update(uid)
                    continue
                fingerprint = tuple(sorted((c.name, c.id, c.state) for c in listed))
                if fingerprint != state.fingerprint:
                    self.workers.update(uid)

    async def _adopt(self) -> None:
        """Take over the sandboxes and containers a previous kubelet of this node left running."""
        for sandbox in await self.runtime.list_sandboxes(self.name):
            uid = sandbox.pod.uid
            state = PodState(sandbox.pod.namespace, sandbox.pod.name, uid, sandbox=sandbox)
            for container in await self.runtime.list_containers(sandbox.id):
                _remember(state, container)
                state.restarts[container.name] = max(
                    state.restarts.get(container.name, 0), container.restart_count
                )
            state.start_time = status.rfc3339(sandbox.created_at)
            self.states[uid] = state
        if self.states:
            _log.info("kubelet %s adopted %d pods from its runtime", self.name, len(self.states))

    async def sync(self, uid: str) -> float | None:
        """Make the runtime match one pod; returns seconds until it wants to run again, if any."""
        pod = self.pods.get(uid)
        state = self.states.get(uid)
        if pod is None:
            if state is not None:
                await self._teardown(state, grace=2.0)
            return None
        metadata = pod["metadata"]
        if metadata.get("deletionTimestamp"):
            await self._terminate(pod, state)
            return None
        if state is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return None  # finished before this kubelet started; nothing to run
            state = PodState(metadata["namespace"], metadata["name"], uid, start_time=objects.timestamp())
            self.states[uid] = state
        return await containers.sync_pod(self, pod, state)

    async def _terminate(self, pod: Obj, state: PodState | None) -> None:
        metadata = pod["metadata"]
        if state is not None:
            grace = float(metadata.get("deletionGracePeriodSeconds") or 0)
            await self._teardown(state, grace=grace, pod=pod)
            self.event(pod, "Normal", "Killing", "Stopping pod")
        try:
            await self.client.delete(
                interface.PODS,
                metadata["name"],
                namespace=metadata["namespace"],
                grace_period_seconds=0,
                preconditions={"uid": metadata["uid"]},
            )
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise
        return

    async def _teardown(self, state: PodState, *, grace: float, pod: Obj | None = None) -> None:
        """Stop every container (preStop hook, SIGTERM, then SIGKILL when ``grace`` runs out), then
        remove the sandbox."""
        self.probes.forget(state.uid)
        running = [c for c in state.current.values() if c.state in ("created", "running")]
        specs = {
            c.get("name"): c
            for kind in ("initContainers", "containers")
            for c in ((pod or {}).get("spec") or {}).get(kind) or []
        }

        async def stop(container: ContainerStatus) -> None:
            left = grace
            if container.state == "running":
                left = await hooks.pre_stop(
                    self, pod, state.uid, specs.get(container.name), container.id, grace
                )
            await self.runtime.stop_container(container.id, left)

        await asyncio.gather(*(stop(c) for c in running), return_exceptions=True)
        if state.sandbox is not None:
            try:
                await self.runtime.remove_sandbox(state.sandbox.id)
            except ContainerRuntimeError as exc:
                _log.warning("removing the sandbox of %s/%s failed: %s", state.namespace, state.name, exc)
        volumes.remove_pod(self.settings.state_dir, state.uid)
        self.states.pop(state.uid, None)
        self.status.forget(state.uid)
        self.workers.forget(state.uid)

    # -- events --------------------------------------------------------------------------------

    def event(self, pod: Obj, kind: str, reason: str, message: str, *, field_path: str = "") -> None:
        """Record an Event about ``pod``; repeats fold into one Event with a count (never blocks)."""
        if self.settings.events:
            self.recorder.record(pod, kind, reason, message, field_path=field_path)

    def now(self) -> float:
        return time.monotonic()


def _remember(state: PodState, container: ContainerStatus) -> None:
    """Track the newest instance of each container name, keeping the one before as previous."""
    current = state.current.get(container.name)
    if current is None or container.restart_count >= current.restart_count:
        if current is not None and current.id != container.id:
            state.previous[container.name] = current
        state.current[container.name] = container
    elif (
        container.name not in state.previous
        or container.restart_count > state.previous[container.name].restart_count
    ):
        state.previous[container.name] = container


__all__ = ["Kubelet", "KubeletSettings", "PodState", "rt"]
