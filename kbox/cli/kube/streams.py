"""The client side of the streaming pod subresources: which pod and container a command means, the
wire protocols, and writing their output without blocking the event loop.

exec and attach speak the WebSocket channel protocol (the server side is
``kbox/api/streaming/channels.py``): every binary message starts with a channel byte, 0 stdin, 1 stdout,
2 stderr, 3 the final ``Status``, 4 the terminal size as ``{"Width":W,"Height":H}``; with
``v5.channel.k8s.io`` the two bytes ``[255, 0]`` tell the server that stdin has ended, which ``v4`` has
no way to say. port-forward uses the channel form of ``portforward.k8s.io`` (one WebSocket per local
connection, ``?ports=P``): channel 0 carries the data and channel 1 the error text, and each opens with
the port as two little-endian bytes.

Output goes through the loop's executor one chunk at a time: the loop never blocks on a slow reader,
stdout and stderr keep their order, and a reader that falls behind slows the stream down.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import math
import os
import sys
from collections.abc import AsyncIterable, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO

import aiohttp
import click
import msgspec

from kbox.api.errors import StatusError
from kbox.cli.kube import session
from kbox.client import interface
from kbox.util import aiotasks

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
EXEC_PROTOCOLS = (V5, V4)
PORT_FORWARD_PROTOCOLS = (V4,)

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255  # v5: [CLOSE, channel] ends that channel (stdin's EOF)
PORT_DATA, PORT_ERROR = 0, 1

CHUNK = 32 * 1024
MAX_MESSAGE = 16 * 1024 * 1024
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"

Sink = Callable[[bytes], Awaitable[None]]
Params = Sequence[tuple[str, str]]


class StreamError(click.ClickException):
    """A stream that failed with no Status behind it: shown as one line, like any ClickException."""


# -- which pod and which container --------------------------------------------------------------------


async def target_pod(
    api: session.Api, target: str, namespace: str, *, for_logs: bool, wait_seconds: float
) -> dict[str, Any]:
    """The pod ``POD`` or ``TYPE/NAME`` names, as kubectl picks it.

    For a workload (deployment, replicaset, statefulset, daemonset, job, replicationcontroller, service)
    its selector lists the pods, and the one to use is the first in kubectl's order: for logs the pod
    most worth reading (scheduled, running, ready longest, most restarts, oldest), for exec, attach and
    port-forward the most active one. With no pod yet it waits up to ``wait_seconds`` for one."""
    kind, slash, name = target.partition("/")
    if not slash:
        kind, name = "pods", target
    if not name:
        raise click.ClickException(
            f"arguments in resource/name form must have a single resource and name: {target}"
        )
    info = await api.resolve(kind)
    if info.kind == "Pod":
        pod: dict[str, Any] = await api.request("GET", info.path(namespace, name))
        return pod
    obj = await api.request("GET", info.path(namespace, name))
    selector = selector_of(obj)
    pods = await _pods_waiting(api, namespace, selector, wait_seconds)
    if for_logs:
        pods.sort(key=_logging_order)
    else:
        pods.sort(key=_activity_order)
    if for_logs and len(pods) > 1:
        click.echo(f"Found {len(pods)} pods, using pod/{pods[0]['metadata']['name']}", err=True)
    return pods[0]


def pod_options(pod_running_timeout: float) -> Callable[[session.F], session.F]:
    """``-n/--namespace`` and ``--pod-running-timeout``: where a ``POD|TYPE/NAME`` command finds its pod."""

    def add(f: session.F) -> session.F:
        f = click.option(
            "--pod-running-timeout",
            default=pod_running_timeout,
            type=float,
            metavar="SECONDS",
            help="How long to wait for a pod of TYPE/NAME to appear.",
        )(f)
        return click.option(
            "--namespace", "-n", default=None, metavar="NS", help="The namespace (default: the context's)."
        )(f)

    return add


async def live_container(
    api: session.Api,
    target: str,
    namespace: str,
    container: str | None,
    *,
    quiet: bool,
    wait_seconds: float,
    verb: str,
) -> tuple[dict[str, Any], str]:
    """The pod ``target`` names and the container chosen in it, for exec and attach; a pod that has
    finished cannot be ``verb``-ed (``cannot exec into a container in a completed pod``)."""
    pod = await target_pod(api, target, namespace, for_logs=False, wait_seconds=wait_seconds)
    chosen = choose_container(pod, container, quiet=quiet)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise click.ClickException(f"cannot {verb} a container in a completed pod; current phase is {phase}")
    return pod, chosen


async def pod_url(api: session.Api, namespace: str, pod: Mapping[str, Any], sub: str) -> str:
    """The URL of one of the pod's streaming subresources (exec, attach, portforward)."""
    return api.url + (await api.resolve("pods")).path(namespace, pod["metadata"]["name"], sub)


