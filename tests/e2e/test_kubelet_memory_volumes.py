"""Memory-backed volumes on the real Docker runtime: an emptyDir with ``medium: Memory`` and a secret
volume are tmpfs inside the containers (as in Kubernetes, the secret never touches the disk), the
Memory emptyDir is shared by the pod's containers, and deleting the pod removes the folders."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbox.api.errors import StatusError
from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet import memoryfs
from kbox.kubelet.kubelet import Kubelet
from tests.e2e.conftest import BuiltImages
from tests.support.apiserver import Served
from tests.support.wait import eventually

pytestmark = pytest.mark.docker
SECRETS = interface.Resource("", "v1", "secrets")


@pytest.fixture(autouse=True)
def _memory_volumes_removed(tmp_path: Path) -> Iterator[None]:
    yield
    memoryfs.remove_all(tmp_path / "kubelet")


async def _exec(server: Served, pod: str, container: str, script: str) -> str:
    connection = server.plane.catalog.node_connections.get("node-1")
    session = await connection.exec("default", pod, container, ["sh", "-c", script], stdin=False, tty=False)
    output = b"".join([chunk async for _, chunk in session.output()])
    assert await session.wait() == 0, output
    return output.decode()


async def test_memory_emptydir_and_secret_are_shared_tmpfs(
    server: Served, kubelet: Kubelet, docker_images: BuiltImages
) -> None:
    if memoryfs.root(kubelet.settings.state_dir) is None:
        pytest.fail("/dev/shm is not a writable tmpfs on this machine")
    client = LocalClient(server.plane.catalog)
    await client.create(
        SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"token": base64.b64encode(b"s3cret").decode()},
        },
        namespace="default",
    )
    image = docker_images.busybox
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "mem"},
        "spec": {
            "nodeName": "node-1",
            "terminationGracePeriodSeconds": 1,
            "volumes": [
                {"name": "scratch", "emptyDir": {"medium": "Memory"}},
                {"name": "creds", "secret": {"secretName": "creds"}},
            ],
            "containers": [
                {
                    "name": "writer",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", "echo shared > /scratch/note; exec sleep 3600"],
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                },
                {
                    "name": "reader",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "3600"],
                    "volumeMounts": [
                        {"name": "scratch", "mountPath": "/scratch"},
                        {"name": "creds", "mountPath": "/secret"},
                    ],
                },
            ],
        },
    }
    await client.create(interface.PODS, body, namespace="default")

    async def running() -> bool:
        status = (await client.get(interface.PODS, "mem", namespace="default")).get("status") or {}
        return status.get("phase") == "Running"

    await eventually(running)
    mounts = await _exec(server, "mem", "reader", "grep -E ' /(scratch|secret) ' /proc/mounts")
    types = {line.split()[1]: line.split()[2] for line in mounts.splitlines()}
    assert types == {"/scratch": "tmpfs", "/secret": "tmpfs"}
    note = await eventually(lambda: _exec(server, "mem", "reader", "cat /scratch/note 2>/dev/null || true"))
    assert note == "shared\n"
    assert await _exec(server, "mem", "reader", "cat /secret/token") == "s3cret"

    uid = (await client.get(interface.PODS, "mem", namespace="default"))["metadata"]["uid"]
    folder = memoryfs.volume_dir(kubelet.settings.state_dir, uid, "creds")
    assert folder.is_dir() and str(folder).startswith("/dev/shm/")
    await client.delete(interface.PODS, "mem", namespace="default")

    async def gone() -> bool:
        try:
            await client.get(interface.PODS, "mem", namespace="default")
        except StatusError as exc:
            return exc.code == 404
        return False

    await eventually(gone)
    assert not folder.parent.parent.exists()
