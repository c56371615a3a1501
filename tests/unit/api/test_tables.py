"""Server-side printing: ``human_duration`` against apimachinery's own cases, every printer's columns and
cells on realistic objects (pod and node states, replica counts, service ports, events, selectors), the
default ``Name``/``Created At`` convertor, and the ``Table`` JSON kubectl reads (PartialObjectMetadata
rows, ``includeObject``, column definitions only when asked, paging metadata)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from kbox.api import tables
from kbox.api.errors import StatusError
from kbox.api.tables import (
    Column,
    format_label_selector,
    format_labels,
    human_duration,
    printer_for,
    short_human_duration,
    to_table,
)

NOW = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)
S = datetime.timedelta(seconds=1)
MS = datetime.timedelta(milliseconds=1)
US = datetime.timedelta(microseconds=1)
M = datetime.timedelta(minutes=1)
H = datetime.timedelta(hours=1)
D = datetime.timedelta(days=1)
Y = 365 * D


def ago(delta: datetime.timedelta) -> str:
    """An RFC 3339 timestamp ``delta`` before NOW."""
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, age: datetime.timedelta = 5 * M, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}",
        "creationTimestamp": ago(age),
        **extra,
    }


def headers(group: str, kind: str) -> list[str]:
    return [c.name for c in printer_for(group, kind).columns]


def wide(group: str, kind: str) -> list[str]:
    return [c.name for c in printer_for(group, kind).columns if c.priority == 1]


def cells(group: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The row as a column-name → cell mapping."""
    printer = printer_for(group, kind)
    row = printer.row(obj, NOW)
    assert len(row) == len(printer.columns)
    return dict(zip([c.name for c in printer.columns], row, strict=True))


# --------------------------------------------------------------------------------------------------------
# Durations: apimachinery's test tables, values only.


@pytest.mark.parametrize(
    ("delta", "want"),
    [
        (S, "1s"),
        (70 * S, "70s"),
        (190 * S, "3m10s"),
        (70 * M, "70m"),
        (47 * H, "47h"),
        (49 * H, "2d1h"),
        ((8 * 24 + 2) * H, "8d"),
        (367 * 24 * H, "367d"),
        ((365 * 2 * 24 + 25) * H, "2y1d"),
        ((365 * 8 * 24 + 2) * H, "8y"),
    ],
)
def test_human_duration(delta: datetime.timedelta, want: str) -> None:
    assert human_duration(delta) == want


@pytest.mark.parametrize(
    ("delta", "want"),
    [
        (-2 * S, "<invalid>"),
        (-2 * S + US, "0s"),
        (datetime.timedelta(0), "0s"),
        (S - MS, "0s"),
        (2 * M - MS, "119s"),
        (2 * M, "2m"),
        (2 * M + S, "2m1s"),
        (10 * M - MS, "9m59s"),
        (10 * M, "10m"),
        (10 * M + S, "10m"),
        (3 * H - MS, "179m"),
        (3 * H, "3h"),
        (3 * H + M, "3h1m"),
        (8 * H - MS, "7h59m"),
        (8 * H, "8h"),
        (8 * H + 59 * M, "8h"),
        (2 * D - MS, "47h"),
        (2 * D, "2d"),
        (2 * D + H, "2d1h"),
        (8 * D - MS, "7d23h"),
        (8 * D, "8d"),
        (8 * D + 23 * H, "8d"),
        (2 * Y - MS, "729d"),
        (2 * Y, "2y"),
        (2 * Y + 23 * H, "2y"),
        (2 * Y + 23 * H + 59 * M, "2y"),
        (2 * Y + D - MS, "2y"),
        (2 * Y + D, "2y1d"),
        (3 * Y, "3y"),
        (4 * Y, "4y"),
        (5 * Y, "5y"),
        (6 * Y, "6y"),
        (7 * Y, "7y"),
        (8 * Y - MS, "7y364d"),
        (8 * Y, "8y"),
        (8 * Y + 364 * D, "8y"),
        (9 * Y, "9y"),
    ],
)
def test_human_duration_boundaries(delta: datetime.timedelta, want: str) -> None:
    assert human_duration(delta) == want


@pytest.mark.parametrize(
    ("delta", "want"),
    [
        (-2 * S, "<invalid>"),
        (-2 * S + US, "0s"),
        (datetime.timedelta(0), "0s"),
        (S - MS, "0s"),
        (S, "1s"),
        (2 * S - MS, "1s"),
        (M - MS, "59s"),
        (M, "1m"),
        (2 * M - MS, "1m"),
        (H - MS, "59m"),
        (H, "1h"),
        (2 * H - MS, "1h"),
        (D - MS, "23h"),
        (D, "1d"),
        (2 * D - MS, "1d"),
        (Y - MS, "364d"),
        (Y, "1y"),
        (2 * Y - MS, "1y"),
        (2 * Y, "2y"),
    ],
)
def test_short_human_duration_boundaries(delta: datetime.timedelta, want: str) -> None:
    assert short_human_duration(delta) == want


def test_age_of_missing_or_future_timestamps() -> None:
    no_timestamp = {"metadata": {"name": "x"}, "data": {}}
    assert cells("", "ConfigMap", no_timestamp)["Age"] == "<unknown>"
    future = {"metadata": meta("x", -10 * M), "data": {}}
    assert cells("", "ConfigMap", future)["Age"] == "<invalid>"
    fractional = {"metadata": {"name": "x", "creationTimestamp": "2025-06-01T11:58:59.999999Z"}}
    assert cells("", "ConfigMap", fractional)["Age"] == "60s"


