"""Fixtures for the end-to-end tests that need a real Docker engine.

Docker tests are never skipped silently. When no engine answers (or the static binaries the test
images are built from are missing), a test marked ``docker``

* fails under ``CI=true``, because a CI run without its Docker tests would be a false green;
* is skipped elsewhere, with a reason that says how to get Docker (scripts/ensure-docker.sh).

Event loops: pytest-asyncio gives each test its own loop, so no async fixture outlives a test. The
one-off session work (is Docker there? build the test images) is a *sync* session fixture that runs
its own short ``asyncio.run`` with its own aiodocker client, in a worker thread so it can never
touch the test loop; each test then gets a fresh client from the function-scoped ``docker`` fixture.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import aiodocker
import pytest

from kbox.client.local import LocalClient
from kbox.kubelet.kubelet import Kubelet, KubeletSettings
from kbox.kubelet.runtime.docker import DockerRuntime
from tests.support.apiserver import Served, served
from tests.support.images import (
    TEST_LABELS,
    MissingBinaryError,
    ensure_busybox_image,
    ensure_pause_image,
)

ENSURE_DOCKER = "scripts/ensure-docker.sh"


CLUSTER_IP_MODULES = frozenset(
    {
        "test_apply_docker.py",
        "test_cli_docker.py",
        "test_dashboard_browser.py",
        "test_incluster_docker.py",
        "test_lifecycle_docker.py",
        "test_node_failure_docker.py",
        "test_services_docker.py",
        "test_start_docker.py",
    }
)
"""Modules whose clusters run kube-proxy: it puts the same ClusterIPs (10.96.0.1, 10.96.0.10...) on each
cluster's bridge, and the host can route an address to one bridge only."""
NO_DOCKER_MODULES = frozenset(
    {
        "test_examples.py",  # a fresh virtualenv running the fake-runtime demo
        "test_dashboard_firefox.py",  # a fake-runtime cluster in Firefox
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``) the tests whose clusters run kube-proxy go to one worker,
    one after another, and the other Docker tests (kubelets and embedded clusters without Services) to
    one worker, while everything else spreads over all of them."""
    for item in items:
        if not item.nodeid.startswith("tests/e2e/"):
            continue
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        if module in NO_DOCKER_MODULES:
            continue
        group = "docker-cluster-ips" if module in CLUSTER_IP_MODULES else "docker"
        item.add_marker(pytest.mark.xdist_group(group))


@dataclass(frozen=True)
class BuiltImages:
    """Tags of the locally built test images."""

    busybox: str
    pause: str


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> NoReturn:
    """Fail under CI=true, skip otherwise; never silently."""
    message = (
        reason if ENSURE_DOCKER in reason else f"{reason}. Run {ENSURE_DOCKER} (as root) to start Docker."
    )
    if _in_ci():
        pytest.fail(f"Docker tests cannot run under CI=true: {message}", pytrace=False)
    pytest.skip(message)


class _DockerUnreachableError(Exception):
    pass


async def _prepare() -> BuiltImages:
    try:
        client = aiodocker.Docker()
    except Exception as e:  # aiodocker raises AssertionError/ValueError when it finds no socket
        raise _DockerUnreachableError(f"no Docker endpoint found ({type(e).__name__}: {e})") from e
    try:
        try:
            version = await asyncio.wait_for(client.version(), timeout=10)
        except Exception as e:
            raise _DockerUnreachableError(f"Docker does not answer ({type(e).__name__}: {e})") from e
        if not version.get("ApiVersion"):
            raise _DockerUnreachableError(f"unexpected answer from Docker: {version!r}")
        busybox = await ensure_busybox_image(client)
        pause = await ensure_pause_image(client)
        return BuiltImages(busybox=busybox, pause=pause)
    finally:
        await client.close()


@pytest.fixture(scope="session")
def docker_images() -> BuiltImages:
    """Check that Docker answers and build the test images once per session (fail/skip otherwise)."""
    reason: str
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="docker-setup") as pool:
            return pool.submit(asyncio.run, _prepare()).result()
    except _DockerUnreachableError as e:
        reason = str(e)
    except MissingBinaryError as e:
        reason = f"cannot build the test images: {e}"
    _unavailable(reason)  # outside the except blocks: a short report, no chained traceback


@pytest.fixture(autouse=True)
def _docker_required(request: pytest.FixtureRequest) -> None:
    """Tests marked ``docker`` get the availability check even if they use no Docker fixture."""
    if request.node.get_closest_marker("docker") is not None:
        request.getfixturevalue("docker_images")


@pytest.fixture
async def docker(docker_images: BuiltImages) -> AsyncIterator[aiodocker.Docker]:
    """A Docker client on the test's own event loop, closed after the test."""
    client = aiodocker.Docker()
    try:
        yield client
    finally:
        await client.close()


@dataclass
class Scratch:
    """Creates labelled containers and networks for one test and removes them all afterwards."""

    docker: aiodocker.Docker
    prefix: str = field(default_factory=lambda: f"kbox-test-{uuid.uuid4().hex[:8]}")
    containers: list[aiodocker.containers.DockerContainer] = field(default_factory=list)
    networks: list[aiodocker.networks.DockerNetwork] = field(default_factory=list)

    async def run(
        self, config: dict[str, Any], name: str | None = None
    ) -> aiodocker.containers.DockerContainer:
        """Create and start a container labelled ``kbox.test=1``; it is removed at teardown."""
        config = {**config, "Labels": {**config.get("Labels", {}), **TEST_LABELS}}
        container = await self.docker.containers.create(
            config, name=f"{self.prefix}-{name}" if name else None
        )
        self.containers.append(container)
        await container.start()
        return container

    async def network(self, name: str, **options: Any) -> aiodocker.networks.DockerNetwork:
        """Create a labelled bridge network; it is removed at teardown."""
        config = {
            "Name": f"{self.prefix}-{name}",
            "Driver": "bridge",
            **options,
            "Labels": {**options.get("Labels", {}), **TEST_LABELS},
        }
        network = await self.docker.networks.create(config)
        self.networks.append(network)
        return network

    async def cleanup(self) -> None:
        # Containers first (in reverse, so joiners go before the sandbox), then their networks.
        errors: list[Exception] = []
        for container in reversed(self.containers):
            try:
                await container.delete(force=True, v=True)
            except aiodocker.DockerError as e:
                if e.status != 404:
                    errors.append(e)
        for network in reversed(self.networks):
            try:
                await network.delete()
            except aiodocker.DockerError as e:
                if e.status != 404:
                    errors.append(e)
        if errors:
            raise ExceptionGroup("cleaning up test Docker objects failed", errors)


@pytest.fixture
async def scratch(docker: aiodocker.Docker) -> AsyncIterator[Scratch]:
    """Per-test factory for Docker objects, all labelled ``kbox.test=1`` and removed afterwards."""
    s = Scratch(docker)
    try:
        yield s
    finally:
        await s.cleanup()


# -- a live apiserver and a kubelet on a fresh Docker runtime (the kubelet tests share these) --------


def kubelet_settings(tmp_path: Path) -> KubeletSettings:
    """Timers short enough for tests: relist 0.2 s, back-off from 0.5 s."""
    return KubeletSettings(
        node_name="node-1",
        cluster="e2e",
        state_dir=tmp_path / "kubelet",
        relist_interval=0.2,
        backoff_base=0.5,
    )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture
async def runtime(docker_images: BuiltImages) -> AsyncIterator[DockerRuntime]:
    """A Docker runtime under a cluster name of its own; everything it made is purged afterwards."""
    docker_runtime = DockerRuntime(cluster=f"kbt-{uuid.uuid4().hex[:8]}")
    yield docker_runtime
    await docker_runtime.purge()
    await docker_runtime.close()


@pytest.fixture
async def kubelet(server: Served, runtime: DockerRuntime, tmp_path: Path) -> AsyncIterator[Kubelet]:
    k = Kubelet(
        LocalClient(server.plane.catalog),
        runtime,
        kubelet_settings(tmp_path),
        connections=server.plane.catalog.node_connections,
    )
    await k.start()
    yield k
    await k.stop()
