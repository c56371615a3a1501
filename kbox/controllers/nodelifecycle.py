"""The node lifecycle controller: notices nodes whose kubelet went quiet and taints unhealthy nodes.

As kube-controller-manager's ``node-lifecycle-controller`` does:

* **Health.** A node is alive while its kubelet renews its Lease in ``kube-node-lease`` or posts a new
  Ready heartbeat. Each change is stamped with this process's clock when it is *observed* (never the
  timestamps written by the kubelet, which may come from a skewed clock). When nothing changed for
  ``node_monitor_grace_period`` (40 s by default), the Ready, MemoryPressure, DiskPressure and PIDPressure
  conditions become ``Unknown`` with reason ``NodeStatusUnknown`` and message "Kubelet stopped posting
  node status." (the write carries the resourceVersion read, so a kubelet that just posted wins). A
  controller (re)start grants every node a full grace period, as upstream's in-memory bookkeeping does.
* **NoSchedule taints** follow the conditions at once: Ready=False → ``node.kubernetes.io/not-ready``,
  Ready=Unknown → ``node.kubernetes.io/unreachable``, the pressure conditions → their taints, and
  ``spec.unschedulable`` (``kubectl cordon``) → ``node.kubernetes.io/unschedulable``; each added with
  ``timeAdded``, removed when the condition clears.
* **Pods** on a node that is not Ready get their Ready condition set to False (the kubelet cannot say so
  itself) and a ``NodeNotReady`` event. Mirror pods are left alone: in kbox they show in-process
  components whose status does not depend on the kubelet.
* **NoExecute taints** (``not-ready`` / ``unreachable``, the trigger of taint-based eviction, carried out
  by :mod:`kbox.controllers.taintmanager`) are added per zone (``topology.kubernetes.io/region`` and
  ``zone`` labels) through a token bucket of ``node_eviction_rate`` nodes per second, burst 1. A zone is
  *PartialDisruption* when more than two of its nodes and at least ``unhealthy_zone_threshold`` of them
  are not Ready: then the rate is ``secondary_node_eviction_rate`` in a zone larger than
  ``large_cluster_size_threshold`` nodes, else 0. When no node of any zone is Ready the controller enters
  full-disruption mode: it removes the NoExecute taints it placed and adds none, so a control plane cut
  off from every node (or a laptop waking up) does not evict everything; leaving the mode grants every
  node a fresh grace period. Swapping ``not-ready`` for ``unreachable`` (or back) is never rate limited.
  Nodes labelled ``node.kubernetes.io/exclude-disruption`` do not count towards a zone's state.

The work queue holds node names plus one special key for the zone pass (node names cannot contain a
colon). A node sync re-queues itself for the moment its grace period runs out, so no periodic scan of
every node is needed.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Any

from kbox.api.objects import timestamp
from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.events import EventRecorder
from kbox.client.interface import LEASES, NODES, PODS, Client, Obj, StatusError
from kbox.controllers import base

_log = logging.getLogger(__name__)

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"

CONDITION_TAINTS: dict[tuple[str, str], str] = {
    ("Ready", "False"): TAINT_NOT_READY,
    ("Ready", "Unknown"): TAINT_UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
}
"""Condition (type, status) → the NoSchedule taint upstream's controller puts on the node."""
MANAGED_NO_SCHEDULE = frozenset([*CONDITION_TAINTS.values(), TAINT_UNSCHEDULABLE])
MANAGED_NO_EXECUTE = frozenset([TAINT_NOT_READY, TAINT_UNREACHABLE])
UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
EXCLUDE_DISRUPTION = "node.kubernetes.io/exclude-disruption"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
NODE_LEASE_NAMESPACE = "kube-node-lease"
ZONES_KEY = ":zones"

NORMAL = "Normal"
PARTIAL_DISRUPTION = "PartialDisruption"
FULL_DISRUPTION = "FullDisruption"


ENVIRONMENT = {
    "node_monitor_grace_period": "KBOX_NODE_MONITOR_GRACE_PERIOD",
    "node_eviction_rate": "KBOX_NODE_EVICTION_RATE",
    "secondary_node_eviction_rate": "KBOX_SECONDARY_NODE_EVICTION_RATE",
    "large_cluster_size_threshold": "KBOX_LARGE_CLUSTER_SIZE_THRESHOLD",
    "unhealthy_zone_threshold": "KBOX_UNHEALTHY_ZONE_THRESHOLD",
    "default_not_ready_toleration_seconds": "KBOX_DEFAULT_NOT_READY_TOLERATION_SECONDS",
    "default_unreachable_toleration_seconds": "KBOX_DEFAULT_UNREACHABLE_TOLERATION_SECONDS",
}
"""Environment variables that override each setting (``kbox start`` passes its environment to the
cluster process, so ``KBOX_NODE_MONITOR_GRACE_PERIOD=5 kbox start`` works)."""


