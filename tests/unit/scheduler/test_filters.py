"""The scheduler's filters on hand-made pods and nodes: requests (init containers, sidecars, overhead),
resource fit reasons, readiness and cordons, taints and tolerations, nodeSelector and required node
affinity with every operator and matchFields, host ports, required inter-pod affinity and anti-affinity
(own and existing pods', namespaces), hard topology spread, incremental node state, and upstream's
FailedScheduling message. Scores are in test_scores.py."""

from __future__ import annotations

from typing import Any

import pytest

from kbox.scheduler import filters
from kbox.scheduler.filters import ClusterState, Failure, Fit, NodeInfo, PodInfo

Obj = dict[str, Any]


def make_node(name: str, *, cpu: str = "2", memory: str = "4Gi", pods: str = "110", **extra: Any) -> Obj:
    labels = {"kubernetes.io/hostname": name, **extra.pop("labels", {})}
    ready = extra.pop("ready", "True")
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": extra.pop("spec", {}),
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "10Gi"},
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def make_pod(name: str, *, cpu: str | None = None, memory: str | None = None, **spec: Any) -> Obj:
    labels = spec.pop("labels", {})
    namespace = spec.pop("namespace", "default")
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: Obj = {"name": "main", "image": "busybox"}
    if requests:
        container["resources"] = {"requests": requests}
    if "ports" in spec:
        container["ports"] = spec.pop("ports")
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "uid": f"uid-{name}"},
        "spec": {"containers": [container], **spec},
    }


def state_with(*nodes: Obj) -> ClusterState:
    state = ClusterState()
    for node in nodes:
        state.set_node(node)
    return state


def check(pod: Obj, node_name: str, state: ClusterState) -> Failure | None:
    return Fit(PodInfo(pod), state).check(state.infos[node_name])


def test_requests_follow_upstream_rules() -> None:
    pod = make_pod("p", cpu="250m", memory="64Mi")
    pod["spec"]["containers"].append({"name": "b", "resources": {"requests": {"cpu": "0.25"}}})
    pod["spec"]["initContainers"] = [
        {"name": "init", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}
    ]
    info = PodInfo(pod)
    assert (info.cpu, info.memory) == (1000, 64 * 2**20)  # the init container's cpu is the larger
    assert info.nz_memory == 64 * 2**20 + filters.DEFAULT_MEMORY  # b has no memory request
    pod["spec"]["initContainers"].insert(
        0, {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}}
    )
    pod["spec"]["overhead"] = {"cpu": "10m"}
    info = PodInfo(pod)
    assert info.cpu == max(500 + 100, 1000 + 100) + 10


def test_resources_fit_and_reasons() -> None:
    state = state_with(make_node("n", cpu="1", memory="1Gi", pods="2"))
    assert check(make_pod("a", cpu="1"), "n", state) is None
    assert check(make_pod("b", cpu="1001m", memory="2Gi"), "n", state) == Failure(
        ("Insufficient cpu", "Insufficient memory"), True
    )
    state.place(PodInfo(make_pod("x", cpu="600m")), "n")
    state.place(PodInfo(make_pod("y")), "n")
    failure = check(make_pod("c", cpu="500m"), "n", state)
    assert failure == Failure(("Too many pods", "Insufficient cpu"), True)
    state.unplace("default/y")
    assert check(make_pod("d", cpu="400m"), "n", state) is None
    assert state.infos["n"].cpu == 600


def test_not_ready_and_cordoned_nodes() -> None:
    state = state_with(
        make_node("down", ready="False"),
        make_node("lost", ready="Unknown"),
        make_node("cordoned", spec={"unschedulable": True}),
    )
    pod = make_pod("p")
    assert check(pod, "down", state) == Failure(
        ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",), False
    )
    assert check(pod, "lost", state) == Failure(
        ("node(s) had untolerated taint {node.kubernetes.io/unreachable: }",), False
    )
    assert check(pod, "cordoned", state) == Failure((filters.UNSCHEDULABLE,), False)
    tolerant = make_pod("t", tolerations=[{"operator": "Exists"}])
    assert check(tolerant, "down", state) is None
    assert check(tolerant, "cordoned", state) is None


