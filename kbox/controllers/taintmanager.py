"""Taint-based eviction: delete pods from nodes with NoExecute taints they do not tolerate (long enough).

As kube-controller-manager's ``taint-eviction-controller`` (the "taint manager") does, for each pod bound
to a node with NoExecute taints:

* a taint no toleration of the pod matches → the pod is deleted at once;
* every taint tolerated, some of the tolerations used with ``tolerationSeconds`` → the pod is deleted
  when the smallest of them has run out (0 or less: at once), counted from when the pod met the taints;
* every taint tolerated forever → the pod stays.

Before deleting, it records the event ``TaintManagerEviction`` "Marking for deletion Pod ns/name" and
gives the pod the condition ``DisruptionTarget`` (reason ``DeletionByTaintManager``); a scheduled
deletion that is no longer due (the taint went away, the pod changed) is cancelled with the event
"Cancelling deletion of Pod ns/name". The deletion is a normal graceful one: on an unreachable node the
pod stays Terminating until its node comes back (or is deleted), while its ReplicaSet already replaces it.

One difference, on purpose: upstream counts ``tolerationSeconds`` from when its in-memory timer was
started, so a controller restart starts every countdown again. Here the start is the earliest
``timeAdded`` of the node's NoExecute taints (or, for taints without one, when this controller first saw
the pod with them), but never before the pod was scheduled there: the same moment in the common case, and
a restart of ``kbox`` changes nothing.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from kbox.api import objects
from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.events import EventRecorder
from kbox.client.interface import NODES, PODS, Client, Obj, StatusError
from kbox.controllers import base, meta
from kbox.scheduler.filters import tolerates

_log = logging.getLogger(__name__)

NO_EXECUTE = "NoExecute"
REASON = "TaintManagerEviction"


def no_execute_taints(node: Obj | None) -> list[Obj]:
    return [t for t in ((node or {}).get("spec") or {}).get("taints") or [] if t.get("effect") == NO_EXECUTE]


def toleration_seconds(tolerations: list[Obj], taints: list[Obj]) -> float | None:
    """How long the pod may stay: 0 when some taint is not tolerated, ``None`` when it may stay forever,
    else the smallest ``tolerationSeconds`` among the tolerations that match a taint (upstream's
    GetMatchingTolerations takes the first matching toleration of each taint)."""
    smallest: float | None = None
    for taint in taints:
        used = next((t for t in tolerations if tolerates([t], taint)), None)
        if used is None:
            return 0.0
        seconds = used.get("tolerationSeconds")
        if seconds is None:
            continue
        seconds = max(float(seconds), 0.0)
        smallest = seconds if smallest is None else min(smallest, seconds)
    return smallest


class TaintEvictionController(base.Controller):
    """Deletes pods whose NoExecute tolerations ran out; see the module docstring."""

    name = "taint-eviction-controller"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
        wall_clock: Any = time.time,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.wall_clock = wall_clock
        self.recorder = EventRecorder(self.client, component="taint-eviction-controller")
        self.pods = self.informer(PODS, keys=self._keys_for_pod)
        self.pods.add_index(cache.NODE_NAME, cache.by_node_name)
        self.nodes = self.informer(NODES, keys=self._keys_for_node)
        self._scheduled: dict[str, float] = {}  # pod key → wall-clock deadline
        self._first_seen: dict[str, float] = {}  # pod key → when first seen on a tainted node

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        """Only pods on a node with NoExecute taints, or with a deletion scheduled, need a look."""
        key = cache.key_of(pod)
        if key in self._scheduled or key in self._first_seen:
            return [key]
        node_name = (pod.get("spec") or {}).get("nodeName")
        return [key] if node_name and no_execute_taints(self.nodes.indexer.get(node_name)) else []

    def _keys_for_node(self, node: Obj) -> list[str]:
        tainted = bool(no_execute_taints(node))
        if not tainted and not self._scheduled and not self._first_seen:
            return []  # the common case: a heartbeat of a healthy node
        keys = self.pods.indexer.index_keys(cache.NODE_NAME, node["metadata"]["name"])
        if tainted:
            return keys
        return [key for key in keys if key in self._scheduled or key in self._first_seen]

    async def sync(self, key: str) -> None:
        pod = self.pods.indexer.get(key)
        node_name = ((pod or {}).get("spec") or {}).get("nodeName")
        if pod is None or not node_name or pod["metadata"].get("deletionTimestamp"):
            self._forget(key, pod)
            return
        taints = no_execute_taints(self.nodes.indexer.get(node_name))
        if not taints:
            self._forget(key, pod)
            return
        tolerations = list((pod.get("spec") or {}).get("tolerations") or [])
        seconds = toleration_seconds(tolerations, taints)
        if seconds is None:
            self._forget(key, pod)
            return
        now = self.wall_clock()
        deadline = self._start(key, pod, taints, now) + seconds
        if seconds > 0 and now < deadline:
            if self._scheduled.get(key) != deadline:
                self._scheduled[key] = deadline
                _log.info(
                    "pod %s: deletion scheduled in %.1fs (NoExecute taint tolerated)", key, deadline - now
                )
            self.queue.add_after(key, deadline - now)
            return
        await self._evict(key, pod)

    def _start(self, key: str, pod: Obj, taints: list[Obj], now: float) -> float:
        """When the pod met the taints: see the module docstring."""
        added = [meta.epoch(t.get("timeAdded")) for t in taints]
        known = [a for a in added if a is not None]
        if len(known) < len(added):
            known.append(self._first_seen.setdefault(key, now))
        scheduled = meta.epoch(
            next(
                (
                    c.get("lastTransitionTime")
                    for c in (pod.get("status") or {}).get("conditions") or []
                    if c.get("type") == "PodScheduled" and c.get("status") == "True"
                ),
                None,
            )
            or pod["metadata"].get("creationTimestamp")
        )
        start = min(known)
        return max(start, scheduled) if scheduled is not None else start

    def _forget(self, key: str, pod: Obj | None) -> None:
        self._first_seen.pop(key, None)
        if self._scheduled.pop(key, None) is None:
            return
        namespace, _, name = key.partition("/")
        ref = pod or {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}}
        if pod is not None and pod["metadata"].get("deletionTimestamp"):
            return  # being deleted anyway: nothing was cancelled
        self.recorder.record(ref, "Normal", REASON, f"Cancelling deletion of Pod {key}")

    async def _evict(self, key: str, pod: Obj) -> None:
        """upstream's addConditionAndDeletePod: event, DisruptionTarget condition, then delete."""
        _log.info("pod %s: deleting (NoExecute taint on node %s)", key, pod["spec"]["nodeName"])
        self.recorder.record(pod, "Normal", REASON, f"Marking for deletion Pod {key}")
        metadata = pod["metadata"]
        updated = copy.deepcopy(pod)
        status = updated.setdefault("status", {})
        reason, message = "DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint"
        target = {"status": "True", "reason": reason, "message": message}
        conditions = status.get("conditions") or []
        current = next((c for c in conditions if c.get("type") == "DisruptionTarget"), None)
        if current is None or any(current.get(k) != v for k, v in target.items()):
            status["conditions"] = objects.with_disruption_target(conditions, reason, message)
            try:
                await self.client.update(PODS, updated, namespace=metadata["namespace"], subresource="status")
            except StatusError as exc:
                if exc.code == 404:
                    self._scheduled.pop(key, None)
                    return
                raise  # a conflict: retried with the fresher pod
        await meta.delete_exact(self.client, PODS, pod)
        self._scheduled.pop(key, None)
        self._first_seen.pop(key, None)
