"""``kbox delete`` with the docker runtime leaves no container or network of the profile behind."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiodocker
import pytest

from kbox.kubelet.runtime.interface import LABEL_CLUSTER
from tests.component.test_lifecycle import Env
from tests.e2e.conftest import BuiltImages

pytestmark = pytest.mark.docker


async def _labelled(cluster: str) -> tuple[list[str], list[str]]:
    """Names of the containers (any state) and networks labelled with ``cluster``."""
    client = aiodocker.Docker()
    try:
        label = f"{LABEL_CLUSTER}={cluster}"
        containers = await client.containers.list(all=True, filters={"label": [label]})
        networks = await client.networks.list(filters={"label": [label]})
        return [c["Names"][0] for c in containers], [n["Name"] for n in networks]
    finally:
        await client.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(home=tmp_path / "home", kbox_home=tmp_path / "kbox-home")
    e.home.mkdir()
    try:
        yield e
    finally:
        e.kbox("delete", "--all")


def test_delete_removes_the_profiles_containers_and_network(env: Env, docker_images: BuiltImages) -> None:
    profile = f"e2e-{uuid.uuid4().hex[:6]}"
    out = env.ok("start", "-p", profile, "--runtime", "docker", "--nodes", "1", "--port", "0")
    assert f"kbox cluster {profile!r} is running" in out
    env.kubectl(
        "run",
        "sleeper",
        f"--image={docker_images.busybox}",
        "--image-pull-policy=Never",
        "--",
        "sleep",
        "3600",
    )
    deadline = time.monotonic() + 60
    containers: list[str] = []
    while time.monotonic() < deadline and len(containers) < 2:  # the sandbox and the app container
        containers, networks = asyncio.run(_labelled(profile))
        time.sleep(0.5)
    assert len(containers) >= 2, containers
    assert networks, "the profile's network"

    assert "deleted" in env.ok("delete", "-p", profile)
    assert asyncio.run(_labelled(profile)) == ([], [])
    assert not (env.kbox_home / profile).exists()
