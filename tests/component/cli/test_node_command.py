"""``kbox node list|add|stop|start|delete`` through the installed command on a fake-runtime profile:
on a two-node profile a node added as ``<profile>-m03`` registers and turns Ready (kubectl sees it);
the second node stops (its kubelet no longer renews the Lease) and stays stopped across ``kbox stop`` /
``kbox start`` (which does not wait for it), then starts again; the added node is deleted with the
pods bound to it; mistakes (an unknown node, a name taken, the control-plane node deleted) end in one line.
The node failure that follows a stop (Unknown, taints, eviction) is the node lifecycle controller's
test and the Docker end-to-end test's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.component.cli.conftest import PROFILE, KboxCluster, one_line_error
from tests.support.wait import until

SECOND = f"{PROFILE}-m02"
ADDED = f"{PROFILE}-m03"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KboxCluster]:
    """A two-node profile (the shared fixture's has one)."""
    base = tmp_path_factory.mktemp("kbox-node")
    c = KboxCluster(home=base / "home", kbox_home=base / "kbox-home")
    c.home.mkdir()
    try:
        c.ok("start", "--runtime", "fake", "--nodes", "2", "--port", "0", timeout=180)
        yield c
    finally:
        c.kbox("delete", "--all", timeout=120)


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
    assert listed(cluster)[SECOND][:3] == ["running", "Ready", "<none>"]

    assert cluster.ok("node", "add").strip() == f"node {ADDED} added"
    assert listed(cluster)[ADDED][:3] == ["running", "Ready", "<none>"]
    assert "node-role.kubernetes.io/control-plane" not in nodes(cluster)[ADDED]["metadata"]["labels"]
    assert one_line_error(cluster.kbox("node", "add", ADDED)) == f"Error: node '{ADDED}' already exists"

    assert cluster.ok("node", "stop", SECOND).strip() == f"node {SECOND} stopped"
    assert listed(cluster)[SECOND][0] == "stopped"
    assert "kbox.io/kubelet-stopped" in nodes(cluster)[SECOND]["metadata"]["annotations"]
    assert cluster.ok("node", "stop", SECOND).strip() == f"node {SECOND} is already stopped"

    # The stopped node stays stopped across a restart of the cluster (which does not wait for it); the
    # added one comes back.
    before, control_plane = renewed(cluster, SECOND), renewed(cluster, PROFILE)
    cluster.ok("stop", timeout=120)
    cluster.ok("start", timeout=180)
    until(lambda: renewed(cluster, PROFILE) != control_plane)  # the control plane's kubelet renews...
    assert renewed(cluster, SECOND) == before  # ...the stopped one does not
    assert listed(cluster)[SECOND][0] == "stopped"
    until(lambda: listed(cluster)[ADDED][:2] == ["running", "Ready"])

    assert cluster.ok("node", "start", SECOND).strip() == f"node {SECOND} started"
    assert listed(cluster)[SECOND][:2] == ["running", "Ready"]
    assert "kbox.io/kubelet-stopped" not in (nodes(cluster)[SECOND]["metadata"].get("annotations") or {})

    pod = f"""{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "pinned"}},
        "spec": {{"nodeName": "{ADDED}", "containers": [{{"name": "main", "image": "busybox"}}]}}}}"""
    cluster.kubectl_ok("create", "-f", "-", input=pod)
    until(lambda: "Running" in cluster.kubectl_ok("get", "pod", "pinned"))
    assert cluster.ok("node", "delete", ADDED).strip() == f"node {ADDED} deleted"
    assert ADDED not in nodes(cluster)
    assert ADDED not in listed(cluster)
    assert "pinned" not in cluster.kubectl_ok("get", "pods", "-o", "name")  # no drain, no orphans


def test_node_mistakes_are_one_line(cluster: KboxCluster) -> None:
    error = one_line_error(cluster.kbox("node", "stop", "nope"))
    assert error.startswith(f"Error: no node 'nope' in profile '{PROFILE}'; nodes: {PROFILE}")
    assert one_line_error(cluster.kbox("node", "delete", PROFILE)) == (
        f"Error: cannot delete the control-plane node '{PROFILE}' (kbox delete removes the whole cluster)"
    )
    assert "invalid node name" in one_line_error(cluster.kbox("node", "add", "Bad_Name"))
    assert cluster.ok("node", "start", PROFILE).strip() == f"node {PROFILE} is already running"
