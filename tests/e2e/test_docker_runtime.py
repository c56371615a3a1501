"""The Docker runtime (kbox/kubelet/runtime/docker.py) against a real engine, with no registry.

Covers, through the ``Runtime`` interface only (raw aiodocker just to look behind it and to clean up):

* a pod: a sandbox on the cluster's bridge network plus two busybox containers sharing its localhost
  (one serves HTTP on 8080, the other fetches it from 127.0.0.1), the pod IP reached from the host with
  ``port_forward``, and the IP unchanged when an app container is removed and recreated; hostname and
  DNS settings (search list, ndots:5) seen by the app containers;
* pod DNS: Docker's embedded resolver (the pod's /etc/resolv.conf says 127.0.0.11) forwards the pod's
  queries, search list applied, to the pod's DNS server (a responder on the host's bridge address);
* the container config (command, args, env, workingDir, a read-only hostPath mount, user, read-only
  root, capabilities, memory/cpu limits and shares) visible inside via exec and in Docker;
* exit codes and reasons: Completed, Error, and OOMKilled from a 16 MiB memory limit;
* logs with tail, timestamps, limitBytes, sinceTime and follow; a tty container's raw log;
* exec with stdin, stderr and exit codes, exec with a tty, close() killing a still-running exec, and
  attach to a container's stdin;
* image pull policies offline: Never with a missing image (ErrImageNeverPull), IfNotPresent with a
  missing one (ErrImagePull), Always and the ``:latest`` default using a local image when the pull fails;
  and the sandbox image build refusing a missing or dynamically linked catatonit with the install hint;
* adoption: a fresh DockerRuntime finds the sandbox and containers with their labels, running the
  same pod's sandbox again returns it, stop_sandbox stops it all, remove_sandbox then leaves no
  container labelled with the cluster, and purge() removes the cluster's containers and network;
* a Docker that cannot be reached: ContainerRuntimeError (reason RuntimeUnavailable), not aiohttp's.

Each test gets its own cluster name, so its own network; a finalizer removes every container and
network labelled with it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import struct
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import aiodocker
import pytest

from kbox.api.nodeconnection import ExecSession, LogOptions
from kbox.kubelet.runtime import interface, podnet, sandboximage
from kbox.kubelet.runtime.docker import REASON_UNAVAILABLE, DockerRuntime
from kbox.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerRuntimeError,
    ContainerStatus,
    ImageError,
    Mount,
    PodRef,
    SandboxConfig,
    SandboxStatus,
)

if TYPE_CHECKING:
    from tests.e2e.conftest import BuiltImages

pytestmark = pytest.mark.timeout(60)

NODE = "node-1"
WAIT_S = 15
DYNAMIC_BINARY = Path(sys.executable).resolve()  # a dynamically linked executable: Python itself
T = TypeVar("T")


@pytest.fixture
def cluster() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def runtime(docker: aiodocker.Docker, cluster: str) -> AsyncIterator[DockerRuntime]:
    """A DockerRuntime for a fresh cluster; afterwards everything labelled with the cluster is removed."""
    rt = DockerRuntime(cluster=cluster)
    try:
        yield rt
    finally:
        await rt.close()
        label = {"label": [f"{interface.LABEL_CLUSTER}={cluster}"]}
        for c in await docker.containers.list(all=True, filters=label):
            await c.delete(force=True)
        for net in await docker.networks.list(filters=label):
            await (await docker.networks.get(net["Id"])).delete()


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A hostPath directory holding data.txt, readable by any user (pytest makes tmp_path 0700)."""
    (tmp_path / "data.txt").write_text("from the host\n")
    tmp_path.chmod(0o755)
    return tmp_path


def _pod(name: str = "web") -> PodRef:
    return PodRef("default", name, str(uuid.uuid4()))


async def _sandbox(rt: DockerRuntime, pod: PodRef, **options: Any) -> SandboxStatus:
    config = SandboxConfig(pod=pod, hostname=pod.name, labels={interface.LABEL_NODE: NODE}, **options)
    return await rt.run_sandbox(config)


