"""The scheduler's scores on hand-made nodes: least-allocated and balanced allocation (and their cached
fused form), preferred node affinity, PreferNoSchedule taints, preferred inter-pod affinity and
anti-affinity, soft topology spread, default spreading of a controller's pods, and the weighted sum."""

from __future__ import annotations

from typing import Any

from kbox.scheduler import scores
from kbox.scheduler.filters import ClusterState, Fit, PodInfo
from tests.unit.scheduler.test_filters import make_node, make_pod, pod_term

Obj = dict[str, Any]


def setup(*nodes: Obj) -> ClusterState:
    state = ClusterState()
    for node in nodes:
        state.set_node(node)
    return state


def owned(name: str, owner: str = "rs", **extra: Any) -> Obj:
    pod = make_pod(name, **extra)
    pod["metadata"]["ownerReferences"] = [
        {"uid": owner, "controller": True, "kind": "ReplicaSet", "name": owner}
    ]
    return pod


def test_least_allocated_prefers_free_nodes() -> None:
    state = setup(make_node("empty", cpu="4", memory="4Gi"), make_node("busy", cpu="4", memory="4Gi"))
    state.place(PodInfo(make_pod("x", cpu="2", memory="2Gi")), "busy")
    pod = PodInfo(make_pod("p", cpu="1", memory="1Gi"))
    empty, busy = scores.least_allocated(pod, state.nodes)
    assert (empty, busy) == (75, 25)


def test_balanced_allocation_prefers_even_use() -> None:
    state = setup(make_node("even", cpu="4", memory="4Gi"), make_node("skewed", cpu="4", memory="4Gi"))
    state.place(PodInfo(make_pod("x", cpu="2")), "skewed")
    pod = PodInfo(make_pod("p", cpu="1", memory="1Gi"))
    even, skewed = scores.balanced_allocation(pod, state.nodes)
    assert even == 100 and skewed == 75


def test_fused_resources_equal_the_sum_and_cache_follows_changes() -> None:
    state = setup(make_node("a", cpu="4", memory="8Gi"), make_node("b", cpu="2", memory="8Gi"))
    pod = PodInfo(make_pod("p", cpu="500m", memory="1Gi"))
    expected = [
        x + y
        for x, y in zip(
            scores.least_allocated(pod, state.nodes),
            scores.balanced_allocation(pod, state.nodes),
            strict=True,
        )
    ]
    assert scores._resources(pod, state.nodes) == expected
    assert scores._resources(pod, state.nodes) == expected  # cached
    state.place(PodInfo(make_pod("x", cpu="2")), "a")
    fresh = [
        x + y
        for x, y in zip(
            scores.least_allocated(pod, state.nodes),
            scores.balanced_allocation(pod, state.nodes),
            strict=True,
        )
    ]
    assert scores._resources(pod, state.nodes) == fresh != expected


def test_preferred_node_affinity() -> None:
    state = setup(
        make_node("ssd", labels={"disk": "ssd"}), make_node("hdd", labels={"disk": "hdd"}), make_node("none")
    )
    preferred = [
        {
            "weight": 80,
            "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
        },
        {"weight": 20, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}},
    ]
    pod = PodInfo(
        make_pod(
            "p", affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}
        )
    )
    assert scores.node_affinity(pod, state.nodes) == [100, 20, 0]


def test_prefer_no_schedule_taints() -> None:
    taint = {"key": "k", "value": "v", "effect": "PreferNoSchedule"}
    state = setup(make_node("clean"), make_node("tainted", spec={"taints": [taint]}))
    assert scores.taint_toleration(PodInfo(make_pod("p")), state.nodes) == [100, 0]
    tolerant = PodInfo(make_pod("q", tolerations=[{"key": "k", "operator": "Exists"}]))
    assert scores.taint_toleration(tolerant, state.nodes) == [100, 100]
    assert state.prefer_no_schedule == {"tainted"}


def test_preferred_inter_pod_affinity_and_anti_affinity() -> None:
    state = setup(make_node("n1"), make_node("n2"), make_node("n3"))
    state.place(PodInfo(make_pod("cache", labels={"app": "cache"})), "n1")
    state.place(PodInfo(make_pod("noisy", labels={"app": "noisy"})), "n2")
    affinity = {
        "podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "podAffinityTerm": pod_term({"app": "cache"})}
            ]
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "podAffinityTerm": pod_term({"app": "noisy"})}
            ]
        },
    }
    fit = Fit(PodInfo(make_pod("p", affinity=affinity)), state)
    assert scores.inter_pod_affinity(fit, state.nodes) == [100, 0, 50]


def test_default_spreading_of_a_controllers_pods() -> None:
    state = setup(make_node("n1"), make_node("n2"), make_node("n3"))
    state.place(PodInfo(owned("a")), "n1")
    state.place(PodInfo(owned("b")), "n1")
    state.place(PodInfo(owned("c")), "n2")
    state.place(PodInfo(owned("other", owner="rs2")), "n3")
    fit = Fit(PodInfo(owned("p")), state)
    low_n1, mid_n2, high_n3 = scores.topology_spread(fit, state.nodes)
    assert high_n3 == 100 and low_n1 < mid_n2 < high_n3
    alone = Fit(PodInfo(make_pod("q")), state)
    assert scores.topology_spread(alone, state.nodes) == [0, 0, 0]


def test_soft_topology_spread_constraints() -> None:
    state = setup(make_node("n1"), make_node("n2"))
    state.place(PodInfo(make_pod("w", labels={"app": "w"})), "n1")
    constraint = {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": {"app": "w"}},
    }
    fit = Fit(PodInfo(make_pod("p", labels={"app": "w"}, topologySpreadConstraints=[constraint])), state)
    n1, n2 = scores.topology_spread(fit, state.nodes)
    assert n2 > n1


def test_total_picks_the_free_node_for_a_spread_controller_pod() -> None:
    state = setup(make_node("n1", cpu="4"), make_node("n2", cpu="4"))
    state.place(PodInfo(owned("a", cpu="1")), "n1")
    fit = Fit(PodInfo(owned("p", cpu="1")), state)
    n1, n2 = scores.score(fit, state.nodes)
    assert n2 > n1
