"""Container lifecycle hooks on Docker: postStart runs after the container starts (its effect is
visible inside), a failing postStart kills the container so it restarts with a FailedPostStartHook
event, and preStop runs before the container is stopped on deletion (it leaves a mark in a hostPath
volume that outlives the pod)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.client import interface
from kbox.testing import Cluster
from tests.e2e.conftest import BuiltImages
from tests.support.wait import eventually

pytestmark = pytest.mark.docker
Obj = dict[str, Any]


@pytest.fixture
async def cluster(docker_images: BuiltImages) -> AsyncIterator[Any]:
    async with Cluster(runtime="docker", nodes=1) as c:
        yield c


def pod(name: str, image: str, lifecycle: Obj, **extra: Any) -> Obj:
    container: Obj = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", "sleep 3600"],
        "lifecycle": lifecycle,
        **extra.pop("container", {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 5, **extra},
    }


async def test_post_start_runs_and_failure_restarts(cluster: Any, docker_images: BuiltImages) -> None:
    ok = pod(
        "ok",
        docker_images.busybox,
        {"postStart": {"exec": {"command": ["sh", "-c", "echo hooked > /tmp/mark"]}}},
    )
    await cluster.apply(ok)
    await cluster.wait_for("Pod", "ok", condition="Ready", timeout=30)
    connection = cluster.cluster.plane.catalog.node_connections.get(cluster.node_names[0])
    session = await connection.exec("default", "ok", "main", ["cat", "/tmp/mark"], stdin=False, tty=False)
    output = b"".join([chunk async for _, chunk in session.output()])
    assert output == b"hooked\n"

    bad = pod("bad", docker_images.busybox, {"postStart": {"exec": {"command": ["sh", "-c", "exit 7"]}}})
    await cluster.apply(bad)

    async def restarted() -> bool:
        current = await cluster.client.get(interface.PODS, "bad", namespace="default")
        statuses = (current.get("status") or {}).get("containerStatuses") or [{}]
        return statuses[0].get("restartCount", 0) >= 1

    await eventually(restarted)
    events = await cluster.client.list(
        interface.EVENTS, namespace="default", field_selector="involvedObject.name=bad"
    )
    assert "FailedPostStartHook" in {e["reason"] for e in events["items"]}


async def test_pre_stop_runs_before_the_container_stops(
    cluster: Any, docker_images: BuiltImages, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    marks.chmod(0o777)
    body = pod(
        "graceful",
        docker_images.busybox,
        {"preStop": {"exec": {"command": ["sh", "-c", "echo stopping > /marks/prestop"]}}},
        container={"volumeMounts": [{"name": "marks", "mountPath": "/marks"}]},
        volumes=[{"name": "marks", "hostPath": {"path": str(marks)}}],
    )
    await cluster.apply(body)
    await cluster.wait_for("Pod", "graceful", condition="Ready", timeout=30)
    await cluster.client.delete(interface.PODS, "graceful", namespace="default")

    async def gone() -> bool:
        try:
            await cluster.client.get(interface.PODS, "graceful", namespace="default")
        except StatusError as exc:
            return exc.code == 404
        return False

    await eventually(gone)
    assert (marks / "prestop").read_text() == "stopping\n"
