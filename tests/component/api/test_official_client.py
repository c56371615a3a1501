"""The official ``kubernetes`` Python client against kbox's apiserver: CRUD, list with label and field
selectors and pagination, watch with resume and 410 handling, patches of every type, status and scale
subresources, optimistic concurrency, and Status errors as ApiException.

The client is synchronous, so each call runs in a worker thread while the server answers on the loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.support.apiserver import Served, served

T = TypeVar("T")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture
def api(server: Served) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


def configmap(
    name: str, labels: dict[str, str] | None = None, data: dict[str, str] | None = None
) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data or {"k": "v"})


async def test_crud_and_errors(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    created = await call(core.create_namespaced_config_map, "default", configmap("c1"))
    assert created.metadata.uid and created.metadata.resource_version
    got = await call(core.read_namespaced_config_map, "c1", "default")
    assert got.data == {"k": "v"}

    got.data = {"k": "v2"}
    replaced = await call(core.replace_namespaced_config_map, "c1", "default", got)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)

    # A stale resourceVersion is a 409 Conflict.
    got.data = {"k": "stale"}
    with pytest.raises(ApiException) as conflict:
        await call(core.replace_namespaced_config_map, "c1", "default", got)
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body)["reason"] == "Conflict"

    with pytest.raises(ApiException) as exists:
        await call(core.create_namespaced_config_map, "default", configmap("c1"))
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"

    await call(core.delete_namespaced_config_map, "c1", "default")
    with pytest.raises(ApiException) as missing:
        await call(core.read_namespaced_config_map, "c1", "default")
    assert missing.value.status == 404


async def test_list_selectors_and_pagination(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    for i in range(12):
        await call(
            core.create_namespaced_config_map,
            "default",
            configmap(f"cm-{i:02}", {"tier": "a" if i % 2 else "b"}),
        )
    labelled = await call(core.list_namespaced_config_map, "default", label_selector="tier=a")
    assert sorted(c.metadata.name for c in labelled.items) == [f"cm-{i:02}" for i in range(1, 12, 2)]
    set_based = await call(
        core.list_namespaced_config_map, "default", label_selector="tier in (a,b),tier notin (b)"
    )
    assert len(set_based.items) == 6
    by_name = await call(core.list_namespaced_config_map, "default", field_selector="metadata.name=cm-03")
    assert [c.metadata.name for c in by_name.items] == ["cm-03"]

    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = await call(core.list_namespaced_config_map, "default", limit=5, _continue=token)
        names += [c.metadata.name for c in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert pages == 3
    assert names == [f"cm-{i:02}" for i in range(12)]
    everywhere = await call(core.list_config_map_for_all_namespaces)
    assert len(everywhere.items) == 12

    with pytest.raises(ApiException) as bad:
        await call(core.list_namespaced_config_map, "default", label_selector="tier in (a")
    assert bad.value.status == 400
    with pytest.raises(ApiException) as unsupported:
        await call(core.list_namespaced_config_map, "default", field_selector="spec.nope=1")
    assert unsupported.value.status == 400


async def test_watch_resume_and_gone(api: client.ApiClient, server: Served) -> None:
    core = client.CoreV1Api(api)
    first = await call(core.create_namespaced_config_map, "default", configmap("w1"))
    start = first.metadata.resource_version
    await call(core.create_namespaced_config_map, "default", configmap("w2"))
    await call(core.delete_namespaced_config_map, "w1", "default")

    def collect() -> list[tuple[str, str]]:
        events = []
        stream = watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=2
        )
        for event in stream:
            events.append((event["type"], event["object"].metadata.name))
            if len(events) == 2:
                break
        return events

    assert await call(collect) == [("ADDED", "w2"), ("DELETED", "w1")]

    # Too old a resourceVersion: the watch answers with an ERROR event carrying 410 Gone.
    await server.plane.store.compact(server.plane.store.revision)

    def too_old() -> int:
        try:
            for _ in watch.Watch().stream(
                core.list_namespaced_config_map, "default", resource_version="1", timeout_seconds=2
            ):
                pass
        except ApiException as exc:
            return int(exc.status)
        return 0

    assert await call(too_old) == 410


async def test_patch_types_status_and_scale(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]},
            },
        },
    }
    created = await call(apps.create_namespaced_deployment, "default", body)
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"

    # Strategic merge (the client's default for dicts): containers merge by name.
    patched = await call(
        apps.patch_namespaced_deployment,
        "web",
        "default",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}},
    )
    container = patched.spec.template.spec.containers[0]
    assert (container.image, container.ports[0].container_port) == ("nginx:2", 80)
    assert patched.metadata.generation == 2

    # The status subresource changes status only, and does not bump the generation.
    status = await call(
        apps.patch_namespaced_deployment_status,
        "web",
        "default",
        {"status": {"replicas": 1, "observedGeneration": 2}},
    )
    assert status.status.replicas == 1
    assert status.metadata.generation == 2

    scale = await call(apps.read_namespaced_deployment_scale, "web", "default")
    assert scale.spec.replicas == 1
    assert scale.status.selector == "app=web"
    await call(apps.patch_namespaced_deployment_scale, "web", "default", {"spec": {"replicas": 3}})
    assert (await call(apps.read_namespaced_deployment, "web", "default")).spec.replicas == 3

    # JSON patch, and a failing test operation.
    await call(
        apps.patch_namespaced_deployment,
        "web",
        "default",
        [{"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}],
    )
    with pytest.raises(ApiException) as failed:
        await call(
            apps.patch_namespaced_deployment,
            "web",
            "default",
            [{"op": "test", "path": "/spec/replicas", "value": 99}],
        )
    assert 400 <= failed.value.status < 500


async def test_pod_binding_and_graceful_delete(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    await call(core.create_namespaced_pod, "default", pod)
    binding = client.V1Binding(
        metadata=client.V1ObjectMeta(name="p"), target=client.V1ObjectReference(name="node-1")
    )
    await call(core.create_namespaced_pod_binding, "p", "default", binding, _preload_content=False)
    bound = await call(core.read_namespaced_pod, "p", "default")
    assert bound.spec.node_name == "node-1"
    # A bound pod terminates gracefully (its kubelet finishes the deletion).
    await call(core.delete_namespaced_pod, "p", "default")
    terminating = await call(core.read_namespaced_pod, "p", "default")
    assert terminating.metadata.deletion_timestamp is not None
    assert terminating.metadata.deletion_grace_period_seconds == 30
    await call(core.delete_namespaced_pod, "p", "default", grace_period_seconds=0)
    with pytest.raises(ApiException) as gone:
        await call(core.read_namespaced_pod, "p", "default")
    assert gone.value.status == 404
