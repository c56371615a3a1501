"""The scheduler: binds each pending pod to a node, through the apiserver like every other component.

**State.** Shared informers on nodes, pods and namespaces feed a :class:`~kbox.scheduler.filters.ClusterState`
incrementally: every bound pod is counted on its node (requests, host ports, owners, anti-affinity) as
the watch reports it, and a pod the scheduler decided on is *assumed* there at once, before its binding
is written, so the next decision already sees it. The binding's watch event replaces the assumed entry;
a failed binding removes it. Nothing is ever recounted from scratch.

**Queue.** Pods to schedule (no ``spec.nodeName``, ``schedulerName`` this scheduler's, not being
deleted) wait in an active heap ordered by priority, then arrival. A pod that fits nowhere is marked
(condition PodScheduled=False, reason Unschedulable, and a FailedScheduling event with upstream's
message) and parked; it goes back to the active heap only when the cluster changes in a way that could
help: a node added or changed, a placed pod deleted or finished or relabelled, or (for pods that failed
on affinity or spreading) a pod placed. Parked pods are also retried after ``unschedulable_timeout`` as a
safety net, as upstream does. A binding that fails for another reason retries with back-off. So an
unschedulable pod costs nothing until something changes: no busy loop.

**Loop.** Why not :class:`kbox.controllers.base.Controller`: a controller syncs independent keys with
workers, while scheduling decisions are not independent (each changes the node state the next one reads)
and want batching. So the scheduler has its own loop: each iteration takes up to ``batch_size`` pods from
the heap and decides them one after another, synchronously, on the in-memory state (filters on a rotating
window of nodes, as upstream's ``percentageOfNodesToScore``, then scores); the writes (bindings, status
and events) go to worker tasks, so many bindings share each store commit. The loop yields between
batches and stops deciding while too many bindings are in flight.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from kbox.api import objects
from kbox.client import cache, informer
from kbox.client.interface import (
    EVENTS,
    NAMESPACES,
    NODES,
    PODS,
    PVCS,
    STORAGE_CLASSES,
    STRATEGIC_PATCH,
    Client,
    Obj,
    StatusError,
)
from kbox.scheduler import filters, scores
from kbox.util import aiotasks

_log = logging.getLogger(__name__)

NO_NODES = "no nodes available to schedule pods"
MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5
_AFFINITY_REASONS = frozenset(
    [filters.AFFINITY, filters.ANTI_AFFINITY, filters.EXISTING_ANTI_AFFINITY, filters.SPREAD]
)

Write = Callable[[], Coroutine[Any, Any, None]]


class Scheduler:
    """``start()`` / ``stop()``, or ``run()`` until cancelled. See the module docstring."""

    def __init__(
        self,
        client: Client,
        *,
        name: str = "default-scheduler",
        factory: informer.InformerFactory | None = None,
        percentage_of_nodes_to_score: int = 0,
        batch_size: int = 256,
        binders: int = 64,
        max_in_flight: int = 2048,
        unschedulable_timeout: float = 300.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 10.0,
        scheduled_events: bool = True,
        seed: int | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self._own_factory = factory is None
        self.factory = factory or informer.InformerFactory(client)
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        """0 adapts to the cluster's size as upstream does (50% at 100 nodes, down to 5%)."""
        self.batch_size = batch_size
        self.binders = binders
        self.max_in_flight = max_in_flight
        self.unschedulable_timeout = unschedulable_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.scheduled_events = scheduled_events
        self.random = random.Random(seed)
        self.state = filters.ClusterState()
        self.pods = self.factory.informer(PODS)
        self.nodes = self.factory.informer(NODES)
        self.namespaces = self.factory.informer(NAMESPACES)
        self.claims = self.factory.informer(PVCS)
        self.storage_classes = self.factory.informer(STORAGE_CLASSES)
        self.bound = 0
        """Bindings written successfully (for benchmarks and tests)."""
        self.decide_seconds = 0.0
        """Time spent deciding (filtering and scoring), for benchmarks."""
        self._active: list[tuple[int, int, str]] = []
        self._queued: dict[str, int] = {}
        self._seq = 0
        self._unschedulable: dict[str, tuple[float, bool]] = {}
        self._backoff: list[tuple[float, str]] = []
        self._attempts: dict[str, int] = {}
        self._assumed: dict[str, str] = {}
        self._events: dict[str, tuple[str, int, str]] = {}
        self._next_start = 0
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._in_flight = 0
        self._binds: asyncio.Queue[Write] = asyncio.Queue()
        self._reports: asyncio.Queue[Write] = asyncio.Queue()
        self._registrations: list[informer.Registration] = []
        self._tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Register handlers, start (and wait for) the informers, then the loop and the writers."""
        self._registrations = [
            self.nodes.add_handler(self._on_node_add, self._on_node_update, self._on_node_delete),
            self.pods.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete),
            # A claim created or bound may let a parked pod fit (upstream's VolumeBinding events).
            self.claims.add_handler(
                lambda _: self._move_all(), lambda _, __: self._move_all(), lambda _: None
            ),
        ]
        self.factory.start()
        await self.factory.wait_synced()
        prefix = f"scheduler/{self.name}"
        self._tasks = [aiotasks.create_guarded_task(self._loop(), name=f"{prefix}/loop", logger=_log)]
        self._tasks += [
            aiotasks.create_guarded_task(self._writer(self._binds), name=f"{prefix}/binder-{n}", logger=_log)
            for n in range(self.binders)
        ]
        self._tasks += [
            aiotasks.create_guarded_task(
                self._writer(self._reports), name=f"{prefix}/reporter-{n}", logger=_log
            )
            for n in range(4)
        ]
        _log.info("scheduler %s started with %d nodes", self.name, len(self.state.nodes))

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        """The scheduler's running loops (empty until started); one ending is a failure."""
        return list(self._tasks)

    async def stop(self) -> None:
        for registration in self._registrations:
            registration.remove()
        self._registrations = []
        await aiotasks.stop(self._tasks, title=f"scheduler {self.name}")
        self._tasks = []
        if self._own_factory:
            await self.factory.stop()

    async def run(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # -- informer handlers (synchronous: only update state and queues) -----------------------------

    def _on_node_add(self, node: Obj) -> None:
        self.state.set_node(node)
        self._move_all()

    def _on_node_update(self, old: Obj, node: Obj) -> None:
        self.state.set_node(node)
        if old is node:
            return
        if (
            old.get("spec") != node.get("spec")
            or (old.get("metadata") or {}).get("labels") != (node.get("metadata") or {}).get("labels")
            or _node_facts(old) != _node_facts(node)
        ):
            self._move_all()

    def _on_node_delete(self, obj: Obj | cache.DeletedFinalStateUnknown) -> None:
        self.state.remove_node(cache.key_of(obj))

    def _on_pod_add(self, pod: Obj) -> None:
        self._pod_changed(None, pod)

    def _on_pod_update(self, old: Obj, pod: Obj) -> None:
        self._pod_changed(old, pod)

    def _on_pod_delete(self, obj: Obj | cache.DeletedFinalStateUnknown) -> None:
        key = cache.key_of(obj)
        self._dequeue(key)
        self._events.pop(key, None)
        self._attempts.pop(key, None)
        self._assumed.pop(key, None)
        if self.state.unplace(key) is not None:
            self._move_all()

    def _pod_changed(self, old: Obj | None, pod: Obj) -> None:
        key = cache.key_of(pod)
        spec = pod.get("spec") or {}
        node_name = spec.get("nodeName")
        if node_name:
            self._dequeue(key)
            self._assumed.pop(key, None)
            if filters.terminal(pod):
                if self.state.unplace(key) is not None:
                    self._move_all()
                return
            if old is not None and self.state.placed.get(key) == node_name and old.get("spec") == spec:
                if _labels(old) == _labels(pod):
                    # A status change of a pod already counted: nothing for scheduling. Its count now
                    # refers to this version, so the version it was counted from (a whole decoded pod,
                    # held for the pod's life) is freed: at 100,000 pods that was a quarter of the
                    # process's copies of them.
                    self.state.refresh(key, pod)
                    return
                self.state.place(filters.PodInfo(pod), node_name)
                self._move_all()
                return
            known = key in self.state.placed
            self.state.place(filters.PodInfo(pod), node_name)
            if not known:
                self._move_affinity_waiters()
            return
        if not self._responsible(pod):
            self._dequeue(key)
            return
        if key in self._assumed:
            return  # our binding is in flight
        unchanged = old is not None and old.get("spec") == spec and _labels(old) == _labels(pod)
        if unchanged and key not in self._queued:
            return  # our own status update (or another writer's) changes nothing about where it fits
        self._enqueue(key, spec.get("priority") or 0)

    def _responsible(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (
            (spec.get("schedulerName") or "default-scheduler") == self.name
            and not (pod.get("metadata") or {}).get("deletionTimestamp")
            and not filters.terminal(pod)
        )

    # -- queues -------------------------------------------------------------------------------

    def _enqueue(self, key: str, priority: int) -> None:
        self._unschedulable.pop(key, None)
        if key in self._queued:
            return
        self._seq += 1
        self._queued[key] = self._seq
        heapq.heappush(self._active, (-priority, self._seq, key))
        self._wakeup.set()

    def _dequeue(self, key: str) -> None:
        self._queued.pop(key, None)
        self._unschedulable.pop(key, None)

    def _move_all(self) -> None:
        """The cluster changed: every parked pod may fit now."""
        if not self._unschedulable:
            return
        parked, self._unschedulable = self._unschedulable, {}
        for key in parked:
            self._requeue(key)

    def _move_affinity_waiters(self) -> None:
        """A pod was placed: pods that failed on affinity or spreading may fit now."""
        waiting = [key for key, (_, affinity) in self._unschedulable.items() if affinity]
        for key in waiting:
            del self._unschedulable[key]
            self._requeue(key)

    def _requeue(self, key: str) -> None:
        pod = self.pods.indexer.get(key)
        if pod is not None:
            self._enqueue(key, (pod.get("spec") or {}).get("priority") or 0)

    def _flush_timers(self, now: float) -> float | None:
        """Move pods whose back-off ended, and pods parked too long; seconds until the next such time."""
        while self._backoff and self._backoff[0][0] <= now:
            _, key = heapq.heappop(self._backoff)
            self._requeue(key)
        timeout = self.unschedulable_timeout
        stale = [k for k, (since, _) in self._unschedulable.items() if now - since >= timeout]
        for key in stale:
            del self._unschedulable[key]
            self._requeue(key)
        waits = []
        if self._backoff:
            waits.append(self._backoff[0][0] - now)
        if self._unschedulable:
            oldest = min(since for since, _ in self._unschedulable.values())
            waits.append(oldest + self.unschedulable_timeout - now)
        return max(min(waits), 0.0) if waits else None

    # -- the loop -----------------------------------------------------------------------------

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        clock = time.perf_counter
        while True:
            wait = self._flush_timers(loop.time())
            if not self._queued:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                except TimeoutError:
                    pass
                continue
            decided = 0
            while self._active and decided < self.batch_size:
                _, seq, key = heapq.heappop(self._active)
                if self._queued.get(key) != seq:
                    continue
                del self._queued[key]
                decided += 1
                began = clock()
                try:
                    self.schedule_one(key)
                except Exception:
                    _log.exception("scheduler %s: scheduling %s failed", self.name, key)
                    self._back_off(key)
                self.decide_seconds += clock() - began
            await asyncio.sleep(0)
            while self._in_flight >= self.max_in_flight:
                self._drained.clear()
                await self._drained.wait()

    def num_feasible_nodes_to_find(self, total: int) -> int:
        """How many feasible nodes to look for before scoring (upstream's adaptive percentage)."""
        if total < MIN_FEASIBLE_NODES or self.percentage_of_nodes_to_score >= 100:
            return total
        percentage = self.percentage_of_nodes_to_score or max(50 - total // 125, MIN_FEASIBLE_PERCENTAGE)
        return max(total * percentage // 100, MIN_FEASIBLE_NODES)

    def schedule_one(self, key: str) -> str | None:
        """Decide one pod now (synchronously); assume it and queue its binding. Returns the node."""
        pod = self.pods.indexer.get(key)
        if pod is None or (pod.get("spec") or {}).get("nodeName") or not self._responsible(pod):
            return None
        if key in self._assumed:
            return None
        info = filters.PodInfo(pod)
        nodes = self.state.nodes
        total = len(nodes)
        if not total:
            self._park(info, NO_NODES, affinity=False)
            return None
        problem = filters.volume_binding(pod, self._claim, self.storage_classes.indexer.get)
        if problem is not None:
            self._park(info, filters.pre_filter_message(info, total, problem), affinity=False)
            return None
        fit = filters.Fit(info, self.state, namespace_labels=self._namespace_labels)
        wanted = self.num_feasible_nodes_to_find(total)
        start = self._next_start % total
        feasible, failures, processed = fit.find(nodes, start, wanted)
        self._next_start = (start + processed) % total
        if not feasible:
            message = filters.fit_error_message(
                total, failures, preemption=filters.preemption_message(info, total, failures)
            )
            affinity = any(reason in _AFFINITY_REASONS for f in failures for reason in f.reasons)
            self._park(info, message, affinity=affinity)
            return None
        if len(feasible) == 1:
            chosen = feasible[0]
        else:
            totals = scores.score(fit, feasible)
            best = max(totals)
            # Among equal bests, pick one at random (upstream samples the same way).
            chosen = feasible[totals.index(best)]
            ties = totals.count(best)
            if ties > 1:
                index = -1
                for _ in range(self.random.randrange(ties) + 1):
                    index = totals.index(best, index + 1)
                chosen = feasible[index]
        self._assume(info, chosen.name)
        return chosen.name

    # -- writes -------------------------------------------------------------------------------

    def _assume(self, info: filters.PodInfo, node_name: str) -> None:
        key = info.key
        self.state.place(info, node_name)
        self._assumed[key] = node_name
        self._in_flight += 1

        async def bind() -> None:
            try:
                await self.client.bind(info.name, node_name, namespace=info.namespace)
            except StatusError as exc:
                self._forget(key, node_name)
                if exc.code == 404:
                    return
                _log.info("scheduler %s: binding %s to %s failed: %s", self.name, key, node_name, exc.message)
                if exc.code != 409 or "already assigned" not in exc.message:
                    self._back_off(key)
                return
            except Exception:
                self._forget(key, node_name)
                self._back_off(key)
                raise
            finally:
                self._in_flight -= 1
                if self._in_flight < self.max_in_flight // 2:
                    self._drained.set()
            self.bound += 1
            self._attempts.pop(key, None)
            if self.scheduled_events:
                message = f"Successfully assigned {key} to {node_name}"
                self._reports.put_nowait(lambda: self._event(info.obj, "Normal", "Scheduled", message))

        self._binds.put_nowait(bind)

    def _forget(self, key: str, node_name: str) -> None:
        """A binding did not happen: stop counting the assumed pod (unless the watch confirmed it)."""
        if self._assumed.get(key) == node_name:
            del self._assumed[key]
            if self.state.placed.get(key) == node_name:
                self.state.unplace(key)
                self._move_all()

    def _back_off(self, key: str) -> None:
        attempts = self._attempts.get(key, 0)
        self._attempts[key] = attempts + 1
        delay = min(self.backoff_initial * 2**attempts, self.backoff_max)
        heapq.heappush(self._backoff, (asyncio.get_running_loop().time() + delay, key))
        self._wakeup.set()

    def _park(self, info: filters.PodInfo, message: str, *, affinity: bool) -> None:
        self._unschedulable[info.key] = (asyncio.get_running_loop().time(), affinity)
        _log.debug("scheduler %s: %s is unschedulable: %s", self.name, info.key, message)
        pod = info.obj
        self._reports.put_nowait(lambda: self._mark_unschedulable(pod, message))

    async def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        metadata = pod["metadata"]
        conditions = (pod.get("status") or {}).get("conditions") or ()
        current: Obj = next((c for c in conditions if c.get("type") == "PodScheduled"), {})
        if (current.get("status"), current.get("reason"), current.get("message")) != (
            "False",
            "Unschedulable",
            message,
        ):
            condition = {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": objects.timestamp(),
            }
            try:
                await self.client.patch(
                    PODS,
                    metadata["name"],
                    {"status": {"conditions": [condition]}},
                    namespace=metadata["namespace"],
                    patch_type=STRATEGIC_PATCH,
                    subresource="status",
                )
            except StatusError as exc:
                _log.debug("scheduler %s: marking %s failed: %s", self.name, metadata["name"], exc.message)
                return
        await self._event(pod, "Warning", "FailedScheduling", message)

    async def _event(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        """Record an event on the pod; a repeat of the last one for this pod bumps its count instead."""
        metadata = pod["metadata"]
        namespace = metadata["namespace"]
        key = f"{namespace}/{metadata['name']}"
        now = objects.timestamp()
        last = self._events.get(key)
        try:
            if last is not None and last[2] == f"{reason}:{message}":
                name, count, _ = last
                await self.client.patch(
                    EVENTS, name, {"count": count + 1, "lastTimestamp": now}, namespace=namespace
                )
                self._events[key] = (name, count + 1, last[2])
                return
            body = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": f"{metadata['name']}.", "namespace": namespace},
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": metadata["name"],
                    "namespace": namespace,
                    "uid": metadata.get("uid", ""),
                    "resourceVersion": metadata.get("resourceVersion", ""),
                },
                "reason": reason,
                "message": message,
                "type": kind,
                "source": {"component": self.name},
                "reportingComponent": self.name,
                "reportingInstance": self.name,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            }
            created = await self.client.create(EVENTS, body, namespace=namespace)
            if reason == "FailedScheduling":
                self._events[key] = (created["metadata"]["name"], 1, f"{reason}:{message}")
            else:
                self._events.pop(key, None)
        except StatusError as exc:
            _log.debug("scheduler %s: event %s for %s not recorded: %s", self.name, reason, key, exc.message)

    async def _writer(self, queue: asyncio.Queue[Write]) -> None:
        while True:
            write = await queue.get()
            try:
                await write()
            except Exception:
                _log.exception("scheduler %s: a write failed", self.name)

    # -- helpers ------------------------------------------------------------------------------

    def _claim(self, namespace: str, name: str) -> Obj | None:
        return self.claims.indexer.get(f"{namespace}/{name}")

    def _namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        obj = self.namespaces.indexer.get(namespace)
        return _labels(obj) if obj is not None else None

    @property
    def pending(self) -> int:
        """Pods waiting in the active queue (not parked, not in back-off)."""
        return len(self._queued)


def _labels(obj: Obj) -> dict[str, str]:
    labels: dict[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return labels


def _node_facts(node: Obj) -> tuple[Any, ...]:
    """What in a node's status scheduling depends on: allocatable and readiness (not heartbeats)."""
    status = node.get("status") or {}
    ready = next((c.get("status") for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
    return (status.get("allocatable"), ready)
