"""Mounted ConfigMaps and Secrets follow their objects through watches: an update re-syncs exactly the
pods that mount the object and rewrites their volume files, with no periodic polling; a node whose pods
mount no such object watches nothing. (The Docker path, files seen inside a running container, is in
tests/e2e/test_kubelet_volumes.py.)"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet import configwatch, memoryfs, volumes
from kbox.kubelet.kubelet import Kubelet
from kbox.kubelet.runtime.fake import FakeRuntime
from tests.component.kubelet.test_kubelet_fake import get_pod, pod, settings
from tests.support.apiserver import Served, served
from tests.support.wait import eventually

Obj = dict[str, Any]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture
async def kubelet(server: Served, tmp_path: Path) -> AsyncIterator[Kubelet]:
    client = LocalClient(server.plane.catalog)
    runtime = FakeRuntime(cluster="test")
    k = Kubelet(client, runtime, settings(tmp_path), connections=server.plane.catalog.node_connections)
    await k.start()
    yield k
    await k.stop()


def _mounting(name: str, **volume: Any) -> Obj:
    body = pod(name, volumes=[{"name": "conf", **volume}])
    body["spec"]["containers"][0]["volumeMounts"] = [{"name": "conf", "mountPath": "/conf"}]
    return body


def test_references_cover_configmap_secret_and_projected_sources() -> None:
    body = pod("x")
    body["metadata"]["namespace"] = "ns"
    body["spec"]["volumes"] = [
        {"name": "a", "configMap": {"name": "cm1"}},
        {"name": "b", "secret": {"secretName": "s1"}},
        {"name": "c", "projected": {"sources": [{"configMap": {"name": "cm2"}}, {"secret": {"name": "s2"}}]}},
        {"name": "d", "emptyDir": {}},
    ]
    assert configwatch.references(body) == {
        ("configmaps", "ns", "cm1"),
        ("configmaps", "ns", "cm2"),
        ("secrets", "ns", "s1"),
        ("secrets", "ns", "s2"),
    }


async def test_updates_rewrite_the_volumes_of_the_pods_that_mount_them(
    server: Served, kubelet: Kubelet
) -> None:
    client = LocalClient(server.plane.catalog)
    await client.create(interface.PODS, pod("plain"), namespace="default")
    await eventually(lambda: kubelet.states)
    assert kubelet.config_watch.watched == set()  # nothing mounted: no watch at all

    await client.create(
        interface.CONFIGMAPS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "one"}},
        namespace="default",
    )
    secret_data = {"s": base64.b64encode(b"first").decode()}
    await client.create(
        interface.Resource("", "v1", "secrets"),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "data": secret_data},
        namespace="default",
    )
    await client.create(interface.PODS, _mounting("cm-pod", configMap={"name": "cm"}), namespace="default")
    await client.create(
        interface.PODS, _mounting("secret-pod", secret={"secretName": "sec"}), namespace="default"
    )
    cm_uid = (await get_pod(client, "cm-pod"))["metadata"]["uid"]
    secret_uid = (await get_pod(client, "secret-pod"))["metadata"]["uid"]
    state = kubelet.settings.state_dir
    cm_file = volumes.volume_dir(state, cm_uid, "conf") / "k"
    secret_file = memoryfs.volume_dir(state, secret_uid, "conf") / "s"  # secrets stay in memory
    await eventually(lambda: cm_file.exists() and cm_file.read_text() == "one")
    await eventually(lambda: secret_file.exists() and secret_file.read_text() == "first")
    assert kubelet.config_watch.watched == {"configmaps", "secrets"}

    syncs: list[str] = []
    original = kubelet.sync

    async def counting(uid: str) -> float | None:
        syncs.append(uid)
        return await original(uid)

    kubelet.workers._sync = counting
    await client.patch(interface.CONFIGMAPS, "cm", {"data": {"k": "two"}}, namespace="default")
    await eventually(lambda: cm_file.read_text() == "two")
    assert cm_uid in syncs and secret_uid not in syncs  # only the pod that mounts it

    await client.patch(
        interface.Resource("", "v1", "secrets"),
        "sec",
        {"data": {"s": base64.b64encode(b"second").decode()}},
        namespace="default",
    )
    await eventually(lambda: secret_file.read_text() == "second")

    # Once the pods are gone, their references go too.
    await client.delete(interface.PODS, "cm-pod", namespace="default")
    await eventually(lambda: cm_uid not in kubelet.states)
    assert cm_uid not in kubelet.config_watch._refs
