"""Streams of the Docker runtime: container logs, exec, attach and port-forward.

Logs are read raw from Docker's log endpoint (aiodocker's ``log()`` decodes to text and drops
undecodable bytes) and demultiplexed from Docker's 8-byte stream framing. Exec and attach run over
aiodocker's hijacked connection; a session's ``wait`` polls the exec (or container) with a growing
delay that wakes early when the output ends. Docker cannot kill an exec'd process, so closing an exec
kills it by pid when this host provably owns it. Port-forward connects to the pod IP directly (the
host reaches pods on the cluster bridge).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer
from aiodocker.execs import Exec
from aiodocker.stream import Stream

from kbox.api.nodeconnection import ExecSession, LogOptions
from kbox.kubelet.runtime.dockererrors import translated
from kbox.kubelet.runtime.dockerspec import epoch
from kbox.kubelet.runtime.interface import ContainerRuntimeError, SandboxStatus

_POLL_MAX_S = 0.5


async def logs(docker: aiodocker.Docker, container_id: str, options: LogOptions) -> AsyncIterator[bytes]:
    """The container's log bytes per ``options`` (follow, tail, since, timestamps, limitBytes)."""
    what = f"reading the logs of container {container_id[:12]}"
    params: dict[str, Any] = {
        "stdout": True,
        "stderr": True,
        "follow": options.follow,
        "timestamps": options.timestamps,
        "tail": "all" if options.tail_lines is None else str(max(0, options.tail_lines)),
    }
    since = 0.0
    if options.since_seconds is not None:
        since = time.time() - options.since_seconds
    elif options.since_time:
        since = epoch(options.since_time)
        if not since:
            raise ContainerRuntimeError(f"sinceTime {options.since_time!r} is not an RFC 3339 time")
    if since:
        params["since"] = f"{since:.9f}"
    left = options.limit_bytes if options.limit_bytes is not None else -1
    with translated(what):
        info = await docker.containers.container(container_id).show()
        # aiodocker's log() decodes to text (dropping undecodable bytes); read the raw stream instead.
        response = await docker._do_query(
            f"containers/{container_id}/logs", method="GET", params=params, timeout=None
        )
    try:
        with translated(what):
            async for chunk in _demultiplex(response, tty=bool(info["Config"].get("Tty"))):
                if left >= 0:
                    chunk = chunk[:left]
                    left -= len(chunk)
                if chunk:
                    yield chunk
                if left == 0:
                    return
    finally:
        response.close()


async def exec_in(
    docker: aiodocker.Docker, container_id: str, command: list[str], *, stdin: bool, tty: bool
) -> ExecSession:
    """Run ``command`` in the container; the session streams its output and reports its exit code."""
    with translated(f"exec in container {container_id[:12]}"):
        container = docker.containers.container(container_id)
        ex = await container.exec(command, stdout=True, stderr=True, stdin=stdin, tty=tty)
        session = _ExecSession(docker, container_id, ex, ex.start(detach=False))
        await session.open()
    return session