async def _run(
    rt: DockerRuntime, sandbox: SandboxStatus, name: str, image: str, script: str, **options: Any
) -> str:
    """Create and start a container running ``sh -c <script>``."""
    config = ContainerConfig(name=name, image=image, command=("sh", "-c"), args=(script,), **options)
    container_id = await rt.create_container(sandbox, config)
    await rt.start_container(container_id)
    return container_id


async def _until(check: Callable[[], Awaitable[T | None]]) -> T:
    """Poll ``check`` until it returns something (within WAIT_S)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            result = await check()
            if result is not None:
                return result
            await asyncio.sleep(0.03)


async def _exited(rt: DockerRuntime, container_id: str) -> ContainerStatus:
    async def check() -> ContainerStatus | None:
        status = await rt.container_status(container_id)
        return status if status.state == "exited" else None

    return await _until(check)


async def _collect(session: ExecSession) -> tuple[bytes, bytes]:
    out, err = b"", b""
    async with asyncio.timeout(WAIT_S):
        async for stream, data in session.output():
            if stream == 1:
                out += data
            else:
                err += data
    return out, err


async def _exec(rt: DockerRuntime, container_id: str, *command: str) -> tuple[int, str]:
    session = await rt.exec(container_id, list(command), stdin=False, tty=False)
    try:
        out, err = await _collect(session)
        return await session.wait(), (out + err).decode()
    finally:
        await session.close()


async def _http_get(rt: DockerRuntime, sandbox: SandboxStatus, port: int) -> bytes:
    """GET / through port_forward, retrying while the server starts."""
    async with asyncio.timeout(WAIT_S):
        while True:
            try:
                reader, writer = await rt.port_forward(sandbox, port)
            except ContainerRuntimeError:
                await asyncio.sleep(0.05)
                continue
            try:
                writer.write(b"GET / HTTP/1.0\r\n\r\n")
                return await reader.read()
            finally:
                writer.close()


HTTPD = "mkdir -p /tmp/www && echo hello-from-$HOSTNAME > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"
FETCH = "for i in $(seq 100); do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1"


@pytest.fixture(params=["kbox", "docker"])
def pod_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a pod gets onto the cluster network: wired by kbox (as root), attached by Docker."""
    if request.param == "docker":
        monkeypatch.setenv("KBOX_POD_NETWORK", "docker")
    else:
        monkeypatch.delenv("KBOX_POD_NETWORK", raising=False)
    return str(request.param)


@pytest.mark.docker
async def test_pod_shares_localhost_and_keeps_its_ip(
    runtime: DockerRuntime, docker: aiodocker.Docker, docker_images: BuiltImages, pod_network: str
) -> None:
    busybox, pod = docker_images.busybox, _pod("web")
    dns = {"dns_servers": ("10.96.0.10",), "dns_searches": ("default.svc.cluster.local", "svc.cluster.local")}
    sandbox = await _sandbox(runtime, pod, dns_options=("ndots:5",), **dns)
    assert sandbox.ready and sandbox.ip and sandbox.pod == pod
    info = await docker.containers.container(sandbox.id).show()
    assert info["Name"] == f"/k8s_POD_web_default_{pod.uid}_0"
    network = await (await docker.networks.get(runtime.network)).show()
    assert network["Labels"][interface.LABEL_CLUSTER] == runtime.cluster
    subnet = ipaddress.ip_network(network["IPAM"]["Config"][0]["Subnet"])
    assert ipaddress.ip_address(sandbox.ip) in subnet
    if podnet.can_wire():
        # kbox wired it (root): no Docker network, an address from the subnet's upper half, recorded.
        assert set(info["NetworkSettings"]["Networks"]) == {"none"}
        assert info["Config"]["Labels"][podnet.LABEL_POD_IP] == sandbox.ip
        assert (
            int(ipaddress.ip_address(sandbox.ip)) >= int(subnet.network_address) + subnet.num_addresses // 2
        )
    else:
        assert runtime.network in info["NetworkSettings"]["Networks"]

    server = await _run(runtime, sandbox, "server", busybox, HTTPD)
    client = await _run(runtime, sandbox, "client", busybox, FETCH)
    status = await _exited(runtime, client)
    assert (status.exit_code, status.reason) == (0, "Completed")
    assert b"".join([c async for c in runtime.logs(client, LogOptions())]) == b"hello-from-web\n"

    # The host reaches the pod IP; a closed port is a clear runtime error.
    assert b"hello-from-web" in await _http_get(runtime, sandbox, 8080)
    with pytest.raises(ContainerRuntimeError, match="port 8081 of pod default/web"):
        await runtime.port_forward(sandbox, 8081)

    # Same hostname and resolver configuration in every container of the pod: the pod's servers
    # (directly, or through Docker's embedded DNS on its network); search and ndots are kept.
    code, resolv = await _exec(runtime, server, "sh", "-c", "hostname; cat /etc/resolv.conf")
    assert code == 0
    assert resolv.splitlines()[0] == "web"
    assert "search default.svc.cluster.local svc.cluster.local" in resolv and "ndots:5" in resolv

    # Removing and recreating an app container keeps the pod IP.
    await runtime.stop_container(server, 1)
    await runtime.remove_container(server)
    again = await _run(runtime, sandbox, "server", busybox, HTTPD, restart_count=1)
    assert (await docker.containers.container(again).show())["Name"] == f"/k8s_server_web_default_{pod.uid}_1"
    assert (await runtime.container_status(again)).restart_count == 1
    [listed] = await runtime.list_sandboxes(NODE)
    assert listed.ip == sandbox.ip
    assert b"hello-from-web" in await _http_get(runtime, listed, 8080)


