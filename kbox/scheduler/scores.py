"""Scores: how good each feasible node is for a pod, 0..100 per plugin, summed with upstream's weights.

The plugins and weights are upstream's defaults: NodeResourcesFit with LeastAllocated (1) and
NodeResourcesBalancedAllocation (1) over cpu and memory, NodeAffinity's preferred terms (2),
InterPodAffinity's preferred terms (2), TaintToleration's PreferNoSchedule taints (3) and
PodTopologySpread (2): the pod's ScheduleAnyway constraints, or, for a pod without constraints that a
controller owns, upstream's system default of spreading over hostnames, counted here as the pods of the
same controller on each node. Normalisation follows each plugin's upstream rule (largest raw value to
100; reversed for taints and spreading; min-max for inter-pod affinity).

Each scorer is a function of (pod, nodes) returning one integer per node, so they test alone;
:func:`score` adds them up, skipping the ones that cannot matter for this pod.
"""

from __future__ import annotations

from kbox.scheduler.filters import Fit, NodeInfo, PodInfo, match_node_selector_term, tolerates

MAX = 100
WEIGHT_RESOURCES = 1
WEIGHT_BALANCED = 1
WEIGHT_NODE_AFFINITY = 2
WEIGHT_INTER_POD = 2
WEIGHT_TAINTS = 3
WEIGHT_SPREAD = 2


