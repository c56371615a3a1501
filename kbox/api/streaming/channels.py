"""``pods/<name>/exec`` and ``pods/<name>/attach`` over the WebSocket channel protocol.

kubectl (1.30 and later) offers ``v5.channel.k8s.io``; the official Python client offers
``v4.channel.k8s.io``. Every message is binary and starts with a channel byte:

==== ================ =====================================================================
 0    client → server  stdin
 1    server → client  stdout (everything, with a tty)
 2    server → client  stderr
 3    server → client  one ``Status`` when the command ends (``NonZeroExitCode`` with the code)
 4    client → server  terminal size, ``{"Width":W,"Height":H}``
 255  client → server  v5 only: ``[255, ch]``, no more data on channel ``ch`` (stdin's EOF)
==== ================ =====================================================================

The session is started before the upgrade, so a refusal (no kubelet, container not running) is a plain
``Status`` response. After the last output the server sends the status and closes the socket, which is
what kubectl waits for; a client that goes away first ends the session (an exec'd process is killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from kbox.api import errors, objects
from kbox.api.nodeconnection import ExecSession, NodeConnection
from kbox.api.streaming import common

_log = logging.getLogger(__name__)

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255

MAX_MESSAGE = 16 * 1024 * 1024

_failures = common.UpgradeFailures()


class Options:
    """``PodExecOptions`` / ``PodAttachOptions`` from the query."""

    def __init__(self, query: Any, *, attach: bool) -> None:
        self.command: list[str] = [] if attach else list(query.getall("command", []))
        self.stdin = common.flag(query, "stdin")
        self.stdout = common.flag(query, "stdout")
        self.tty = common.flag(query, "tty")
        # As the kubelet does: a tty merges stderr into stdout.
        self.stderr = common.flag(query, "stderr") and not self.tty
        if not attach and not self.command:
            raise errors.bad_request("you must specify at least one command for the container")
        if not (self.stdin or self.stdout or self.stderr):
            raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")


async def serve(
    request: web.Request, pod: common.Pod, connection: NodeConnection, *, attach: bool
) -> web.StreamResponse:
    namespace, name = common.namespace_and_name(pod)
    container = common.container(pod, request.query.get("container"))
    opts = Options(request.query, attach=attach)
    common.require_host(pod)
    common.require_running_container(pod, container, action="attach to" if attach else "exec into")
    ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True, compress=False, max_msg_size=MAX_MESSAGE)
    ready = ws.can_prepare(request)
    if not ready.ok:
        raise _failures.recall(request) or common.not_websocket(request, PROTOCOLS)
    if ready.protocol is None:
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        raise errors.bad_request(
            f"requested protocol(s) are not supported: [{offered}]; supports [{' '.join(PROTOCOLS)}]"
        )
    try:
        if attach:
            session = await connection.attach(namespace, name, container, stdin=opts.stdin, tty=opts.tty)
        else:
            session = await connection.exec(
                namespace, name, container, opts.command, stdin=opts.stdin, tty=opts.tty
            )
    except errors.StatusError as exc:
        _failures.remember(request, exc)
        raise
    try:
        with common.long_lived(request):
            await ws.prepare(request)
            await _Relay(ws, session, opts, v5=ready.protocol == V5, attach=attach).run()
    finally:
        await session.close()
    return ws


class _Relay:
    def __init__(
        self, ws: web.WebSocketResponse, session: ExecSession, opts: Options, *, v5: bool, attach: bool
    ) -> None:
        self.ws = ws
        self.session = session
        self.opts = opts
        self.v5 = v5
        self.attach = attach

    async def run(self) -> None:
        inbound = asyncio.ensure_future(self._inbound())
        outcome = asyncio.ensure_future(self._outcome())
        try:
            await asyncio.wait({inbound, outcome}, return_when=asyncio.FIRST_COMPLETED)
            if outcome.done():
                await self._send(ERROR, objects.encode(outcome.result()))
            else:
                # The client went away first: stop the session (an exec'd process is killed).
                await self.session.close()
            with contextlib.suppress(Exception):
                await self.ws.close()
        finally:
            for task in (inbound, outcome):
                task.cancel()
            for task in (inbound, outcome):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _outcome(self) -> dict[str, Any]:
        """Relay the output to its end, then the ``Status`` to send: the exit code of an exec, plain
        success for an attach (the container's process ending is not the client's failure)."""
        try:
            async for stream, chunk in self.session.output():
                if stream == STDOUT and not self.opts.stdout:
                    continue
                if stream == STDERR and not self.opts.stderr:
                    continue
                if chunk:
                    await self._send(stream, chunk)
            code = 0 if self.attach else await self.session.wait()
        except errors.StatusError as exc:
            return exc.status()
        except Exception as exc:
            _log.warning("%s session failed: %r", "attach" if self.attach else "exec", exc)
            return errors.internal(f"{type(exc).__name__}: {exc}").status()
        if code != 0:
            return _exit_status(self.opts.command, code)
        return {"metadata": {}, "status": "Success"}

    async def _inbound(self) -> None:
        async for message in self.ws:
            if message.type == WSMsgType.BINARY:
                payload = bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                text = str(message.data)
                payload = (bytes([ord(text[0])]) + text[1:].encode()) if text and ord(text[0]) < 256 else b""
            else:
                break
            if payload:
                try:
                    await self._dispatch(payload[0], payload[1:])
                except Exception as exc:  # a failed stdin write or resize does not end the session
                    _log.info("exec input on channel %d failed: %r", payload[0], exc)

    async def _dispatch(self, channel: int, data: bytes) -> None:
        if channel == STDIN:
            if self.opts.stdin and data:
                await self.session.write_stdin(data)
        elif channel == RESIZE:
            for line in data.splitlines():
                size = _terminal_size(line)
                if size is not None and self.opts.tty:
                    await self.session.resize(*size)
        elif channel == CLOSE and self.v5 and data[:1] == bytes([STDIN]) and self.opts.stdin:
            await self.session.close_stdin()

    async def _send(self, channel: int, data: bytes) -> None:
        with contextlib.suppress(ConnectionError):
            await self.ws.send_bytes(bytes([channel]) + data)


def _terminal_size(line: bytes) -> tuple[int, int] | None:
    try:
        size = json.loads(line)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None
    return width, height


def _exit_status(command: list[str], code: int) -> dict[str, Any]:
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            "command terminated with non-zero exit code: "
            f"error executing command [{' '.join(command)}], exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }
