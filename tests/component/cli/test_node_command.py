"""``kbox node list|add|stop|start|delete`` through the installed command on a fake-runtime profile:
a node added as ``<profile>-m02`` registers and turns Ready (kubectl sees it), stops (its kubelet no
longer renews the Lease) and stays stopped across ``kbox stop`` / ``kbox start``, starts again, and is
deleted with the pods bound to it; mistakes (an unknown node, a name taken, the control-plane node deleted) end in one line.
The node failure that follows a stop (Unknown, taints, eviction) is the node lifecycle controller's
test and the Docker end-to-end test's."""

from __future__ import annotations

import json
from typing import Any

from tests.component.cli.conftest import PROFILE, KboxCluster, one_line_error
from tests.support.wait import until

ADDED = f"{PROFILE}-m02"


def nodes(cluster: KboxCluster) -> dict[str, dict[str, Any]]:
    listing = json.loads(cluster.kubectl_ok("get", "nodes", "-o", "json"))
    return {n["metadata"]["name"]: n for n in listing["items"]}


def renewed(cluster: KboxCluster, name: str) -> str:
    lease = json.loads(cluster.kubectl_ok("get", "lease", name, "-n", "kube-node-lease", "-o", "json"))
    return str(lease["spec"]["renewTime"])


def listed(cluster: KboxCluster) -> dict[str, list[str]]:
    lines = cluster.ok("node", "list").splitlines()
    assert lines[0].split() == ["NAME", "KUBELET", "STATUS", "ROLES", "INTERNAL-IP"]
    return {line.split()[0]: line.split()[1:] for line in lines[1:]}


def test_node_add_stop_start_delete(cluster: KboxCluster) -> None:
    assert listed(cluster)[PROFILE][:3] == ["running", "Ready", "control-plane"]

    assert cluster.ok("node", "add").strip() == f"node {ADDED} added"
    assert listed(cluster)[ADDED][:3] == ["running", "Ready", "<none>"]
    assert "node-role.kubernetes.io/control-plane" not in nodes(cluster)[ADDED]["metadata"]["labels"]
    assert one_line_error(cluster.kbox("node", "add", ADDED)) == f"Error: node '{ADDED}' already exists"

    assert cluster.ok("node", "stop", ADDED).strip() == f"node {ADDED} stopped"
    assert listed(cluster)[ADDED][0] == "stopped"
    assert "kbox.io/kubelet-stopped" in nodes(cluster)[ADDED]["metadata"]["annotations"]
    assert cluster.ok("node", "stop", ADDED).strip() == f"node {ADDED} is already stopped"

    # The stopped node stays stopped across a restart of the cluster: its kubelet does not come back.
    before, control_plane = renewed(cluster, ADDED), renewed(cluster, PROFILE)
    cluster.ok("stop", timeout=120)
    cluster.ok("start", timeout=180)
    until(lambda: renewed(cluster, PROFILE) != control_plane)  # the control plane's kubelet renews...
    assert renewed(cluster, ADDED) == before  # ...the stopped one does not
    assert listed(cluster)[ADDED][0] == "stopped"

    assert cluster.ok("node", "start", ADDED).strip() == f"node {ADDED} started"
    assert listed(cluster)[ADDED][:2] == ["running", "Ready"]
    assert "kbox.io/kubelet-stopped" not in (nodes(cluster)[ADDED]["metadata"].get("annotations") or {})

    pod = f"""{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "pinned"}},
        "spec": {{"nodeName": "{ADDED}", "containers": [{{"name": "main", "image": "busybox"}}]}}}}"""
    cluster.kubectl_ok("create", "-f", "-", input=pod)
    until(lambda: "Running" in cluster.kubectl_ok("get", "pod", "pinned"))
    assert cluster.ok("node", "delete", ADDED).strip() == f"node {ADDED} deleted"
    assert ADDED not in nodes(cluster)
    assert "pinned" not in cluster.kubectl_ok("get", "pods", "-o", "name")  # no drain, no orphans
    assert ADDED not in listed(cluster)


def test_node_mistakes_are_one_line(cluster: KboxCluster) -> None:
    error = one_line_error(cluster.kbox("node", "stop", "nope"))
    assert error.startswith(f"Error: no node 'nope' in profile '{PROFILE}'; nodes: {PROFILE}")
    assert one_line_error(cluster.kbox("node", "delete", PROFILE)) == (
        f"Error: cannot delete the control-plane node '{PROFILE}' (kbox delete removes the whole cluster)"
    )
    assert "invalid node name" in one_line_error(cluster.kbox("node", "add", "Bad_Name"))
    assert cluster.ok("node", "start", PROFILE).strip() == f"node {PROFILE} is already running"
