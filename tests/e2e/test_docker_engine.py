"""The Docker engine does what kbox's Docker runtime will rely on, with no registry and no internet.

Covers, against a real engine (scripts/ensure-docker.sh starts one):

* test images build offline FROM scratch out of the host's static busybox, and a container from
  them runs a command whose stdout and stderr come back separately through aiodocker's logs API;
* the pod-sandbox model: a ``catatonit -P`` sandbox container owns the network namespace, app
  containers joined with ``NetworkMode: container:<id>`` see its IP and hostname and share its
  localhost, and the sandbox stops at once on SIGTERM;
* a user-defined bridge network (labelled, removed afterwards) gives containers IPs inside its
  subnet that the host reaches directly, which is how kbox reaches pod IPs.

Every container and network is labelled ``kbox.test=1`` and removed by the ``scratch`` fixture; only
the cached test images stay.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import TYPE_CHECKING, Any

import aiodocker
import pytest

from tests.support.images import BUSYBOX_APPLETS, TEST_LABEL_KEY, ensure_busybox_image

if TYPE_CHECKING:  # fixtures' types only; conftest modules are not imported by tests
    from tests.e2e.conftest import BuiltImages, Scratch

pytestmark = [pytest.mark.docker, pytest.mark.timeout(60)]

EXIT_WAIT_S = 20  # for a short-lived container to exit
CONNECT_WAIT_S = 10  # for a server in a container to start listening


async def _exit_code(container: aiodocker.containers.DockerContainer) -> int:
    result = await container.wait(timeout=EXIT_WAIT_S)
    return int(result["StatusCode"])


async def _logs(container: aiodocker.containers.DockerContainer, *, stdout: bool, stderr: bool) -> str:
    return "".join(await container.log(stdout=stdout, stderr=stderr))


def _ip_on(info: dict[str, Any], network: str) -> str:
    return str(info["NetworkSettings"]["Networks"][network]["IPAddress"])


async def _read_when_listening(host: str, port: int) -> bytes:
    """Connect from the host (retrying while the server starts) and read until the server closes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_WAIT_S
    while True:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=2)
        except (ConnectionRefusedError, TimeoutError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        try:
            return await asyncio.wait_for(reader.read(), timeout=5)
        finally:
            writer.close()
            await writer.wait_closed()


async def test_busybox_image_builds_offline_and_runs_echo(
    docker: aiodocker.Docker, scratch: Scratch, docker_images: BuiltImages
) -> None:
    image = await docker.images.inspect(docker_images.busybox)
    assert image["Config"]["Cmd"] == ["sh"]
    assert image["Config"]["Labels"][TEST_LABEL_KEY] == "1"
    assert len(image["RootFS"]["Layers"]) == 1, "FROM scratch plus one COPY: a single layer"
    # Cached: asking again neither rebuilds nor changes the image.
    assert await ensure_busybox_image(docker) == docker_images.busybox
    assert (await docker.images.inspect(docker_images.busybox))["Id"] == image["Id"]

    echo = await scratch.run({"Image": docker_images.busybox, "Cmd": ["echo", "hello from kbox"]}, "echo")
    assert await _exit_code(echo) == 0
    assert await echo.log(stdout=True) == ["hello from kbox\n"]

    both = await scratch.run(
        {"Image": docker_images.busybox, "Cmd": ["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"]},
        "streams",
    )
    assert await _exit_code(both) == 3
    assert await _logs(both, stdout=True, stderr=False) == "to-stdout\n"
    assert await _logs(both, stdout=False, stderr=True) == "to-stderr\n"


async def test_busybox_image_has_its_applets(scratch: Scratch, docker_images: BuiltImages) -> None:
    script = 'for a in "$@"; do command -v "$a" >/dev/null || echo "missing $a"; done; id -u'
    check = await scratch.run(
        {"Image": docker_images.busybox, "Cmd": ["sh", "-c", script, "sh", *BUSYBOX_APPLETS]}, "applets"
    )
    assert await _exit_code(check) == 0
    assert await _logs(check, stdout=True, stderr=True) == "0\n"


async def test_pod_sandbox_shares_its_network_namespace(
    docker: aiodocker.Docker, scratch: Scratch, docker_images: BuiltImages
) -> None:
    network = await scratch.network("pods")
    net_name = (await network.show())["Name"]
    sandbox = await scratch.run(
        {"Image": docker_images.pause, "Hostname": "pod-a", "HostConfig": {"NetworkMode": net_name}},
        "sandbox",
    )
    sandbox_info = await sandbox.show()
    assert sandbox_info["State"]["Running"]
    sandbox_ip = _ip_on(sandbox_info, net_name)
    in_pod = {"NetworkMode": f"container:{sandbox.id}"}

    # One app container listens on the pod's localhost, another one connects to it.
    await scratch.run(
        {
            "Image": docker_images.busybox,
            "Cmd": ["nc", "-l", "-p", "9000", "-e", "echo", "shared-localhost"],
            "HostConfig": in_pod,
        },
        "server",
    )
    script = (
        "hostname; ip -4 -o addr show eth0; "
        "i=0; until nc 127.0.0.1 9000; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done"
    )
    client = await scratch.run(
        {"Image": docker_images.busybox, "Cmd": ["sh", "-c", script], "HostConfig": in_pod}, "client"
    )
    assert await _exit_code(client) == 0, await _logs(client, stdout=True, stderr=True)
    hostname, addr_line, reply = (await _logs(client, stdout=True, stderr=False)).splitlines()
    assert hostname == "pod-a"
    match = re.search(r"inet (\S+)/", addr_line)
    assert match, addr_line
    assert match.group(1) == sandbox_ip
    assert reply == "shared-localhost"

    # catatonit -P ends on SIGTERM itself (no SIGKILL after the grace period, which would be 137).
    await sandbox.stop(t=10)
    state = (await sandbox.show())["State"]
    assert not state["Running"]
    assert state["ExitCode"] in (0, 143), state


async def test_bridge_network_gives_ips_the_host_reaches(
    docker: aiodocker.Docker, scratch: Scratch, docker_images: BuiltImages
) -> None:
    network = await scratch.network("bridge")
    net_info = await network.show()
    net_name = net_info["Name"]
    assert net_info["Driver"] == "bridge"
    assert net_info["Labels"][TEST_LABEL_KEY] == "1"
    subnet = ipaddress.ip_network(net_info["IPAM"]["Config"][0]["Subnet"])

    server = await scratch.run(
        {
            "Image": docker_images.busybox,
            "Cmd": ["nc", "-ll", "-p", "8080", "-e", "echo", "hello-from-pod"],
            "HostConfig": {"NetworkMode": net_name},
        },
        "web",
    )
    ip = _ip_on(await server.show(), net_name)
    assert ipaddress.ip_address(ip) in subnet
    assert await _read_when_listening(ip, 8080) == b"hello-from-pod\n"

    # Cleanup is exact: nothing of this test is left once the scratch objects are removed.
    await scratch.cleanup()
    leftovers = await docker.containers.list(all=True, filters={"label": [f"{TEST_LABEL_KEY}=1"]})
    assert not [c for c in leftovers if c.id in {s.id for s in scratch.containers}]
    networks = await docker.networks.list(filters={"label": [f"{TEST_LABEL_KEY}=1"]})
    assert net_name not in {n["Name"] for n in networks}