class _DnsServer(asyncio.DatagramProtocol):
    """Answers every A query with 10.1.2.3 (others with no data) and records who asked what."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.queries: list[tuple[str, bytes]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        question = data[12:]  # one question: name, type, class
        self.queries.append((str(addr[0]), question))
        is_a = question[-4:-2] == b"\x00\x01"
        header = data[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, int(is_a), 0, 0)
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([10, 1, 2, 3]) if is_a else b""
        assert self.transport is not None
        self.transport.sendto(header + question + answer, addr)


@pytest.mark.docker
async def test_pod_dns_goes_to_the_pods_servers(
    runtime: DockerRuntime, docker: aiodocker.Docker, docker_images: BuiltImages, pod_network: str
) -> None:
    """The pod's queries reach the pod's DNS servers (from the pod's IP): straight from the resolv.conf
    Docker writes when kbox wires the pod, through Docker's embedded resolver on its network otherwise.

    The pod's server here is a tiny DNS responder on the host at the bridge's gateway address, as
    kbox's cluster DNS listens on a host address (10.96.0.10); port 53 needs root on the host.
    """
    if os.geteuid() != 0:
        message = "binding a DNS server to port 53 on the host needs root"
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    # The cluster network may exist already (made by someone else): the runtime uses it as it is.
    await docker.networks.create(
        {"Name": runtime.network, "Driver": "bridge", "Labels": {interface.LABEL_CLUSTER: runtime.cluster}}
    )
    gateway = (await (await docker.networks.get(runtime.network)).show())["IPAM"]["Config"][0]["Gateway"]
    server = _DnsServer()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: server, local_addr=(gateway, 53)
    )
    try:
        searches = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
        sandbox = await _sandbox(
            runtime, _pod("dns"), dns_servers=(gateway,), dns_searches=searches, dns_options=("ndots:5",)
        )
        app = await _run(runtime, sandbox, "app", docker_images.busybox, "exec sleep 600")
        code, out = await _exec(runtime, app, "nslookup", "kubernetes")
    finally:
        transport.close()
    assert code == 0 and "10.1.2.3" in out, out
    assert server.queries, "the pod's query reached its DNS server"
    assert {source for source, _ in server.queries} == {sandbox.ip}
    # ndots:5 and the search list apply: the name is asked with the search domains appended.
    asked = {question[:-4] for _, question in server.queries}  # the encoded names, without type and class
    assert b"\x0akubernetes\x07default\x03svc\x07cluster\x05local\x00" in asked


@pytest.mark.docker
async def test_container_config_is_applied(
    runtime: DockerRuntime, docker: aiodocker.Docker, docker_images: BuiltImages, host_dir: Path
) -> None:
    sandbox = await _sandbox(runtime, _pod("cfg"))
    config = ContainerConfig(
        name="app",
        image=docker_images.busybox,
        command=("sleep",),
        args=("600",),
        env=(("GREETING", "hello world"), ("EMPTY", "")),
        working_dir="/tmp",
        mounts=(Mount(str(host_dir), "/data", read_only=True),),
        memory_limit=64 * 1024 * 1024,
        cpu_limit=0.5,
        cpu_request=0.25,
        run_as_user=1000,
        run_as_group=2000,
        read_only_root=True,
        cap_drop=("NET_RAW",),
        labels={"app.example/tier": "backend"},
    )
    app = await runtime.create_container(sandbox, config)
    await runtime.start_container(app)
    assert (await runtime.container_status(app)).state == "running"

    code, out = await _exec(
        runtime, app, "sh", "-c", 'echo "$GREETING"; pwd; id -u; id -g; cat /data/data.txt'
    )
    assert (code, out) == (0, "hello world\n/tmp\n1000\n2000\nfrom the host\n")
    code, out = await _exec(runtime, app, "cat", "/proc/1/cmdline")
    assert out == "sleep\x00600\x00"
    code, _ = await _exec(runtime, app, "touch", "/data/new")
    assert code != 0, "the hostPath mount is read-only"
    code, _ = await _exec(runtime, app, "mkdir", "/newdir")
    assert code != 0, "the root filesystem is read-only"

    host = (await docker.containers.container(app).show())["HostConfig"]
    assert host["Memory"] == host["MemorySwap"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000 and host["CpuShares"] == 256
    assert host["CapDrop"] == ["NET_RAW"] and host["Privileged"] is False
    assert host["NetworkMode"] == host["IpcMode"] == f"container:{sandbox.id}"

    # Args alone keep the image's entrypoint (none here), so they run as the command.
    only_args = await runtime.create_container(
        sandbox, ContainerConfig(name="args", image=docker_images.busybox, args=("echo", "args only"))
    )
    await runtime.start_container(only_args)
    assert (await _exited(runtime, only_args)).exit_code == 0
    assert [c async for c in runtime.logs(only_args, LogOptions())] == [b"args only\n"]


@pytest.mark.docker
async def test_exit_codes_and_oom_killed(runtime: DockerRuntime, docker_images: BuiltImages) -> None:
    sandbox = await _sandbox(runtime, _pod("exits"))
    ok = await _run(runtime, sandbox, "ok", docker_images.busybox, "exit 0")
    failed = await _run(runtime, sandbox, "failed", docker_images.busybox, "echo bad >&2; exit 3")
    hog = await _run(
        runtime,
        sandbox,
        "hog",
        docker_images.busybox,
        "x=a; while true; do x=$x$x; done",
        memory_limit=16 * 2**20,
    )
    ok_status, failed_status, hog_status = [await _exited(runtime, c) for c in (ok, failed, hog)]
    assert (ok_status.exit_code, ok_status.reason) == (0, "Completed")
    assert (failed_status.exit_code, failed_status.reason) == (3, "Error")
    assert (hog_status.exit_code, hog_status.reason) == (137, "OOMKilled")
    for status in (ok_status, failed_status, hog_status):
        assert 0 < status.created_at <= status.started_at <= status.finished_at
        assert status.image == docker_images.busybox and status.image_id.startswith("docker://sha256:")
        assert status.sandbox_id == sandbox.id
    assert [s.name for s in await runtime.list_containers(sandbox.id)] == ["ok", "failed", "hog"]

    # A command that cannot start: Docker keeps the container "created", kbox reports why.
    missing = await runtime.create_container(
        sandbox, ContainerConfig(name="missing", image=docker_images.busybox, command=("/no/such/binary",))
    )
    with pytest.raises(ContainerRuntimeError) as err:
        await runtime.start_container(missing)
    assert err.value.reason == "RunContainerError" and "/no/such/binary" in str(err.value)
    status = await runtime.container_status(missing)
    assert (status.state, status.reason) == (
        "exited",
        "ContainerCannotRun",
    ) and "/no/such/binary" in status.message


@pytest.mark.docker
async def test_logs(runtime: DockerRuntime, docker_images: BuiltImages) -> None:
    sandbox = await _sandbox(runtime, _pod("logs"))
    script = "for i in 1 2 3 4; do echo line$i; done; echo oops >&2; read go; echo late; exit 0"
    app = await _run(runtime, sandbox, "app", docker_images.busybox, script, stdin=True, stdin_once=True)

    async def lines(**options: Any) -> list[bytes]:
        async with asyncio.timeout(WAIT_S):
            return [c async for c in runtime.logs(app, LogOptions(**options))]

    async def five_lines() -> list[bytes] | None:
        found = await lines()
        return found if len(found) == 5 else None

    full = await _until(five_lines)
    # stdout and stderr are interleaved as Docker logged them; across the two streams the order is
    # whatever its two copiers made of it, so only each stream's own order is fixed.
    assert [c for c in full if c.startswith(b"line")] == [b"line1\n", b"line2\n", b"line3\n", b"line4\n"]
    assert sorted(full) == [b"line1\n", b"line2\n", b"line3\n", b"line4\n", b"oops\n"]
    assert await lines(tail_lines=2) == full[-2:]
    assert await lines(tail_lines=0) == []
    assert b"".join(await lines(limit_bytes=8)) == b"".join(full)[:8]
    [stamped] = await lines(timestamps=True, tail_lines=1)
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z " + re.escape(full[-1]), stamped)
    assert await lines(since_time="2999-01-01T00:00:00Z") == []
    assert len(await lines(since_seconds=3600)) == 5

    # follow: what is there, then what comes, until the container exits.
    followed: list[bytes] = []

    async def follow() -> None:
        async for chunk in runtime.logs(app, LogOptions(follow=True, tail_lines=1)):
            followed.append(chunk)

    follower = asyncio.create_task(follow())

    async def started() -> bool | None:
        return bool(followed) or None

    await _until(started)
    attached = await runtime.attach(app, stdin=True, tty=False)
    await attached.write_stdin(b"go\n")
    await attached.close_stdin()
    await asyncio.wait_for(follower, WAIT_S)
    assert followed == [full[-1], b"late\n"]
    assert await attached.wait() == 0
    await attached.close()

    # A tty container's log is the raw terminal stream.
    tty = await runtime.create_container(
        sandbox, ContainerConfig(name="tty", image=docker_images.busybox, args=("echo", "on a tty"), tty=True)
    )
    await runtime.start_container(tty)
    await _exited(runtime, tty)
    assert b"".join([c async for c in runtime.logs(tty, LogOptions())]) == b"on a tty\r\n"


@pytest.mark.docker
async def test_exec_and_attach(
    runtime: DockerRuntime, docker: aiodocker.Docker, docker_images: BuiltImages
) -> None:
    sandbox = await _sandbox(runtime, _pod("exec"))
    app = await _run(runtime, sandbox, "app", docker_images.busybox, "exec sleep 600")

    session = await runtime.exec(app, ["sh", "-c", "cat; echo done >&2; exit 7"], stdin=True, tty=False)
    await session.write_stdin(b"hello\n")
    await session.close_stdin()
    assert await _collect(session) == (b"hello\n", b"done\n")
    assert await session.wait() == 7
    await session.close()

    with_tty = await runtime.exec(app, ["sh", "-c", "tty; exit 2"], stdin=False, tty=True)
    await with_tty.resize(100, 40)
    out, err = await _collect(with_tty)
    assert out.startswith(b"/dev/pts/") and err == b""
    assert await with_tty.wait() == 2
    await with_tty.close()

    # close() ends an exec that is still running (Docker has no API for that).
    lingering = await runtime.exec(app, ["sleep", "300"], stdin=False, tty=False)
    await lingering.close()

    async def sleep_ended() -> bool | None:
        return "sleep 300" not in (await _exec(runtime, app, "ps", "-o", "args"))[1] or None

    await _until(sleep_ended)

    # attach: the main process's stdin and output, and its exit code.
    reader = await _run(
        runtime,
        sandbox,
        "reader",
        docker_images.busybox,
        "read x; echo got $x; echo err >&2; exit 4",
        stdin=True,
        stdin_once=True,
    )
    attached = await runtime.attach(reader, stdin=True, tty=False)
    await attached.write_stdin(b"abc\n")
    assert await _collect(attached) == (b"got abc\n", b"err\n")
    assert await attached.wait() == 4
    await attached.close()

    with pytest.raises(ContainerRuntimeError, match="not running"):
        await runtime.exec(reader, ["true"], stdin=False, tty=False)


@pytest.mark.docker
async def test_image_pull_policies_offline(
    runtime: DockerRuntime, docker: aiodocker.Docker, docker_images: BuiltImages, tmp_path: Path
) -> None:
    busybox_id = (await docker.images.inspect(docker_images.busybox))["Id"]
    missing = f"kbox.test/missing-{uuid.uuid4().hex[:6]}:1"
    with pytest.raises(ImageError) as never:
        await runtime.ensure_image(missing, "Never")
    assert never.value.reason == "ErrImageNeverPull" and missing in str(never.value)
    with pytest.raises(ImageError) as pull:
        await runtime.ensure_image(missing, "IfNotPresent")
    assert pull.value.reason == "ErrImagePull" and "kbox.test" in str(pull.value)

    assert await runtime.ensure_image(docker_images.busybox, "Never") == f"docker://{busybox_id}"
    assert await runtime.ensure_image(docker_images.busybox, "IfNotPresent") == f"docker://{busybox_id}"
    # Always: the registry is unreachable, the image is local, so it is used (a warning is logged).
    assert await runtime.ensure_image(docker_images.busybox, "Always") == f"docker://{busybox_id}"

    # `docker build -t app .` then `image: app`: the local name as given; no tag means :latest, so Always.
    app = f"kbox-e2e-app-{uuid.uuid4().hex[:6]}"
    await docker.images.tag(docker_images.busybox, repo=app, tag="latest")
    try:
        assert await runtime.ensure_image(app, "") == f"docker://{busybox_id}"
        assert await runtime.ensure_image(f"{app}:latest", "IfNotPresent") == f"docker://{busybox_id}"
    finally:
        await docker.images.delete(f"{app}:latest")

    # The sandbox image needs a static catatonit; the error says how to get one.
    tag = f"kbox-e2e/pause-{uuid.uuid4().hex[:6]}:1"
    with pytest.raises(ContainerRuntimeError, match="install Debian's catatonit package"):
        await sandboximage.ensure_sandbox_image(docker, tag, binary=tmp_path / "catatonit")
    with pytest.raises(ContainerRuntimeError, match="not a statically linked executable"):
        await sandboximage.ensure_sandbox_image(docker, tag, binary=DYNAMIC_BINARY)


@pytest.mark.docker
async def test_adoption_and_removal(
    runtime: DockerRuntime, docker: aiodocker.Docker, docker_images: BuiltImages, cluster: str
) -> None:
    pod = _pod("adopted")
    sandbox = await _sandbox(runtime, pod)
    app = await _run(runtime, sandbox, "app", docker_images.busybox, "exec sleep 600", restart_count=2)
    await runtime.close()

    fresh = DockerRuntime(cluster=cluster)
    try:
        assert await fresh.list_sandboxes("another-node") == []
        [found] = await fresh.list_sandboxes(NODE)
        assert (found.id, found.ip, found.pod, found.ready) == (sandbox.id, sandbox.ip, pod, True)
        assert found.labels[interface.LABEL_NODE] == NODE and found.labels[interface.LABEL_KIND] == "sandbox"
        [container] = await fresh.list_containers(found.id)
        assert (container.id, container.name, container.state, container.restart_count) == (
            app,
            "app",
            "running",
            2,
        )
        expected = {
            interface.LABEL_CLUSTER: cluster,
            interface.LABEL_NODE: NODE,
            interface.LABEL_NAMESPACE: "default",
            interface.LABEL_POD_NAME: "adopted",
            interface.LABEL_POD_UID: pod.uid,
            interface.LABEL_CONTAINER_NAME: "app",
            interface.LABEL_RESTART_COUNT: "2",
            interface.LABEL_KIND: "container",
        }
        assert expected.items() <= container.labels.items()

        # Running the same pod's sandbox again is idempotent.
        assert (await _sandbox(fresh, pod)).id == sandbox.id

        await fresh.stop_sandbox(found.id)
        assert not (await fresh.list_sandboxes(NODE))[0].ready
        assert (await fresh.container_status(app)).state == "exited"
        await fresh.remove_sandbox(found.id)
        label = {"label": [f"{interface.LABEL_CLUSTER}={cluster}"]}
        assert await docker.containers.list(all=True, filters=label) == []
        assert await fresh.list_sandboxes(NODE) == []
        with pytest.raises(ContainerRuntimeError) as gone:
            await fresh.container_status(app)
        assert gone.value.reason == "NotFound"
        await fresh.remove_sandbox(found.id)  # idempotent

        # purge (kbox delete): every container and the network of the cluster go.
        other = await _sandbox(fresh, _pod("other"))
        await _run(fresh, other, "app", docker_images.busybox, "exec sleep 600")
        await fresh.purge()
        assert await docker.containers.list(all=True, filters=label) == []
        assert await docker.networks.list(filters=label) == []
    finally:
        await fresh.close()


async def test_unreachable_docker_is_a_runtime_error(tmp_path: Path) -> None:
    client = aiodocker.Docker(url=f"unix://{tmp_path}/no-docker.sock")
    rt = DockerRuntime(cluster="unreachable", docker=client)
    try:
        with pytest.raises(ContainerRuntimeError) as err:
            await rt.version()
        assert err.value.reason == REASON_UNAVAILABLE and "Docker is not available" in str(err.value)
        with pytest.raises(ContainerRuntimeError) as err:
            await _sandbox(rt, _pod())
        assert err.value.reason == REASON_UNAVAILABLE
    finally:
        await rt.close()
        await client.close()


@pytest.mark.docker
async def test_wired_addresses_survive_a_restart_and_leave_no_interface_behind(
    runtime: DockerRuntime, docker: aiodocker.Docker, cluster: str
) -> None:
    """kbox-wired pods (root): a new process learns the addresses in use from Docker's labels, and a
    removed sandbox takes its veth with it."""
    _require_wiring()
    first = await _sandbox(runtime, _pod("first"))
    await runtime.close()
    podnet.forget(runtime.network)  # what a new kbox process knows of the network: nothing yet

    fresh = DockerRuntime(cluster=cluster)
    try:
        second = await _sandbox(fresh, _pod("second"))
        assert second.ip != first.ip
        hosts = {f"{podnet.HOST_PREFIX}{s.id[:12]}" for s in (first, second)}
        assert hosts <= await asyncio.to_thread(_links)
        await fresh.remove_sandbox(first.id)
        await fresh.remove_sandbox(second.id)
        # The kernel dismantles a namespace, and the veths in it, shortly after its last process.
        for _ in range(100):
            if not hosts & await asyncio.to_thread(_links):
                break
            await asyncio.sleep(0.1)
        assert not hosts & await asyncio.to_thread(_links)
    finally:
        await fresh.close()


def _links() -> set[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return {str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()}


@pytest.mark.docker
async def test_an_adopted_sandbox_without_its_network_is_not_ready(
    runtime: DockerRuntime, cluster: str
) -> None:
    """A wired sandbox whose veth is gone (kbox stopped between its start and its wiring) is reported
    not ready to a new kbox, so the kubelet replaces it; one with its veth is adopted as it is."""
    _require_wiring()
    intact = await _sandbox(runtime, _pod("intact"))
    broken = await _sandbox(runtime, _pod("broken"))
    await asyncio.to_thread(_delete_link, podnet.host_end(broken.id))
    await runtime.close()

    fresh = DockerRuntime(cluster=cluster)
    try:
        listed = {s.id: s.ready for s in await fresh.list_sandboxes(NODE)}
        assert listed == {intact.id: True, broken.id: False}
    finally:
        await fresh.close()


def _delete_link(name: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("del", ifname=name)


def _require_wiring() -> None:
    """kbox wires pod networks only as root: a test of the wiring fails under CI without it, else skips."""
    if podnet.can_wire():
        return
    message = "kbox wires pod networks only as root"
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)
