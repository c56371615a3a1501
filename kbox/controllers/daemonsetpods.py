"""What the DaemonSet controller decides, as pure functions of the cached objects (upstream's
pkg/controller/daemon util and update code): whether a node should run a daemon pod, the pod a node
gets, which pod is on which node, what a rolling update step does, and the status counts.

Placement (upstream's NodeShouldRunDaemonPod): the template's ``nodeName`` (if any), ``nodeSelector``
and required node affinity must match the node (through the scheduler's own predicates), and every
NoSchedule/NoExecute taint on the node must be tolerated, counting the tolerations every daemon pod gets;
an existing pod may stay while only NoSchedule taints are untolerated. ``spec.unschedulable`` is not a
taint and is ignored; a cordoned node's ``node.kubernetes.io/unschedulable`` taint is tolerated.

A pod is *updated* when its ``controller-revision-hash`` label is the current revision's hash, or its
``pod-template-generation`` label is the DaemonSet's template generation; *available* when Ready for
``minReadySeconds``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable
from typing import Any

from kbox.client.interface import Obj
from kbox.controllers import history, podutil
from kbox.controllers.meta import epoch
from kbox.controllers.podutil import is_available, ready_since
from kbox.scheduler import filters

KIND = "DaemonSet"
HASH_LABEL = history.REVISION_HASH_LABEL
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
GENERATION_LABEL = "pod-template-generation"
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 900.0

_NOT_READY = "node.kubernetes.io/not-ready"
_UNREACHABLE = "node.kubernetes.io/unreachable"


def _exists(key: str, effect: str) -> Obj:
    return {"key": key, "operator": "Exists", "effect": effect}


DAEMON_TOLERATIONS = (
    _exists(_NOT_READY, "NoExecute"),
    _exists(_UNREACHABLE, "NoExecute"),
    _exists("node.kubernetes.io/disk-pressure", "NoSchedule"),
    _exists("node.kubernetes.io/memory-pressure", "NoSchedule"),
    _exists("node.kubernetes.io/pid-pressure", "NoSchedule"),
    _exists("node.kubernetes.io/unschedulable", "NoSchedule"),
)
"""What every daemon pod tolerates (util.AddOrUpdateDaemonPodTolerations): it stays on a node that is
not ready or unreachable however long, and lands on nodes under pressure or cordoned."""
HOST_NETWORK_TOLERATION = _exists("node.kubernetes.io/network-unavailable", "NoSchedule")
"""Added for host-network pods, which do not need the pod network."""


def owner_reference(ds: Obj) -> Obj:
    return history.owner_reference(ds, KIND)


def new_pod(ds: Obj, hash_text: str) -> Obj:
    """The pod every node gets, before its node affinity (util.CreatePodTemplate)."""
    metadata = ds["metadata"]
    template = ds["spec"].get("template") or {}
    template_meta = template.get("metadata") or {}
    labels = dict(template_meta.get("labels") or {})
    labels[HASH_LABEL] = hash_text
    generation = template_generation(ds)
    if generation is not None:
        labels[GENERATION_LABEL] = str(generation)
    pod_meta: Obj = {
        "generateName": f"{metadata['name']}-",
        "namespace": metadata["namespace"],
        "labels": labels,
    }
    for field in ("annotations", "finalizers"):
        if template_meta.get(field):
            pod_meta[field] = copy.deepcopy(template_meta[field])
    pod_meta["ownerReferences"] = [owner_reference(ds)]
    spec = copy.deepcopy(template.get("spec") or {})
    add_daemon_tolerations(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


# -- placement ---------------------------------------------------------------------------------------


class PodTemplate:
    """A DaemonSet's pod as the placement predicates see it: the template with the daemon tolerations
    (upstream's NewPod + NodeShouldRunDaemonPod). It remembers its answer per node version, so the
    controller keeps one per DaemonSet generation and a sync costs a dict lookup per unchanged node."""

    def __init__(self, ds: Obj) -> None:
        spec = copy.deepcopy((ds["spec"].get("template") or {}).get("spec") or {})
        add_daemon_tolerations(spec)
        self.node_name: str = spec.get("nodeName") or ""
        self.tolerations: list[Obj] = spec.get("tolerations") or []
        self.pod = filters.PodInfo({"metadata": {"namespace": ds["metadata"]["namespace"]}, "spec": spec})
        self._known: dict[str, tuple[str, tuple[bool, bool]]] = {}

    def placement(self, node: Obj) -> tuple[bool, bool]:
        """(should run a daemon pod here, may keep an existing one running here)."""
        name = node["metadata"]["name"]
        version = node["metadata"].get("resourceVersion") or ""
        known = self._known.get(name)
        if known is not None and version and known[0] == version:
            return known[1]
        answer = self._placement(node, name)
        if version:
            self._known[name] = (version, answer)
        return answer

    def forget_missing(self, names: set[str]) -> None:
        """Drop what is remembered about nodes that are gone."""
        for name in [n for n in self._known if n not in names]:
            del self._known[name]

    def _placement(self, node: Obj, name: str) -> tuple[bool, bool]:
        if self.node_name and self.node_name != name:
            return False, False
        if filters.node_affinity(self.pod, filters.NodeInfo(name, node)) is not None:
            return False, False
        untolerated = [
            taint
            for taint in (node.get("spec") or {}).get("taints") or []
            if taint.get("effect") in ("NoSchedule", "NoExecute")
            and not filters.tolerates(self.tolerations, taint)
        ]
        if untolerated:
            return False, not any(t.get("effect") == "NoExecute" for t in untolerated)
        return True, True


def add_daemon_tolerations(spec: Obj) -> None:
    """Add (or replace same key/operator/value/effect) the tolerations every daemon pod carries."""
    wanted = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        wanted.append(HOST_NETWORK_TOLERATION)
    tolerations = [dict(t) for t in spec.get("tolerations") or []]
    for toleration in wanted:
        same = [
            i
            for i, t in enumerate(tolerations)
            if all((t.get(f) or "") == (toleration.get(f) or "") for f in ("key", "value", "effect"))
            and (t.get("operator") or "Equal") == toleration["operator"]
        ]
        if same:
            tolerations[same[0]] = dict(toleration)
        else:
            tolerations.append(dict(toleration))
    spec["tolerations"] = tolerations


def pin_to_node(spec: Obj, node: str) -> None:
    """Require the node by ``metadata.name`` (util.ReplaceDaemonSetPodNodeNameNodeAffinity): the
    required node terms become this one term; the template's were already checked against the node."""
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
    }