# --------------------------------------------------------------------------------------------------------
# Columns


def test_column_definition_has_every_field() -> None:
    assert Column("Name", format="name").definition() == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": "",
        "priority": 0,
    }
    assert Column("IP", priority=1).definition()["priority"] == 1


@pytest.mark.parametrize(
    ("group", "kind", "columns", "wide_columns"),
    [
        (
            "",
            "Pod",
            ["Name", "Ready", "Status", "Restarts", "Age"],
            ["IP", "Node", "Nominated Node", "Readiness Gates"],
        ),
        (
            "",
            "Node",
            ["Name", "Status", "Roles", "Age", "Version"],
            ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"],
        ),
        ("", "Namespace", ["Name", "Status", "Age"], []),
        ("", "Service", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"], ["Selector"]),
        ("", "Endpoints", ["Name", "Endpoints", "Age"], []),
        ("", "ConfigMap", ["Name", "Data", "Age"], []),
        ("", "Secret", ["Name", "Type", "Data", "Age"], []),
        ("", "ServiceAccount", ["Name", "Secrets", "Age"], []),
        ("", "ResourceQuota", ["Name", "Age", "Request", "Limit"], []),
        (
            "",
            "Event",
            ["Last Seen", "Type", "Reason", "Object", "Message"],
            ["Subobject", "Source", "First Seen", "Count", "Name"],
        ),
        (
            "events.k8s.io",
            "Event",
            ["Last Seen", "Type", "Reason", "Object", "Message"],
            ["Subobject", "Source", "First Seen", "Count", "Name"],
        ),
        (
            "apps",
            "Deployment",
            ["Name", "Ready", "Up-to-date", "Available", "Age"],
            ["Containers", "Images", "Selector"],
        ),
        (
            "apps",
            "ReplicaSet",
            ["Name", "Desired", "Current", "Ready", "Age"],
            ["Containers", "Images", "Selector"],
        ),
        (
            "apps",
            "DaemonSet",
            ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"],
            ["Containers", "Images", "Selector"],
        ),
        ("apps", "StatefulSet", ["Name", "Ready", "Age"], ["Containers", "Images"]),
        (
            "batch",
            "Job",
            ["Name", "Status", "Completions", "Duration", "Age"],
            ["Containers", "Images", "Selector"],
        ),
        (
            "batch",
            "CronJob",
            ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"],
            ["Containers", "Images", "Selector"],
        ),
        ("coordination.k8s.io", "Lease", ["Name", "Holder", "Age"], []),
        ("discovery.k8s.io", "EndpointSlice", ["Name", "AddressType", "Ports", "Endpoints", "Age"], []),
        (
            "policy",
            "PodDisruptionBudget",
            ["Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"],
            [],
        ),
        ("apiextensions.k8s.io", "CustomResourceDefinition", ["Name", "Created At"], []),
        ("", "LimitRange", ["Name", "Created At"], []),
    ],
)
def test_columns_match_upstream(group: str, kind: str, columns: list[str], wide_columns: list[str]) -> None:
    names = headers(group, kind)
    assert [n for n in names if n not in wide_columns] == columns
    assert wide(group, kind) == wide_columns
    # The first name-formatted column is the one kubectl uses for the NAME of each row.
    assert printer_for(group, kind).columns[0 if kind != "Event" else -1].format == "name"


def test_default_printer_is_kube_apiservers_generic_convertor() -> None:
    printer = printer_for("apiextensions.k8s.io", "CustomResourceDefinition")
    assert printer is printer_for("example.com", "Widget")
    assert [c.definition()["type"] for c in printer.columns] == ["string", "date"]
    crd = {"metadata": {"name": "widgets.example.com", "creationTimestamp": "2025-05-31T10:20:30+02:00"}}
    assert printer.row(crd, NOW) == ["widgets.example.com", "2025-05-31T08:20:30Z"]
    assert printer.row({"metadata": {"name": "x"}}, NOW) == ["x", "0001-01-01T00:00:00Z"]


def test_register_printer_replaces_the_default() -> None:
    custom = tables.Printer([tables.NAME], lambda obj, now: [obj["metadata"]["name"]])
    tables.register_printer("example.com", "Gadget", custom)
    try:
        assert printer_for("example.com", "Gadget") is custom
    finally:
        tables._PRINTERS.pop(("example.com", "Gadget"))


# --------------------------------------------------------------------------------------------------------
# Pods


def container_status(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "nginx:1.27", "ready": False, "restartCount": 0, **fields}


def pod(
    name: str = "web-0",
    *,
    phase: str = "Running",
    containers: int = 1,
    statuses: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    **meta_extra: Any,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, 5 * M, **meta_extra),
        "spec": {
            "containers": [{"name": f"c{i}", "image": "nginx:1.27"} for i in range(containers)],
            "initContainers": init or [],
        },
        "status": status,
    }


def pod_row(obj: dict[str, Any]) -> tuple[str, str, str]:
    row = cells("", "Pod", obj)
    return row["Ready"], row["Status"], row["Restarts"]


