"""A Docker outage at the transport level, with the real Docker engine: the kubelet's Docker runtime
talks to the shared dockerd through a unix-socket relay this test owns, so closing the relay (its
listening socket and every open connection) is, for the kubelet, exactly a daemon that died, while
the shared dockerd and the other tests are untouched.

Covered: the Node's Ready condition turns False with reason KubeletNotReady and the message
``container runtime is down: ...``, logged once (not per pod per relist); a pod bound during the
outage waits without failures or events; once the relay listens again the Node is Ready, the waiting
pod runs and the pod that ran before keeps its container (same ID, no restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.kubelet.kubelet import Kubelet
from kbox.kubelet.runtime.docker import DockerRuntime
from tests.e2e.conftest import BuiltImages, kubelet_settings
from tests.support.apiserver import Served
from tests.support.wait import eventually

pytestmark = pytest.mark.docker
Obj = dict[str, Any]
# The engine's socket: DOCKER_HOST when it names a unix socket (as aiodocker reads it), else the default.
_HOST = os.environ.get("DOCKER_HOST", "")
DOCKER_SOCKET = _HOST.removeprefix("unix://") if _HOST.startswith("unix://") else "/var/run/docker.sock"


class SocketRelay:
    """A unix socket that relays every connection to Docker's; ``close`` drops them all."""

    def __init__(self, path: Path, target: str = DOCKER_SOCKET) -> None:
        self.path = path
        self.target = target
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a closed server leaves its socket file: connections are refused
        self._server = await asyncio.start_unix_server(self._relay, path=str(self.path))

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                sink.transport.abort()

        try:
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        finally:
            self._writers.difference_update((writer, upstream_writer))


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[SocketRelay]:
    r = SocketRelay(tmp_path / "docker.sock")
    await r.open()
    try:
        yield r
    finally:
        with contextlib.suppress(AssertionError):
            await r.close()


def _pod(name: str, image: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": "node-1",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": image, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}
            ],
        },
    }


async def _running(client: LocalClient, name: str) -> Obj | None:
    status = (await client.get(interface.PODS, name, namespace="default")).get("status") or {}
    containers = status.get("containerStatuses") or [{}]
    state = containers[0].get("state", {})
    return containers[0] if status.get("phase") == "Running" and "running" in state else None


async def _ready(client: LocalClient) -> Obj:
    node = await client.get(interface.NODES, "node-1")
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


async def test_docker_outage_turns_the_node_not_ready_and_recovers(
    server: Served,
    relay: SocketRelay,
    docker_images: BuiltImages,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = f"kbt-{uuid.uuid4().hex[:8]}"
    relayed = aiodocker.Docker(url=f"unix://{relay.path}")
    runtime = DockerRuntime(cluster=cluster, docker=relayed)
    client = LocalClient(server.plane.catalog)
    settings = dataclasses.replace(kubelet_settings(tmp_path), cluster=cluster, runtime_retry_max=1.0)
    kubelet = Kubelet(client, runtime, settings, connections=server.plane.catalog.node_connections)
    await kubelet.start()
    try:
        await client.create(interface.PODS, _pod("before", docker_images.busybox), namespace="default")
        before = await eventually(lambda: _running(client, "before"))

        caplog.set_level(logging.INFO, logger="kbox")
        await relay.close()

        async def not_ready() -> Obj | None:
            ready = await _ready(client)
            return ready if ready["status"] == "False" else None

        ready = await eventually(not_ready)
        assert ready["reason"] == "KubeletNotReady"
        assert ready["message"].startswith("container runtime is down: ")
        assert "Docker is not available" in ready["message"]

        await client.create(interface.PODS, _pod("during", docker_images.busybox), namespace="default")
        await eventually(lambda: "during" in {p["metadata"]["name"] for p in kubelet.pods.values()})
        # Several relist probes fail meanwhile; the outage is still one log line, and nothing failed.
        down_since = asyncio.get_running_loop().time()
        await eventually(lambda: asyncio.get_running_loop().time() - down_since > 2.0)
        down_lines = [r for r in caplog.records if "container runtime is down" in r.getMessage()]
        assert len(down_lines) == 1, [r.getMessage() for r in caplog.records]
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r not in down_lines]
        during = await client.get(interface.PODS, "during", namespace="default")
        assert not (during.get("status") or {}).get("containerStatuses")
        events = await client.list(
            interface.EVENTS, namespace="default", field_selector="involvedObject.name=during"
        )
        assert events["items"] == []

        await relay.open()

        async def ready_again() -> Obj | None:
            ready = await _ready(client)
            return ready if ready["status"] == "True" else None

        assert (await eventually(ready_again))["reason"] == "KubeletReady"
        await eventually(lambda: _running(client, "during"))
        after = await eventually(lambda: _running(client, "before"))
        assert after["containerID"] == before["containerID"]
        assert after["restartCount"] == 0
    finally:
        await kubelet.stop()
        await runtime.close()  # its own threads; the Docker client is the test's
        await relayed.close()
        cleanup = DockerRuntime(cluster=cluster)
        await cleanup.purge()
        await cleanup.close()