@dataclasses.dataclass(frozen=True)
class NodeLifecycleSettings:
    """kube-controller-manager's node lifecycle flags and kube-apiserver's default toleration seconds."""

    node_monitor_grace_period: float = 40.0
    """Seconds without a Lease renewal or Ready heartbeat before a node's conditions become Unknown."""
    node_eviction_rate: float = 0.1
    """Nodes per second that get a NoExecute taint (so their pods evicted) in a healthy zone."""
    secondary_node_eviction_rate: float = 0.01
    """The rate in a partially disrupted zone larger than ``large_cluster_size_threshold``."""
    large_cluster_size_threshold: int = 50
    """Zones up to this many nodes stop tainting altogether when partially disrupted."""
    unhealthy_zone_threshold: float = 0.55
    """Fraction of not-Ready nodes (more than two of them) that makes a zone partially disrupted."""
    default_not_ready_toleration_seconds: int = 300
    """tolerationSeconds of the ``not-ready:NoExecute`` toleration admission adds to pods without one."""
    default_unreachable_toleration_seconds: int = 300
    """tolerationSeconds of the ``unreachable:NoExecute`` toleration admission adds to pods without one."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> NodeLifecycleSettings:
        """The defaults, overridden by the ``KBOX_*`` variables set; a malformed or negative value is
        reported once in the log and ignored, never fatal."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            variable = ENVIRONMENT[field.name]
            text = env.get(variable, "").strip()
            if not text:
                continue
            kind = int if field.type in ("int", int) else float
            try:
                value = kind(text)
            except ValueError:
                value = -1
            if value < 0:
                _log.warning("ignoring %s=%r: not a non-negative %s", variable, text, kind.__name__)
                continue
            values[field.name] = value
        return cls(**values)

    def overridden(self, **changes: float) -> NodeLifecycleSettings:
        """A copy with ``changes`` (by field name); integer fields are rounded."""
        types = {f.name: f.type for f in dataclasses.fields(self)}
        fixed: dict[str, Any] = {
            k: round(v) if types[k] in ("int", int) else float(v) for k, v in changes.items()
        }
        return dataclasses.replace(self, **fixed)


FIELDS = frozenset(f.name for f in dataclasses.fields(NodeLifecycleSettings))


class TokenBucket:
    """client-go's token bucket limiter with burst 1: ``take()`` spends the token (0.0) or says how many
    seconds until the next one; ``None`` when the rate is 0 (nothing passes)."""

    def __init__(self, rate: float, clock: Any) -> None:
        self.rate = rate
        self.clock = clock
        self.tokens = 1.0
        self.last = clock.time()

    def set_rate(self, rate: float) -> None:
        self._refill()
        self.rate = rate

    def take(self) -> float | None:
        if self.rate <= 0:
            return None
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def _refill(self) -> None:
        now = self.clock.time()
        if self.rate > 0:
            self.tokens = min(1.0, self.tokens + (now - self.last) * self.rate)
        self.last = now


@dataclasses.dataclass
class _Health:
    marker: tuple[str, str]
    """(Lease renewTime, Ready lastHeartbeatTime) as last seen."""
    probe: float
    """When (queue clock) the marker last changed."""


def condition(obj: Obj, kind: str) -> Obj | None:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            found: Obj = item
            return found
    return None


def ready_status(node: Obj) -> str:
    """The node's Ready condition status: "True", "False" or "Unknown" (also when missing)."""
    ready = condition(node, "Ready")
    return str(ready.get("status") or "Unknown") if ready else "Unknown"