def target_node(pod: Obj) -> str:
    """The node a daemon pod is on, or is pinned to while unscheduled (util.GetTargetNodeName)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            values = field.get("values") or []
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return ""


def pods_by_node(pods: Iterable[Obj]) -> dict[str, list[Obj]]:
    """Daemon pods by target node, leaving out pods that are both finished and being deleted."""
    result: dict[str, list[Obj]] = {}
    for pod in pods:
        finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if finished and pod["metadata"].get("deletionTimestamp"):
            continue
        result.setdefault(target_node(pod), []).append(pod)
    result.pop("", None)
    return result


def placement_fields(node: Obj) -> tuple[Any, ...]:
    return (
        (node.get("metadata") or {}).get("labels"),
        (node.get("spec") or {}).get("taints"),
        (node.get("spec") or {}).get("unschedulable"),
    )


# -- updates -----------------------------------------------------------------------------------------


def template_generation(ds: Obj) -> int | None:
    text = (ds["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION, "")
    return int(text) if isinstance(text, str) and text.isdigit() else None


def revision_hash(revision: Obj) -> str:
    labels = revision["metadata"].get("labels") or {}
    return str(labels.get(HASH_LABEL) or revision["metadata"]["name"])


def is_updated(pod: Obj, hash_text: str, generation: int | None) -> bool:
    """Made from the current template: its hash label, or (older pods) its template generation."""
    labels = pod["metadata"].get("labels") or {}
    if hash_text and labels.get(HASH_LABEL) == hash_text:
        return True
    return generation is not None and labels.get(GENERATION_LABEL) == str(generation)


def new_and_old(
    pods: list[Obj], hash_text: str, generation: int | None
) -> tuple[Obj | None, Obj | None] | None:
    """The node's updated and old pod (not terminating), or ``None`` when it has two of either."""
    new_pod: Obj | None = None
    old_pod: Obj | None = None
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if is_updated(pod, hash_text, generation):
            if new_pod is not None:
                return None
            new_pod = pod
        else:
            if old_pod is not None:
                return None
            old_pod = pod
    return new_pod, old_pod