def test_pod_pending_unscheduled() -> None:
    obj = pod(
        phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    )
    row = cells("", "Pod", obj)
    assert (row["Name"], row["Ready"], row["Status"], row["Restarts"], row["Age"]) == (
        "web-0",
        "0/1",
        "Pending",
        "0",
        "5m",
    )
    assert (row["IP"], row["Node"], row["Nominated Node"], row["Readiness Gates"]) == ("<none>",) * 4


def test_pod_scheduling_gated() -> None:
    obj = pod(
        phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]
    )
    assert pod_row(obj)[1] == "SchedulingGated"


def test_pod_container_creating() -> None:
    obj = pod(
        phase="Pending", statuses=[container_status("c0", state={"waiting": {"reason": "ContainerCreating"}})]
    )
    assert pod_row(obj) == ("0/1", "ContainerCreating", "0")


def test_pod_running_with_restarts_shows_when_the_last_one_was() -> None:
    statuses = [
        container_status(
            "c0",
            ready=True,
            restartCount=3,
            state={"running": {"startedAt": ago(4 * M)}},
            lastState={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(4 * M)}},
        ),
        container_status(
            "c1",
            ready=True,
            restartCount=1,
            state={"running": {}},
            lastState={"terminated": {"exitCode": 137, "finishedAt": ago(2 * H)}},
        ),
    ]
    obj = pod(containers=2, statuses=statuses, conditions=[{"type": "Ready", "status": "True"}])
    obj["spec"]["nodeName"] = "kbox-node"
    obj["status"]["podIP"] = "10.244.0.7"
    obj["status"]["podIPs"] = [{"ip": "10.244.0.7"}, {"ip": "fd00::7"}]
    row = cells("", "Pod", obj)
    assert (row["Ready"], row["Status"], row["Restarts"]) == ("2/2", "Running", "4 (4m ago)")
    assert (row["IP"], row["Node"]) == ("10.244.0.7", "kbox-node")


def test_pod_running_without_restarts_and_pod_ip_fallback() -> None:
    obj = pod(statuses=[container_status("c0", ready=True, state={"running": {}})])
    obj["status"]["podIP"] = "10.244.0.9"
    row = cells("", "Pod", obj)
    assert (row["Ready"], row["Status"], row["Restarts"], row["IP"]) == ("1/1", "Running", "0", "10.244.0.9")


def test_pod_crash_loop_back_off() -> None:
    statuses = [
        container_status(
            "c0",
            restartCount=5,
            state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
            lastState={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(90 * S)}},
        )
    ]
    assert pod_row(pod(statuses=statuses)) == ("0/1", "CrashLoopBackOff", "5 (90s ago)")


def test_pod_restarts_without_a_finish_time_show_only_the_count() -> None:
    statuses = [container_status("c0", ready=True, restartCount=2, state={"running": {}})]
    assert pod_row(pod(statuses=statuses))[2] == "2"


def test_pod_completed_has_a_completed_row_condition() -> None:
    statuses = [container_status("c0", state={"terminated": {"exitCode": 0, "reason": "Completed"}})]
    obj = pod(phase="Succeeded", statuses=statuses)
    assert pod_row(obj) == ("0/1", "Completed", "0")
    conditions = printer_for("", "Pod").row_conditions(obj)
    assert [(c["type"], c["status"], c["reason"]) for c in conditions] == [("Completed", "True", "Succeeded")]
    assert printer_for("", "Pod").row_conditions(pod()) == []


def test_pod_failed_terminations_without_reason() -> None:
    by_exit = [container_status("c0", state={"terminated": {"exitCode": 2}})]
    assert pod_row(pod(phase="Failed", statuses=by_exit))[1] == "ExitCode:2"
    by_signal = [container_status("c0", state={"terminated": {"exitCode": 137, "signal": 9}})]
    assert pod_row(pod(phase="Failed", statuses=by_signal))[1] == "Signal:9"
    failed = pod(
        phase="Failed",
        statuses=[container_status("c0", state={"terminated": {"exitCode": 1, "reason": "Error"}})],
    )
    assert pod_row(failed)[1] == "Error"
    assert printer_for("", "Pod").row_conditions(failed)[0]["reason"] == "Failed"


def test_pod_completed_container_beside_a_running_one() -> None:
    statuses = [
        container_status("c0", ready=True, state={"running": {}}),
        container_status("c1", state={"terminated": {"exitCode": 0, "reason": "Completed"}}),
    ]
    assert pod_row(pod(containers=2, statuses=statuses))[:2] == ("1/2", "NotReady")
    ready = pod(containers=2, statuses=statuses, conditions=[{"type": "Ready", "status": "True"}])
    assert pod_row(ready)[1] == "Running"


def test_pod_terminating() -> None:
    obj = pod(
        statuses=[container_status("c0", ready=True, state={"running": {}})],
        deletionTimestamp=ago(10 * S),
        deletionGracePeriodSeconds=30,
    )
    assert pod_row(obj) == ("1/1", "Terminating", "0")
    finished = pod(phase="Succeeded", deletionTimestamp=ago(S))
    assert pod_row(finished)[1] == "Succeeded"
    lost = pod(deletionTimestamp=ago(S))
    lost["status"]["reason"] = "NodeLost"
    assert pod_row(lost)[1] == "Unknown"


def test_pod_status_reason_overrides_phase() -> None:
    obj = pod(phase="Failed")
    obj["status"]["reason"] = "Evicted"
    assert pod_row(obj)[1] == "Evicted"