def selector_of(obj: Mapping[str, Any]) -> str:
    """The label selector (as a query string) of a workload or a Service."""
    kind = str(obj.get("kind") or "")
    spec = obj.get("spec") or {}
    name = (obj.get("metadata") or {}).get("name", "")
    if kind in ("Service", "ReplicationController"):
        labels = spec.get("selector") or {}
        if not labels:
            raise click.ClickException(f"invalid service '{name}': Service is defined without a selector")
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    if kind not in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"):
        raise click.ClickException(f"cannot find the pods of a {kind}: selector for {kind} not implemented")
    selector = spec.get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = ",".join(sorted(expression.get("values") or []))
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise click.ClickException(
                f'invalid label selector: "{operator}" is not a valid selector operator'
            )
    if not parts:
        raise click.ClickException(f"{kind.lower()} {name} selects no pods: its selector is empty")
    return ",".join(parts)


async def _pods_waiting(
    api: session.Api, namespace: str, selector: str, wait_seconds: float
) -> list[dict[str, Any]]:
    """The selected pods; with none yet, wait (watching) up to ``wait_seconds`` for the first one."""
    listed = await api.client.list(interface.PODS, namespace=namespace, label_selector=selector)
    pods: list[dict[str, Any]] = list(listed.get("items") or [])
    if pods:
        return pods
    version = str((listed.get("metadata") or {}).get("resourceVersion") or "")

    async def first() -> dict[str, Any]:
        async for event in api.client.watch(
            interface.PODS, namespace=namespace, label_selector=selector, resource_version=version
        ):
            if event.type in ("ADDED", "MODIFIED"):
                return event.object
        raise click.ClickException(f"no pods found for selector {selector}")

    try:
        return [await asyncio.wait_for(first(), wait_seconds)]
    except TimeoutError:
        raise click.ClickException(
            f"timed out waiting for the condition: no pod matches {selector} in namespace {namespace}"
        ) from None


def _time(value: Any, empty: float) -> float:
    if not value:
        return empty
    try:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return empty


def _ready_since(pod: Mapping[str, Any]) -> float | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return _time(condition.get("lastTransitionTime"), math.inf)
    return None


