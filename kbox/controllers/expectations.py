"""Expectations: the writes a controller made that its pod cache has not shown yet (client-go's
``ControllerExpectations``, checked differently).

A level-triggered sync that runs before the watch delivered its own creations would create the pods
again; one that runs before its deletions showed would delete more. So a controller records each pod it
creates or deletes under the owner's key, and manages pods for that key only once the cache has caught
up. Shared by the ReplicaSet, DaemonSet and Job controllers (a controller never imports another)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.interface import Obj
from kbox.controllers.meta import version_number

_log = logging.getLogger(__name__)


@dataclass
class _Pending:
    since: float
    creates: dict[str, int] = field(default_factory=dict)
    """Pod name → the revision of its creation."""
    deletes: dict[str, str] = field(default_factory=dict)
    """Pod key → uid of the pod being deleted."""


class Expectations:
    """Per owner key: the writes of this controller its pod cache has not shown yet.

    Checked against the cache itself (not counted down by handlers), so a restart or a missed event
    cannot leave them stuck; after ``timeout`` seconds they are given up on anyway."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._pending: dict[str, _Pending] = {}

    def created(self, key: str, pod: Obj) -> None:
        pending = self._pending.setdefault(key, _Pending(time.monotonic()))
        pending.creates[cache.key_of(pod)] = version_number(cache.resource_version_of(pod))

    def deleting(self, key: str, pod: Obj) -> None:
        pending = self._pending.setdefault(key, _Pending(time.monotonic()))
        pending.deletes[cache.key_of(pod)] = pod["metadata"].get("uid", "")

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)

    def satisfied(self, key: str, pods: informers.SharedInformer) -> bool:
        pending = self._pending.get(key)
        if pending is None:
            return True
        if time.monotonic() - pending.since > self.timeout:
            _log.warning("expectations of %s timed out; managing replicas anyway", key)
            self.forget(key)
            return True
        seen = version_number(pods.resource_version)
        indexer = pods.indexer
        for pod_key, revision in list(pending.creates.items()):
            if pod_key in indexer or seen >= revision:
                del pending.creates[pod_key]
        for pod_key, uid in list(pending.deletes.items()):
            pod = indexer.get(pod_key)
            if pod is None or pod["metadata"].get("uid") != uid or pod["metadata"].get("deletionTimestamp"):
                del pending.deletes[pod_key]
        if pending.creates or pending.deletes:
            return False
        self.forget(key)
        return True