def test_pod_init_containers() -> None:
    init = [{"name": "setup", "image": "busybox"}]
    waiting = [container_status("c0", state={"waiting": {"reason": "PodInitializing"}})]
    running = pod(
        phase="Pending",
        init=init,
        init_statuses=[container_status("setup", state={"running": {}})],
        statuses=waiting,
    )
    assert pod_row(running) == ("0/1", "Init:0/1", "0")

    two = [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]
    second = pod(
        phase="Pending",
        init=two,
        init_statuses=[
            container_status("a", state={"terminated": {"exitCode": 0, "reason": "Completed"}}),
            container_status("b", state={"waiting": {"reason": "PodInitializing"}}),
        ],
    )
    assert pod_row(second)[1] == "Init:1/2"

    crash = pod(
        phase="Pending",
        init=init,
        init_statuses=[
            container_status(
                "setup",
                restartCount=4,
                state={"waiting": {"reason": "CrashLoopBackOff"}},
                lastState={"terminated": {"exitCode": 1, "finishedAt": ago(30 * S)}},
            )
        ],
    )
    assert pod_row(crash) == ("0/1", "Init:CrashLoopBackOff", "4 (30s ago)")

    error = [container_status("setup", state={"terminated": {"exitCode": 1, "reason": "Error"}})]
    assert pod_row(pod(phase="Pending", init=init, init_statuses=error))[1] == "Init:Error"
    exit_code = [container_status("setup", state={"terminated": {"exitCode": 3}})]
    assert pod_row(pod(phase="Pending", init=init, init_statuses=exit_code))[1] == "Init:ExitCode:3"
    signal = [container_status("setup", state={"terminated": {"exitCode": 143, "signal": 15}})]
    assert pod_row(pod(phase="Pending", init=init, init_statuses=signal))[1] == "Init:Signal:15"


def test_pod_sidecar_init_container_counts_as_a_container() -> None:
    init = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
    obj = pod(
        init=init,
        init_statuses=[
            container_status("proxy", ready=True, started=True, restartCount=1, state={"running": {}})
        ],
        statuses=[container_status("c0", ready=True, state={"running": {}})],
        conditions=[{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
    )
    assert pod_row(obj) == ("2/2", "Running", "1")


def test_pod_readiness_gates() -> None:
    obj = pod(
        statuses=[container_status("c0", ready=True, state={"running": {}})],
        conditions=[
            {"type": "example.com/lb", "status": "True"},
            {"type": "example.com/dns", "status": "False"},
        ],
    )
    obj["spec"]["readinessGates"] = [
        {"conditionType": "example.com/lb"},
        {"conditionType": "example.com/dns"},
    ]
    obj["status"]["nominatedNodeName"] = "node-b"
    row = cells("", "Pod", obj)
    assert (row["Readiness Gates"], row["Nominated Node"]) == ("1/2", "node-b")


# --------------------------------------------------------------------------------------------------------
# Nodes


def node(
    name: str, ready: str | None, *, labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    return {
        "metadata": meta(name, 3 * D + 4 * H, labels=labels or {}),
        "spec": spec,
        "status": {
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": "172.18.0.2"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.4",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-28-amd64",
                "containerRuntimeVersion": "docker://27.3.1",
            },
        },
    }


def test_node_ready_with_roles() -> None:
    labels = {
        "node-role.kubernetes.io/control-plane": "",
        "node-role.kubernetes.io/worker": "",
        "node-role.kubernetes.io/": "",
        "kubernetes.io/hostname": "kbox",
    }
    row = cells("", "Node", node("kbox", "True", labels=labels))
    assert [row[c] for c in ("Name", "Status", "Roles", "Age", "Version")] == [
        "kbox",
        "Ready",
        "control-plane,worker",
        "3d4h",
        "v1.32.4",
    ]
    assert [row[c] for c in wide("", "Node")] == [
        "172.18.0.2",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0-28-amd64",
        "docker://27.3.1",
    ]


def test_node_not_ready_and_cordoned() -> None:
    row = cells("", "Node", node("n2", "False", unschedulable=True))
    assert (row["Status"], row["Roles"]) == ("NotReady,SchedulingDisabled", "<none>")
    assert cells("", "Node", node("n3", "Unknown"))["Status"] == "NotReady"
    assert cells("", "Node", node("n4", None, unschedulable=True))["Status"] == "Unknown,SchedulingDisabled"
    assert cells("", "Node", node("n5", "True", labels={"kubernetes.io/role": "edge"}))["Roles"] == "edge"


def test_node_without_info_shows_unknown() -> None:
    bare = {"metadata": meta("bare"), "status": {}}
    row = cells("", "Node", bare)
    assert (row["Version"], row["OS-Image"], row["Internal-IP"]) == ("", "<unknown>", "<none>")


# --------------------------------------------------------------------------------------------------------
# Workloads

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "containers": [{"name": "nginx", "image": "nginx:1.27"}, {"name": "log", "image": "busybox:1.36"}]
    },
}