@pytest.mark.parametrize(
    ("toleration", "fits"),
    [
        ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, True),
        ({"key": "k", "value": "v"}, True),  # any effect, Equal by default
        ({"key": "k", "operator": "Exists"}, True),
        ({"key": "k", "operator": "Equal", "value": "other"}, False),
        ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_taints_and_tolerations(toleration: Obj, fits: bool) -> None:
    state = state_with(make_node("n", spec={"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}))
    failure = check(make_pod("p", tolerations=[toleration]), "n", state)
    assert (failure is None) is fits
    if not fits:
        assert failure == Failure(("node(s) had untolerated taint {k: v}",), False)


def test_prefer_no_schedule_taints_do_not_filter() -> None:
    state = state_with(make_node("n", spec={"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}))
    assert check(make_pod("p"), "n", state) is None


def affinity(*terms: Obj) -> Obj:
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}
    }


@pytest.mark.parametrize(
    ("expression", "fits"),
    [
        ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
        ({"key": "zone", "operator": "In", "values": ["b"]}, False),
        ({"key": "zone", "operator": "NotIn", "values": ["b"]}, True),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
        ({"key": "zone", "operator": "Exists"}, True),
        ({"key": "gpu", "operator": "Exists"}, False),
        ({"key": "gpu", "operator": "DoesNotExist"}, True),
        ({"key": "cores", "operator": "Gt", "values": ["8"]}, True),
        ({"key": "cores", "operator": "Gt", "values": ["16"]}, False),
        ({"key": "cores", "operator": "Lt", "values": ["32"]}, True),
        ({"key": "cores", "operator": "Lt", "values": ["x"]}, False),
        ({"key": "zone", "operator": "Gt", "values": ["1"]}, False),  # not a number
    ],
)
def test_node_affinity_operators(expression: Obj, fits: bool) -> None:
    state = state_with(make_node("n", labels={"zone": "a", "cores": "16"}))
    failure = check(make_pod("p", affinity=affinity({"matchExpressions": [expression]})), "n", state)
    assert (failure is None) is fits
    if not fits:
        assert failure == Failure((filters.NODE_AFFINITY,), False)


def test_node_affinity_terms_are_ored_fields_and_selector() -> None:
    state = state_with(make_node("n1", labels={"zone": "a"}), make_node("n2"))
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
    zone = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
    pod = make_pod("p", affinity=affinity(by_name, zone))
    assert check(pod, "n1", state) is None and check(pod, "n2", state) is None
    assert (
        check(make_pod("q", affinity=affinity({})), "n1", state) is not None
    )  # an empty term matches nothing
    assert check(make_pod("r", affinity=affinity(by_name)), "n1", state) is not None
    selected = make_pod("s", nodeSelector={"zone": "a"})
    assert check(selected, "n1", state) is None
    assert check(selected, "n2", state) == Failure((filters.NODE_AFFINITY,), False)


def test_host_ports() -> None:
    state = state_with(make_node("n"))
    state.place(PodInfo(make_pod("web", ports=[{"containerPort": 80, "hostPort": 8080}])), "n")
    conflict = make_pod("p", ports=[{"containerPort": 80, "hostPort": 8080}])
    assert check(conflict, "n", state) == Failure((filters.NODE_PORTS,), True)
    udp = make_pod("u", ports=[{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}])
    assert check(udp, "n", state) is None
    state.unplace("default/web")
    state.place(
        PodInfo(make_pod("web", ports=[{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}])), "n"
    )
    other_ip = make_pod("o", ports=[{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.2"}])
    assert check(other_ip, "n", state) is None
    assert check(conflict, "n", state) is not None  # 0.0.0.0 overlaps every address


def pod_term(labels: Obj, key: str = "kubernetes.io/hostname", **extra: Any) -> Obj:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def test_inter_pod_affinity_and_anti_affinity() -> None:
    state = state_with(
        make_node("n1", labels={"zone": "a"}),
        make_node("n2", labels={"zone": "a"}),
        make_node("n3", labels={"zone": "b"}),
    )
    state.place(PodInfo(make_pod("db", labels={"app": "db"})), "n1")
    near = make_pod(
        "p",
        affinity={
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [pod_term({"app": "db"}, "zone")]
            }
        },
    )
    assert check(near, "n2", state) is None  # same zone as the db pod
    assert check(near, "n3", state) == Failure((filters.AFFINITY,), False)
    away = make_pod(
        "q",
        affinity={
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [pod_term({"app": "db"})]}
        },
    )
    assert check(away, "n1", state) == Failure((filters.ANTI_AFFINITY,), True)
    assert check(away, "n2", state) is None
    other_ns = make_pod("r", namespace="other", affinity=near["spec"]["affinity"])
    assert check(other_ns, "n2", state) is not None  # terms default to the pod's own namespace
    listed = make_pod(
        "s",
        namespace="other",
        affinity={
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    pod_term({"app": "db"}, "zone", namespaces=["default"])
                ]
            }
        },
    )
    assert check(listed, "n2", state) is None
    everywhere = make_pod(
        "t",
        namespace="other",
        affinity={
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    pod_term({"app": "db"}, "zone", namespaceSelector={})
                ]
            }
        },
    )
    assert check(everywhere, "n2", state) is None


def test_first_pod_of_a_self_affine_group_goes_anywhere() -> None:
    state = state_with(make_node("n1"))
    pod = make_pod(
        "p",
        labels={"app": "x"},
        affinity={
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [pod_term({"app": "x"})]}
        },
    )
    assert check(pod, "n1", state) is None
    stranger = make_pod("q", labels={"app": "y"}, affinity=pod["spec"]["affinity"])
    assert check(stranger, "n1", state) == Failure((filters.AFFINITY,), False)


def test_existing_pods_anti_affinity() -> None:
    state = state_with(make_node("n1"), make_node("n2"))
    loner = make_pod(
        "loner",
        affinity={
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [pod_term({"app": "web"})]}
        },
    )
    state.place(PodInfo(loner), "n1")
    web = make_pod("web", labels={"app": "web"})
    assert check(web, "n1", state) == Failure((filters.EXISTING_ANTI_AFFINITY,), True)
    assert check(web, "n2", state) is None
    state.unplace("default/loner")
    assert check(web, "n1", state) is None