def zone_key(node: Obj) -> str:
    """upstream's GetZoneKey: region and zone labels ("" when neither is set)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    region = labels.get("topology.kubernetes.io/region") or labels.get(
        "failure-domain.beta.kubernetes.io/region"
    )
    zone = labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone")
    if not region and not zone:
        return ""
    return f"{region or ''}:\x00:{zone or ''}"


def has_taint(node: Obj, key: str, effect: str) -> bool:
    return any(
        t.get("key") == key and t.get("effect") == effect
        for t in (node.get("spec") or {}).get("taints") or []
    )


def zone_state(ready: list[str], threshold: float) -> str:
    """upstream's ComputeZoneState over the Ready statuses of a zone's nodes."""
    not_ready = sum(1 for status in ready if status != "True")
    if not_ready and not_ready == len(ready):
        return FULL_DISRUPTION
    if not_ready > 2 and not_ready / len(ready) >= threshold:
        return PARTIAL_DISRUPTION
    return NORMAL


def eviction_rate(settings: NodeLifecycleSettings, state: str, size: int) -> float:
    """Nodes per second to taint NoExecute in a zone of ``size`` nodes in ``state`` (upstream's
    HealthyQPSFunc / ReducedQPSFunc)."""
    if state == PARTIAL_DISRUPTION:
        return settings.secondary_node_eviction_rate if size > settings.large_cluster_size_threshold else 0.0
    return settings.node_eviction_rate


async def update_taints(
    client: Client, name: str, *, add: Sequence[Obj] = (), remove: Sequence[tuple[str, str]] = ()
) -> Obj | None:
    """Add (with ``timeAdded`` now, unless present) and remove ``(key, effect)`` taints on a node, re-read
    and retried on conflicts as upstream's AddOrUpdateTaintOnNode / RemoveTaintOffNode are. ``None`` when
    the node is gone."""
    for attempt in range(5):
        try:
            node = await client.get(NODES, name)
        except StatusError as exc:
            if exc.code == 404:
                return None
            raise
        spec = node.setdefault("spec", {})
        taints = list(spec.get("taints") or [])
        dropped = set(remove)
        kept = [t for t in taints if (t.get("key"), t.get("effect")) not in dropped]
        for taint in add:
            if not any(t.get("key") == taint["key"] and t.get("effect") == taint["effect"] for t in kept):
                kept.append({"key": taint["key"], "effect": taint["effect"], "timeAdded": timestamp()})
        if kept == taints:
            return node
        if kept:
            spec["taints"] = kept
        else:
            spec.pop("taints", None)
        try:
            updated: Obj = await client.update(NODES, node)
            return updated
        except StatusError as exc:
            if exc.code != 409 or attempt == 4:
                raise
    return None


class NodeLifecycleController(base.Controller):
    """Node health, condition taints and rate-limited NoExecute taints; see the module docstring."""

    name = "node-lifecycle"

    def __init__(
        self,
        factory: informers.InformerFactory,
        settings: NodeLifecycleSettings | None = None,
        client: Client | None = None,
        *,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.settings = settings or NodeLifecycleSettings()
        self.client = client or factory.client
        self.recorder = EventRecorder(self.client, component="node-controller")
        self.nodes = self.informer(NODES)
        self.leases = self.informer(LEASES, namespace=NODE_LEASE_NAMESPACE, keys=self._keys_for_lease)
        self.pods = self.informer(PODS, keys=self._keys_for_pod)
        self.pods.add_index(cache.NODE_NAME, cache.by_node_name)
        self._health: dict[str, _Health] = {}
        self._ready_seen: dict[str, str] = {}
        self._limiters: dict[str, TokenBucket] = {}
        self.zone_states: dict[str, str] = {}
        """Zone → Normal / PartialDisruption / FullDisruption, as of the last zone pass."""
        self.full_disruption = False
        """Every zone is fully disrupted: no NoExecute taints, no evictions."""

    # -- keys --------------------------------------------------------------------------------

    def _keys_for_lease(self, lease: Obj) -> list[str]:
        return [lease["metadata"]["name"]]

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        """A Ready pod on a node that is not Ready is this controller's business (mark it NotReady)."""
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or not _pod_ready(pod):
            return []
        node = self.nodes.indexer.get(node_name)
        return [node_name] if node is not None and ready_status(node) != "True" else []

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        if key == ZONES_KEY:
            await self._sync_zones()
        else:
            await self._sync_node(key)

    def _now(self) -> float:
        now: float = self.queue.clock.time()
        return now

    async def _sync_node(self, name: str) -> None:
        node = self.nodes.indexer.get(name)
        if node is None:
            self._health.pop(name, None)
            if self._ready_seen.pop(name, None) is not None:
                _log.info("node %s was deleted", name)
                ref = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
                self._node_event(ref, "RemovingNode", f"Removing Node {name} from Controller")
                self.queue.add(ZONES_KEY)
            return
        if name not in self._ready_seen:
            self._node_event(node, "RegisteredNode", f"Registered Node {name} in Controller")
        node = await self._check_health(node)
        await self._sync_no_schedule_taints(node)
        ready = ready_status(node)
        seen = self._ready_seen.get(name)
        if ready != "True":
            if seen == "True":
                self.recorder.record(
                    node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady"
                )
            await self._mark_pods_not_ready(node)
        self._ready_seen[name] = ready
        if ready != seen or self._no_execute_mismatch(node, ready):
            self.queue.add(ZONES_KEY)

    def _node_event(self, node: Obj, reason: str, event: str) -> None:
        """upstream's RecordNodeEvent wording: ``Node <name> event: <what>``."""
        self.recorder.record(node, "Normal", reason, f"Node {node['metadata']['name']} event: {event}")

    async def _check_health(self, node: Obj) -> Obj:
        """Stamp a new Lease renewal or heartbeat; past the grace period, write the conditions Unknown."""
        name = node["metadata"]["name"]
        lease = self.leases.indexer.get(f"{NODE_LEASE_NAMESPACE}/{name}")
        renewed = str(((lease or {}).get("spec") or {}).get("renewTime") or "")
        heartbeat = str((condition(node, "Ready") or {}).get("lastHeartbeatTime") or "")
        marker = (renewed, heartbeat)
        now = self._now()
        health = self._health.get(name)
        if health is None or health.marker != marker:
            health = self._health[name] = _Health(marker, now)
        deadline = health.probe + self.settings.node_monitor_grace_period
        if now < deadline:
            self.queue.add_after(name, deadline - now + 0.01)
            return node
        updated = copy.deepcopy(node)
        conditions = updated.setdefault("status", {}).setdefault("conditions", [])
        changed = False
        moment = timestamp()
        for kind in UNKNOWN_CONDITIONS:
            current = next((c for c in conditions if c.get("type") == kind), None)
            if current is None:
                conditions.append(
                    {
                        "type": kind,
                        "status": "Unknown",
                        "reason": "NodeStatusNeverUpdated",
                        "message": "Kubelet never posted node status.",
                        "lastHeartbeatTime": node["metadata"].get("creationTimestamp"),
                        "lastTransitionTime": moment,
                    }
                )
                changed = True
            elif current.get("status") != "Unknown":
                current.update(
                    status="Unknown",
                    reason="NodeStatusUnknown",
                    message="Kubelet stopped posting node status.",
                    lastTransitionTime=moment,
                )
                changed = True
        if not changed:
            return node
        _log.info("node %s: no heartbeat for %.1fs; its conditions are now Unknown", name, now - health.probe)
        result: Obj = await self.client.update(NODES, updated, subresource="status")
        return result

    async def _sync_no_schedule_taints(self, node: Obj) -> None:
        wanted = {
            taint
            for (kind, status), taint in CONDITION_TAINTS.items()
            if (condition(node, kind) or {}).get("status") == status
        }
        if (node.get("spec") or {}).get("unschedulable"):
            wanted.add(TAINT_UNSCHEDULABLE)
        present = {
            t.get("key")
            for t in (node.get("spec") or {}).get("taints") or []
            if t.get("effect") == NO_SCHEDULE and t.get("key") in MANAGED_NO_SCHEDULE
        }
        if wanted == present:
            return
        await update_taints(
            self.client,
            node["metadata"]["name"],
            add=[{"key": key, "effect": NO_SCHEDULE} for key in sorted(wanted - present)],
            remove=[(key, NO_SCHEDULE) for key in sorted(present - wanted)],
        )

    async def _mark_pods_not_ready(self, node: Obj) -> None:
        """upstream's MarkPodsNotReady: Ready=False on each pod of the node, one status write each."""
        name = node["metadata"]["name"]
        for pod in self.pods.indexer.by_index(cache.NODE_NAME, name):
            metadata = pod["metadata"]
            if not _pod_ready(pod) or MIRROR_ANNOTATION in (metadata.get("annotations") or {}):
                continue
            updated = copy.deepcopy(pod)
            for item in updated["status"]["conditions"]:
                if item.get("type") == "Ready":
                    item.update(status="False", lastTransitionTime=timestamp())
                    item.pop("reason", None)
                    item.pop("message", None)
            try:
                await self.client.update(PODS, updated, namespace=metadata["namespace"], subresource="status")
            except StatusError as exc:
                if exc.code == 404:
                    continue
                raise
            self.recorder.record(pod, "Warning", "NodeNotReady", "Node is not ready")

    # -- zones and NoExecute taints -----------------------------------------------------------

    def _no_execute_mismatch(self, node: Obj, ready: str) -> bool:
        if ready == "True" or self.full_disruption:
            return any(has_taint(node, key, NO_EXECUTE) for key in MANAGED_NO_EXECUTE)
        wanted = TAINT_NOT_READY if ready == "False" else TAINT_UNREACHABLE
        return not has_taint(node, wanted, NO_EXECUTE)

    async def _sync_zones(self) -> None:
        nodes = sorted(self.nodes.indexer.list(), key=_transition_time)
        zones: dict[str, list[str]] = {}
        for node in nodes:
            labels = node["metadata"].get("labels") or {}
            if EXCLUDE_DISRUPTION not in labels:
                zones.setdefault(zone_key(node), []).append(ready_status(node))
        states = {
            zone: zone_state(ready, self.settings.unhealthy_zone_threshold) for zone, ready in zones.items()
        }
        self.zone_states = states
        if states and all(state == FULL_DISRUPTION for state in states.values()):
            if not self.full_disruption:
                _log.warning("no node is Ready: entering full-disruption mode, nothing will be evicted")
                self.full_disruption = True
            for node in nodes:
                await self._untaint_no_execute(node)
            return
        if self.full_disruption:
            _log.warning("some nodes are Ready again: leaving full-disruption mode")
            self.full_disruption = False
            now = self._now()
            for name, health in self._health.items():
                health.probe = now
                self.queue.add(name)
            for limiter in self._limiters.values():
                limiter.tokens = 1.0
        retry: float | None = None
        for node in nodes:
            ready = ready_status(node)
            if ready == "True":
                await self._untaint_no_execute(node)
                continue
            if condition(node, "Ready") is None:
                continue  # never posted: the health check writes Unknown conditions after the grace period
            zone = zone_key(node)
            wanted, opposite = (
                (TAINT_NOT_READY, TAINT_UNREACHABLE)
                if ready == "False"
                else (TAINT_UNREACHABLE, TAINT_NOT_READY)
            )
            name = node["metadata"]["name"]
            if has_taint(node, wanted, NO_EXECUTE) and not has_taint(node, opposite, NO_EXECUTE):
                continue
            if not has_taint(node, opposite, NO_EXECUTE):
                state = states.get(zone, NORMAL)
                rate = eviction_rate(self.settings, state, len(zones.get(zone, ())))
                limiter = self._limiter(zone, rate)
                wait = limiter.take()
                if wait is None:
                    continue  # a small, partially disrupted zone: no evictions
                if wait > 0:
                    retry = wait if retry is None else min(retry, wait)
                    continue
            _log.info("node %s is %s: adding the %s:NoExecute taint", name, _describe(ready), wanted)
            await update_taints(
                self.client,
                name,
                add=[{"key": wanted, "effect": NO_EXECUTE}],
                remove=[(opposite, NO_EXECUTE)],
            )
        if retry is not None:
            self.queue.add_after(ZONES_KEY, retry)

    def _limiter(self, zone: str, rate: float) -> TokenBucket:
        limiter = self._limiters.get(zone)
        if limiter is None:
            limiter = self._limiters[zone] = TokenBucket(rate, self.queue.clock)
        limiter.set_rate(rate)
        return limiter

    async def _untaint_no_execute(self, node: Obj) -> None:
        present = [key for key in sorted(MANAGED_NO_EXECUTE) if has_taint(node, key, NO_EXECUTE)]
        if present:
            _log.info(
                "node %s: removing the %s NoExecute taints", node["metadata"]["name"], ", ".join(present)
            )
            await update_taints(
                self.client, node["metadata"]["name"], remove=[(k, NO_EXECUTE) for k in present]
            )


def _pod_ready(pod: Obj) -> bool:
    return (condition(pod, "Ready") or {}).get("status") == "True"


def _transition_time(node: Obj) -> str:
    return str((condition(node, "Ready") or {}).get("lastTransitionTime") or "")


def _describe(ready: str) -> str:
    return "not Ready" if ready == "False" else "unreachable"