def _max_restarts(pod: Mapping[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _logging_order(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """kubectl's order for logs: scheduled, Running (then Unknown, then Pending), ready, ready longest,
    most restarts, oldest."""
    phase = (pod.get("status") or {}).get("phase")
    ready = _ready_since(pod)
    return (
        not (pod.get("spec") or {}).get("nodeName"),
        {"Unknown": 1, "Pending": 2}.get(str(phase), 0),
        ready is None,
        ready if ready is not None else 0.0,
        -_max_restarts(pod),
        _time((pod.get("metadata") or {}).get("creationTimestamp"), math.inf),
    )


def _activity_order(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """kubectl's order for exec, attach and port-forward (the most active pod first): scheduled,
    Running (then Unknown, then the rest), ready, not being deleted, ready longest, fewest restarts,
    oldest."""
    metadata = pod.get("metadata") or {}
    phase = (pod.get("status") or {}).get("phase")
    ready = _ready_since(pod)
    deleting = metadata.get("deletionTimestamp")
    return (
        not (pod.get("spec") or {}).get("nodeName"),
        {"Running": 0, "Unknown": 1}.get(str(phase), 2),
        ready is None,
        bool(deleting),
        -_time(deleting, 0.0),
        ready if ready is not None else 0.0,
        _max_restarts(pod),
        _time(metadata.get("creationTimestamp"), math.inf),
    )


def all_container_names(pod: Mapping[str, Any]) -> str:
    """``a, b, debug (ephem), setup (init)``, as kubectl lists a pod's containers."""
    spec = pod.get("spec") or {}
    names = [str(c.get("name")) for c in spec.get("containers") or []]
    names += [f"{c.get('name')} (ephem)" for c in spec.get("ephemeralContainers") or []]
    names += [f"{c.get('name')} (init)" for c in spec.get("initContainers") or []]
    return ", ".join(names)


def choose_container(pod: Mapping[str, Any], requested: str | None, *, quiet: bool = False) -> str:
    """``-c``, else the default-container annotation, else the first container (saying so on stderr
    when there was a choice), as kubectl chooses."""
    spec = pod.get("spec") or {}
    metadata = pod.get("metadata") or {}
    containers = spec.get("containers") or []
    if not containers:
        raise click.ClickException(
            f"pod {metadata.get('namespace')}/{metadata.get('name')} does not have any containers"
        )
    name = requested or (metadata.get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    if name:
        known = [
            c.get("name")
            for field in ("containers", "initContainers", "ephemeralContainers")
            for c in spec.get(field) or []
        ]
        if name not in known:
            raise click.ClickException(
                f"container {name} is not valid for pod {metadata.get('name')} "
                f"out of: {all_container_names(pod)}"
            )
        return str(name)
    first = str(containers[0].get("name"))
    several = len(containers) > 1 or spec.get("initContainers") or spec.get("ephemeralContainers")
    if several and not quiet:
        click.echo(f'Defaulted container "{first}" out of: {all_container_names(pod)}', err=True)
    return first


# -- framing -----------------------------------------------------------------------------------------


def frame(channel: int, data: bytes = b"") -> bytes:
    return bytes([channel]) + data


def resize_frame(width: int, height: int) -> bytes:
    return frame(RESIZE, json.dumps({"Width": width, "Height": height}).encode())


def stdin_closed_frame() -> bytes:
    return bytes([CLOSE, STDIN])


def exit_code(status: Mapping[str, Any]) -> int:
    """The command's exit code from the channel-3 ``Status``: 0 for ``Success``, the ``ExitCode`` cause of
    a ``NonZeroExitCode``; any other failure is raised as the ``StatusError`` it describes."""
    if status.get("status") == "Success":
        return 0
    details = status.get("details") or {}
    if status.get("reason") == "NonZeroExitCode":
        for cause in details.get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message", ""))
                except ValueError:
                    break
    raise StatusError(
        str(status.get("message") or "the command failed with an unknown error"),
        int(status.get("code") or 500),
        str(status.get("reason") or ""),
        details,
    )


# -- connecting --------------------------------------------------------------------------------------


async def connect(
    session: aiohttp.ClientSession, url: str, *, params: Params, protocols: Sequence[str]
) -> aiohttp.ClientWebSocketResponse:
    """Open the WebSocket, offering ``protocols`` in order of preference.

    A refused upgrade carries the server's ``Status`` in its body, which aiohttp does not hand back; so,
    as kubectl does when its WebSocket upgrade fails, the same URL is asked once more without an
    upgrade, and the server answers with the refusal it gave the first time (kbox remembers it for that
    purpose) or with the same pod check that failed."""
    try:
        ws = await session.ws_connect(
            url,
            params=list(params),
            protocols=protocols,
            autoping=True,
            max_msg_size=MAX_MESSAGE,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
        )
    except aiohttp.WSServerHandshakeError as exc:
        raise await _refusal(session, url, params, exc) from None
    except aiohttp.ClientConnectionError as exc:
        raise StreamError(f"unable to upgrade connection: {exc}") from None
    if ws.protocol not in protocols:
        await ws.close()
        raise StreamError(
            f"unable to upgrade connection: the server chose no protocol of {', '.join(protocols)}"
        )
    return ws


async def _refusal(
    session: aiohttp.ClientSession, url: str, params: Params, exc: aiohttp.WSServerHandshakeError
) -> Exception:
    try:
        async with session.post(url, params=list(params)) as response:
            raw = await response.read()
    except aiohttp.ClientError:
        raw = b""
    try:
        status = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        status = None
    message = status.get("message") if isinstance(status, dict) else None
    if isinstance(status, dict) and message and message != "Upgrade request required":
        return StatusError(
            str(message),
            int(status.get("code") or exc.status),
            str(status.get("reason") or ""),
            status.get("details") or {},
        )
    return StreamError(f"unable to upgrade connection: HTTP {exc.status} {exc.message}")


# -- exec and attach ---------------------------------------------------------------------------------


async def relay_session(
    ws: aiohttp.ClientWebSocketResponse,
    *,
    stdout: Sink,
    stderr: Sink,
    stdin: AsyncIterable[bytes] | None = None,
    sizes: AsyncIterable[tuple[int, int]] | None = None,
) -> dict[str, Any] | None:
    """Relay an exec or attach session until the server closes it; return the channel-3 ``Status``
    (None if the server closed without one).

    stdin and terminal sizes are sent from their own tasks; at the end of stdin a ``v5`` session tells
    the server (so ``cat`` ends), a ``v4`` one cannot and keeps waiting for the remote side."""
    lock = asyncio.Lock()

    async def send(data: bytes) -> None:
        async with lock:
            await ws.send_bytes(data)

    async def pump_stdin(source: AsyncIterable[bytes]) -> None:
        async for chunk in source:
            for offset in range(0, len(chunk), CHUNK):
                await send(frame(STDIN, chunk[offset : offset + CHUNK]))
        if ws.protocol == V5:
            await send(stdin_closed_frame())

    async def pump_sizes(source: AsyncIterable[tuple[int, int]]) -> None:
        async for width, height in source:
            await send(resize_frame(width, height))

    pumps = []
    if stdin is not None:
        pumps.append(aiotasks.create_guarded_task(_quietly(pump_stdin, stdin), name="kbox/exec/stdin"))
    if sizes is not None:
        pumps.append(aiotasks.create_guarded_task(_quietly(pump_sizes, sizes), name="kbox/exec/resize"))
    status: dict[str, Any] | None = None
    try:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.BINARY:
                continue  # text frames belong to the base64 protocols, which kbox never offers
            data = bytes(message.data)
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel == STDOUT:
                await stdout(payload)
            elif channel == STDERR:
                await stderr(payload)
            elif channel == ERROR and payload:
                decoded = msgspec.json.decode(payload)
                status = decoded if isinstance(decoded, dict) else None
    finally:
        await aiotasks.stop(pumps, title="exec streams", grace=1.0)
        await ws.close()
    if status is None and ws.close_code not in (None, 1000):
        raise StreamError(f"lost connection to the server (WebSocket closed with code {ws.close_code})")
    return status


async def _quietly(pump: Callable[..., Awaitable[None]], *args: Any) -> None:
    """A pump ends quietly when the connection goes (the receiving side reports that). The pump's
    coroutine is made here, so a task cancelled before it starts leaves no coroutine never awaited."""
    with contextlib.suppress(ConnectionError, aiohttp.ClientError):
        await pump(*args)


# -- port-forward --------------------------------------------------------------------------------------


async def tunnel(
    session: aiohttp.ClientSession,
    url: str,
    port: int,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> str:
    """Copy one local connection to ``port`` in the pod and back, over a WebSocket of its own, until
    either side ends; return the error text the server sent on the error channel ('' if none).

    The channel protocol has no half-close: the end of the local input cannot be passed on, so the
    tunnel lasts until the pod's side ends or the local side goes away."""
    ws = await connect(session, url, params=[("ports", str(port))], protocols=PORT_FORWARD_PROTOCOLS)
    errors: list[bytes] = []

    async def upstream() -> None:
        while chunk := await reader.read(CHUNK):
            await ws.send_bytes(frame(PORT_DATA, chunk))

    sending = aiotasks.create_guarded_task(_quietly(upstream), name=f"kbox/port-forward/{port}/upstream")
    opened: set[int] = set()
    try:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.BINARY:
                continue
            data = bytes(message.data)
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel not in opened:  # each channel's first bytes are the port, not data
                opened.add(channel)
                payload = payload[2:]
            if not payload:
                continue
            if channel == PORT_DATA:
                writer.write(payload)
                await writer.drain()
            elif channel == PORT_ERROR:
                errors.append(payload)
    except ConnectionError:
        pass  # the local client went away
    finally:
        await aiotasks.stop([sending], title="port-forward", grace=1.0)
        await ws.close()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return b"".join(errors).decode(errors="replace").strip()


def parse_port_pair(text: str) -> tuple[int | None, str]:
    """``[LOCAL:]REMOTE`` → (local port: None for the same as the remote one, 0 for any free one; the
    remote port, a number or a container port's name), as kubectl reads it."""
    local, sep, remote = text.rpartition(":")
    if not remote:
        raise ValueError("remote port cannot be empty")
    if remote.isdigit() and not 0 < int(remote) < 65536:
        raise ValueError(f'port "{remote}" must be > 0 and < 65536')
    if not sep:
        return None, remote
    if not local:
        return 0, remote
    try:
        local_port = int(local)
    except ValueError:
        raise ValueError(f'error parsing local port "{local}"') from None
    if not 0 <= local_port < 65536:
        raise ValueError(f'local port "{local}" must be >= 0 and < 65536')
    return local_port, remote


# -- local input and output --------------------------------------------------------------------------


def file_sink(stream: BinaryIO) -> Sink:
    """Write and flush each chunk through the loop's executor, one at a time."""

    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()

    async def sink(data: bytes) -> None:
        await asyncio.get_running_loop().run_in_executor(None, write, data)

    return sink


@contextlib.contextmanager
def quiet_broken_pipe() -> Iterator[None]:
    """A reader that goes away (``kbox logs POD | head``) ends the command quietly, as it ends kubectl;
    stdout is pointed at /dev/null so the interpreter's last flush does not complain either."""
    try:
        yield
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0) from None
