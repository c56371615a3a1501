"""The client side of the streaming protocols (kbox.cli.kube.streams) against kbox's real apiserver.

The server is the in-process control plane (``tests.support.apiserver.served``) with a
``HostNodeConnection`` as the pod's node: exec'd commands run as local processes and port-forward dials
127.0.0.1, so what is tested is the framing both ways: output channels, the exit code from the status
channel, stdin and its end (v5), the v4 fallback, resize messages, refusals read back as the server's
Status, the port-forward tunnel with its error channel; and the pure parts: port pairs, selectors,
kubectl's pod order and container choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import click
import pytest
from aiohttp import web

from kbox.api.errors import StatusError
from kbox.cli.kube import logs, session, streams
from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.profile import Profile
from tests.support.apiserver import Served, served
from tests.support.hostnode import HostNodeConnection


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture
async def node(server: Served) -> AsyncIterator[HostNodeConnection]:
    connection = HostNodeConnection(attach_command=["sh", "-c", 'while read l; do echo "got $l"; done'])
    server.plane.catalog.node_connections.register("node-1", connection)
    yield connection
    await connection.close()


@pytest.fixture
async def api(server: Served, tmp_path: Path) -> AsyncIterator[session.Api]:
    a = session.Api(
        profile=Profile("unit", tmp_path),
        url=server.url,
        namespace="default",
        token=server.token,
        ca_file=str(server.ca_file),
    )
    yield a
    await a.close()


@pytest.fixture
def kubelet(server: Served) -> LocalClient:
    return LocalClient(server.plane.catalog, field_manager="kubelet")


async def make_pod(
    kubelet: LocalClient,
    name: str,
    *,
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    containers: tuple[str, ...] = ("main",),
    node: str | None = "node-1",
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers]},
    }
    await kubelet.create(interface.PODS, pod, namespace="default")
    if node is not None:
        await kubelet.bind(name, node, namespace="default")
    await kubelet.patch(
        interface.PODS, name, {"status": {"phase": phase}}, namespace="default", subresource="status"
    )


class Collected:
    def __init__(self) -> None:
        self.data = b""

    async def __call__(self, chunk: bytes) -> None:
        self.data += chunk


async def chunks(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def exec_url(api: session.Api, pod: str, sub: str = "exec") -> str:
    return f"{api.url}/api/v1/namespaces/default/pods/{pod}/{sub}"


def command(*argv: str) -> list[tuple[str, str]]:
    return [("command", a) for a in argv] + [("container", "main"), ("stdout", "true"), ("stderr", "true")]


# -- exec and attach ---------------------------------------------------------------------------------


class Ran(NamedTuple):
    """What one exec or attach session gave: the protocol agreed on, stdout, stderr and the exit code."""

    protocol: str | None
    out: bytes
    err: bytes
    code: int | None


async def run_session(
    api: session.Api,
    params: list[tuple[str, str]],
    *,
    sub: str = "exec",
    protocols: tuple[str, ...] = streams.EXEC_PROTOCOLS,
    stdin: AsyncIterator[bytes] | None = None,
    sizes: AsyncIterator[tuple[int, int]] | None = None,
) -> Ran:
    """Open ``sub`` of pod p and relay it to the end (20 s at most, should the session hang)."""
    ws = await streams.connect(api.session, exec_url(api, "p", sub), params=params, protocols=protocols)
    out, err = Collected(), Collected()
    status = await asyncio.wait_for(
        streams.relay_session(ws, stdout=out, stderr=err, stdin=stdin, sizes=sizes), 20
    )
    return Ran(ws.protocol, out.data, err.data, None if status is None else streams.exit_code(status))


async def test_exec_relays_stdout_stderr_and_the_exit_code(
    api: session.Api, node: HostNodeConnection, kubelet: LocalClient
) -> None:
    await make_pod(kubelet, "p")
    ran = await run_session(api, command("sh", "-c", "echo out; echo err >&2; exit 3"))
    assert ran == Ran(streams.V5, b"out\n", b"err\n", 3)


async def test_stdin_and_its_end_reach_the_command(
    api: session.Api, node: HostNodeConnection, kubelet: LocalClient
) -> None:
    await make_pod(kubelet, "p")
    # cat ends only because the end of stdin is passed on (v5's close message).
    ran = await run_session(api, [*command("cat"), ("stdin", "true")], stdin=chunks(b"hi\n", b"there\n"))
    assert (ran.out, ran.code) == (b"hi\nthere\n", 0)


async def test_v4_sessions_work_without_the_close_message(
    api: session.Api, node: HostNodeConnection, kubelet: LocalClient
) -> None:
    await make_pod(kubelet, "p")
    ran = await run_session(api, command("echo", "old"), protocols=(streams.V4,), stdin=chunks(b"ignored"))
    assert (ran.protocol, ran.out, ran.code) == (streams.V4, b"old\n", 0)


async def test_resize_messages_reach_the_terminal(
    api: session.Api, node: HostNodeConnection, kubelet: LocalClient
) -> None:
    await make_pod(kubelet, "p")
    wait = 'for i in $(seq 50); do [ "$(stty size)" = "40 120" ] && break; sleep 0.1; done; stty size'
    params = [("command", "sh"), ("command", "-c"), ("command", wait), ("stdout", "true"), ("tty", "true")]

    async def sizes() -> AsyncIterator[tuple[int, int]]:
        yield 120, 40
        await asyncio.Event().wait()  # a terminal that never changes again

    ran = await run_session(api, params, sizes=sizes())
    assert b"40 120" in ran.out
    assert (120, 40) in node.resizes
    assert ran.code == 0


async def test_attach_relays_the_main_process(
    api: session.Api, node: HostNodeConnection, kubelet: LocalClient
) -> None:
    await make_pod(kubelet, "p")
    params = [("container", "main"), ("stdout", "true"), ("stdin", "true")]
    ran = await run_session(api, params, sub="attach", stdin=chunks(b"a\n", b"b\n"))
    assert (ran.out, ran.code) == (b"got a\ngot b\n", 0)


async def test_a_refused_upgrade_reads_back_the_servers_status(
    api: session.Api, node: HostNodeConnection, kubelet: LocalClient
) -> None:
    await make_pod(kubelet, "done", phase="Succeeded")
    with pytest.raises(StatusError) as caught:
        await streams.connect(
            api.session, exec_url(api, "done"), params=command("true"), protocols=streams.EXEC_PROTOCOLS
        )
    assert (
        caught.value.message == "cannot exec into a container in a completed pod; current phase is Succeeded"
    )

    # A refusal that happens after the pod checks (the node's own) is remembered for the second ask.
    await make_pod(kubelet, "lost", node="node-2")
    with pytest.raises(StatusError) as caught:
        await streams.connect(
            api.session, exec_url(api, "lost"), params=command("true"), protocols=streams.EXEC_PROTOCOLS
        )
    assert caught.value.message == 'no kubelet is connected for node "node-2"'
    assert caught.value.code == 503


def test_exit_codes_from_statuses() -> None:
    assert streams.exit_code({"status": "Success"}) == 0
    failure = {
        "status": "Failure",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "42"}]},
    }
    assert streams.exit_code(failure) == 42
    with pytest.raises(StatusError, match="boom"):
        streams.exit_code({"status": "Failure", "reason": "InternalError", "message": "boom", "code": 500})


def test_frames() -> None:
    assert streams.frame(streams.STDIN, b"x") == b"\x00x"
    assert streams.stdin_closed_frame() == b"\xff\x00"
    sent = streams.resize_frame(80, 24)
    assert sent[0] == streams.RESIZE and json.loads(sent[1:]) == {"Width": 80, "Height": 24}


# -- port-forward --------------------------------------------------------------------------------------


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readline()
        writer.write(b"echo " + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@contextlib.asynccontextmanager
async def tunnelled(
    api: session.Api, port: int
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter, list[str]]]:
    """A connection to a local listener whose connections ``streams.tunnel`` carries to ``port`` of pod
    p, and the list the tunnels' results go to."""
    url = exec_url(api, "p", "portforward")
    results: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        results.append(await streams.tunnel(api.session, url, port, reader, writer))

    local = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", local.sockets[0].getsockname()[1])
        yield reader, writer, results
        writer.close()
    finally:
        local.close()