def test_hard_topology_spread() -> None:
    state = state_with(
        make_node("n1"), make_node("n2"), make_node("n3", labels={"kubernetes.io/hostname": "n3"})
    )
    for i in range(2):
        state.place(PodInfo(make_pod(f"w{i}", labels={"app": "w"})), "n1")
    constraint = {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "w"}},
    }
    pod = make_pod("p", labels={"app": "w"}, topologySpreadConstraints=[constraint])
    assert check(pod, "n1", state) == Failure((filters.SPREAD,), True)
    assert check(pod, "n2", state) is None
    zone = dict(constraint, topologyKey="zone")
    assert check(
        make_pod("q", labels={"app": "w"}, topologySpreadConstraints=[zone]), "n2", state
    ) == Failure((filters.SPREAD_LABEL,), False)
    soft = dict(constraint, whenUnsatisfiable="ScheduleAnyway")
    assert check(make_pod("r", labels={"app": "w"}, topologySpreadConstraints=[soft]), "n1", state) is None


def test_find_walks_the_ring_and_stops_at_enough() -> None:
    state = state_with(*(make_node(f"n{i}", cpu="1") for i in range(5)))
    state.place(PodInfo(make_pod("big", cpu="1")), "n2")
    fit = Fit(PodInfo(make_pod("p", cpu="500m")), state)
    feasible, failures, processed = fit.find(state.nodes, 1, 2)
    assert [n.name for n in feasible] == ["n1", "n3"] and processed == 3
    assert failures == [Failure(("Insufficient cpu",), True)]
    feasible, _, processed = fit.find(state.nodes, 4, 10)
    assert [n.name for n in feasible] == ["n4", "n0", "n1", "n3"] and processed == 5


def test_node_state_is_incremental() -> None:
    state = state_with(make_node("n"))
    info: NodeInfo = state.infos["n"]
    state.place(PodInfo(make_pod("a", cpu="100m")), "n")
    state.place(PodInfo(make_pod("a", cpu="300m")), "n")  # a newer version replaces the old
    assert (info.cpu, len(info.pods)) == (300, 1)
    state.place(PodInfo(make_pod("b")), "ghost")  # bound to a node not seen yet: counted, not a candidate
    assert [n.name for n in state.nodes] == ["n"] and state.infos["ghost"].pods
    state.remove_node("n")
    assert state.nodes == [] and "n" in state.infos  # its pods are still counted
    state.unplace("default/a")
    assert "n" not in state.infos


def test_fit_error_message_matches_upstream() -> None:
    taint = Failure(("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",), False)
    cpu = Failure(("Insufficient cpu",), True)
    failures = [cpu, taint, taint]
    pod = PodInfo(make_pod("p"))
    message = filters.fit_error_message(3, failures, preemption=filters.preemption_message(pod, 3, failures))
    assert message == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: "
        "1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
    )
    never = PodInfo(make_pod("q", preemptionPolicy="Never"))
    assert (
        filters.preemption_message(never, 3, failures)
        == "preemption: not eligible due to preemptionPolicy=Never."
    )


def test_a_status_update_refreshes_the_placed_pod_and_keeps_its_count() -> None:
    state = state_with(make_node("n1"))
    first = make_pod("p", cpu="500m")
    info = PodInfo(first)
    state.place(info, "n1")
    newer = {**first, "status": {"phase": "Running"}}
    state.refresh(info.key, newer)
    [(node, placed)] = list(state.pods())
    assert placed.obj is newer  # the version it was counted from is no longer held
    assert (node.name, node.cpu) == ("n1", 500)
    state.refresh("default/absent", newer)  # not placed: nothing to refresh
    assert [p.obj for _, p in state.pods()] == [newer]
