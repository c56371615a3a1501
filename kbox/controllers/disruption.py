"""The disruption controller: keeps each PodDisruptionBudget's status, which the eviction API spends
(pkg/controller/disruption in shape).

A sync of ``ns/name`` reads the budget and the namespace's pods its selector matches, then computes:

- ``expectedPods``: how many pods there should be. For an integer ``minAvailable`` it is the number of
  matching pods; for a percentage or any ``maxUnavailable`` it is the sum of the desired replicas of the
  pods' controllers (a ReplicaSet's owning Deployment counts instead of the ReplicaSet, StatefulSets
  count as themselves). A pod whose controller cannot be found makes the budget fail safe: no
  disruptions, condition ``SyncFailed``. Pods with no controller at all are left out, with a warning
  event, as Kubernetes does.
- ``desiredHealthy``: ``minAvailable`` (scaled, rounding up), or ``expectedPods - maxUnavailable``.
- ``currentHealthy``: matching pods that are Ready, not terminating, and not recently evicted (an
  eviction records the pod in ``disruptedPods``; for two minutes after, or until the pod is gone, it does
  not count, so two quick evictions cannot both spend the same healthy pod).
- ``disruptionsAllowed`` = ``currentHealthy - desiredHealthy`` (never negative, 0 with no pods expected),
  with the ``DisruptionAllowed`` condition (``SufficientPods``/``InsufficientPods``) and
  ``observedGeneration``, which the eviction API requires to be current before it spends anything.

Status is written with the cached resourceVersion as a precondition: the eviction API writes the same
status, and a conflict just means "sync again". Evictions that did not lead to a deletion within two
minutes are dropped from ``disruptedPods`` (the key is re-queued for that moment).
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Callable
from typing import Any

from kbox.api import eviction, selectors
from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.events import EventRecorder
from kbox.client.interface import (
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    Client,
    Obj,
    StatusError,
)
from kbox.controllers import base, meta
from kbox.controllers.meta import controller_ref, epoch

_log = logging.getLogger(__name__)

DELETION_TIMEOUT = 120.0
"""Seconds an eviction recorded in ``disruptedPods`` is waited for before the pod counts again."""


class NoController(Exception):
    """A pod's controller is not one whose scale this controller can read (or is gone)."""