def least_allocated(pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
    """More free cpu and memory (counting pods without requests at upstream's defaults) scores higher."""
    scores = []
    for node in nodes:
        total = 0
        alloc, used = node.alloc_cpu, node.nz_cpu + pod.nz_cpu
        if alloc and used <= alloc:
            total += (alloc - used) * MAX // alloc
        alloc, used = node.alloc_memory, node.nz_memory + pod.nz_memory
        if alloc and used <= alloc:
            total += (alloc - used) * MAX // alloc
        scores.append(total // 2)
    return scores


def balanced_allocation(pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
    """cpu and memory used in equal fractions scores higher: (1 - standard deviation) * 100."""
    scores = []
    for node in nodes:
        cpu = min(1.0, (node.cpu + pod.cpu) / node.alloc_cpu) if node.alloc_cpu else 1.0
        memory = min(1.0, (node.memory + pod.memory) / node.alloc_memory) if node.alloc_memory else 1.0
        scores.append(int((1 - abs(cpu - memory) / 2) * MAX))
    return scores


def node_affinity(pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
    """The weights of the preferred node-affinity terms a node matches, the best node scaled to 100."""
    raw = [
        sum(weight for weight, term in pod.preferred_node_terms if match_node_selector_term(term, node))
        for node in nodes
    ]
    return _scale_to_max(raw)


def taint_toleration(pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
    """Fewer PreferNoSchedule taints the pod does not tolerate scores higher."""
    tolerations = [t for t in pod.tolerations if t.get("effect") in (None, "", "PreferNoSchedule")]
    raw = [sum(1 for taint in node.prefer_no_schedule if not tolerates(tolerations, taint)) for node in nodes]
    return _reverse(raw)


def inter_pod_affinity(fit: Fit, nodes: list[NodeInfo]) -> list[int]:
    """Preferred pod affinity adds the term's weight per matching pod in the node's domain, preferred
    anti-affinity subtracts it; min-max scaled to 0..100."""
    pod = fit.pod
    domains: dict[tuple[str, str], int] = {}
    terms = [(t, t.weight) for t in pod.preferred_affinity]
    terms += [(t, -t.weight) for t in pod.preferred_anti_affinity]
    for info, other in fit.state.pods():
        for term, weight in terms:
            value = info.labels.get(term.topology_key)
            if value is not None and term.matches(other, fit.namespace_labels):
                domain = (term.topology_key, value)
                domains[domain] = domains.get(domain, 0) + weight
    raw = []
    for node in nodes:
        total = 0
        for (key, value), weight in domains.items():
            if node.labels.get(key) == value:
                total += weight
        raw.append(total)
    low, high = min(raw), max(raw)
    if high == low:
        return [0] * len(raw)
    return [(r - low) * MAX // (high - low) for r in raw]


def topology_spread(fit: Fit, nodes: list[NodeInfo]) -> list[int]:
    """Fewer matching pods in the node's domain scores higher: the pod's ScheduleAnyway constraints, or
    else the pods of the same controller on the node (upstream's default spreading over hostnames)."""
    pod = fit.pod
    soft = [(i, c) for i, c in enumerate(pod.spread) if not c.do_not_schedule]
    if soft:
        raw = []
        for node in nodes:
            total = 0
            for i, constraint in soft:
                value = node.labels.get(constraint.topology_key)
                if value is not None:
                    total += fit.spread_counts[i].get(value, 0)
            raw.append(total)
    elif not pod.spread and pod.owner:
        owner = pod.owner
        raw = [node.owners.get(owner, 0) for node in nodes]
    else:
        return [0] * len(nodes)
    return _reverse(raw)


def score(fit: Fit, nodes: list[NodeInfo]) -> list[int]:
    """The weighted sum of every scorer, per node."""
    pod = fit.pod
    totals = _resources(pod, nodes)
    parts: list[tuple[int, list[int]]] = []
    if pod.preferred_node_terms:
        parts.append((WEIGHT_NODE_AFFINITY, node_affinity(pod, nodes)))
    if fit.state.prefer_no_schedule:
        parts.append((WEIGHT_TAINTS, taint_toleration(pod, nodes)))
    # else every node scores 100 on taints: a constant, which changes no ranking.
    if pod.preferred_affinity or pod.preferred_anti_affinity:
        parts.append((WEIGHT_INTER_POD, inter_pod_affinity(fit, nodes)))
    if pod.spread or pod.owner:
        parts.append((WEIGHT_SPREAD, topology_spread(fit, nodes)))
    for weight, values in parts:
        totals = [t + weight * v for t, v in zip(totals, values, strict=True)]
    return totals


def _resources(pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
    """:func:`least_allocated` + :func:`balanced_allocation` (weights 1 and 1) in one pass: this is the
    scheduler's hottest loop, run over every feasible node for every pod. The result depends only on
    the node's totals and the pod's requests, so it is cached on the node per request shape against the
    node's version: pods of one template (a ReplicaSet's) recompute it only for the nodes that changed."""
    assert WEIGHT_RESOURCES == WEIGHT_BALANCED == 1
    pod_cpu, pod_memory, pod_nz_cpu, pod_nz_memory = pod.cpu, pod.memory, pod.nz_cpu, pod.nz_memory
    shape = (pod_cpu, pod_memory, pod_nz_cpu, pod_nz_memory)
    totals = []
    for node in nodes:
        cache = node.score_cache
        cached = cache.get(shape)
        if cached is not None and cached[0] == node.version:
            totals.append(cached[1])
            continue
        alloc_cpu, alloc_memory = node.alloc_cpu, node.alloc_memory
        least = 0
        used = node.nz_cpu + pod_nz_cpu
        if alloc_cpu and used <= alloc_cpu:
            least += (alloc_cpu - used) * MAX // alloc_cpu
        used = node.nz_memory + pod_nz_memory
        if alloc_memory and used <= alloc_memory:
            least += (alloc_memory - used) * MAX // alloc_memory
        cpu = (node.cpu + pod_cpu) / alloc_cpu if alloc_cpu else 1.0
        memory = (node.memory + pod_memory) / alloc_memory if alloc_memory else 1.0
        cpu = 1.0 if cpu > 1.0 else cpu
        memory = 1.0 if memory > 1.0 else memory
        value = least // 2 + int((1 - abs(cpu - memory) / 2) * MAX)
        if len(cache) >= 16:
            cache.clear()
        cache[shape] = (node.version, value)
        totals.append(value)
    return totals


def _scale_to_max(raw: list[int]) -> list[int]:
    high = max(raw, default=0)
    if high <= 0:
        return [0] * len(raw)
    return [r * MAX // high for r in raw]


def _reverse(raw: list[int]) -> list[int]:
    """Upstream's reverse normalisation: the lowest raw value gets 100, the highest the least."""
    high = max(raw, default=0)
    if high <= 0:
        return [MAX] * len(raw)
    low = min(raw)
    return [MAX * (high + low - r) // high for r in raw]