def test_deployment() -> None:
    obj = {
        "metadata": meta("web", 2 * H),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert printer_for("apps", "Deployment").row(obj, NOW) == [
        "web",
        "2/3",
        3,
        2,
        "120m",
        "nginx,log",
        "nginx:1.27,busybox:1.36",
        "app=web",
    ]
    fresh = {
        "metadata": meta("new"),
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE},
    }
    row = cells("apps", "Deployment", fresh)
    assert (row["Ready"], row["Up-to-date"], row["Available"]) == ("0/1", 0, 0)
    bad = {
        "metadata": meta("bad"),
        "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
    }
    assert cells("apps", "Deployment", bad)["Selector"] == "<invalid>"


def test_replica_set() -> None:
    obj = {
        "metadata": meta("web-5d4f8c7b9", 2 * H),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f8c7b9"}},
            "template": TEMPLATE,
        },
        "status": {"replicas": 3, "readyReplicas": 1},
    }
    assert printer_for("apps", "ReplicaSet").row(obj, NOW) == [
        "web-5d4f8c7b9",
        3,
        3,
        1,
        "120m",
        "nginx,log",
        "nginx:1.27,busybox:1.36",
        "app=web,pod-template-hash=5d4f8c7b9",
    ]


def test_daemon_set() -> None:
    template = {
        "spec": {
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "containers": [{"name": "agent", "image": "a:1"}],
        }
    }
    obj = {
        "metadata": meta("agent", 10 * D),
        "spec": {"selector": {"matchLabels": {"name": "agent"}}, "template": template},
        "status": {
            "desiredNumberScheduled": 2,
            "currentNumberScheduled": 2,
            "numberReady": 1,
            "updatedNumberScheduled": 2,
            "numberAvailable": 1,
        },
    }
    assert printer_for("apps", "DaemonSet").row(obj, NOW) == [
        "agent",
        2,
        2,
        1,
        2,
        1,
        "kubernetes.io/os=linux",
        "10d",
        "agent",
        "a:1",
        "name=agent",
    ]
    assert cells("apps", "DaemonSet", {"metadata": meta("x")})["Node Selector"] == "<none>"


def test_stateful_set() -> None:
    obj = {
        "metadata": meta("db", 90 * S),
        "spec": {"replicas": 3, "template": TEMPLATE},
        "status": {"readyReplicas": 2},
    }
    assert printer_for("apps", "StatefulSet").row(obj, NOW) == [
        "db",
        "2/3",
        "90s",
        "nginx,log",
        "nginx:1.27,busybox:1.36",
    ]


def job(conditions: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": meta("pi", 10 * M),
        "spec": {
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
            "template": TEMPLATE,
            **spec,
        },
        "status": {"conditions": conditions or []},
    }


def test_job_complete() -> None:
    obj = job([{"type": "Complete", "status": "True"}], completions=1)
    obj["status"].update(succeeded=1, startTime=ago(10 * M), completionTime=ago(10 * M - 37 * S))
    assert printer_for("batch", "Job").row(obj, NOW) == [
        "pi",
        "Complete",
        "1/1",
        "37s",
        "10m",
        "nginx,log",
        "nginx:1.27,busybox:1.36",
        "batch.kubernetes.io/controller-uid=u1",
    ]


def test_job_states() -> None:
    running = job(completions=5, parallelism=2)
    running["status"].update(succeeded=2, startTime=ago(4 * M))
    row = cells("batch", "Job", running)
    assert (row["Status"], row["Completions"], row["Duration"]) == ("Running", "2/5", "4m")

    work_queue = job(parallelism=3)
    assert cells("batch", "Job", work_queue)["Completions"] == "0/1 of 3"
    assert cells("batch", "Job", job())["Completions"] == "0/1"
    assert cells("batch", "Job", job())["Duration"] == ""

    assert cells("batch", "Job", job([{"type": "Failed", "status": "True"}]))["Status"] == "Failed"
    assert cells("batch", "Job", job([{"type": "Suspended", "status": "True"}]))["Status"] == "Suspended"
    assert (
        cells("batch", "Job", job([{"type": "FailureTarget", "status": "True"}]))["Status"] == "FailureTarget"
    )
    assert cells("batch", "Job", job([{"type": "Complete", "status": "False"}]))["Status"] == "Running"
    terminating = job([{"type": "Suspended", "status": "True"}])
    terminating["metadata"]["deletionTimestamp"] = ago(S)
    assert cells("batch", "Job", terminating)["Status"] == "Terminating"


def test_cron_job() -> None:
    obj = {
        "metadata": meta("backup", 3 * D),
        "spec": {
            "schedule": "*/5 * * * *",
            "suspend": False,
            "jobTemplate": {"spec": {"template": TEMPLATE}},
        },
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": ago(3 * M)},
    }
    assert printer_for("batch", "CronJob").row(obj, NOW) == [
        "backup",
        "*/5 * * * *",
        "<none>",
        "False",
        1,
        "3m",
        "3d",
        "nginx,log",
        "nginx:1.27,busybox:1.36",
        "<none>",
    ]
    zoned = {
        "metadata": meta("z"),
        "spec": {"schedule": "@daily", "timeZone": "Europe/Paris", "suspend": True},
    }
    row = cells("batch", "CronJob", zoned)
    assert (row["Timezone"], row["Suspend"], row["Active"], row["Last Schedule"]) == (
        "Europe/Paris",
        "True",
        0,
        "<none>",
    )
    assert cells("batch", "CronJob", {"metadata": meta("u"), "spec": {}})["Suspend"] == "<unset>"


# --------------------------------------------------------------------------------------------------------
# Networking


