"""``kbox.testing.Cluster``, the embedded cluster other projects test against: the async and the sync
form, the official client and kubectl through its kubeconfig, the helpers, fault injection (a node's
kubelet stopped and started, the control plane restarted over the same state), isolation of two
clusters, no leaks after exit, the error without Docker, and the cold start time (printed only)."""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from kbox.api.errors import StatusError
from kbox.client.interface import CONFIGMAPS, LEASES, NAMESPACES, PODS
from kbox.testing import AsyncCluster, Cluster, DockerUnavailable, SyncCluster, WaitFailed, WaitTimeout
from tests.support.apiserver import Kubectl
from tests.support.wait import eventually

Obj = dict[str, Any]


def pod(name: str, node: str | None, **annotations: str) -> Obj:
    """A pod that names its node (placement the test decides), or none for the scheduler to choose."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "containers": [{"name": "main", "image": "busybox"}],
            **({"nodeName": node} if node else {}),
        },
    }


def official_pods(kubeconfig: Path, namespace: str = "default") -> list[str]:
    """The official client, configured as users do, from the kubeconfig file."""
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    with k8s.ApiClient(configuration) as api:
        return [p.metadata.name for p in k8s.CoreV1Api(api).list_namespaced_pod(namespace).items]


def kbox_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("kbox")]


def sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with_target = Path("/proc/self/fd", fd)
        try:
            count += os.readlink(with_target).startswith("socket:")
        except OSError:
            pass
    return count


# -- the two forms ----------------------------------------------------------------------------------


async def test_async_form_runs_a_pod_seen_by_the_official_client() -> None:
    async with Cluster() as c:
        assert isinstance(c, AsyncCluster)
        assert c.url.startswith("https://127.0.0.1:") and c.token
        node = c.node_names[0]
        assert (await c.get("Node", node))["metadata"]["name"] == node
        created = await c.apply(pod("web", node))
        assert created["metadata"]["namespace"] == "default"
        running = await c.wait_for("Pod", "web", condition="Running", timeout=10)
        assert running is not None and running["status"]["podIP"]
        ready = await c.wait_for("po", "web", condition="Ready", timeout=10)
        assert ready is not None
        # The cluster serves from this loop: a blocking client runs in a thread meanwhile.
        assert await asyncio.to_thread(official_pods, c.kubeconfig_path) == ["web"]
        assert "main" in await c.logs("web")
        listing = await c.client.list(PODS, namespace="default")
        assert [p["metadata"]["name"] for p in listing["items"]] == ["web"]
        await c.delete("pods", "web", wait=True, timeout=10)
        assert await c.delete("Pod", "web", missing_ok=True) is None
        await c.apply(pod("placed", None))
        scheduled = await c.wait_for("Pod", "placed", condition="Running", timeout=10)
        assert scheduled is not None and scheduled["spec"]["nodeName"] == node


def test_sync_form_runs_a_pod_seen_by_the_official_client() -> None:
    with Cluster() as c:
        assert isinstance(c, SyncCluster)
        node = c.node_names[0]
        c.apply(pod("web", node))
        running = c.wait_for("Pod", "web", condition="Running", timeout=10)
        assert running is not None and running["spec"]["nodeName"] == node
        assert official_pods(c.kubeconfig_path) == ["web"]
        assert "main" in c.logs("web", container="main")
        # kbox's own async client, run on the cluster's loop
        listing = c.run(c.client.list(PODS, namespace="default"))
        assert [p["metadata"]["name"] for p in listing["items"]] == ["web"]
        c.delete("Pod", "web", wait=True, timeout=10)
        with pytest.raises(StatusError) as missing:
            c.get("Pod", "web")
        assert missing.value.code == 404


async def test_sync_form_inside_an_async_test_through_aio() -> None:
    with Cluster() as c:
        await c.aio.apply(pod("web", c.node_names[0]))
        assert await c.aio.wait_for("Pod", "web", condition="Running", timeout=10)
        assert "main" in await c.aio.logs("web")
        got = await c.aio.run(c.client.get(PODS, "web", namespace="default"))
        assert got["metadata"]["name"] == "web"


async def test_kubectl_works_through_the_kubeconfig(tmp_path: Path) -> None:
    async with Cluster() as c:
        kubectl = Kubectl(c.kubeconfig_path, tmp_path / "cache")
        nodes = await kubectl.ok("get", "nodes", "-o", "name")
        assert nodes.split() == [f"node/{c.node_names[0]}"]
        await c.apply(pod("web", c.node_names[0]))
        await c.wait_for("Pod", "web", condition="Ready", timeout=10)
        out = await kubectl.ok("get", "pods", "-o", "jsonpath={.items[*].status.phase}")
        assert out == "Running"
        await kubectl.ok("wait", "--for=condition=Ready", "pod/web", "--timeout=10s")
        await kubectl.ok("create", "configmap", "settings", "--from-literal=a=1")
        assert (await c.get("ConfigMap", "settings"))["data"] == {"a": "1"}


# -- helpers ----------------------------------------------------------------------------------------


async def test_apply_creates_and_updates_multi_document_yaml() -> None:
    manifest = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {color: blue}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: leader, namespace: shop}
spec: {holderIdentity: one, leaseDurationSeconds: 15}
"""
    async with Cluster(nodes=0) as c:
        applied = await c.apply(manifest)
        assert [o["kind"] for o in applied] == ["Namespace", "ConfigMap", "Lease"]
        updated = await c.apply(manifest.replace("color: blue", "color: red"))
        assert updated[1]["data"] == {"color": "red"}
        assert updated[1]["metadata"]["uid"] == applied[1]["metadata"]["uid"]
        lease = await c.get("leases.coordination.k8s.io", "leader", "shop")
        assert lease["spec"]["holderIdentity"] == "one"
        one = await c.apply(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}},
            namespace="shop",
        )
        assert one["metadata"]["namespace"] == "shop"
        generated = await c.apply(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "g-"}}
        )
        assert generated["metadata"]["name"].startswith("g-")
        with pytest.raises(ValueError, match="namespace"):
            await c.apply(manifest.split("---")[1], namespace="elsewhere")
        with pytest.raises(LookupError):
            await c.apply({"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "g"}})
        # Let the informers take the last events before the cluster stops: on Python 3.11 the


async def test_wait_for_times_out_with_what_it_saw_and_fails_fast_on_a_failed_pod() -> None:
    async with Cluster() as c:
        node = c.node_names[0]
        await c.apply(pod("slow", node, **{"fake.kbox.io/start-delay": "60s"}))
        with pytest.raises(WaitTimeout, match="last seen: phase=Pending"):
            await c.wait_for("Pod", "slow", condition="Running", timeout=0.5)
        failing = pod("crash", node, **{"fake.kbox.io/exit-after": "0.1s", "fake.kbox.io/exit-code": "1"})
        failing["spec"]["restartPolicy"] = "Never"
        await c.apply(failing)
        started = time.monotonic()
        with pytest.raises(WaitFailed, match="Failed"):
            await c.wait_for("Pod", "crash", condition="Succeeded", timeout=20)
        assert time.monotonic() - started < 10
        assert await c.wait_for("Pod", "crash", condition="Failed", timeout=1)
        seen = await c.wait_for("Node", node, predicate=lambda n: n["metadata"]["name"] == node)
        assert seen is not None
        await c.delete("Pod", "crash", wait=True, timeout=10)


async def test_namespaces_are_created_and_emptied() -> None:
    async with Cluster() as c:
        await c.create_namespace("team")
        await c.apply(pod("a", c.node_names[0]), namespace="team")
        await c.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}}, namespace="team")
        await c.wait_for("Pod", "a", "team", condition="Running", timeout=10)
        await c.delete_namespace("team")
        await c.wait_for("Pod", "a", "team", condition="delete", timeout=10)

        async def emptied() -> bool:
            # kube-root-ca.crt may come back once (its publisher restores a deleted copy until the
            # namespace is terminating); the namespace controller then removes it for good.
            return (await c.client.list(CONFIGMAPS, namespace="team"))["items"] == []

        await eventually(emptied, timeout=10)
        # Emptied: still terminating, or already removed by the namespace controller.
        left = (await c.client.list(NAMESPACES))["items"]
        assert [n["status"]["phase"] for n in left if n["metadata"]["name"] == "team"] in (
            [],
            ["Terminating"],
        )


