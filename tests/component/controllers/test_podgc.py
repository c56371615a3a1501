"""The pod garbage collector in the embedded cluster (fake runtime, two nodes) with the real kubectl:
pods bound to a node deleted with ``kubectl delete node`` are marked Failed with the DisruptionTarget
condition and removed after the quarantine, and their Deployment replaces them on the node that is left;
pods of nodes that exist are never touched; finished pods beyond the threshold are deleted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from kbox.client.interface import PODS as PODS_RESOURCE
from kbox.controllers.podgc import PodGarbageCollector
from kbox.testing.cluster import Cluster, SyncCluster
from tests.component.controllers import cluster, eventually
from tests.support.apiserver import KUBECTL
from tests.support.wait import until

Obj = dict[str, Any]


def kubectl(c: SyncCluster, *args: str) -> subprocess.CompletedProcess[str]:
    cache = Path(c.state_dir) / "kubectl-cache"
    return subprocess.run(
        [KUBECTL, f"--kubeconfig={c.kubeconfig_path}", f"--cache-dir={cache}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def pods_by_node(c: SyncCluster) -> dict[str, list[str]]:
    listing = json.loads(kubectl(c, "get", "pods", "-o", "json").stdout)["items"]
    result: dict[str, list[str]] = {}
    for pod in listing:
        if not pod["metadata"].get("deletionTimestamp"):
            result.setdefault(pod["spec"].get("nodeName", ""), []).append(pod["metadata"]["name"])
    return result


def test_pods_of_a_deleted_node_are_failed_removed_and_replaced() -> None:
    with Cluster(nodes=2, runtime="fake", pod_gc_quarantine=1.0) as c:
        first, second = c.node_names
        web = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{"name": "main", "image": "busybox"}],
                        "nodeSelector": {"kubernetes.io/hostname": second},
                    },
                },
            },
        }
        c.apply(web)
        until(lambda: len(pods_by_node(c).get(second, [])) == 2, 20)
        c.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "kept"},
                "spec": {"nodeName": first, "containers": [{"name": "main", "image": "busybox"}]},
            }
        )
        # A finalizer keeps one of the second node's pods visible after its deletion, to read what the
        # collector wrote on it.
        c.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
                "spec": {"nodeName": second, "containers": [{"name": "main", "image": "busybox"}]},
            }
        )
        c.wait_for("Pod", "held", condition="Running", timeout=20)
        c.node(second).stop()
        assert kubectl(c, "delete", "node", second).returncode == 0

        # Gone after the quarantine; the Deployment's new pods wait for a node with the old hostname.
        until(lambda: not pods_by_node(c).get(second), 20)
        assert "kept" in pods_by_node(c).get(first, []), "a pod of a node that exists is never collected"
        held = c.get("Pod", "held")
        assert held["metadata"].get("deletionTimestamp") and held["status"]["phase"] == "Failed"
        [target] = [x for x in held["status"]["conditions"] if x["type"] == "DisruptionTarget"]
        assert (target["reason"], target["message"]) == ("DeletionByPodGC", "PodGC: node no longer exists")
        kubectl(c, "patch", "pod", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')

        # Let the Deployment run anywhere: its replacements land on the node that is left.
        kubectl(c, "patch", "deploy", "web", "--type=json", "-p",
                '[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]')  # fmt: skip
        until(lambda: len([n for n in pods_by_node(c).get(first, []) if n.startswith("web-")]) == 2, 20)


async def test_finished_pods_beyond_the_threshold_are_deleted(tmp_path: Path) -> None:
    """With a threshold of 2, four pods that ran to completion leave two; a running pod stays."""
    async with cluster(tmp_path, nodes=1) as c:
        c.start(PodGarbageCollector(c.factory, c.client, terminated_pod_threshold=2), workers=1)
        running = {
            "metadata": {"name": "keeps-running"},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]},
        }
        await c.client.create(PODS_RESOURCE, running, namespace="default")
        for n in range(4):
            done = {
                "metadata": {"name": f"done-{n}", "annotations": {"fake.kbox.io/exit-after": "0"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
            }
            await c.client.create(PODS_RESOURCE, done, namespace="default")

        async def left() -> tuple[bool, int, int] | None:
            listing = await c.client.list(PODS_RESOURCE, namespace="default")
            pods = listing["items"]
            finished = [p for p in pods if p["status"].get("phase") == "Succeeded"]
            present = any(p["metadata"]["name"] == "keeps-running" for p in pods)
            result = (present, len(finished), len(pods))
            return result if result == (True, 2, 3) else None

        await eventually(left, timeout=20, message="two finished pods and the running one left")