async def attach(docker: aiodocker.Docker, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
    """Attach to the container's main process (its stdin if it has one open, and its output)."""
    with translated(f"attaching to container {container_id[:12]}"):
        container = docker.containers.container(container_id)
        session = _AttachSession(container, container.attach(stdin=stdin, stdout=True, stderr=True))
        await session.open()
    return session


async def port_forward(
    sandbox: SandboxStatus, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to ``port`` of the pod, at its IP on the cluster bridge."""
    host = sandbox.ip or "127.0.0.1"  # a host-network pod listens on the host
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout=10)
    except OSError as e:  # refused, unreachable, timed out
        raise ContainerRuntimeError(
            f"cannot connect to port {port} of pod {sandbox.pod.namespace}/{sandbox.pod.name} at "
            f"{host}:{port}: {e.strerror or e or type(e).__name__}",
            reason="PortForwardError",
        ) from e


async def _demultiplex(response: aiohttp.ClientResponse, *, tty: bool) -> AsyncIterator[bytes]:
    """The payloads of Docker's stream framing (8-byte header: stream, 0, 0, 0, length); tty: raw."""
    if tty:
        async for chunk in response.content.iter_any():
            yield chunk
        return
    while True:
        try:
            header = await response.content.readexactly(8)
            _, length = struct.unpack(">BxxxL", header)
            data = await response.content.readexactly(length) if length else b""
        except asyncio.IncompleteReadError:
            return
        if data:
            yield data


def _pid_in_container(pid: int, container_id: str) -> str | None:
    """The in-container pid of host process ``pid`` if it runs in the container ("" if unknown), else None."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            if container_id not in f.read():
                return None
        with open(f"/proc/{pid}/status") as f:
            return next((line.split()[-1] for line in f if line.startswith("NSpid:")), "")
    except OSError:
        return None


class _StreamSession(ExecSession):
    """An exec or attach over aiodocker's hijacked connection (stdout 1, stderr 2; a tty: all on 1)."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._eof = asyncio.Event()
        self._closed = False

    async def open(self) -> None:
        await self._stream.__aenter__()  # connects; the process starts now, read or not

    async def write_stdin(self, data: bytes) -> None:
        if self._closed:
            raise ContainerRuntimeError("the session is closed")
        with translated("writing to stdin"):
            await self._stream.write_in(data)

    async def close_stdin(self) -> None:
        # Half-close: the process sees EOF on stdin while its output still arrives. aiodocker's
        # Stream.close() would drop the whole connection, so reach for its transport.
        response = self._stream._resp
        transport = response.connection.transport if response and response.connection else None
        if transport is not None and transport.can_write_eof():
            transport.write_eof()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while True:
            try:
                message = await self._stream.read_out()
            except (aiohttp.ClientError, OSError):
                message = None
            if message is None:
                self._eof.set()
                return
            yield (message.stream if message.stream in (1, 2) else 1), message.data

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay``, waking early when the output ends (then the process has exited or is about to)."""
        if self._eof.is_set():
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._eof.wait(), delay)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._eof.set()
            await self._stream.close()


class _ExecSession(_StreamSession):
    def __init__(self, docker: aiodocker.Docker, container_id: str, ex: Exec, stream: Stream) -> None:
        super().__init__(stream)
        self._docker = docker
        self._container_id = container_id
        self._exec = ex

    async def resize(self, width: int, height: int) -> None:
        with contextlib.suppress(aiodocker.DockerError):  # best effort: no tty, or already ended
            await self._exec.resize(w=width, h=height)

    async def wait(self) -> int:
        delay = 0.01
        while True:
            with translated("inspecting an exec"):
                info = await self._exec.inspect()
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            await self._pause(delay)
            delay = min(delay * 2, _POLL_MAX_S)

    async def close(self) -> None:
        if self._closed:
            return
        await super().close()  # stdin EOF and, with a tty, a hangup: most commands end here
        with contextlib.suppress(aiodocker.DockerError, aiohttp.ClientError, OSError):
            async with asyncio.timeout(2):
                while True:
                    info = await self._exec.inspect()
                    if not info.get("Running") and info.get("ExitCode") is not None:
                        return
                    if info.get("Pid"):  # 0 until Docker has spawned the process
                        await self._kill(int(info["Pid"]))
                        return
                    await asyncio.sleep(0.02)

    async def _kill(self, pid: int) -> None:
        """Kill the exec'd process (Docker has no API for it), if ``pid`` provably is it on this host.

        The pid is the daemon's view; it is ours only if /proc/<pid>/cgroup names the container (same
        host and pid namespace). Without the right to signal it, ``kill`` runs inside the container.
        """
        nspid = await asyncio.to_thread(_pid_in_container, pid, self._container_id)
        if nspid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except PermissionError:
            if nspid:
                container = self._docker.containers.container(self._container_id)
                killer = await container.exec(["kill", "-KILL", nspid], stdout=False, stderr=False)
                await killer.start(detach=True)
        except ProcessLookupError:
            pass


class _AttachSession(_StreamSession):
    def __init__(self, container: DockerContainer, stream: Stream) -> None:
        super().__init__(stream)
        self._container = container

    async def resize(self, width: int, height: int) -> None:
        with contextlib.suppress(aiodocker.DockerError):
            await self._container.resize(w=width, h=height)

    async def wait(self) -> int:
        """The exit code once the container's process ends; 0 if it keeps running after the attach ended."""
        delay, settled = 0.01, 0.0
        while True:
            with translated("inspecting an attached container"):
                state = (await self._container.show())["State"]
            if not state.get("Running"):
                return int(state.get("ExitCode") or 0)
            if self._eof.is_set():
                settled += delay
                if settled > 1.0:
                    return 0
            await self._pause(delay)
            delay = min(delay * 2, _POLL_MAX_S)