def test_bad_arguments_are_refused_at_once() -> None:
    with pytest.raises(TypeError, match="lease_interval"):
        Cluster(lease_intervall=1.0)
    with pytest.raises(ValueError, match="runtime"):
        Cluster(runtime="podman")  # type: ignore[arg-type]


# -- fault injection --------------------------------------------------------------------------------


async def renew_time(c: AsyncCluster, node: str) -> str:
    lease = await c.client.get(LEASES, node, namespace="kube-node-lease")
    return str(lease["spec"]["renewTime"])


async def test_a_stopped_node_stops_renewing_its_lease_and_resumes_when_started() -> None:
    async with Cluster(nodes=2, lease_interval=0.1) as c:
        first, second = c.node_names
        await c.apply(pod("web", second))
        before = await c.wait_for("Pod", "web", condition="Ready", timeout=10)
        assert before is not None
        node = c.node(second)
        await node.stop()
        assert not node.running
        stopped_at = await renew_time(c, second)
        other_at = await renew_time(c, first)
        await asyncio.sleep(0.6)
        assert await renew_time(c, second) == stopped_at  # no heartbeat from the stopped node
        assert await renew_time(c, first) != other_at  # the other node's kubelet goes on
        await node.start()
        assert node.running
        await c.wait_for(
            "leases.coordination.k8s.io",
            second,
            "kube-node-lease",
            predicate=lambda lease: lease["spec"]["renewTime"] != stopped_at,
            timeout=5,
        )
        # the new kubelet adopted the running pod: same container, no restart
        after = await c.wait_for("Pod", "web", condition="Ready", timeout=10)
        assert after is not None
        assert (
            after["status"]["containerStatuses"][0]["containerID"]
            == (before["status"]["containerStatuses"][0]["containerID"])
        )
        assert after["status"]["containerStatuses"][0]["restartCount"] == 0