async def test_a_tunnel_carries_bytes_both_ways(
    api: session.Api, node: HostNodeConnection, kubelet: LocalClient
) -> None:
    await make_pod(kubelet, "p")
    target, port = await _echo_server()
    try:
        async with tunnelled(api, port) as (reader, writer, results):
            writer.write(b"ping\n")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 20) == b"echo ping\n"
    finally:
        target.close()
    assert results == [""]


async def test_a_tunnel_to_a_closed_port_returns_the_error(
    api: session.Api, node: HostNodeConnection, kubelet: LocalClient
) -> None:
    await make_pod(kubelet, "p")
    target, port = await _echo_server()
    target.close()
    await target.wait_closed()
    async with tunnelled(api, port) as (reader, _, results):
        assert await asyncio.wait_for(reader.read(), 20) == b""  # the local connection is closed
    assert len(results) == 1
    assert results[0].startswith(f"error forwarding port {port} to pod default/p, uid ")
    assert "connection refused" in results[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080:80", (8080, "80")),
        ("80", (None, "80")),
        (":80", (0, "80")),
        ("0:80", (0, "80")),
        ("9000:http", (9000, "http")),
        ("http", (None, "http")),
    ],
)
def test_port_pairs(text: str, expected: tuple[int | None, str]) -> None:
    assert streams.parse_port_pair(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8080:", "remote port cannot be empty"),
        ("x:80", 'error parsing local port "x"'),
        ("70000", "must be > 0 and < 65536"),
    ],
)
def test_bad_port_pairs(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        streams.parse_port_pair(text)


# -- which pod and container ---------------------------------------------------------------------------


def test_selectors_of_workloads_and_services() -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["b", "a"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            }
        },
    }
    assert streams.selector_of(deployment) == "app=web,tier in (a,b),!canary"
    assert streams.selector_of({"kind": "Service", "spec": {"selector": {"b": "2", "a": "1"}}}) == "a=1,b=2"
    with pytest.raises(click.ClickException, match="Service is defined without a selector"):
        streams.selector_of({"kind": "Service", "metadata": {"name": "ext"}, "spec": {}})
    with pytest.raises(click.ClickException, match="selector for ConfigMap not implemented"):
        streams.selector_of({"kind": "ConfigMap", "metadata": {"name": "c"}})


