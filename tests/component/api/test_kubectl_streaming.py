"""The streaming pod subresources against the real kubectl and the official Python client: ``logs``
(plain, ``--tail``, ``--timestamps``, ``-f`` while lines arrive), ``exec`` (output, stdin, exit codes,
stderr, a tty that sees its resize), ``attach -i``, ``port-forward`` (bytes round-trip, a closed port
losing the connection), the Status errors kubectl shows, and the Python client's exec and port-forward.

The pod's node is a ``HostNodeConnection``: commands run as local processes, logs come from memory and
port-forward dials 127.0.0.1, so the wire protocols are what is tested here.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward, stream

from kbox.client import interface
from kbox.client.local import LocalClient
from tests.support.apiserver import Kubectl, Served, served
from tests.support.hostnode import HostNodeConnection
from tests.support.wait import eventually

T = TypeVar("T")

# The attached container's main process: answers each line, says goodbye at the end of its input.
MAIN = ["sh", "-c", 'while read line; do echo "got $line"; done; echo bye']


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture
def kubectl(server: Served, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "cache"
    cache.mkdir()
    return Kubectl(server.kubeconfig, cache)


@pytest.fixture
async def node(server: Served) -> AsyncIterator[HostNodeConnection]:
    connection = HostNodeConnection(attach_command=MAIN)
    server.plane.catalog.node_connections.register("node-1", connection)
    yield connection
    await connection.close()


@pytest.fixture
def kubelet(server: Served) -> LocalClient:
    return LocalClient(server.plane.catalog, field_manager="kubelet")


async def make_pod(
    kubelet: LocalClient, name: str, *, node: str | None = "node-1", phase: str | None = "Running"
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }
    await kubelet.create(interface.PODS, pod, namespace="default")
    if node is not None:
        await kubelet.bind(name, node, namespace="default")
    if phase is not None:
        status = {"status": {"phase": phase}}
        await kubelet.patch(interface.PODS, name, status, namespace="default", subresource="status")


@pytest.fixture
async def pod(kubelet: LocalClient, node: HostNodeConnection) -> str:
    await make_pod(kubelet, "p")
    return "p"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- logs ------------------------------------------------------------------------------------------


async def test_logs_tail_and_timestamps(kubectl: Kubectl, node: HostNodeConnection, pod: str) -> None:
    node.log("default", pod, "main").append("one", "two", "three")
    assert await kubectl.ok("logs", pod) == "one\ntwo\nthree\n"
    assert await kubectl.ok("logs", pod, "--tail=2") == "two\nthree\n"
    lines = (await kubectl.ok("logs", pod, "--timestamps", "--tail=1")).splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z three", lines[0]), lines


async def test_logs_follow_while_lines_arrive(kubectl: Kubectl, node: HostNodeConnection, pod: str) -> None:
    log = node.log("default", pod, "main")
    log.append("first")
    following = asyncio.ensure_future(kubectl("logs", "-f", pod, timeout=20))
    await asyncio.sleep(1.0)
    assert not following.done()
    log.append("second", "third")
    await asyncio.sleep(0.2)
    log.append("last")
    log.end()
    result = await following
    assert result.code == 0, result.err
    assert result.out == "first\nsecond\nthird\nlast\n"


# -- exec and attach ---------------------------------------------------------------------------------


async def test_exec_output_stdin_and_exit_code(kubectl: Kubectl, node: HostNodeConnection, pod: str) -> None:
    assert await kubectl.ok("exec", pod, "--", "echo", "hi") == "hi\n"
    assert node.exec_calls[-1] == ("default", pod, "main", ["echo", "hi"])

    assert await kubectl.ok("exec", "-i", pod, "--", "cat", stdin="a\nb\n") == "a\nb\n"

    result = await kubectl("exec", pod, "--", "sh", "-c", "echo out; echo oops >&2; exit 3")
    assert result.code == 3
    assert result.out == "out\n"
    assert result.err.splitlines() == ["oops", "command terminated with exit code 3"]


async def test_exec_with_a_tty_sees_its_size(kubectl: Kubectl, node: HostNodeConnection, pod: str) -> None:
    # script(1) gives kubectl a terminal of 30 rows and 100 columns; kubectl sends the size on
    # channel 4 just after connecting, and the command (waiting for it) sees it on its own terminal.
    wait_for_size = 'for i in 1 2 3 4 5 6 7 8 9 10; do [ "$(stty size)" != "0 0" ] && break; sleep 0.2; done'
    script = f"{wait_for_size}; stty size; tty"
    command = shlex.join([*kubectl.base, "exec", "-it", pod, "--", "sh", "-c", script])
    process = await asyncio.create_subprocess_exec(
        "script",
        "-qc",
        f"stty rows 30 cols 100; {command}",
        "/dev/null",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=kubectl.env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, err
    lines = out.decode().replace("\r", "").splitlines()
    assert "30 100" in [line.lstrip("^@") for line in lines], out
    assert any(line.startswith("/dev/pts/") for line in lines), out
    assert (100, 30) in node.resizes


async def test_attach_relays_the_main_process(kubectl: Kubectl, node: HostNodeConnection, pod: str) -> None:
    result = await kubectl("attach", "-i", pod, stdin="x\ny\n")
    assert result.code == 0, result.err
    # The end of kubectl's stdin closes the process's stdin (as stdinOnce does), and it ends.
    assert result.out.splitlines()[-3:] == ["got x", "got y", "bye"]


async def test_a_client_going_away_ends_its_stream(
    kubectl: Kubectl, node: HostNodeConnection, pod: str
) -> None:
    # exec: the command is killed.
    executing = await asyncio.create_subprocess_exec(
        *kubectl.base,
        "exec",
        pod,
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 30",
        stdout=asyncio.subprocess.PIPE,
        env=kubectl.env,
    )
    assert executing.stdout is not None
    assert await asyncio.wait_for(executing.stdout.readline(), 10) == b"started\n"
    executing.kill()
    await executing.wait()
    assert await asyncio.wait_for(node.sessions[-1].wait(), 5) != 0

    # logs -f: the follow stops reading.
    log = node.log("default", pod, "main")
    log.append("line")
    following = await asyncio.create_subprocess_exec(
        *kubectl.base, "logs", "-f", pod, stdout=asyncio.subprocess.PIPE, env=kubectl.env
    )
    assert following.stdout is not None
    assert await asyncio.wait_for(following.stdout.readline(), 10) == b"line\n"
    assert log.readers == 1
    following.kill()
    await following.wait()
    await eventually(lambda: log.readers == 0, 5, message="the log stream stops being read")


# -- port-forward ------------------------------------------------------------------------------------


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(size), 10)


async def test_port_forward_round_trip(kubectl: Kubectl, node: HostNodeConnection, pod: str) -> None:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    remote = echo.sockets[0].getsockname()[1]
    local = free_port()
    forwarding = await asyncio.create_subprocess_exec(
        *kubectl.base,
        "port-forward",
        f"pod/{pod}",
        f"{local}:{remote}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=kubectl.env,
    )
    try:
        assert forwarding.stdout is not None
        first = await asyncio.wait_for(forwarding.stdout.readline(), 10)
        assert first.decode().startswith(f"Forwarding from 127.0.0.1:{local} -> {remote}")
        # Two connections at once, one of them large (many SPDY frames, many WebSocket messages).
        big = os.urandom(300_000)
        r1, w1 = await asyncio.open_connection("127.0.0.1", local)
        r2, w2 = await asyncio.open_connection("127.0.0.1", local)
        w1.write(big)
        w2.write(b"hello")
        assert await _read_exactly(r2, 5) == b"hello"
        assert await _read_exactly(r1, len(big)) == big
        # A half-close reaches the pod's side, whose close comes back.
        w2.write_eof()
        assert await asyncio.wait_for(r2.read(), 10) == b""
        w1.close()
        w2.close()
        await asyncio.sleep(0.2)
        assert forwarding.returncode is None
    finally:
        forwarding.terminate()
        await forwarding.wait()
        echo.close()


async def test_port_forward_to_a_closed_port(kubectl: Kubectl, node: HostNodeConnection, pod: str) -> None:
    remote, local = free_port(), free_port()
    forwarding = await asyncio.create_subprocess_exec(
        *kubectl.base,
        "port-forward",
        f"pod/{pod}",
        f"{local}:{remote}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=kubectl.env,
    )
    try:
        assert forwarding.stdout is not None
        await asyncio.wait_for(forwarding.stdout.readline(), 10)
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        _, err = await asyncio.wait_for(forwarding.communicate(), 10)
    finally:
        if forwarding.returncode is None:
            forwarding.terminate()
            await forwarding.wait()
    assert forwarding.returncode == 1
    text = err.decode()
    assert f"an error occurred forwarding {local} -> {remote}: error forwarding port {remote} to pod" in text
    assert "connection refused" in text
    assert "error: lost connection to pod" in text


# -- refusals ----------------------------------------------------------------------------------------


async def test_refusals_kubectl_shows(
    kubectl: Kubectl, kubelet: LocalClient, node: HostNodeConnection
) -> None:
    await make_pod(kubelet, "elsewhere", node="node-2")
    err = await kubectl.fails("exec", "elsewhere", "--", "true")
    assert 'no kubelet is connected for node "node-2"' in err

    await make_pod(kubelet, "unscheduled", node=None, phase=None)
    err = await kubectl.fails("exec", "unscheduled", "--", "true")
    assert "pod unscheduled does not have a host assigned" in err

    await make_pod(kubelet, "starting", phase=None)
    err = await kubectl.fails("exec", "starting", "--", "true")
    assert 'container not found ("main")' in err
    err = await kubectl.fails("logs", "starting")
    assert 'container "main" in pod "starting" is waiting to start: ContainerCreating' in err


# -- the official Python client ------------------------------------------------------------------------


@pytest.fixture
def core(server: Served) -> client.CoreV1Api:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=configuration)
    return client.CoreV1Api(client.ApiClient(configuration))


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v5.channel.k8s.io"])
async def test_python_client_exec(core: client.CoreV1Api, pod: str, protocol: str) -> None:
    headers = {"sec-websocket-protocol": protocol}
    out = await call(
        stream,
        core.connect_get_namespaced_pod_exec,
        pod,
        "default",
        command=["sh", "-c", "echo hello; echo there >&2"],
        stdout=True,
        stderr=True,
        _headers=headers,
    )
    assert sorted(out.splitlines()) == ["hello", "there"]

    def run_failing() -> tuple[str, int | None, str | None]:
        session = stream(
            core.connect_get_namespaced_pod_exec,
            pod,
            "default",
            command=["sh", "-c", "read x; echo got $x; exit 4"],
            stdin=True,
            stdout=True,
            stderr=True,
            _preload_content=False,
            _headers=headers,
        )
        session.write_stdin("value\n")
        session.run_forever(timeout=10)
        return session.read_stdout(), session.returncode, session.subprotocol

    stdout, code, negotiated = await call(run_failing)
    assert (stdout, code, negotiated) == ("got value\n", 4, protocol)


async def test_python_client_port_forward_and_errors(
    core: client.CoreV1Api, kubelet: LocalClient, pod: str
) -> None:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = echo.sockets[0].getsockname()[1]

    def round_trip() -> bytes:
        forward = portforward(core.connect_get_namespaced_pod_portforward, pod, "default", ports=str(port))
        sock = forward.socket(port)
        sock.settimeout(10)
        sock.sendall(b"ping")
        data = b""
        while len(data) < 4:
            data += sock.recv(1024)
        sock.close()
        return data

    try:
        assert await call(round_trip) == b"ping"
    finally:
        echo.close()

    with pytest.raises(ApiException) as invalid:
        await call(core.read_namespaced_pod_log, pod, "default", container="nope")
    assert invalid.value.status == 400
    assert json.loads(invalid.value.body or "{}")["message"] == f"container nope is not valid for pod {pod}"

    with pytest.raises(ApiException) as negative:
        await call(core.read_namespaced_pod_log, pod, "default", tail_lines=-1)
    assert negative.value.status == 422
    assert "tailLines: Invalid value: -1: must be greater than or equal to 0" in (negative.value.body or "")

    await make_pod(kubelet, "unscheduled", node=None, phase=None)
    assert await call(core.read_namespaced_pod_log, "unscheduled", "default") == ""