def allows_surge(ds: Obj) -> bool:
    strategy = ds["spec"].get("updateStrategy") or {}
    if strategy.get("type") != "RollingUpdate":
        return False
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", 0)
    return scaled(surge, 1) > 0


def scaled(value: Any, total: int) -> int:
    """An int-or-percent of ``total``, percentages rounded up (as the DaemonSet controller rounds)."""
    if isinstance(value, int):
        return value
    text = str(value or "0")
    if text.endswith("%"):
        return math.ceil(int(text[:-1]) * total / 100)
    return int(text) if text.isdigit() else 0


def rolling_limits(ds: Obj, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for ``desired`` nodes; never both zero while any node wants a pod."""
    rolling = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge", 0), desired)
    unavailable = scaled(rolling.get("maxUnavailable", 1), desired)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _phase_rank(pod: Obj) -> int:
    return {"Pending": 0, "Unknown": 1, "Running": 2}.get((pod.get("status") or {}).get("phase", ""), 0)


def oldest_first(pod: Obj) -> tuple[float, int, str]:
    """podByCreationTimestampAndPhase: older first, then running before pending, then name."""
    created = epoch(pod["metadata"].get("creationTimestamp")) or 0.0
    return (created, -_phase_rank(pod), pod["metadata"].get("name", ""))


def surge_extras(running: list[Obj], hash_text: str, min_ready: int) -> list[Obj]:
    """With surge, a node keeps its oldest new pod and its oldest old pod, and the old one only while
    it is ready and the new one is not yet available."""
    oldest_new: Obj | None = None
    oldest_old: Obj | None = None
    extras: list[Obj] = []
    for pod in running:
        if (pod["metadata"].get("labels") or {}).get(HASH_LABEL) == hash_text:
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        extras.append(pod)
    if (
        oldest_new is not None
        and oldest_old is not None
        and (ready_since(oldest_old) is None or is_available(oldest_new, min_ready, time.time()))
    ):
        extras.append(oldest_old)
    return extras


def rolling_update_plan(
    ds: Obj,
    nodes: list[Obj],
    pods: list[Obj],
    hash_text: str,
    *,
    now: float | None = None,
    template: PodTemplate | None = None,
) -> tuple[list[Obj], list[str]]:
    """Which old pods to delete and which nodes get a new pod now, within maxUnavailable / maxSurge
    (upstream's rollingUpdate). Without surge, replacements are created by the next sync's placement
    step once the old pod is gone."""
    by_node = pods_by_node(pods)
    template = template or PodTemplate(ds)
    desired = 0
    for node in nodes:
        if template.placement(node)[0]:
            desired += 1
            by_node.setdefault(node["metadata"]["name"], [])
    max_surge, max_unavailable = rolling_limits(ds, desired)
    min_ready = int(ds["spec"].get("minReadySeconds") or 0)
    generation = template_generation(ds)
    now = time.time() if now is None else now
    nodes_by_name = {n["metadata"]["name"]: n for n in nodes}

    def available(pod: Obj) -> bool:
        return is_available(pod, min_ready, now)

    if max_surge == 0:
        unavailable = 0
        replace: list[Obj] = []
        candidates: list[Obj] = []
        for name in sorted(by_node):
            found = new_and_old(by_node[name], hash_text, generation)
            if found is None:
                unavailable += 1
                continue
            new_pod, old_pod = found
            if (old_pod is None) == (new_pod is None):
                unavailable += 1
            elif new_pod is not None:
                if not available(new_pod):
                    unavailable += 1
            elif old_pod is not None and not available(old_pod):
                replace.append(old_pod)
            elif old_pod is not None and unavailable < max_unavailable:
                candidates.append(old_pod)
        room = min(max(max_unavailable - unavailable, 0), len(candidates))
        return replace + candidates[:room], []

    surged = available_count = 0
    deletes: list[Obj] = []
    leaving: list[Obj] = []
    allowed: list[str] = []
    surge_candidates: list[str] = []
    for name in sorted(by_node):
        found = new_and_old(by_node[name], hash_text, generation)
        if found is None:
            surged += 1
            continue
        new_pod, old_pod = found
        counted = old_pod if old_pod is not None else new_pod
        if counted is not None and available(counted):
            available_count += 1
        if old_pod is None:
            continue
        where = nodes_by_name.get(name)
        should_run = where is not None and template.placement(where)[0]
        if new_pod is None:
            if not available(old_pod):
                if should_run:
                    allowed.append(name)
                else:
                    deletes.append(old_pod)
            elif not should_run:
                leaving.append(old_pod)
            elif surged < max_surge:
                surge_candidates.append(name)
        elif not available(new_pod):
            surged += 1
        else:
            deletes.append(old_pod)
    # A node that stopped qualifying loses its old pod only once another is available elsewhere.
    deletable = min(max(available_count - desired, 0), len(leaving))
    deletes += leaving[:deletable]
    room = min(max(max_surge - surged, 0), len(surge_candidates))
    return deletes, allowed + surge_candidates[:room]


# -- status ------------------------------------------------------------------------------------------


def calculate_status(
    ds: Obj,
    nodes: list[Obj],
    pods: list[Obj],
    hash_text: str,
    *,
    observe: bool,
    template: PodTemplate | None = None,
) -> Obj:
    by_node = pods_by_node(pods)
    template = template or PodTemplate(ds)
    min_ready = int(ds["spec"].get("minReadySeconds") or 0)
    generation = template_generation(ds)
    now = time.time()
    desired = current = misscheduled = ready = available = updated = 0
    for node in nodes:
        should_run, _ = template.placement(node)
        on_node = by_node.get(node["metadata"]["name"]) or []
        if not should_run:
            misscheduled += 1 if on_node else 0
            continue
        desired += 1
        if not on_node:
            continue
        current += 1
        pod = sorted(on_node, key=oldest_first)[0]
        if ready_since(pod) is not None:
            ready += 1
            if is_available(pod, min_ready, now):
                available += 1
        if is_updated(pod, hash_text, generation):
            updated += 1
    old = ds.get("status") or {}
    status: Obj = {
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
        "observedGeneration": ds["metadata"].get("generation", 1)
        if observe
        else old.get("observedGeneration"),
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
    }
    # Zero counts the Go type leaves out (omitempty) are left out; the first four always show.
    for field in ("observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
        if not status[field]:
            status[field] = None
    return status


def next_available(pods: list[Obj], min_ready: int) -> float:
    wait = podutil.next_available(pods, min_ready)
    return wait if wait is not None else min_ready + podutil.AVAILABILITY_SLACK


# -- helpers -----------------------------------------------------------------------------------------


class FailedPodBackoff:
    """Per DaemonSet and node: how long to wait before deleting the next failed pod (a kubelet that
    keeps rejecting a pod would otherwise meet a controller that keeps replacing it). 1 s, doubling
    to 15 minutes; forgotten after twice the maximum without failures."""

    def __init__(self, *, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[tuple[str, str], tuple[float, float]] = {}

    def delay(self, key: str, node: str) -> float:
        """Seconds left before the next failed pod on ``node`` may be deleted (0: now)."""
        entry = self._entries.get((key, node))
        if entry is None:
            return 0.0
        delay, since = entry
        return max(since + delay - time.monotonic(), 0.0)

    def next(self, key: str, node: str) -> None:
        now = time.monotonic()
        entry = self._entries.get((key, node))
        if entry is None or now - entry[1] > 2 * self.maximum:
            self._entries[(key, node)] = (self.initial, now)
        else:
            self._entries[(key, node)] = (min(entry[0] * 2, self.maximum), now)

    def forget(self, key: str) -> None:
        for entry in [e for e in self._entries if e[0] == key]:
            del self._entries[entry]