def service(type_: str | None = "ClusterIP", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"app": "web", "tier": "front"}, **spec}
    if type_ is not None:
        body["type"] = type_
    return {"metadata": meta("web", 20 * M), "spec": body, "status": {"loadBalancer": {}}}


def test_service_cluster_ip_and_node_ports() -> None:
    obj = service(
        "NodePort",
        clusterIP="10.96.12.34",
        clusterIPs=["10.96.12.34"],
        ports=[
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "nodePort": 30443, "protocol": "TCP"},
        ],
    )
    assert printer_for("", "Service").row(obj, NOW) == [
        "web",
        "NodePort",
        "10.96.12.34",
        "<none>",
        "80/TCP,443:30443/TCP",
        "20m",
        "app=web,tier=front",
    ]
    plain = service(
        clusterIP="10.96.0.10", ports=[{"port": 53, "protocol": "UDP"}, {"port": 53}], externalIPs=["1.2.3.4"]
    )
    row = cells("", "Service", plain)
    assert (row["Type"], row["Cluster-IP"], row["External-IP"], row["Port(s)"]) == (
        "ClusterIP",
        "10.96.0.10",
        "1.2.3.4",
        "53/UDP,53/TCP",
    )


def test_service_headless_external_name_and_load_balancer() -> None:
    headless = cells("", "Service", service(clusterIP="None", clusterIPs=["None"]))
    assert (headless["Cluster-IP"], headless["Port(s)"]) == ("None", "<none>")

    external = cells("", "Service", service("ExternalName", externalName="db.example.com", selector=None))
    assert (external["Cluster-IP"], external["External-IP"], external["Selector"]) == (
        "<none>",
        "db.example.com",
        "<none>",
    )

    pending = service(
        "LoadBalancer", clusterIP="10.96.1.1", ports=[{"port": 80, "nodePort": 31000, "protocol": "TCP"}]
    )
    assert cells("", "Service", pending)["External-IP"] == "<pending>"
    pending["status"]["loadBalancer"]["ingress"] = [
        {"ip": "203.0.113.9"},
        {"hostname": "lb.example.com"},
        {"ip": "203.0.113.9"},
    ]
    pending["spec"]["externalIPs"] = ["198.51.100.1"]
    assert cells("", "Service", pending)["External-IP"] == "203.0.113.9,lb.example.com,198.51.100.1"


