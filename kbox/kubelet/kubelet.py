"""The kubelet: one node's agent, a component that talks to the apiserver only through a ``Client``.

It registers its Node, renews its Lease every ``lease_interval`` and rewrites Node status at least every
``node_status_interval``; it watches the pods bound to its node and, per pod (``PodWorkers``), makes the
runtime match the spec: a sandbox, init containers in order, app containers restarted per the restart
policy with exponential back-off, graceful termination on deletion and then the final delete. Pod status
goes out through the ``StatusManager``. On start it adopts the sandboxes its runtime already has.

The relist (the kubelet's PLEG) lists the whole node once per ``relist_interval`` (one runtime call,
never one per pod) and re-syncs the pods whose containers changed; a runtime that can tell that
nothing changed on the node (the simulated one) makes a quiet node's relist free. When the runtime
cannot be reached, :class:`~kbox.kubelet.health.RuntimeHealth` turns the node NotReady, pods pause,
the relist probes with back-off, and on recovery every pod re-syncs (running containers are kept).

Liveness, readiness and startup probes run in ``probes.ProbeManager`` (one worker per container and
probe kind); on the simulated runtime they pass (nothing runs there to probe).

Not yet: resource-based eviction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kbox.api import objects
from kbox.api.errors import StatusError
from kbox.api.nodeconnection import MIRROR_ANNOTATION, NodeConnections
from kbox.client import interface
from kbox.client.events import EventRecorder
from kbox.client.informer import InformerFactory
from kbox.client.interface import Client
from kbox.kubelet import configwatch, containers, dns, health, hooks, memoryfs, node, probes, status, volumes
from kbox.kubelet.connection import KubeletConnection
from kbox.kubelet.runtime import interface as rt
from kbox.kubelet.runtime.interface import (
    ContainerBrief,
    ContainerRuntimeError,
    ContainerStatus,
    Runtime,
    SandboxStatus,
)
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
    runtime_retry_max: float = health.RETRY_MAX  # longest wait between probes of a runtime that is down
    events: bool = True
    cluster_dns: list[str] = field(default_factory=list)  # the kube-dns Service IP(s); empty: no cluster DNS
    cluster_domain: str = "cluster.local"
    resolv_conf: str = "/etc/resolv.conf"  # the host's resolver config (dnsPolicy Default, host searches)


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
    fingerprint: tuple[tuple[str, str, bool], ...] = ()  # (name, id, running) of its containers


def fingerprint(briefs: list[ContainerBrief]) -> tuple[tuple[str, str, bool], ...]:
    """What the relist compares: a pod's app containers by name, id and whether they run (the same
    shape as ``containers.fingerprint`` makes from a sync's full statuses)."""
    return tuple(sorted((b.name, b.id, b.running) for b in briefs if not b.sandbox))


