"""The kubelet on the real Docker runtime, driven through the apiserver pipeline: a pod becomes
Running with its sandbox IP, two containers share localhost and an emptyDir, env comes from a
ConfigMap, a crashing container is restarted with back-off, logs come from Docker, deletion stops
and removes every container, and a restarted kubelet adopts running containers without restarting
them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from kbox.api.errors import StatusError
from kbox.api.nodeconnection import LogOptions
from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet.kubelet import Kubelet
from kbox.kubelet.runtime.docker import DockerRuntime
from tests.e2e.conftest import BuiltImages, kubelet_settings
from tests.support.apiserver import Served
from tests.support.wait import eventually

pytestmark = pytest.mark.docker
Obj = dict[str, Any]


def pod(name: str, image: str, containers: list[Obj], **spec: Any) -> Obj:
    for container in containers:
        container.setdefault("image", image)
        container.setdefault("imagePullPolicy", "Never")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": "node-1", "containers": containers, "terminationGracePeriodSeconds": 2, **spec},
    }


async def phase_of(client: LocalClient, name: str) -> Obj:
    return await client.get(interface.PODS, name, namespace="default")


async def test_pod_runs_with_shared_localhost_volume_and_env(
    server: Served, kubelet: Kubelet, docker_images: BuiltImages
) -> None:
    client = LocalClient(server.plane.catalog)
    await client.create(
        interface.CONFIGMAPS,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"GREETING": "hello"},
        },
        namespace="default",
    )
    body = pod(
        "web",
        docker_images.busybox,
        [
            {
                "name": "server",
                "command": [
                    "sh",
                    "-c",
                    "echo $(GREETING) > /shared/greeting; echo started; exec httpd -f -p 8080 -h /shared",
                ],
                "envFrom": [{"configMapRef": {"name": "settings"}}],
                "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
            },
            {
                "name": "client",
                "command": ["sleep", "3600"],
                "volumeMounts": [{"name": "shared", "mountPath": "/data"}],
            },
        ],
        volumes=[{"name": "shared", "emptyDir": {}}],
    )
    await client.create(interface.PODS, body, namespace="default")

    async def running() -> Obj | None:
        current = await phase_of(client, "web")
        statuses = current.get("status", {}).get("containerStatuses") or []
        return current if statuses and all(s.get("ready") for s in statuses) else None

    current = await eventually(running)
    assert current["status"]["phase"] == "Running"
    pod_ip = current["status"]["podIP"]
    # The host reaches the pod by IP; the second container sees the first on localhost and in the volume.
    reader, writer = await asyncio.wait_for(asyncio.open_connection(pod_ip, 8080), 5)
    writer.write(b"GET /greeting HTTP/1.0\r\n\r\n")
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert response.endswith(b"hello\n")
    connection = server.plane.catalog.node_connections.get("node-1")
    session = await connection.exec(
        "default",
        "web",
        "client",
        ["sh", "-c", "cat /data/greeting; wget -qO- http://127.0.0.1:8080/greeting"],
        stdin=False,
        tty=False,
    )
    output = b"".join([chunk async for _, chunk in session.output()])
    assert await session.wait() == 0
    assert output == b"hello\nhello\n"
    logs = b"".join([chunk async for chunk in connection.logs("default", "web", "server", LogOptions())])
    assert b"started" in logs


async def test_crash_loop_restarts_with_back_off(
    server: Served, kubelet: Kubelet, docker_images: BuiltImages
) -> None:
    client = LocalClient(server.plane.catalog)
    await client.create(
        interface.PODS,
        pod("crash", docker_images.busybox, [{"name": "main", "command": ["sh", "-c", "echo oops; exit 3"]}]),
        namespace="default",
    )

    async def restarted() -> Obj | None:
        statuses = (await phase_of(client, "crash")).get("status", {}).get("containerStatuses") or [{}]
        return statuses[0] if statuses[0].get("restartCount", 0) >= 2 else None

    status = await eventually(restarted)
    assert status["lastState"]["terminated"]["exitCode"] == 3
    connection = server.plane.catalog.node_connections.get("node-1")
    previous = b"".join(
        [c async for c in connection.logs("default", "crash", "main", LogOptions(previous=True))]
    )
    assert b"oops" in previous


async def test_delete_removes_containers_and_adoption_keeps_them(
    server: Served, runtime: DockerRuntime, tmp_path: Path, docker_images: BuiltImages
) -> None:
    client = LocalClient(server.plane.catalog)
    connections = server.plane.catalog.node_connections
    first = Kubelet(client, runtime, kubelet_settings(tmp_path), connections=connections)
    await first.start()
    await client.create(
        interface.PODS,
        pod("steady", docker_images.busybox, [{"name": "main", "command": ["sleep", "3600"]}]),
        namespace="default",
    )

    async def container_id() -> str | None:
        statuses = (await phase_of(client, "steady")).get("status", {}).get("containerStatuses") or []
        return statuses[0].get("containerID") if statuses and "running" in statuses[0]["state"] else None

    before = await eventually(container_id)
    await first.stop()
    second = Kubelet(client, runtime, kubelet_settings(tmp_path), connections=connections)
    await second.start()
    try:
        await asyncio.sleep(1.0)
        after = (await phase_of(client, "steady"))["status"]["containerStatuses"][0]
        assert (after["containerID"], after["restartCount"]) == (before, 0)
        await client.delete(interface.PODS, "steady", namespace="default")

        async def gone() -> bool:
            try:
                await phase_of(client, "steady")
            except StatusError as exc:
                return exc.code == 404
            return False

        await eventually(gone)
        assert await runtime.list_sandboxes("node-1") == []
    finally:
        await second.stop()


async def test_kubectl_logs_exec_and_port_forward(
    server: Served, kubelet: Kubelet, docker_images: BuiltImages, tmp_path: Path
) -> None:
    from tests.support.apiserver import Kubectl

    client = LocalClient(server.plane.catalog)
    body = pod(
        "tools",
        docker_images.busybox,
        [
            {
                "name": "main",
                "command": [
                    "sh",
                    "-c",
                    "echo ready; mkdir -p /www; echo page > /www/index.html; exec httpd -f -p 8080 -h /www",
                ],
            }
        ],
    )
    await client.create(interface.PODS, body, namespace="default")

    async def ready() -> bool:
        statuses = (await phase_of(client, "tools")).get("status", {}).get("containerStatuses") or [{}]
        return bool(statuses[0].get("ready"))

    await eventually(ready)
    cache = tmp_path / "kubectl-cache"
    cache.mkdir()
    kubectl = Kubectl(server.kubeconfig, cache)
    assert "ready" in await kubectl.ok("logs", "tools")
    assert (await kubectl.ok("exec", "tools", "--", "cat", "/www/index.html")).strip() == "page"
    assert (await kubectl.ok("exec", "-i", "tools", "--", "cat", stdin="a\nb\n")) == "a\nb\n"
    failed = await kubectl("exec", "tools", "--", "sh", "-c", "exit 4")
    assert failed.code == 4
    assert "command terminated with exit code 4" in failed.err

    forward = await asyncio.create_subprocess_exec(
        *kubectl.base,
        "port-forward",
        "pod/tools",
        "18093:8080",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=kubectl.env,
    )
    try:
        assert forward.stdout is not None
        line = await asyncio.wait_for(forward.stdout.readline(), 15)
        assert b"Forwarding from 127.0.0.1:18093" in line
        reader, writer = await asyncio.open_connection("127.0.0.1", 18093)
        writer.write(b"GET /index.html HTTP/1.0\r\n\r\n")
        response = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert response.endswith(b"page\n")
    finally:
        forward.terminate()
        await forward.wait()


async def test_a_killed_sandbox_is_recreated_with_its_containers(
    server: Served, kubelet: Kubelet, docker: aiodocker.Docker, docker_images: BuiltImages
) -> None:
    client = LocalClient(server.plane.catalog)
    await client.create(
        interface.PODS,
        pod("fragile", docker_images.busybox, [{"name": "main", "command": ["sleep", "3600"]}]),
        namespace="default",
    )

    async def running() -> Obj | None:
        current = await phase_of(client, "fragile")
        statuses = current.get("status", {}).get("containerStatuses") or [{}]
        return current if "running" in statuses[0].get("state", {}) else None

    before = await eventually(running)
    state = kubelet.states[before["metadata"]["uid"]]
    assert state.sandbox is not None
    old_sandbox = state.sandbox.id
    await docker.containers.container(old_sandbox).kill()  # behind the kubelet's back

    old_container = before["status"]["containerStatuses"][0]["containerID"]

    async def recreated() -> Obj | None:
        current = await running()
        sandbox = state.sandbox
        if current is None or sandbox is None or sandbox.id == old_sandbox or not sandbox.ready:
            return None
        return current if current["status"]["containerStatuses"][0]["containerID"] != old_container else None

    after = await eventually(recreated)
    assert after["status"]["podIP"] and after["status"]["phase"] == "Running"
    assert state.sandbox is not None
    info = await docker.containers.container(state.sandbox.id).show()
    assert info["State"]["Running"]
