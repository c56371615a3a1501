"""The Client contract, run against both implementations: ``LocalClient`` (the pipeline in process) and
``HttpClient`` (HTTPS to a live apiserver). CRUD, errors as StatusError, selectors and pages, patches,
subresources, binding, graceful deletion, and watches with resume, selectors and 410 Gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kbox.api.errors import StatusError
from kbox.client import interface
from kbox.client.http import HttpClient
from kbox.client.interface import Client
from kbox.client.local import LocalClient
from tests.support.apiserver import Served, served

CM = interface.CONFIGMAPS
PODS = interface.PODS
DEPLOYMENTS = interface.DEPLOYMENTS


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture(params=["local", "http"])
async def client(request: pytest.FixtureRequest, server: Served) -> AsyncIterator[Client]:
    if request.param == "local":
        c: Client = LocalClient(server.plane.catalog)
    else:
        c = HttpClient(server.url, token=server.token, ca_file=str(server.ca_file))
    yield c
    await c.close()


def cm(name: str, **labels: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"a": "1"},
    }


async def test_crud_and_errors(client: Client) -> None:
    created = await client.create(CM, cm("one"), namespace="default")
    assert created["metadata"]["uid"]
    got = await client.get(CM, "one", namespace="default")
    assert got["data"] == {"a": "1"}
    got["data"] = {"a": "2"}
    updated = await client.update(CM, got, namespace="default")
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    with pytest.raises(StatusError) as stale:
        await client.update(CM, got, namespace="default")
    assert (stale.value.code, stale.value.reason) == (409, "Conflict")
    with pytest.raises(StatusError) as exists:
        await client.create(CM, cm("one"), namespace="default")
    assert exists.value.reason == "AlreadyExists"
    with pytest.raises(StatusError) as invalid:
        await client.create(CM, cm("Not_Valid"), namespace="default")
    assert invalid.value.code == 422
    assert invalid.value.details["causes"][0]["field"] == "metadata.name"
    await client.delete(CM, "one", namespace="default")
    with pytest.raises(StatusError) as missing:
        await client.get(CM, "one", namespace="default")
    assert missing.value.code == 404


async def test_list_selectors_and_pages(client: Client) -> None:
    for i in range(7):
        await client.create(CM, cm(f"c{i}", parity="odd" if i % 2 else "even"), namespace="default")
    odd = await client.list(CM, namespace="default", label_selector="parity=odd")
    assert [o["metadata"]["name"] for o in odd["items"]] == ["c1", "c3", "c5"]
    named = await client.list(CM, namespace="default", field_selector="metadata.name=c4")
    assert [o["metadata"]["name"] for o in named["items"]] == ["c4"]
    first = await client.list(CM, namespace="default", limit=4)
    assert len(first["items"]) == 4 and first["metadata"]["continue"]
    rest = await client.list(CM, namespace="default", limit=4, continue_token=first["metadata"]["continue"])
    assert [o["metadata"]["name"] for o in rest["items"]] == ["c4", "c5", "c6"]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


async def test_patches_and_scale(client: Client) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }
    await client.create(DEPLOYMENTS, deployment, namespace="default")
    merged = await client.patch(DEPLOYMENTS, "web", {"metadata": {"labels": {"x": "y"}}}, namespace="default")
    assert merged["metadata"]["labels"] == {"x": "y"}
    strategic = await client.patch(
        DEPLOYMENTS,
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "z"}]}}}},
        namespace="default",
        patch_type=interface.STRATEGIC_PATCH,
    )
    assert strategic["spec"]["template"]["spec"]["containers"][0]["image"] == "z"
    assert strategic["metadata"]["generation"] == 2
    status = await client.patch(
        DEPLOYMENTS,
        "web",
        {"status": {"replicas": 0, "observedGeneration": 2}},
        namespace="default",
        subresource="status",
    )
    assert status["status"]["observedGeneration"] == 2
    scaled = await client.patch(
        DEPLOYMENTS, "web", {"spec": {"replicas": 4}}, namespace="default", subresource="scale"
    )
    assert scaled["kind"] == "Scale" and scaled["spec"]["replicas"] == 4
    json_patched = await client.patch(
        DEPLOYMENTS,
        "web",
        [{"op": "replace", "path": "/spec/replicas", "value": 2}],
        namespace="default",
        patch_type=interface.JSON_PATCH,
    )
    assert json_patched["spec"]["replicas"] == 2


async def test_binding_and_graceful_delete(client: Client) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    await client.create(PODS, pod, namespace="default")
    await client.bind("p", "node-1", namespace="default")
    with pytest.raises(StatusError) as again:
        await client.bind("p", "node-2", namespace="default")
    assert again.value.code == 409
    bound = await client.get(PODS, "p", namespace="default")
    assert bound["spec"]["nodeName"] == "node-1"
    terminating = await client.delete(PODS, "p", namespace="default")
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    await client.delete(PODS, "p", namespace="default", grace_period_seconds=0)
    with pytest.raises(StatusError):
        await client.get(PODS, "p", namespace="default")


async def test_watch_resume_selectors_and_gone(client: Client, server: Served) -> None:
    start = (await client.list(CM, namespace="default"))["metadata"]["resourceVersion"]
    await client.create(CM, cm("w1", team="a"), namespace="default")
    await client.create(CM, cm("w2", team="b"), namespace="default")
    await client.patch(CM, "w1", {"metadata": {"labels": {"team": "b"}}}, namespace="default")

    async def collect(count: int, **kwargs: object) -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        async for event in client.watch(CM, namespace="default", timeout_seconds=5, **kwargs):  # type: ignore[arg-type]
            seen.append((event.type, event.object["metadata"]["name"]))
            if len(seen) == count:
                break
        return seen

    assert await asyncio.wait_for(collect(3, resource_version=start), 10) == [
        ("ADDED", "w1"),
        ("ADDED", "w2"),
        ("MODIFIED", "w1"),
    ]
    # Leaving the selection reads as DELETED to a watcher of that selection.
    assert await asyncio.wait_for(collect(2, resource_version=start, label_selector="team=a"), 10) == [
        ("ADDED", "w1"),
        ("DELETED", "w1"),
    ]
    # From "0": the current objects first.
    assert sorted(await asyncio.wait_for(collect(2, resource_version="0"), 10)) == [
        ("ADDED", "w1"),
        ("ADDED", "w2"),
    ]
    await server.plane.store.compact(server.plane.store.revision)
    with pytest.raises(StatusError) as gone:
        await asyncio.wait_for(collect(1, resource_version=start), 10)
    assert gone.value.code == 410