class DisruptionController(base.Controller):
    """Status for PodDisruptionBudgets; see the module docstring."""

    name = "disruption"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        now: Callable[[], float] | None = None,
        events: bool = True,
    ) -> None:
        super().__init__(factory)
        self.client = client or factory.client
        self.recorder = EventRecorder(self.client, component="controllermanager")
        self.events = events
        self.now = now or (lambda: datetime.datetime.now(datetime.UTC).timestamp())
        self.budgets = self.informer(PODDISRUPTIONBUDGETS)
        self.pods = self.informer(PODS, keys=self._keys_for_pod)
        # Read only, for the pods' controllers' scale: their changes reach budgets through the pods.
        self.replicasets = self.informer(REPLICASETS, enqueue=False)
        self.deployments = self.informer(DEPLOYMENTS, enqueue=False)
        self.statefulsets = self.informer(STATEFULSETS, enqueue=False)

    # -- keys --------------------------------------------------------------------------------

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        namespace = pod["metadata"].get("namespace", "")
        labels = pod["metadata"].get("labels") or {}
        return [
            cache.key_of(budget)
            for budget in self.budgets.indexer.by_index(cache.NAMESPACE, namespace)
            if _selector(budget).matches(labels)
        ]

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        budget = self.budgets.indexer.get(key)
        if budget is None:
            return
        selector = _selector(budget)
        namespace = budget["metadata"]["namespace"]
        pods = [
            pod
            for pod in self.pods.indexer.by_index(cache.NAMESPACE, namespace)
            if selector.matches(pod["metadata"].get("labels") or {})
        ]
        if not pods:
            self._event(budget, "Normal", "NoPods", "No matching pods found")
        try:
            expected, desired = self._expected(budget, pods)
        except NoController as exc:
            message = f"Failed to calculate the number of expected pods: {exc}"
            self._event(budget, "Warning", "CalculateExpectedPodCountFailed", message)
            await self._fail_safe(budget, str(exc))
            return
        now = self.now()
        disrupted, recheck = _live_disruptions(budget, pods, now)
        healthy = sum(
            1
            for pod in pods
            if not pod["metadata"].get("deletionTimestamp")
            and pod["metadata"]["name"] not in disrupted
            and eviction.is_ready(pod)
        )
        allowed = max(healthy - desired, 0) if expected > 0 else 0
        await self._write_status(
            budget,
            {
                "currentHealthy": healthy,
                "desiredHealthy": desired,
                "expectedPods": expected,
                "disruptionsAllowed": allowed,
                "disruptedPods": disrupted,
            },
        )
        if recheck is not None:
            self.queue.add_after(key, max(recheck - now, 0.0))

    def _expected(self, budget: Obj, pods: list[Obj]) -> tuple[int, int]:
        """(expectedPods, desiredHealthy), as getExpectedPodCount computes them."""
        spec = budget.get("spec") or {}
        if "maxUnavailable" in spec:
            expected = self._expected_scale(budget, pods)
            unavailable = meta.scaled_value(spec["maxUnavailable"], expected, round_up=True)
            return expected, max(expected - unavailable, 0)
        minimum = spec.get("minAvailable")
        if isinstance(minimum, int):
            return len(pods), minimum
        if isinstance(minimum, str):
            expected = self._expected_scale(budget, pods)
            return expected, meta.scaled_value(minimum, expected, round_up=True)
        return 0, 0

    def _expected_scale(self, budget: Obj, pods: list[Obj]) -> int:
        """The summed desired replicas of the pods' controllers, each counted once."""
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            if ref.get("uid") in scales:
                continue
            uid, replicas = self._scale_of(pod["metadata"]["namespace"], ref, pod["metadata"]["name"])
            scales[uid] = replicas
        if unmanaged:
            selector = (budget.get("spec") or {}).get("selector")
            self._event(
                budget,
                "Warning",
                "UnmanagedPods",
                f"Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be "
                "unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may "
                'result in undefined behavior. To account for these pods please set ".spec.minAvailable" '
                "field of the PDB to an integer value.",
            )
        return sum(scales.values())

    def _scale_of(self, namespace: str, ref: Obj, pod_name: str) -> tuple[str, int]:
        """(uid, replicas) of the controller a pod's reference names: a ReplicaSet's Deployment when it
        has one, else the ReplicaSet; a StatefulSet."""
        kind, name, uid = ref.get("kind"), ref.get("name", ""), ref.get("uid")
        owner: Obj | None = None
        if kind == "ReplicaSet" and ref.get("apiVersion", "").startswith("apps/"):
            owner = self.replicasets.indexer.get(f"{namespace}/{name}")
            if owner is not None and owner["metadata"].get("uid") == uid:
                parent = controller_ref(owner)
                if parent is not None and parent.get("kind") == "Deployment":
                    deployment = self.deployments.indexer.get(f"{namespace}/{parent.get('name', '')}")
                    if deployment is not None and deployment["metadata"].get("uid") == parent.get("uid"):
                        owner = deployment
            else:
                owner = None
        elif kind == "StatefulSet" and ref.get("apiVersion", "").startswith("apps/"):
            owner = self.statefulsets.indexer.get(f"{namespace}/{name}")
            if owner is not None and owner["metadata"].get("uid") != uid:
                owner = None
        if owner is None:
            raise NoController(f'found no controllers for pod "{pod_name}"')
        return owner["metadata"]["uid"], int((owner.get("spec") or {}).get("replicas", 1) or 0)

    # -- status ------------------------------------------------------------------------------

    async def _fail_safe(self, budget: Obj, why: str) -> None:
        """No disruptions while the budget cannot be computed (failSafe)."""
        new = copy.deepcopy(budget)
        status = new.setdefault("status", {})
        status["disruptionsAllowed"] = 0
        status["observedGeneration"] = budget["metadata"].get("generation", 0)
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionAllowed"]
        conditions.append(
            {
                "type": "DisruptionAllowed",
                "status": "False",
                "reason": "SyncFailed",
                "message": why,
                "observedGeneration": status["observedGeneration"],
                "lastTransitionTime": meta.timestamp(),
            }
        )
        status["conditions"] = conditions
        await self._update(new)

    async def _write_status(self, budget: Obj, counts: Obj) -> None:
        old = budget.get("status") or {}
        generation = budget["metadata"].get("generation", 0)
        unchanged = all(old.get(k, {} if k == "disruptedPods" else 0) == v for k, v in counts.items())
        condition = next(
            (c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None
        )
        condition_right = (
            condition is not None
            and condition.get("reason") != "SyncFailed"
            and (condition.get("status") == "True") == (counts["disruptionsAllowed"] > 0)
        )
        if unchanged and old.get("observedGeneration") == generation and condition_right:
            return
        new = copy.deepcopy(budget)
        status = new.setdefault("status", {})
        status.update(counts)
        if not counts["disruptedPods"]:
            status.pop("disruptedPods", None)
        status["observedGeneration"] = generation
        status["conditions"] = [c for c in status.get("conditions") or [] if c.get("reason") != "SyncFailed"]
        eviction.allowed_condition(status)
        await self._update(new)

    async def _update(self, budget: Obj) -> None:
        metadata = budget["metadata"]
        try:
            await self.client.update(
                PODDISRUPTIONBUDGETS, budget, namespace=metadata["namespace"], subresource="status"
            )
        except StatusError as exc:
            if exc.code == 404:
                return
            raise  # a conflict: the eviction API wrote first; the retry reads the newer budget

    def _event(self, budget: Obj, kind: str, reason: str, message: str) -> None:
        if self.events:
            self.recorder.record(budget, kind, reason, message)


def _selector(budget: Obj) -> selectors.LabelSelector:
    """The budget's selector (policy/v1: a null one selects nothing, an empty one every pod)."""
    try:
        return selectors.from_label_selector((budget.get("spec") or {}).get("selector"))
    except StatusError:
        return selectors.LabelSelector.nothing()


def _live_disruptions(budget: Obj, pods: list[Obj], now: float) -> tuple[dict[str, Any], float | None]:
    """``disruptedPods`` minus pods that are gone, terminating or waited for too long; and when the next
    entry expires (to re-check then)."""
    recorded = (budget.get("status") or {}).get("disruptedPods") or {}
    present = {pod["metadata"]["name"]: pod for pod in pods}
    live: dict[str, Any] = {}
    recheck: float | None = None
    for name, when in recorded.items():
        pod = present.get(name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            continue
        at = epoch(when)
        if at is None:
            continue
        expires = at + DELETION_TIMEOUT
        if expires <= now:
            _log.info(
                "pod %s was expected by budget %s to be deleted but it wasn't", name, cache.key_of(budget)
            )
            continue
        live[name] = when
        recheck = expires if recheck is None else min(recheck, expires)
    return live, recheck
