"""The kubelet's configMap, secret, downwardAPI and projected volumes on the real Docker runtime:
files with their content and modes, an updated ConfigMap appearing in a running container without a
restart (atomic ``..data`` swap), and a missing ConfigMap holding the container in
CreateContainerConfigError until it exists."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet import memoryfs
from kbox.kubelet.kubelet import Kubelet
from tests.e2e.conftest import BuiltImages
from tests.support.apiserver import Served
from tests.support.wait import eventually

pytestmark = pytest.mark.docker
Obj = dict[str, Any]
SECRETS = interface.Resource("", "v1", "secrets")


@pytest.fixture(autouse=True)
def _memory_volumes_removed(tmp_path: Path) -> Iterator[None]:
    """Secret, downwardAPI and projected volumes live in /dev/shm (kbox.kubelet.memoryfs)."""
    yield
    memoryfs.remove_all(tmp_path / "kubelet")


def pod(
    name: str, image: str, mounts: list[Obj], volumes: list[Obj], labels: dict[str, str] | None = None
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "nodeName": "node-1",
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "3600"],
                    "volumeMounts": mounts,
                }
            ],
            "volumes": volumes,
        },
    }


def configmap(name: str, data: dict[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def running(client: LocalClient, name: str) -> Obj | None:
    current = await client.get(interface.PODS, name, namespace="default")
    statuses = current.get("status", {}).get("containerStatuses") or [{}]
    return current if "running" in (statuses[0].get("state") or {}) else None


async def sh(server: Served, name: str, script: str) -> str:
    connection = server.plane.catalog.node_connections.get("node-1")
    session = await connection.exec("default", name, "main", ["sh", "-c", script], stdin=False, tty=False)
    output = b"".join([chunk async for _, chunk in session.output()])
    assert await session.wait() == 0, output
    return output.decode()


async def test_configmap_secret_downward_and_projected_volumes_with_live_update(
    server: Served, kubelet: Kubelet, docker_images: BuiltImages
) -> None:
    client = LocalClient(server.plane.catalog)
    await client.create(
        interface.CONFIGMAPS, configmap("app", {"a": "alpha", "b": "beta"}), namespace="default"
    )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "data": {"user": base64.b64encode(b"admin").decode()},
    }
    await client.create(SECRETS, secret, namespace="default")
    # The projected serviceAccountToken is requested for the pod's ServiceAccount (no controllers here).
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await client.create(interface.Resource("", "v1", "serviceaccounts"), account, namespace="default")
    volumes = [
        {
            "name": "cfg",
            "configMap": {
                "name": "app",
                "items": [{"key": "a", "path": "dir/a.txt", "mode": 0o600}, {"key": "b", "path": "b"}],
            },
        },
        {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o400}},
        {
            "name": "info",
            "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]},
        },
        {
            "name": "all",
            "projected": {
                "sources": [
                    {"configMap": {"name": "app", "items": [{"key": "a", "path": "a"}]}},
                    {"secret": {"name": "creds"}},
                    {
                        "downwardAPI": {
                            "items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]
                        }
                    },
                    {"serviceAccountToken": {"path": "token"}},
                ]
            },
        },
    ]
    mounts = [
        {"name": "cfg", "mountPath": "/cfg"},
        {"name": "sec", "mountPath": "/sec"},
        {"name": "info", "mountPath": "/info"},
        {"name": "all", "mountPath": "/all"},
        {"name": "cfg", "mountPath": "/pinned", "subPath": "b"},
    ]
    body = pod("vols", docker_images.busybox, mounts, volumes, labels={"app": "web", "tier": "front"})
    await client.create(interface.PODS, body, namespace="default")
    first = await eventually(lambda: running(client, "vols"))

    out = await sh(
        server,
        "vols",
        "cat /cfg/dir/a.txt; echo; cat /cfg/b; echo; cat /sec/user; echo; cat /info/labels; echo; "
        "cat /all/a /all/user /all/name; echo; cat /pinned; echo; "
        "busybox stat -L -c %a /cfg/dir/a.txt /cfg/b /sec/user /all/a; ls /all; busybox readlink /cfg/b; "
        "grep -c -E '^[A-Za-z0-9_-]+[.][A-Za-z0-9_-]+[.][A-Za-z0-9_-]+$' /all/token",
    )
    assert out.split("\n") == [
        "alpha",
        "beta",
        "admin",
        'app="web"',
        'tier="front"',
        "alphaadminvols",
        "beta",
        "600",
        "644",
        "400",
        "644",
        "a",
        "name",
        "token",
        "user",
        "..data/b",
        "1",  # the token: one JWT
        "",
    ]

    # An update reaches the running container through the ..data swap, without a restart; the
    # subPath mount keeps the old content, as in Kubernetes.
    await client.update(
        interface.CONFIGMAPS, configmap("app", {"a": "alpha2", "b": "beta2"}), namespace="default"
    )

    async def propagated() -> bool:
        return (await sh(server, "vols", "cat /cfg/b /all/a")) == "beta2alpha2"

    await eventually(propagated, timeout=10)
    assert await sh(server, "vols", "cat /pinned") == "beta"
    now = await client.get(interface.PODS, "vols", namespace="default")
    status, before = now["status"]["containerStatuses"][0], first["status"]["containerStatuses"][0]
    assert status["restartCount"] == 0 and status["containerID"] == before["containerID"]


async def test_missing_configmap_waits_with_create_container_config_error(
    server: Served, kubelet: Kubelet, docker_images: BuiltImages
) -> None:
    client = LocalClient(server.plane.catalog)
    body = pod(
        "waits",
        docker_images.busybox,
        [{"name": "cfg", "mountPath": "/cfg"}],
        [{"name": "cfg", "configMap": {"name": "later"}}],
    )
    await client.create(interface.PODS, body, namespace="default")

    async def config_error() -> Obj | None:
        current = await client.get(interface.PODS, "waits", namespace="default")
        statuses = current.get("status", {}).get("containerStatuses") or [{}]
        waiting = (statuses[0].get("state") or {}).get("waiting") or {}
        return waiting if waiting.get("reason") == "CreateContainerConfigError" else None

    waiting = await eventually(config_error)
    assert 'configmap "later" not found' in waiting["message"]
    await client.create(interface.CONFIGMAPS, configmap("later", {"k": "v"}), namespace="default")
    await eventually(lambda: running(client, "waits"))
    assert await sh(server, "waits", "cat /cfg/k") == "v"