async def test_restart_keeps_objects_and_running_pods() -> None:
    async with Cluster(durable=True) as c:
        url = c.url
        await c.apply(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept"}, "data": {"a": "1"}}
        )
        await c.apply(pod("web", c.node_names[0]))
        before = await c.wait_for("Pod", "web", condition="Ready", timeout=10)
        assert before is not None
        await c.restart()
        assert c.url == url  # the kubeconfig stays valid
        assert (await c.get("ConfigMap", "kept"))["data"] == {"a": "1"}
        after = await c.wait_for("Pod", "web", condition="Ready", timeout=10)
        assert after is not None
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        assert (
            after["status"]["containerStatuses"][0]["containerID"]
            == (before["status"]["containerStatuses"][0]["containerID"])
        )
        assert await asyncio.to_thread(official_pods, c.kubeconfig_path) == ["web"]


async def test_restart_needs_a_durable_store() -> None:
    async with Cluster(nodes=0) as c:
        with pytest.raises(RuntimeError, match="durable=True"):
            await c.restart()


# -- isolation, leaks, errors, timing -----------------------------------------------------------------


async def test_two_clusters_in_one_process_do_not_collide() -> None:
    async with Cluster() as a, Cluster() as b:
        assert a.url != b.url
        assert a.state_dir != b.state_dir and a.token != b.token
        assert set(a.node_names).isdisjoint(b.node_names)
        await a.apply(pod("only-in-a", a.node_names[0]))
        await a.wait_for("Pod", "only-in-a", condition="Running", timeout=10)
        assert (await b.client.list(PODS, namespace="default"))["items"] == []
        assert await asyncio.to_thread(official_pods, b.kubeconfig_path) == []
        assert await asyncio.to_thread(official_pods, a.kubeconfig_path) == ["only-in-a"]


async def test_async_form_leaves_no_task_thread_socket_or_directory() -> None:
    threads, open_sockets, tasks = {t.name for t in threading.enumerate()}, sockets(), asyncio.all_tasks()
    async with Cluster(nodes=2, durable=True) as c:
        state = c.state_dir
        await c.apply(pod("web", c.node_names[0]))
        await c.wait_for("Pod", "web", condition="Ready", timeout=10)
        await c.restart()
        await c.node().stop()
        await c.node().start()
        assert await asyncio.to_thread(official_pods, c.kubeconfig_path) == ["web"]
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == tasks
    assert kbox_threads() == []
    assert not state.exists() and not state.parent.exists()
    assert sockets() <= open_sockets
    assert {t.name for t in threading.enumerate()} - threads <= {"asyncio_0", "asyncio_1"}  # to_thread's pool


def test_sync_form_leaves_no_thread_socket_or_directory() -> None:
    threads, open_sockets = {t.name for t in threading.enumerate()}, sockets()
    with Cluster(nodes=2) as c:
        state = c.state_dir
        assert kbox_threads() == [f"kbox-testing/{c.name}"]
        c.apply(pod("web", c.node_names[0]))
        c.wait_for("Pod", "web", condition="Ready", timeout=10)
        c.node().stop()
        c.node().start()
        assert official_pods(c.kubeconfig_path) == ["web"]
    assert {t.name for t in threading.enumerate()} == threads
    assert not state.exists() and not state.parent.exists()
    assert sockets() <= open_sockets


async def test_docker_runtime_without_docker_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    with pytest.raises(DockerUnavailable, match="needs a running Docker engine"):
        async with Cluster(runtime="docker"):
            pass
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing left behind


async def test_cold_start_time(capsys: pytest.CaptureFixture[str]) -> None:
    """Printed, never asserted: figures belong to the benchmark (make bench)."""
    async with Cluster():
        pass  # imports and first-use costs out of the way
    times = []
    for _ in range(5):
        started = time.perf_counter()
        async with Cluster():
            times.append(time.perf_counter() - started)
    with capsys.disabled():
        print(
            f"\nkbox.testing.Cluster cold start to ready (fake runtime, 1 node): "
            f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
        )