async def test_a_workload_resolves_to_its_pod_in_kubectls_order(
    api: session.Api,
    server: Served,
    node: HostNodeConnection,
    kubelet: LocalClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await make_pod(kubelet, "pending", labels={"app": "w"}, phase="Pending", node=None)
    await make_pod(kubelet, "running", labels={"app": "w"})
    await make_pod(kubelet, "other", labels={"app": "x"})
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "w"},
        "spec": {"selector": {"app": "w"}, "ports": [{"port": 80}]},
    }
    await kubelet.create(interface.Resource("", "v1", "services"), service, namespace="default")

    pod = await streams.target_pod(api, "svc/w", "default", for_logs=True, wait_seconds=1)
    assert pod["metadata"]["name"] == "running"
    assert "Found 2 pods, using pod/running" in capsys.readouterr().err
    pod = await streams.target_pod(api, "services/w", "default", for_logs=False, wait_seconds=1)
    assert pod["metadata"]["name"] == "running"
    pod = await streams.target_pod(api, "pending", "default", for_logs=False, wait_seconds=1)
    assert pod["metadata"]["name"] == "pending"
    with pytest.raises(StatusError, match='pods "nope" not found'):
        await streams.target_pod(api, "nope", "default", for_logs=False, wait_seconds=1)


async def test_a_workload_without_pods_waits_for_one(
    api: session.Api, node: HostNodeConnection, kubelet: LocalClient
) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "late"},
        "spec": {"selector": {"app": "late"}, "ports": [{"port": 80}]},
    }
    await kubelet.create(interface.Resource("", "v1", "services"), service, namespace="default")
    with pytest.raises(click.ClickException, match="timed out waiting for the condition"):
        await streams.target_pod(api, "svc/late", "default", for_logs=False, wait_seconds=0.3)
    waiting = asyncio.ensure_future(
        streams.target_pod(api, "svc/late", "default", for_logs=False, wait_seconds=20)
    )
    await make_pod(kubelet, "late-1", labels={"app": "late"})
    assert (await asyncio.wait_for(waiting, 20))["metadata"]["name"] == "late-1"


def _pod(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": fields.get("created", "2026-01-01T00:00:00Z")},
        "spec": {"nodeName": fields.get("node", "n1"), "containers": [{"name": "c"}]},
        "status": {
            "phase": fields.get("phase", "Running"),
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": fields["ready"]}]
            if "ready" in fields
            else [],
            "containerStatuses": [{"name": "c", "restartCount": fields.get("restarts", 0)}],
        },
    }