def test_endpoints() -> None:
    obj = {
        "metadata": meta("web"),
        "subsets": [
            {
                "addresses": [{"ip": "10.244.0.5"}, {"ip": "10.244.0.6"}],
                "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
            }
        ],
    }
    assert (
        cells("", "Endpoints", obj)["Endpoints"] == "10.244.0.5:80,10.244.0.6:80,10.244.0.5:443 + 1 more..."
    )
    two = {
        "metadata": meta("one"),
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "ports": [{"port": 8080}]}],
    }
    assert cells("", "Endpoints", two)["Endpoints"] == "10.0.0.1:8080,[fd00::1]:8080"
    headless = {"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}
    assert cells("", "Endpoints", headless)["Endpoints"] == "10.0.0.1"
    assert cells("", "Endpoints", {"metadata": meta("none")})["Endpoints"] == "<none>"
    not_ready = {
        "metadata": meta("nr"),
        "subsets": [{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}],
    }
    assert cells("", "Endpoints", not_ready)["Endpoints"] == ""


def test_endpoint_slice() -> None:
    obj = {
        "metadata": meta("web-abcde"),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": [f"10.244.0.{i}"], "conditions": {"ready": True}} for i in range(1, 5)],
    }
    assert printer_for("discovery.k8s.io", "EndpointSlice").row(obj, NOW) == [
        "web-abcde",
        "IPv4",
        "80",
        "10.244.0.1,10.244.0.2,10.244.0.3 + 1 more...",
        "5m",
    ]
    empty = {"metadata": meta("e"), "addressType": "IPv6", "ports": [{"name": "dns"}, {}], "endpoints": []}
    row = cells("discovery.k8s.io", "EndpointSlice", empty)
    assert (row["Ports"], row["Endpoints"]) == ("dns,*", "<unset>")
    assert cells("discovery.k8s.io", "EndpointSlice", {"metadata": meta("n")})["Ports"] == "<unset>"


# --------------------------------------------------------------------------------------------------------
# Config, identity, coordination, policy, events


def test_namespace_configmap_secret_serviceaccount_lease() -> None:
    assert printer_for("", "Namespace").row(
        {"metadata": meta("dev", 2 * D), "status": {"phase": "Active"}}, NOW
    ) == [
        "dev",
        "Active",
        "2d",
    ]
    terminating = {"metadata": meta("old"), "status": {"phase": "Terminating"}}
    assert cells("", "Namespace", terminating)["Status"] == "Terminating"

    cm = {"metadata": meta("kube-root-ca.crt"), "data": {"ca.crt": "..."}, "binaryData": {"blob": "AA=="}}
    assert printer_for("", "ConfigMap").row(cm, NOW) == ["kube-root-ca.crt", 2, "5m"]

    secret = {"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}
    assert printer_for("", "Secret").row(secret, NOW) == ["tls", "kubernetes.io/tls", 2, "5m"]
    assert cells("", "Secret", {"metadata": meta("o")})["Type"] == "Opaque"

    assert printer_for("", "ServiceAccount").row({"metadata": meta("default")}, NOW) == ["default", 0, "5m"]
    sa = {"metadata": meta("builder"), "secrets": [{"name": "builder-token"}]}
    assert cells("", "ServiceAccount", sa)["Secrets"] == 1

    lease = {
        "metadata": meta("kube-scheduler"),
        "spec": {"holderIdentity": "kbox_1234", "leaseDurationSeconds": 15},
    }
    assert printer_for("coordination.k8s.io", "Lease").row(lease, NOW) == [
        "kube-scheduler",
        "kbox_1234",
        "5m",
    ]
    assert cells("coordination.k8s.io", "Lease", {"metadata": meta("free"), "spec": {}})["Holder"] == ""


def test_pod_disruption_budget() -> None:
    obj = {"metadata": meta("web"), "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}}
    assert printer_for("policy", "PodDisruptionBudget").row(obj, NOW) == ["web", "2", "N/A", 1, "5m"]
    percent = {"metadata": meta("db"), "spec": {"maxUnavailable": "25%"}}
    assert printer_for("policy", "PodDisruptionBudget").row(percent, NOW) == ["db", "N/A", "25%", 0, "5m"]


def test_resource_quota() -> None:
    obj = {
        "metadata": meta("compute"),
        "spec": {"hard": {"pods": "10"}},
        "status": {
            "hard": {"requests.cpu": "4", "pods": "10", "limits.memory": "8Gi", "limits.cpu": "8"},
            "used": {"requests.cpu": "500m", "pods": "3", "limits.cpu": "1"},
        },
    }
    assert printer_for("", "ResourceQuota").row(obj, NOW) == [
        "compute",
        "5m",
        "pods: 3/10, requests.cpu: 500m/4",
        "limits.cpu: 1/8, limits.memory: 0/8Gi",
    ]


def test_core_event() -> None:
    event = {
        "metadata": meta("web-0.17f3a", 10 * M),
        "involvedObject": {
            "kind": "Pod",
            "name": "web-0",
            "namespace": "default",
            "fieldPath": "spec.containers{nginx}",
        },
        "reason": "BackOff",
        "message": "Back-off restarting failed container nginx\n",
        "source": {"component": "kubelet", "host": "kbox-node"},
        "firstTimestamp": ago(10 * M),
        "lastTimestamp": ago(30 * S),
        "count": 12,
        "type": "Warning",
    }
    assert printer_for("", "Event").row(event, NOW) == [
        "30s",
        "Warning",
        "BackOff",
        "pod/web-0",
        "spec.containers{nginx}",
        "kubelet, kbox-node",
        "Back-off restarting failed container nginx",
        "10m",
        12,
        "web-0.17f3a",
    ]


def test_core_event_written_by_the_new_api() -> None:
    event = {
        "metadata": meta("web.1"),
        "involvedObject": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet",
        "message": "Scaled up",
        "source": {},
        "firstTimestamp": None,
        "lastTimestamp": None,
        "eventTime": "2025-06-01T11:58:00.123456Z",
        "reportingComponent": "deployment-controller",
        "reportingInstance": "kbox",
        "type": "Normal",
    }
    row = cells("", "Event", event)
    assert (row["Last Seen"], row["First Seen"], row["Count"], row["Source"], row["Object"]) == (
        "119s",
        "119s",
        1,
        "deployment-controller, kbox",
        "deployment/web",
    )
    event["series"] = {"count": 4, "lastObservedTime": "2025-06-01T11:59:50.000000Z"}
    row = cells("", "Event", event)
    assert (row["Last Seen"], row["Count"]) == ("10s", 4)
    unnamed = {
        "metadata": meta("n.1"),
        "involvedObject": {"kind": "Node"},
        "source": {"component": "kubelet"},
    }
    row = cells("", "Event", unnamed)
    assert (row["Object"], row["Source"], row["Last Seen"], row["First Seen"]) == (
        "node",
        "kubelet",
        "<unknown>",
        "<unknown>",
    )


def test_events_k8s_io_event() -> None:
    event = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": meta("web-0.1"),
        "regarding": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{nginx}"},
        "reason": "Pulled",
        "note": "Successfully pulled image",
        "type": "Normal",
        "eventTime": "2025-06-01T11:55:00.000000Z",
        "reportingController": "kubelet",
        "reportingInstance": "kbox-node",
        "deprecatedFirstTimestamp": ago(7 * M),
        "deprecatedLastTimestamp": ago(6 * M),
        "deprecatedCount": 2,
    }
    assert printer_for("events.k8s.io", "Event").row(event, NOW) == [
        "6m",
        "Normal",
        "Pulled",
        "pod/web-0",
        "spec.containers{nginx}",
        "kubelet, kbox-node",
        "Successfully pulled image",
        "7m",
        2,
        "web-0.1",
    ]


# --------------------------------------------------------------------------------------------------------
# Labels and selectors


def test_format_labels() -> None:
    assert format_labels({"tier": "front", "app": "web", "a.b": "1"}) == "a.b=1,app=web,tier=front"
    assert format_labels({}) == "<none>"
    assert format_labels(None) == "<none>"


def test_format_label_selector() -> None:
    selector = {
        "matchLabels": {"tier": "front", "app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "release", "operator": "Exists"},
        ],
    }
    assert (
        format_label_selector(selector)
        == "app=web,!canary,env in (dev,prod),release,tier=front,zone notin (b)"
    )
    assert format_label_selector(None) == "<none>"
    assert format_label_selector({}) == "<none>"
    assert (
        format_label_selector({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
        == "<error>"
    )
    assert (
        format_label_selector({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
        == "<error>"
    )


# --------------------------------------------------------------------------------------------------------
# Tables


def running_pod(name: str) -> dict[str, Any]:
    obj = pod(name, statuses=[container_status("c0", ready=True, state={"running": {}})])
    obj["metadata"].update(
        labels={"app": "web"},
        resourceVersion="42",
        managedFields=[{"manager": "kubectl", "operation": "Update"}],
    )
    return obj


def test_table_with_partial_object_metadata_rows() -> None:
    pods = [running_pod("a"), running_pod("b")]
    table = to_table(printer_for("", "Pod"), pods, now=NOW, resource_version="110")
    assert (table["kind"], table["apiVersion"], table["metadata"]) == (
        "Table",
        "meta.k8s.io/v1",
        {"resourceVersion": "110"},
    )
    assert [c["name"] for c in table["columnDefinitions"]] == headers("", "Pod")
    assert table["columnDefinitions"][0] == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": tables.NAME.description,
        "priority": 0,
    }
    first = table["rows"][0]
    assert first["cells"] == ["a", "1/1", "Running", "0", "5m", "<none>", "<none>", "<none>", "<none>"]
    assert "conditions" not in first
    assert first["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pods[0]["metadata"],
    }
    assert first["object"]["metadata"]["namespace"] == "default"
    assert table["rows"][1]["cells"][0] == "b"
    json.dumps(table)  # plain JSON all the way down


def test_table_include_object_modes() -> None:
    obj = running_pod("a")
    full = to_table(printer_for("", "Pod"), [obj], now=NOW, resource_version="1", include_object="Object")
    assert full["rows"][0]["object"] is obj

    bare = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    stamped = to_table(
        printer_for("", "Pod"),
        [bare],
        now=NOW,
        resource_version="1",
        include_object="Object",
        api_version_kind=("v1", "Pod"),
    )
    assert stamped["rows"][0]["object"] == {"apiVersion": "v1", "kind": "Pod", **bare}

    none = to_table(printer_for("", "Pod"), [obj], now=NOW, resource_version="1", include_object="None")
    assert none["rows"][0]["object"] is None
    assert json.loads(json.dumps(none))["rows"][0] == {"cells": none["rows"][0]["cells"], "object": None}

    empty = to_table(printer_for("", "Pod"), [obj], now=NOW, resource_version="1", include_object="")
    assert empty["rows"][0]["object"]["kind"] == "PartialObjectMetadata"

    with pytest.raises(StatusError) as caught:
        to_table(printer_for("", "Pod"), [obj], now=NOW, resource_version="1", include_object="Everything")
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")


def test_table_for_a_watch_event_after_the_first() -> None:
    table = to_table(
        printer_for("", "Pod"), [running_pod("a")], now=NOW, resource_version="112", include_columns=False
    )
    assert table["columnDefinitions"] == []
    assert len(table["rows"]) == 1


def test_table_paging_metadata_and_empty_lists() -> None:
    table = to_table(
        printer_for("apps", "Deployment"),
        [],
        now=NOW,
        resource_version="200",
        continue_token="eyJ2IjoxfQ",
        remaining_item_count=7,
    )
    assert table["metadata"] == {"resourceVersion": "200", "continue": "eyJ2IjoxfQ", "remainingItemCount": 7}
    assert table["rows"] == []
    assert to_table(printer_for("", "Pod"), [], now=NOW, resource_version="")["metadata"] == {}


def test_table_row_conditions_and_meta_version() -> None:
    done = pod(
        "done",
        phase="Succeeded",
        statuses=[container_status("c0", state={"terminated": {"exitCode": 0, "reason": "Completed"}})],
    )
    table = to_table(printer_for("", "Pod"), [done], now=NOW, resource_version="5", meta_version="v1beta1")
    row = table["rows"][0]
    assert list(row) == ["cells", "conditions", "object"]
    assert row["conditions"][0]["type"] == "Completed"
    assert table["apiVersion"] == row["object"]["apiVersion"] == "meta.k8s.io/v1beta1"


def test_default_table_for_kinds_without_a_printer() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "creationTimestamp": "2025-05-01T00:00:00Z"},
    }
    table = to_table(
        printer_for("apiextensions.k8s.io", "CustomResourceDefinition"), [crd], now=NOW, resource_version="9"
    )
    assert table["columnDefinitions"] == [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": tables.NAME.description,
            "priority": 0,
        },
        {
            "name": "Created At",
            "type": "date",
            "format": "",
            "description": tables.DEFAULT_PRINTER.columns[1].description,
            "priority": 0,
        },
    ]
    assert table["rows"][0]["cells"] == ["widgets.example.com", "2025-05-01T00:00:00Z"]


@pytest.mark.parametrize("key", sorted(tables._PRINTERS))
def test_every_printer_survives_an_empty_object(key: tuple[str, str]) -> None:
    """Objects are plain JSON: a printer must cope with every field missing, one cell per column."""
    printer = printer_for(*key)
    for obj in ({}, {"metadata": {"name": "x"}}, {"metadata": None, "spec": None, "status": None}):
        assert len(printer.row(obj, NOW)) == len(printer.columns)