class Kubelet:
    def __init__(
        self,
        client: Client,
        runtime: Runtime,
        settings: KubeletSettings,
        *,
        connections: NodeConnections | None = None,
        informers: InformerFactory | None = None,
    ) -> None:
        """``informers``: a factory shared with other components (one watch per kind in the process);
        without one the kubelet makes its own, started only if a pod mounts a ConfigMap or Secret."""
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
        self.runtime_version = ""
        self.host_dns = dns.DnsConfig()  # read from settings.resolv_conf at start
        self.health = health.RuntimeHealth(
            self.name, on_change=self._runtime_changed, retry_max=settings.runtime_retry_max
        )
        self._adopted = False
        self._paused: set[str] = set()  # pods whose sync waits for the runtime to come back
        self._relist_revision: int | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._node_writes: set[asyncio.Task[Any]] = set()
        self._owns_informers = informers is None
        self.informers = informers or InformerFactory(client)
        self.config_watch = configwatch.ConfigWatch(self.informers, self.workers.update)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Register the node, adopt what the runtime runs, and start the loops."""
        self.host_dns = await asyncio.to_thread(dns.read_host_config, self.settings.resolv_conf)
        await self._register()
        if self.health.ok:
            await self._adopt_or_pause()
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

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        """The kubelet's loops (empty until started); one ending is a failure of the kubelet."""
        return list(self._tasks)

    async def stop(self) -> None:
        """Stop heartbeating and syncing; containers keep running (a restarted kubelet adopts them)."""
        if self.connections is not None:
            self.connections.unregister(self.name, self.connection)
        await aiotasks.stop([*self._tasks, *self._node_writes], title=f"kubelet {self.name}")
        self.config_watch.close()
        if self._owns_informers:
            await self.informers.stop()
        await self.probes.close()
        await self.workers.close()
        await self.probes.close()  # a sync cut short may have started workers meanwhile
        await self.status.close()

    async def stop_pods(self, *, grace: float = 10.0) -> None:
        """After :meth:`stop`: stop every pod's containers (preStop, SIGTERM, SIGKILL after at most
        ``grace`` seconds) and its sandbox, as a node shutting down does. Nothing is removed: the next
        kubelet on this node finds the stopped sandboxes, starts the pods again and counts the restarts.
        ``kbox stop`` uses it; the embedded fixture's restarts leave pods running instead."""

        async def stop_pod(state: PodState) -> None:
            pod = self.pods.get(state.uid) or {}
            wanted = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            left = min(grace, float(wanted)) if isinstance(wanted, int | float) else grace
            specs = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}

            async def stop(container: ContainerStatus) -> None:
                remaining = left
                if container.state == "running" and pod:
                    remaining = await hooks.pre_stop(
                        self, pod, state.uid, specs.get(container.name), container.id, left
                    )
                await self.runtime.stop_container(container.id, remaining)

            running = [c for c in state.current.values() if c.state in ("created", "running")]
            await asyncio.gather(*(stop(c) for c in running), return_exceptions=True)
            if state.sandbox is not None:
                try:
                    await self.runtime.stop_sandbox(state.sandbox.id)
                except ContainerRuntimeError as exc:
                    _log.warning("stopping the sandbox of %s/%s failed: %s", state.namespace, state.name, exc)

        await asyncio.gather(*(stop_pod(state) for state in list(self.states.values())))

    # -- node ----------------------------------------------------------------------------------

    async def _register(self) -> None:
        try:
            self.runtime_version = await self.runtime.version()
        except ContainerRuntimeError as exc:
            if not exc.unavailable:
                raise
            # Register anyway, NotReady: the relist notices when the runtime comes (back).
            self.runtime_version = f"{self.runtime.name}://unknown"
            self.health.failed(exc)
        desired = node.node_object(
            self.name,
            address=self.address,
            runtime_version=self.runtime_version,
            control_plane=self.settings.control_plane,
            state_dir=self.settings.state_dir,
        )
        if not self.health.ok:
            desired["status"]["conditions"] = node.conditions(ready=False, message=self.health.message)
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
        ready = self.health.ok
        message = "kubelet is posting ready status" if ready else self.health.message
        status_body["conditions"] = node.conditions(ready=ready, message=message, previous=previous)
        if self.runtime_version and isinstance(status_body.get("nodeInfo"), dict):
            status_body["nodeInfo"] = {
                **status_body["nodeInfo"],
                "containerRuntimeVersion": self.runtime_version,
            }
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
            # Mirror pods are the API's view of static pods (kbox's own control plane): not run here.
            seen = {p["metadata"]["uid"]: p for p in listing["items"] if not is_mirror_pod(p)}
            for uid in set(self.pods) - set(seen):
                self.pods.pop(uid, None)
                self.config_watch.forget(uid)
                self.workers.update(uid)
            for uid, pod in seen.items():
                self.pods[uid] = pod
                self.config_watch.track(uid, pod)
                self.workers.update(uid)
            for uid in set(self.states) - set(seen):  # adopted sandboxes of pods that are gone
                self.workers.update(uid)
            version = listing["metadata"]["resourceVersion"]
            try:
                async for event in self.client.watch(
                    interface.PODS, field_selector=selector, resource_version=version, bookmarks=True
                ):
                    if event.type == "BOOKMARK" or is_mirror_pod(event.object):
                        continue
                    uid = event.object["metadata"]["uid"]
                    if event.type == "DELETED":
                        self.pods.pop(uid, None)
                        self.config_watch.forget(uid)
                    else:
                        self.pods[uid] = event.object
                        self.config_watch.track(uid, event.object)
                    self.workers.update(uid)
            except StatusError as exc:
                if exc.code != 410:
                    raise
                _log.info("pod watch of node %s expired; re-listing", self.name)

    async def _relist_loop(self) -> None:
        """The PLEG: one listing of the node per period; while the runtime is down, probe with back-off."""
        while True:
            ok = self.health.ok
            await asyncio.sleep(self.settings.relist_interval if ok else self.health.retry_delay())
            await self.relist()

    async def relist(self) -> None:
        """List every container of the node once and re-sync the pods whose containers changed."""
        revision = self.runtime.node_revision(self.name)
        if revision is not None and revision == self._relist_revision and self.health.ok:
            return  # nothing changed on this node since the last relist
        started = time.time()
        try:
            listed = await self.runtime.list_node(self.name)
        except ContainerRuntimeError as exc:
            if exc.unavailable:
                self.health.failed(exc)
            else:
                _log.warning("relisting the containers of node %s failed: %s", self.name, exc)
            return
        self._relist_revision = revision
        by_pod: dict[str, list[ContainerBrief]] = {}
        for brief in listed:
            by_pod.setdefault(brief.pod_uid, []).append(brief)
        for uid, state in self.states.items():
            if state.sandbox is None:
                continue
            found = by_pod.get(uid, [])
            changed = False
            if state.sandbox.ready and state.sandbox.created_at < started - 1.0:
                alive = any(b.sandbox and b.id == state.sandbox.id and b.running for b in found)
                if not alive:  # the sandbox died or was removed: the sync makes a new one
                    state.sandbox = replace(state.sandbox, ready=False)
                    changed = True
            seen = fingerprint(found)
            if changed or seen != state.fingerprint:
                state.fingerprint = seen
                self.workers.update(uid)
        if not self.health.ok:  # back (sandboxes that died meanwhile are marked above): re-sync all
            self.runtime_version = await self._version_or(self.runtime_version)
            self.health.recovered()

    async def _version_or(self, fallback: str) -> str:
        try:
            return await self.runtime.version()
        except ContainerRuntimeError:
            return fallback

    def _runtime_changed(self) -> None:
        """The runtime went down or came back: tell the apiserver at once, and re-sync on recovery."""
        task = aiotasks.create_guarded_task(
            self._runtime_changed_async(), name=f"kubelet/{self.name}/runtime-health", logger=_log
        )
        self._node_writes.add(task)
        task.add_done_callback(self._node_writes.discard)

    async def _runtime_changed_async(self) -> None:
        if self.health.ok:
            try:
                await self._adopt_or_pause()
            except ContainerRuntimeError as exc:
                if not exc.unavailable:
                    raise
                self.health.failed(exc)
                return
            paused, self._paused = self._paused, set()
            for uid in paused | set(self.pods) | set(self.states):
                self.workers.update(uid)
        if not self.node_uid:
            return  # not registered yet: the registration writes the condition
        try:
            await self._write_node_status()
        except StatusError as exc:
            _log.warning("updating the status of node %s failed: %s", self.name, exc)

    async def _adopt_or_pause(self) -> None:
        """Adopt once, when the runtime first answers (at start, or when it comes up later)."""
        if self._adopted:
            return
        try:
            await self._adopt()
        except ContainerRuntimeError as exc:
            if not exc.unavailable:
                raise
            self.health.failed(exc)
            return
        self._adopted = True

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
        """Make the runtime match one pod; returns seconds until it wants to run again, if any.

        While the runtime is down the pod waits (paused), and a sync that finds it down on the way
        pauses too: nothing is recorded against the pod; the recovery re-syncs it."""
        if not self.health.ok or not self._adopted:
            self._paused.add(uid)
            return None
        try:
            return await self._sync(uid)
        except ContainerRuntimeError as exc:
            if not exc.unavailable:
                raise
            self.health.failed(exc)
            self._paused.add(uid)
            return None

    async def _sync(self, uid: str) -> float | None:
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

        results = await asyncio.gather(*(stop(c) for c in running), return_exceptions=True)
        for result in results:
            if isinstance(result, ContainerRuntimeError) and result.unavailable:
                raise result  # the runtime is down: the teardown runs again when it is back
        if state.sandbox is not None:
            try:
                await self.runtime.remove_sandbox(state.sandbox.id)
            except ContainerRuntimeError as exc:
                if exc.unavailable:
                    raise
                _log.warning("removing the sandbox of %s/%s failed: %s", state.namespace, state.name, exc)
        volumes.remove_pod(self.settings.state_dir, state.uid)
        memoryfs.remove_pod(self.settings.state_dir, state.uid)
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


def is_mirror_pod(pod: Obj) -> bool:
    """A mirror pod (annotation ``kubernetes.io/config.mirror``) stands for a static pod the node runs
    by other means; a kubelet never runs one from the API."""
    return MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})
