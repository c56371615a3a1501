"""The pod garbage collector: pods nobody else will ever finish (pkg/controller/podgc in shape).

- **Orphaned pods**: bound to a node that no longer exists (``kubectl delete node``, ``kbox node
  delete`` racing a binding). No kubelet will stop them or confirm their end, so after a quarantine (a
  node missing from the cache must still be missing from a fresh GET that long after; 40 s by default, as
  Kubernetes) the pod is marked ``Failed`` with the ``DisruptionTarget`` condition (reason
  ``DeletionByPodGC``) and force-deleted. Their controllers then replace them on nodes that exist.
- **Unscheduled terminating pods**: deleted before any node took them (so no kubelet ever will): deleted
  at once with no grace period.
- **Terminated pods past a threshold** (``terminated_pod_threshold``, 12,500 as in Kubernetes; 0 turns it
  off): the oldest finished pods are deleted until that many are left, so a cluster that runs Jobs for
  months does not keep every pod.

Keys are pods; a node's deletion queues the pods bound to it. Everything is level-triggered: each sync
reads the caches, and a GET or a uid precondition guards every deletion against a cache that lags.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kbox.api import objects
from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.interface import NODES, PODS, Client, Obj, StatusError
from kbox.controllers import base, meta

_log = logging.getLogger(__name__)

QUARANTINE = 40.0
"""Seconds a pod's node must stay missing before the pod is collected (podgc's quarantineTime)."""
TERMINATED_POD_THRESHOLD = 12500
TERMINAL = ("Succeeded", "Failed")


class PodGarbageCollector(base.Controller):
    """Deletes orphaned, unscheduled-terminating and surplus terminated pods; see the module docstring."""

    name = "pod-garbage-collector"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        quarantine: float = QUARANTINE,
        terminated_pod_threshold: int = TERMINATED_POD_THRESHOLD,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(factory)
        self.client = client or factory.client
        self.quarantine = quarantine
        self.threshold = terminated_pod_threshold
        self.now = now
        self.pods = self.informer(PODS)
        self.pods.add_index(cache.NODE_NAME, cache.by_node_name)
        self.nodes = self.informer(NODES, keys=self._keys_for_node)
        self._missing_since: dict[str, float] = {}
        """Pod key → when its node was first seen missing (reset when the node is found)."""

    def _keys_for_node(self, node: Obj) -> list[str]:
        if self.nodes.indexer.get(cache.key_of(node)) is not None:
            return []  # an add or update: nothing to collect
        name = node["metadata"]["name"]
        return [cache.key_of(pod) for pod in self.pods.indexer.by_index(cache.NODE_NAME, name)]

    async def sync(self, key: str) -> None:
        pod = self.pods.indexer.get(key)
        if pod is None:
            self._missing_since.pop(key, None)
            return
        metadata, spec = pod["metadata"], pod.get("spec") or {}
        node = spec.get("nodeName")
        if not node:
            if metadata.get("deletionTimestamp"):
                await self._force_delete(pod, "unscheduled and terminating")
            return
        if self.nodes.indexer.get(node) is not None:
            self._missing_since.pop(key, None)
            if (pod.get("status") or {}).get("phase") in TERMINAL and self.threshold > 0:
                await self._trim_terminated()
            return
        await self._orphaned(key, pod, node)

    async def _orphaned(self, key: str, pod: Obj, node: str) -> None:
        now = self.now()
        since = self._missing_since.setdefault(key, now)
        if now - since < self.quarantine:
            self.queue.add_after(key, self.quarantine - (now - since))
            return
        try:
            await self.client.get(NODES, node)
            self._missing_since.pop(key, None)
            return  # the node is there: the cache lagged
        except StatusError as exc:
            if exc.code != 404:
                raise
        await self._mark_failed(pod)
        await self._force_delete(pod, f"its node {node} no longer exists")
        self._missing_since.pop(key, None)

    async def _mark_failed(self, pod: Obj) -> None:
        """Record why the pod ends before it goes: phase Failed, condition DisruptionTarget."""
        status = pod.get("status") or {}
        if status.get("phase") in TERMINAL:
            return
        conditions = objects.with_disruption_target(
            status.get("conditions"), "DeletionByPodGC", "PodGC: node no longer exists"
        )
        metadata = pod["metadata"]
        patch: dict[str, Any] = {"status": {"phase": "Failed", "conditions": conditions}}
        try:
            await self.client.patch(
                PODS, metadata["name"], patch, namespace=metadata["namespace"], subresource="status"
            )
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise

    async def _force_delete(self, pod: Obj, why: str) -> None:
        if await meta.delete_exact(self.client, PODS, pod, grace_period_seconds=0):
            _log.info("%s: deleted pod %s: %s", self.name, cache.key_of(pod), why)

    async def _trim_terminated(self) -> None:
        """Delete the oldest finished pods beyond the threshold (by creation time, as podgc sorts)."""
        if len(self.pods.indexer) <= self.threshold:
            return  # fewer pods than the threshold in all: no scan on every finished pod's event
        terminated = [p for p in self.pods.indexer.list() if (p.get("status") or {}).get("phase") in TERMINAL]
        excess = len(terminated) - self.threshold
        if excess <= 0:
            return
        terminated.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
        for pod in terminated[:excess]:
            await self._force_delete(pod, f"more than {self.threshold} terminated pods")
