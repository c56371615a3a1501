"""What the scheduler knows about pods and nodes, and the filters that say whether a pod fits a node.

:class:`PodInfo` is a pod read once into what scheduling needs (requests as integers, host ports,
tolerations, parsed affinity terms, spread constraints); :class:`NodeInfo` is a node plus the running
sums of what its pods request, the host ports they hold and who owns them; :class:`ClusterState` keeps
both incrementally as the scheduler's informers report changes and as the scheduler assumes its own
decisions, so no decision ever re-reads every pod.

The filters follow upstream's default plugins in upstream's order (NodeUnschedulable, TaintToleration,
NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread, InterPodAffinity) and report upstream's
reasons, so the FailedScheduling message reads as on a real cluster. Each returns ``None`` when the pod
fits, or a :class:`Failure`: the reasons and whether evicting pods could ever help (preemption's
"resolvable"). :class:`Fit` is the per-pod pre-filter: it does the work that depends on the pod but not
the node once (topology counts for affinity and spreading), and keeps only the checks the pod needs, so
the common pod (requests and nothing else) costs a few integer comparisons per node.

A node that is not Ready is treated as carrying the taint the node lifecycle controller would put on
it (``node.kubernetes.io/not-ready`` or ``unreachable``, NoSchedule), which is how upstream's scheduler
sees such nodes; a pod tolerating that taint may still land there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from kbox.api import quantity, selectors

Obj = dict[str, Any]
NamespaceLabels = Callable[[str], Mapping[str, str] | None]

DEFAULT_MILLI_CPU = 100
"""What scoring assumes a container without a cpu request uses (upstream's non-zero default)."""
DEFAULT_MEMORY = 200 * 1024 * 1024

HOSTNAME = "kubernetes.io/hostname"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

UNSCHEDULABLE = "node(s) were unschedulable"
NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
NODE_PORTS = "node(s) didn't have free ports for the requested pod ports"
TOO_MANY_PODS = "Too many pods"
AFFINITY = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
SPREAD = "node(s) didn't match pod topology spread constraints"
SPREAD_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"


def untolerated_taint(taint: Mapping[str, Any]) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"


class Failure(NamedTuple):
    """Why a pod does not fit a node; ``resolvable`` if removing pods from the node could change that."""

    reasons: tuple[str, ...]
    resolvable: bool


# -- quantities -------------------------------------------------------------------------------------

_quantities: dict[str, Decimal] = {}


def _quantity(value: Any) -> Decimal:
    if not isinstance(value, str):
        return quantity.parse(value)
    parsed = _quantities.get(value)
    if parsed is None:
        parsed = quantity.parse(value)
        if len(_quantities) < 10_000:
            _quantities[value] = parsed
    return parsed


def milli(value: Any) -> int:
    """A cpu quantity in millicores, rounded up as upstream's ``MilliValue``."""
    return math.ceil(_quantity(value) * 1000)


def units(value: Any) -> int:
    """A quantity in whole units (bytes), rounded up as upstream's ``Value``."""
    return math.ceil(_quantity(value))


# -- pods -----------------------------------------------------------------------------------------


class AffinityTerm:
    """A pod (anti-)affinity term: which pods (selector, namespaces) in which domain (topologyKey)."""

    __slots__ = ("namespace_selector", "namespaces", "selector", "topology_key", "weight")

    def __init__(self, term: Mapping[str, Any], own_namespace: str, weight: int = 0) -> None:
        self.selector = selectors.from_label_selector(term.get("labelSelector"), "labelSelector")
        self.topology_key: str = term.get("topologyKey") or ""
        names = term.get("namespaces") or []
        ns_selector = term.get("namespaceSelector")
        self.namespace_selector = None
        if ns_selector is not None:
            self.namespace_selector = selectors.from_label_selector(ns_selector, "namespaceSelector")
        self.namespaces = frozenset(names) if names or ns_selector is not None else frozenset([own_namespace])
        self.weight = weight

    def matches(self, pod: PodInfo, namespace_labels: NamespaceLabels | None = None) -> bool:
        """Does ``pod`` fall under this term (namespace, then labels)?"""
        if pod.namespace not in self.namespaces:
            if self.namespace_selector is None:
                return False
            labels = namespace_labels(pod.namespace) if namespace_labels is not None else None
            if not self.namespace_selector.matches(labels or {}):
                return False
        return self.selector.matches(pod.labels)


class SpreadConstraint:
    __slots__ = ("do_not_schedule", "max_skew", "selector", "topology_key")

    def __init__(self, constraint: Mapping[str, Any]) -> None:
        self.max_skew = int(constraint.get("maxSkew") or 1)
        self.topology_key: str = constraint.get("topologyKey") or HOSTNAME
        self.do_not_schedule = constraint.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule"
        self.selector = selectors.from_label_selector(constraint.get("labelSelector"), "labelSelector")


class PodInfo:
    """A pod as the scheduler needs it; built once per spec and labels, read-only afterwards except
    ``obj``, which follows the pod's status-only updates (:meth:`ClusterState.refresh`)."""

    __slots__ = (
        "affinity",
        "anti_affinity",
        "cpu",
        "ephemeral",
        "key",
        "labels",
        "memory",
        "name",
        "namespace",
        "node_name",
        "node_selector",
        "nz_cpu",
        "nz_memory",
        "obj",
        "owner",
        "ports",
        "preferred_affinity",
        "preferred_anti_affinity",
        "preferred_node_terms",
        "priority",
        "required_node_terms",
        "spread",
        "tolerations",
        "uid",
    )

    def __init__(self, pod: Obj) -> None:
        metadata = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.obj = pod
        self.namespace: str = metadata.get("namespace") or ""
        self.name: str = metadata.get("name") or ""
        self.key = f"{self.namespace}/{self.name}" if self.namespace else self.name
        self.uid: str = metadata.get("uid") or ""
        self.labels: dict[str, str] = metadata.get("labels") or {}
        self.node_name: str = spec.get("nodeName") or ""
        self.priority: int = spec.get("priority") or 0
        self.owner = ""
        for ref in metadata.get("ownerReferences") or ():
            if ref.get("controller"):
                self.owner = ref.get("uid") or ""
        self.cpu, self.memory, self.ephemeral, self.nz_cpu, self.nz_memory = _requests(spec)
        ports = []
        for container in spec.get("containers") or ():
            for port in container.get("ports") or ():
                host_port = port.get("hostPort") or 0
                if host_port > 0:
                    ports.append((port.get("hostIP") or "0.0.0.0", port.get("protocol") or "TCP", host_port))
        self.ports: list[tuple[str, str, int]] = ports
        self.tolerations: list[Obj] = spec.get("tolerations") or []
        self.node_selector: dict[str, str] = spec.get("nodeSelector") or {}
        affinity = spec.get("affinity") or {}
        node_affinity = affinity.get("nodeAffinity") or {}
        required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
        self.required_node_terms: list[Obj] | None = (
            list(required.get("nodeSelectorTerms") or []) if required is not None else None
        )
        self.preferred_node_terms: list[tuple[int, Obj]] = [
            (int(p.get("weight") or 0), p.get("preference") or {})
            for p in node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
        ]
        pod_affinity = affinity.get("podAffinity") or {}
        pod_anti = affinity.get("podAntiAffinity") or {}
        req = "requiredDuringSchedulingIgnoredDuringExecution"
        pref = "preferredDuringSchedulingIgnoredDuringExecution"
        ns = self.namespace
        self.affinity = [AffinityTerm(t, ns) for t in pod_affinity.get(req) or ()]
        self.anti_affinity = [AffinityTerm(t, ns) for t in pod_anti.get(req) or ()]
        self.preferred_affinity = [
            AffinityTerm(t.get("podAffinityTerm") or {}, ns, int(t.get("weight") or 0))
            for t in pod_affinity.get(pref) or ()
        ]
        self.preferred_anti_affinity = [
            AffinityTerm(t.get("podAffinityTerm") or {}, ns, int(t.get("weight") or 0))
            for t in pod_anti.get(pref) or ()
        ]
        self.spread = [SpreadConstraint(c) for c in spec.get("topologySpreadConstraints") or ()]


def _container_requests(container: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    requests = (container.get("resources") or {}).get("requests") or {}
    cpu = milli(requests["cpu"]) if "cpu" in requests else 0
    memory = units(requests["memory"]) if "memory" in requests else 0
    ephemeral = units(requests["ephemeral-storage"]) if "ephemeral-storage" in requests else 0
    nz_cpu = cpu if "cpu" in requests else DEFAULT_MILLI_CPU
    nz_memory = memory if "memory" in requests else DEFAULT_MEMORY
    return cpu, memory, ephemeral, nz_cpu, nz_memory


def _requests(spec: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """(cpu m, memory, ephemeral-storage, non-zero cpu m, non-zero memory) a pod asks for, as upstream
    counts them: the sum over app containers, or the largest init container if that is more (sidecars,
    init containers restarting Always, add to both), plus the pod overhead."""
    total = [0, 0, 0, 0, 0]
    for container in spec.get("containers") or ():
        for i, value in enumerate(_container_requests(container)):
            total[i] += value
    sidecars = [0, 0, 0, 0, 0]
    init_max = [0, 0, 0, 0, 0]
    for container in spec.get("initContainers") or ():
        values = _container_requests(container)
        if container.get("restartPolicy") == "Always":
            for i, value in enumerate(values):
                sidecars[i] += value
                init_max[i] = max(init_max[i], sidecars[i])
        else:
            for i, value in enumerate(values):
                init_max[i] = max(init_max[i], value + sidecars[i])
    result = [max(total[i] + sidecars[i], init_max[i]) for i in range(5)]
    overhead = spec.get("overhead") or {}
    if overhead:
        extra = _container_requests({"resources": {"requests": overhead}})
        for i in range(3):
            result[i] += extra[i]
        result[3] += extra[0]
        result[4] += extra[1]
    return result[0], result[1], result[2], result[3], result[4]


def terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


# -- nodes ----------------------------------------------------------------------------------------


class NodeInfo:
    """A node and the running totals of the pods on it (bound, or assumed by the scheduler)."""

    __slots__ = (
        "alloc_cpu",
        "alloc_ephemeral",
        "alloc_memory",
        "alloc_pods",
        "anti_affinity_pods",
        "clean",
        "cpu",
        "ephemeral",
        "free_cpu",
        "free_ephemeral",
        "free_memory",
        "free_pods",
        "labels",
        "memory",
        "name",
        "node",
        "nz_cpu",
        "nz_memory",
        "owners",
        "pods",
        "ports",
        "prefer_no_schedule",
        "score_cache",
        "taints",
        "unschedulable",
        "version",
    )

    def __init__(self, name: str, node: Obj | None = None) -> None:
        self.name = name
        self.node: Obj | None = None
        self.labels: dict[str, str] = {}
        self.taints: list[Obj] = []
        self.prefer_no_schedule: list[Obj] = []
        self.unschedulable = False
        self.alloc_cpu = self.alloc_memory = self.alloc_ephemeral = self.alloc_pods = 0
        self.cpu = self.memory = self.ephemeral = self.nz_cpu = self.nz_memory = 0
        self.pods: dict[str, PodInfo] = {}
        self.ports: dict[tuple[str, int], dict[str, int]] = {}
        self.owners: dict[str, int] = {}
        self.anti_affinity_pods: dict[str, PodInfo] = {}
        self.clean = True
        """Neither cordoned nor tainted NoSchedule/NoExecute (nor NotReady): only room matters."""
        self.free_cpu = self.free_memory = self.free_ephemeral = self.free_pods = 0
        self.version = 0
        """Bumped on every change, so what was computed from this node can be cached against it."""
        self.score_cache: dict[tuple[int, ...], tuple[int, int]] = {}
        if node is not None:
            self.set_node(node)

    def set_node(self, node: Obj) -> None:
        self.version += 1
        self.node = node
        metadata = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.labels = metadata.get("labels") or {}
        self.unschedulable = bool(spec.get("unschedulable"))
        taints = list(spec.get("taints") or ())
        keys = {t.get("key") for t in taints}
        ready = "Unknown"
        for condition in status.get("conditions") or ():
            if condition.get("type") == "Ready":
                ready = condition.get("status") or "Unknown"
        if ready != "True" and TAINT_NOT_READY not in keys and TAINT_UNREACHABLE not in keys:
            key = TAINT_NOT_READY if ready == "False" else TAINT_UNREACHABLE
            taints.append({"key": key, "effect": "NoSchedule"})
        self.taints = [t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute")]
        self.prefer_no_schedule = [t for t in taints if t.get("effect") == "PreferNoSchedule"]
        allocatable = status.get("allocatable") or status.get("capacity") or {}
        self.alloc_cpu = milli(allocatable["cpu"]) if "cpu" in allocatable else 0
        self.alloc_memory = units(allocatable["memory"]) if "memory" in allocatable else 0
        self.alloc_ephemeral = (
            units(allocatable["ephemeral-storage"]) if "ephemeral-storage" in allocatable else 0
        )
        self.alloc_pods = units(allocatable["pods"]) if "pods" in allocatable else 0
        self.clean = not self.unschedulable and not self.taints
        self._update_free()

    def _update_free(self) -> None:
        self.free_cpu = self.alloc_cpu - self.cpu
        self.free_memory = self.alloc_memory - self.memory
        self.free_ephemeral = self.alloc_ephemeral - self.ephemeral
        self.free_pods = self.alloc_pods - len(self.pods)

    def add_pod(self, pod: PodInfo) -> None:
        if pod.key in self.pods:
            self.remove_pod(pod.key)
        self.pods[pod.key] = pod
        self.version += 1
        self.cpu += pod.cpu
        self.memory += pod.memory
        self.ephemeral += pod.ephemeral
        self.nz_cpu += pod.nz_cpu
        self.nz_memory += pod.nz_memory
        for ip, protocol, port in pod.ports:
            held = self.ports.setdefault((protocol, port), {})
            held[ip] = held.get(ip, 0) + 1
        if pod.owner:
            self.owners[pod.owner] = self.owners.get(pod.owner, 0) + 1
        if pod.anti_affinity:
            self.anti_affinity_pods[pod.key] = pod
        self._update_free()

    def remove_pod(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        self.version += 1
        self.cpu -= pod.cpu
        self.memory -= pod.memory
        self.ephemeral -= pod.ephemeral
        self.nz_cpu -= pod.nz_cpu
        self.nz_memory -= pod.nz_memory
        for ip, protocol, port in pod.ports:
            held = self.ports.get((protocol, port))
            if held is not None and ip in held:
                held[ip] -= 1
                if held[ip] <= 0:
                    del held[ip]
                if not held:
                    del self.ports[(protocol, port)]
        if pod.owner:
            left = self.owners.get(pod.owner, 0) - 1
            if left > 0:
                self.owners[pod.owner] = left
            else:
                self.owners.pop(pod.owner, None)
        self.anti_affinity_pods.pop(key, None)
        self._update_free()
        return pod


class ClusterState:
    """Every node and every pod placed on one, kept incrementally; ``nodes`` lists the schedulable
    candidates (nodes whose object is known) in a stable order the scheduler rotates through."""

    def __init__(self) -> None:
        self.infos: dict[str, NodeInfo] = {}
        self.nodes: list[NodeInfo] = []
        self.placed: dict[str, str] = {}
        """Pod key → the node it is on (bound or assumed)."""
        self.anti_affinity_nodes: dict[str, int] = {}
        self.prefer_no_schedule: set[str] = set()
        """Nodes with PreferNoSchedule taints (scoring skips the taint scorer when there are none)."""
        """Node name → how many of its pods have required anti-affinity (for the existing-pods check)."""

    def set_node(self, node: Obj) -> NodeInfo:
        name = node["metadata"]["name"]
        info = self.infos.get(name)
        if info is None:
            info = self.infos[name] = NodeInfo(name)
        if info.node is None:
            self.nodes.append(info)
        info.set_node(node)
        if info.prefer_no_schedule:
            self.prefer_no_schedule.add(name)
        else:
            self.prefer_no_schedule.discard(name)
        return info

    def remove_node(self, name: str) -> None:
        info = self.infos.get(name)
        self.prefer_no_schedule.discard(name)
        if info is None:
            return
        if info.node is not None:
            self.nodes.remove(info)
            info.node = None
        if not info.pods:
            del self.infos[name]

    def place(self, pod: PodInfo, node_name: str) -> None:
        """Count ``pod`` on ``node_name`` (replacing wherever it was counted before)."""
        self.unplace(pod.key)
        info = self.infos.get(node_name)
        if info is None:
            info = self.infos[node_name] = NodeInfo(node_name)
        info.add_pod(pod)
        self.placed[pod.key] = node_name
        if pod.anti_affinity:
            self.anti_affinity_nodes[node_name] = self.anti_affinity_nodes.get(node_name, 0) + 1

    def refresh(self, key: str, pod: Obj) -> None:
        """Point the placed pod ``key`` at a newer version of itself whose spec and labels are the
        same (a status update): what was derived from them stands, the older object is let go."""
        node_name = self.placed.get(key)
        info = self.infos.get(node_name) if node_name is not None else None
        placed = info.pods.get(key) if info is not None else None
        if placed is not None:
            placed.obj = pod

    def unplace(self, key: str) -> PodInfo | None:
        node_name = self.placed.pop(key, None)
        if node_name is None:
            return None
        info = self.infos.get(node_name)
        if info is None:
            return None
        pod = info.remove_pod(key)
        if pod is not None and pod.anti_affinity:
            left = self.anti_affinity_nodes.get(node_name, 0) - 1
            if left > 0:
                self.anti_affinity_nodes[node_name] = left
            else:
                self.anti_affinity_nodes.pop(node_name, None)
        if info.node is None and not info.pods:
            del self.infos[node_name]
        return pod

    def pods(self) -> Iterable[tuple[NodeInfo, PodInfo]]:
        for info in self.infos.values():
            for pod in info.pods.values():
                yield info, pod


# -- the filters, one per upstream plugin ------------------------------------------------------------


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Does some toleration match the taint (key, value per operator, effect)?"""
    key = taint.get("key") or ""
    effect = taint.get("effect") or ""
    for toleration in tolerations:
        wanted_effect = toleration.get("effect") or ""
        if wanted_effect and wanted_effect != effect:
            continue
        wanted_key = toleration.get("key") or ""
        operator = toleration.get("operator") or "Equal"
        if wanted_key and wanted_key != key:
            continue
        if operator == "Exists":
            return True
        if not wanted_key:
            continue  # an empty key needs Exists
        if operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def node_unschedulable(pod: PodInfo, node: NodeInfo) -> Failure | None:
    if node.unschedulable and not tolerates(
        pod.tolerations, {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}
    ):
        return Failure((UNSCHEDULABLE,), False)
    return None


def taint_toleration(pod: PodInfo, node: NodeInfo) -> Failure | None:
    for taint in node.taints:
        if not tolerates(pod.tolerations, taint):
            return Failure((untolerated_taint(taint),), False)
    return None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def match_expression(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A NodeSelectorRequirement (In, NotIn, Exists, DoesNotExist, Gt, Lt) against labels or fields."""
    key = expression.get("key") or ""
    operator = expression.get("operator")
    values = expression.get("values") or []
    value = labels.get(key)
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        actual, bound = _int(value), _int(values[0])
        if actual is None or bound is None:
            return False
        return actual > bound if operator == "Gt" else actual < bound
    return False


def match_node_selector_term(term: Mapping[str, Any], node: NodeInfo) -> bool:
    """All of a term's matchExpressions (labels) and matchFields (metadata.name); an empty term matches
    no node, as upstream."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    if not all(match_expression(e, node.labels) for e in expressions):
        return False
    if fields:
        node_fields = {"metadata.name": node.name}
        if not all(match_expression(f, node_fields) for f in fields):
            return False
    return True


def node_affinity(pod: PodInfo, node: NodeInfo) -> Failure | None:
    labels = node.labels
    for key, value in pod.node_selector.items():
        if labels.get(key) != value:
            return Failure((NODE_AFFINITY,), False)
    terms = pod.required_node_terms
    if terms is not None and not any(match_node_selector_term(t, node) for t in terms):
        return Failure((NODE_AFFINITY,), False)
    return None


def node_ports(pod: PodInfo, node: NodeInfo) -> Failure | None:
    for ip, protocol, port in pod.ports:
        held = node.ports.get((protocol, port))
        if held and (ip == "0.0.0.0" or "0.0.0.0" in held or ip in held):
            return Failure((NODE_PORTS,), True)
    return None


def resources_fit(pod: PodInfo, node: NodeInfo) -> Failure | None:
    reasons: list[str] = []
    if len(node.pods) + 1 > node.alloc_pods:
        reasons.append(TOO_MANY_PODS)
    if pod.cpu and node.alloc_cpu < node.cpu + pod.cpu:
        reasons.append("Insufficient cpu")
    if pod.memory and node.alloc_memory < node.memory + pod.memory:
        reasons.append("Insufficient memory")
    if pod.ephemeral and node.alloc_ephemeral < node.ephemeral + pod.ephemeral:
        reasons.append("Insufficient ephemeral-storage")
    return Failure(tuple(reasons), True) if reasons else None


# -- the pre-filter: per-pod state and the checks it needs -------------------------------------------


def _domain_counts(
    terms: list[AffinityTerm], state: ClusterState, namespace_labels: NamespaceLabels | None
) -> list[dict[str, int]]:
    """For each term, how many placed pods it matches per value of its topology key."""
    counts: list[dict[str, int]] = [{} for _ in terms]
    if not terms:
        return counts
    for info, other in state.pods():
        for i, term in enumerate(terms):
            value = info.labels.get(term.topology_key)
            if value is not None and term.matches(other, namespace_labels):
                counts[i][value] = counts[i].get(value, 0) + 1
    return counts


class Fit:
    """One pod's filters over many nodes: :meth:`check` runs only the filters this pod needs, with the
    topology counts (affinity, spreading) computed once here."""

    def __init__(
        self, pod: PodInfo, state: ClusterState, *, namespace_labels: NamespaceLabels | None = None
    ) -> None:
        self.pod = pod
        self.state = state
        self.namespace_labels = namespace_labels
        checks: list[Callable[[PodInfo, NodeInfo], Failure | None]] = []
        if pod.node_selector or pod.required_node_terms is not None:
            checks.append(node_affinity)
        if pod.ports:
            checks.append(node_ports)
        self.checks = checks
        # Inter-pod affinity: counts per term and domain; existing pods' anti-affinity per domain.
        self.affinity_counts = _domain_counts(pod.affinity, state, namespace_labels)
        self.anti_counts = _domain_counts(pod.anti_affinity, state, namespace_labels)
        self.self_affine = bool(pod.affinity) and all(t.matches(pod, namespace_labels) for t in pod.affinity)
        self.existing_anti: dict[tuple[str, str], int] = {}
        for node_name in state.anti_affinity_nodes:
            info = state.infos.get(node_name)
            if info is None:
                continue
            for other in info.anti_affinity_pods.values():
                for term in other.anti_affinity:
                    value = info.labels.get(term.topology_key)
                    if value is not None and term.matches(pod, namespace_labels):
                        domain = (term.topology_key, value)
                        self.existing_anti[domain] = self.existing_anti.get(domain, 0) + 1
        self.needs_interpod = bool(pod.affinity or pod.anti_affinity or self.existing_anti)
        # Topology spread: matching pods per domain over the nodes the pod could go to.
        self.spread_counts: list[dict[str, int]] = []
        self.spread_min: list[int] = []
        for constraint in pod.spread:
            counts: dict[str, int] = {}
            for info in state.nodes:
                value = info.labels.get(constraint.topology_key)
                if value is None or node_affinity(pod, info) is not None:
                    continue
                counts.setdefault(value, 0)
                for other in info.pods.values():
                    if other.namespace == pod.namespace and constraint.selector.matches(other.labels):
                        counts[value] += 1
            self.spread_counts.append(counts)
            self.spread_min.append(min(counts.values()) if counts else 0)
        self.hard_spread = any(c.do_not_schedule for c in pod.spread)

    def find(
        self, nodes: list[NodeInfo], start: int, wanted: int
    ) -> tuple[list[NodeInfo], list[Failure], int]:
        """Walk the ring of ``nodes`` from ``start`` until ``wanted`` feasible ones are found; return them,
        the failures met and how many nodes were looked at. The common case (a node that is clean and has
        room, a pod with no other constraints) is decided inline, without a call per node."""
        pod = self.pod
        cpu, memory, ephemeral = pod.cpu, pod.memory, pod.ephemeral
        extra = bool(self.checks or self.hard_spread or self.needs_interpod)
        check = self.check
        feasible: list[NodeInfo] = []
        failures: list[Failure] = []
        processed = 0
        for node in itertools.chain(itertools.islice(nodes, start, None), itertools.islice(nodes, 0, start)):
            processed += 1
            if (
                extra
                or not node.clean
                or node.free_pods <= 0
                or cpu > node.free_cpu
                or memory > node.free_memory
                or ephemeral > node.free_ephemeral
            ):
                failure = check(node)
                if failure is not None:
                    failures.append(failure)
                    continue
            feasible.append(node)
            if len(feasible) >= wanted:
                break
        return feasible, failures, processed

    def check(self, node: NodeInfo) -> Failure | None:
        """``None`` if the pod fits ``node``, else why not (the first failing filter, as upstream)."""
        pod = self.pod
        if node.unschedulable:
            failure = node_unschedulable(pod, node)
            if failure is not None:
                return failure
        if node.taints:
            failure = taint_toleration(pod, node)
            if failure is not None:
                return failure
        for check in self.checks:
            failure = check(pod, node)
            if failure is not None:
                return failure
        if (
            len(node.pods) >= node.alloc_pods
            or (pod.cpu and node.alloc_cpu < node.cpu + pod.cpu)
            or (pod.memory and node.alloc_memory < node.memory + pod.memory)
            or (pod.ephemeral and node.alloc_ephemeral < node.ephemeral + pod.ephemeral)
        ):
            return resources_fit(pod, node)
        if self.hard_spread:
            failure = self.topology_spread(node)
            if failure is not None:
                return failure
        if self.needs_interpod:
            return self.inter_pod_affinity(node)
        return None

    def topology_spread(self, node: NodeInfo) -> Failure | None:
        pod = self.pod
        for i, constraint in enumerate(pod.spread):
            if not constraint.do_not_schedule:
                continue
            value = node.labels.get(constraint.topology_key)
            if value is None:
                return Failure((SPREAD_LABEL,), False)
            own = 1 if constraint.selector.matches(pod.labels) else 0
            skew = self.spread_counts[i].get(value, 0) + own - self.spread_min[i]
            if skew > constraint.max_skew:
                return Failure((SPREAD,), True)
        return None

    def inter_pod_affinity(self, node: NodeInfo) -> Failure | None:
        """Upstream's order: the pod's affinity, its anti-affinity, then existing pods' anti-affinity."""
        pod = self.pod
        labels = node.labels
        if pod.affinity:
            exist = True
            for i, term in enumerate(pod.affinity):
                value = labels.get(term.topology_key)
                if value is None:
                    return Failure((AFFINITY,), False)
                if self.affinity_counts[i].get(value, 0) == 0:
                    exist = False
            # The first pod of a group that must be together may go anywhere the topology labels are.
            if not exist and (any(self.affinity_counts) or not self.self_affine):
                return Failure((AFFINITY,), False)
        for i, term in enumerate(pod.anti_affinity):
            found = labels.get(term.topology_key)
            if found is not None and self.anti_counts[i].get(found, 0) > 0:
                return Failure((ANTI_AFFINITY,), True)
        for (topology_key, domain), count in self.existing_anti.items():
            if count and labels.get(topology_key) == domain:
                return Failure((EXISTING_ANTI_AFFINITY,), True)
        return None


def fit_error_message(total_nodes: int, failures: Iterable[Failure], *, preemption: str | None = None) -> str:
    """Upstream's FitError text: ``0/N nodes are available: <count reason, ...>.`` and the preemption
    summary after it."""
    histogram: dict[str, int] = {}
    for failure in failures:
        for reason in failure.reasons:
            histogram[reason] = histogram.get(reason, 0) + 1
    message = f"0/{total_nodes} nodes are available:"
    reasons = sorted(f"{count} {reason}" for reason, count in histogram.items())
    if reasons:
        message += f" {', '.join(reasons)}."
    if preemption:
        message += f" {preemption}"
    return message


NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"


def preemption_message(pod: PodInfo, total_nodes: int, failures: Iterable[Failure]) -> str:
    """What upstream's preemption would report when it finds no candidate. kbox does not preempt yet:
    a node whose failure is resolvable counts as having no victims (no pod there has a lower priority
    that evicting would help), an unresolvable one as not helpful."""
    spec = pod.obj.get("spec") or {}
    if spec.get("preemptionPolicy") == "Never":
        return "preemption: not eligible due to preemptionPolicy=Never."
    summary = [Failure((NO_VICTIMS if f.resolvable else NOT_HELPFUL,), False) for f in failures]
    return "preemption: " + fit_error_message(total_nodes, summary)


# -- VolumeBinding (a pre-filter: it fails the pod on every node alike) ----------------------------------

UNBOUND_IMMEDIATE_CLAIMS = "pod has unbound immediate PersistentVolumeClaims"
ClaimLookup = Callable[[str, str], Obj | None]
"""(namespace, name) → the claim, or None when it does not exist."""
ClassLookup = Callable[[str], Obj | None]


def volume_binding(pod: Obj, claim_of: ClaimLookup, class_of: ClassLookup) -> str | None:
    """Why the pod's persistentVolumeClaim volumes keep it off every node, in upstream's words: a claim
    that does not exist, or one not bound yet whose class binds ``Immediate`` (one whose class waits
    for its first consumer is bound once the pod is placed). None when the claims allow scheduling."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    unbound = False
    for volume in (pod.get("spec") or {}).get("volumes") or ():
        source = volume.get("persistentVolumeClaim") if isinstance(volume, dict) else None
        if not source:
            continue
        name = source.get("claimName", "")
        claim = claim_of(namespace, name)
        if claim is None:
            return f'persistentvolumeclaim "{name}" not found'
        if (claim.get("metadata") or {}).get("deletionTimestamp"):
            return f'persistentvolumeclaim "{name}" is being deleted'
        if (claim.get("spec") or {}).get("volumeName"):
            continue
        class_name = (claim.get("spec") or {}).get("storageClassName") or ""
        storage_class = class_of(class_name) if class_name else None
        if storage_class is None or storage_class.get("volumeBindingMode") != "WaitForFirstConsumer":
            unbound = True
    return UNBOUND_IMMEDIATE_CLAIMS if unbound else None


def pre_filter_message(pod: PodInfo, total_nodes: int, reason: str) -> str:
    """Upstream's FitError text for a pod a pre-filter rejected: the reason once, not per node."""
    failures = [Failure((reason,), False)] * total_nodes
    return f"0/{total_nodes} nodes are available: {reason}. {preemption_message(pod, total_nodes, failures)}"
