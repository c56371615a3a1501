"""The browser's same-origin doors to the apiserver: plain requests, streams and exec sessions.

``/k8s/<path>`` forwards one request to ``<path>`` of the apiserver (``/api/...`` or ``/apis/...``) with
the session's token, and streams the answer back as it comes: a followed log arrives line by line.
Only the headers that describe the body pass (content type, accept); cookies never leave the dashboard.

``/_/exec/<path>`` is a WebSocket relay for ``pods/<name>/exec``: the browser cannot put a bearer token
on a WebSocket, so the dashboard opens the upstream socket with it and copies the channel protocol's
binary messages both ways, unchanged (the page speaks ``v5.channel.k8s.io`` or ``v4`` itself).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import secrets
from typing import Any

import aiohttp
from aiohttp import web

from kbox.addons.dashboard.upstream import Upstream, make_status, status_body
from kbox.util import aiotasks

_log = logging.getLogger(__name__)

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
_EXEC_PATH = re.compile(r"^/api/v1/namespaces/[a-z0-9.-]+/pods/[a-z0-9.-]+/(exec|attach)$")
_FORWARDED = ("Accept", "Content-Type")
ERROR_CHANNEL = 3


def api_path(tail: str) -> str | None:
    """``/api/...`` or ``/apis/...`` from what follows ``/k8s``; ``None`` for anything else."""
    path = "/" + tail.lstrip("/")
    if not (path == "/api" or path == "/apis" or path.startswith(("/api/", "/apis/"))):
        return None
    if ".." in path.split("/"):
        return None
    return path


def status_response(code: int, message: str, reason: str = "") -> web.Response:
    return web.json_response(make_status(code, message, reason), status=code)


async def forward(request: web.Request, upstream: Upstream, token: str) -> web.StreamResponse:
    """One request to the apiserver, its answer streamed back with the upstream status code."""
    path = api_path(request.match_info["tail"])
    if path is None:
        return status_response(404, "the dashboard forwards only /api and /apis paths", "NotFound")
    headers = {h: request.headers[h] for h in _FORWARDED if h in request.headers}
    data = await request.read() if request.can_read_body else None
    try:
        async with upstream.request(
            token, request.method, path, params=request.rel_url.query, data=data, headers=headers
        ) as resp:
            out = web.StreamResponse(status=resp.status)
            out.content_type = resp.content_type
            if resp.charset:
                out.charset = resp.charset
            out.headers["Cache-Control"] = "no-store"
            await out.prepare(request)
            try:
                async for chunk in resp.content.iter_any():
                    await out.write(chunk)
                await out.write_eof()
            except ConnectionError:
                pass  # the browser went away (a followed log left open): the upstream request ends too
            return out
    except (aiohttp.ClientError, TimeoutError) as exc:
        return status_response(502, f"the apiserver could not be reached: {exc}", "ServiceUnavailable")


async def exec_relay(request: web.Request, upstream: Upstream, token: str) -> web.StreamResponse:
    """Relay one exec/attach WebSocket between the browser and the apiserver."""
    path = api_path(request.match_info["tail"])
    if path is None or not _EXEC_PATH.match(path):
        return status_response(404, "not an exec or attach path", "NotFound")
    ws = web.WebSocketResponse(protocols=CHANNEL_PROTOCOLS, max_msg_size=16 * 1024 * 1024)
    ready = ws.can_prepare(request)
    if not ready.ok or not ready.protocol:
        return status_response(400, f"a WebSocket with one of {', '.join(CHANNEL_PROTOCOLS)} is needed")
    try:
        remote = await upstream.ws_connect(
            token, path, params=request.rel_url.query, protocols=(ready.protocol,)
        )
    except aiohttp.WSServerHandshakeError as exc:
        # Refused before the upgrade (no such pod, container not running, a runtime without exec). A
        # browser shows nothing of a failed handshake, so the refusal goes over the socket, as the
        # channel protocol's final status would.
        status = await _refusal(upstream, token, path, request, ready.protocol)
        return await _refuse(request, ws, status or make_status(exc.status, f"exec refused ({exc.status})"))
    except (aiohttp.ClientError, TimeoutError) as exc:
        message = f"the apiserver could not be reached: {exc}"
        return await _refuse(request, ws, make_status(502, message, "ServiceUnavailable"))
    try:
        await ws.prepare(request)
        upward = aiotasks.create_guarded_task(_copy_up(ws, remote), name="dashboard/exec/up", logger=_log)
        try:
            async for msg in remote:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    await ws.send_str(msg.data)
                else:
                    break
        finally:
            await aiotasks.stop([upward], title="dashboard exec")
    except ConnectionError:
        pass
    finally:
        await remote.close()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close()
    return ws


async def _refusal(
    upstream: Upstream, token: str, path: str, request: web.Request, protocol: str
) -> dict[str, Any] | None:
    """The apiserver's Status for a refused upgrade. aiohttp's handshake error drops the response body,
    so the upgrade is asked once more by hand to read it (a refusal happens before any session starts)."""
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(secrets.token_bytes(16)).decode(),
        "Sec-WebSocket-Protocol": protocol,
    }
    try:
        query = request.rel_url.query
        async with upstream.request(token, "GET", path, params=query, headers=headers) as resp:
            if resp.status < 400:
                return None
            return status_body(resp.status, await resp.read())
    except (aiohttp.ClientError, TimeoutError):
        return None


async def _refuse(
    request: web.Request, ws: web.WebSocketResponse, status: dict[str, Any]
) -> web.StreamResponse:
    await ws.prepare(request)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_bytes(bytes([ERROR_CHANNEL]) + json.dumps(status).encode())
        await ws.close()
    return ws


async def _copy_up(ws: web.WebSocketResponse, remote: aiohttp.ClientWebSocketResponse) -> None:
    """Browser → apiserver (stdin, resize); the browser leaving ends the upstream session."""
    try:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await remote.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await remote.send_str(msg.data)
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await remote.close()