def test_kubectls_pod_orders() -> None:
    pods = [
        _pod("unscheduled", node=""),
        _pod("pending", phase="Pending"),
        _pod("ready-late", ready="2026-01-02T00:00:00Z"),
        _pod("ready-early", ready="2026-01-01T00:00:00Z"),
        _pod("running-restarted", restarts=3),
        _pod("running", restarts=0),
    ]
    for_logs = sorted(pods, key=streams._logging_order)
    assert [p["metadata"]["name"] for p in for_logs] == [
        "ready-early",
        "ready-late",
        "running-restarted",
        "running",
        "pending",
        "unscheduled",
    ]
    active = sorted(pods, key=streams._activity_order)
    assert [p["metadata"]["name"] for p in active][:4] == [
        "ready-early",
        "ready-late",
        "running",
        "running-restarted",
    ]
    assert [p["metadata"]["name"] for p in active][-1] == "unscheduled"


def test_container_choice(capsys: pytest.CaptureFixture[str]) -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "setup"}]},
    }
    assert streams.choose_container(pod, None) == "a"
    assert capsys.readouterr().err == 'Defaulted container "a" out of: a, b, setup (init)\n'
    assert streams.choose_container(pod, "setup") == "setup"
    with pytest.raises(
        click.ClickException, match=r"container x is not valid for pod p out of: a, b, setup \(init\)"
    ):
        streams.choose_container(pod, "x")
    pod["metadata"]["annotations"] = {streams.DEFAULT_CONTAINER_ANNOTATION: "b"}
    assert streams.choose_container(pod, None) == "b"
    assert capsys.readouterr().err == ""


async def test_a_connection_failure_is_one_line() -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(streams.StreamError, match="unable to upgrade connection"):
            await streams.connect(http, "http://127.0.0.1:9/x", params=[], protocols=streams.EXEC_PROTOCOLS)


async def test_a_session_cut_without_a_status_is_a_lost_connection() -> None:
    async def cut(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=streams.EXEC_PROTOCOLS)
        await ws.prepare(request)
        await ws.send_bytes(streams.frame(streams.STDOUT, b"partial"))
        await ws.close(code=aiohttp.WSCloseCode.INTERNAL_ERROR)
        return ws

    async def no_protocol(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/cut", cut)
    app.router.add_get("/plain", no_protocol)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            ws = await streams.connect(
                http, f"http://127.0.0.1:{port}/cut", params=[], protocols=streams.EXEC_PROTOCOLS
            )
            out = Collected()
            with pytest.raises(streams.StreamError, match="lost connection to the server"):
                await streams.relay_session(ws, stdout=out, stderr=Collected())
            assert out.data == b"partial"
            with pytest.raises(streams.StreamError, match="the server chose no protocol"):
                await streams.connect(
                    http, f"http://127.0.0.1:{port}/plain", params=[], protocols=streams.EXEC_PROTOCOLS
                )
    finally:
        await runner.cleanup()


# -- kbox logs' own helpers (the log file's tail, durations) -------------------------------------------


@pytest.mark.parametrize(
    ("content", "lines", "expected"),
    [
        (b"a\nb\nc\n", 2, b"b\nc\n"),
        (b"a\nb\nc", 2, b"b\nc"),  # no newline at the end
        (b"a\nb\n", 5, b"a\nb\n"),
        (b"a\nb\n", 0, b""),
        (b"a\nb\n", -1, b"a\nb\n"),
        (b"", 3, b""),
        (b"x" * 70000 + b"\n" + b"y" * 70000 + b"\n", 1, b"y" * 70000 + b"\n"),  # across read blocks
    ],
)
def test_tail_of_a_file(tmp_path: Path, content: bytes, lines: int, expected: bytes) -> None:
    path = tmp_path / "kbox.log"
    path.write_bytes(content)
    assert content[logs._tail_offset(path, lines) :] == expected


def test_durations() -> None:
    assert logs.parse_duration("5m") == 300
    assert logs.parse_duration("1h30m10s") == 5410
    assert logs.parse_duration("1.5s") == 1.5
    for bad in ("", "5", "m", "5x", "1h 2m"):
        with pytest.raises(click.ClickException, match="invalid duration"):
            logs.parse_duration(bad)
