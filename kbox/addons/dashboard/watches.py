"""Live lists for the browser: many list-and-watch subscriptions over one WebSocket.

A page shows several live lists at once (the overview watches nodes, pods, five workload kinds and
events). Browsers allow only six HTTP/1.1 connections per host, so one long watch request per list
would soon leave none for anything else. Instead the page opens one WebSocket (``/_/watch``) and asks
for subscriptions over it:

- browser → ``{"op": "watch", "id": "3", "path": "/api/v1/pods", "labelSelector": "...",
  "fieldSelector": "..."}`` and ``{"op": "stop", "id": "3"}``;
- server → ``{"id": "3", "type": "SYNC", "items": [...]}`` with the whole current list, then one
  ``{"id": "3", "type": "ADDED"|"MODIFIED"|"DELETED", "object": {...}}`` per change, and
  ``{"id": "3", "type": "ERROR", "status": {...}}`` when the subscription cannot go on (the
  apiserver's own Status: 403, 404 ...).

Each subscription is the reflector's loop done here for the browser: list, then watch from the list's
resourceVersion, watch again from the last one seen when a watch ends, and list again (a new SYNC) when
the apiserver answers 410 Gone. All of it with the session's token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from kbox.addons.dashboard.upstream import Upstream, UpstreamError, make_status, status_body
from kbox.util import aiotasks

_log = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS = 64
RETRY_DELAY = 1.0
WATCH_TIMEOUT = 300

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def valid_path(path: object) -> bool:
    """A collection path of the Kubernetes API (no escapes to other endpoints of the server)."""
    return (
        isinstance(path, str)
        and path.startswith(("/api/", "/apis/"))
        and ".." not in path
        and "?" not in path
        and "#" not in path
    )


class Subscriptions:
    """The subscriptions of one WebSocket: their tasks, and sending to the browser in order."""

    def __init__(self, ws: web.WebSocketResponse, upstream: Upstream, token: str) -> None:
        self.ws = ws
        self.upstream = upstream
        self.token = token
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        async with self._send_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(_encoder.encode(message))

    async def handle(self, message: Any) -> None:
        """One request from the browser; a malformed one gets an ERROR, never a closed socket."""
        if not isinstance(message, dict) or not isinstance(message.get("id"), str):
            await self.send({"id": "", "type": "ERROR", "status": make_status(400, "bad message")})
            return
        sid = message["id"]
        if message.get("op") == "stop":
            await self.stop(sid)
            return
        if message.get("op") != "watch" or not valid_path(message.get("path")):
            await self.send({"id": sid, "type": "ERROR", "status": make_status(400, "bad watch request")})
            return
        await self.stop(sid)
        if len(self.tasks) >= MAX_SUBSCRIPTIONS:
            status = make_status(429, f"at most {MAX_SUBSCRIPTIONS} watches per page", "TooManyRequests")
            await self.send({"id": sid, "type": "ERROR", "status": status})
            return
        params = {
            key: str(message[key])
            for key in ("labelSelector", "fieldSelector")
            if isinstance(message.get(key), str) and message[key]
        }
        self.tasks[sid] = aiotasks.create_guarded_task(
            self._follow(sid, message["path"], params), name=f"dashboard/watch/{sid}", logger=_log
        )

    async def stop(self, sid: str) -> None:
        task = self.tasks.pop(sid, None)
        if task is not None:
            await aiotasks.stop([task], title="dashboard watch")

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        await aiotasks.stop(tasks, title="dashboard watches")

    async def _follow(self, sid: str, path: str, params: dict[str, str]) -> None:
        """List, then watch; again from the top after a 410. Ends (with ERROR) on other refusals."""
        try:
            while True:
                try:
                    listing = await self.upstream.call(self.token, "GET", path, params=params)
                except UpstreamError as exc:
                    await self.send({"id": sid, "type": "ERROR", "status": exc.status})
                    return
                except (aiohttp.ClientError, TimeoutError) as exc:
                    _log.debug("dashboard: listing %s failed: %s", path, exc)
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                version = str(((listing or {}).get("metadata") or {}).get("resourceVersion") or "")
                await self.send({"id": sid, "type": "SYNC", "items": (listing or {}).get("items") or []})
                gone = await self._watch(sid, path, params, version)
                if gone is not None:
                    await self.send({"id": sid, "type": "ERROR", "status": gone})
                    return
        finally:
            if self.tasks.get(sid) is asyncio.current_task():
                del self.tasks[sid]

    async def _watch(
        self, sid: str, path: str, params: dict[str, str], version: str
    ) -> dict[str, Any] | None:
        """Watch from ``version`` until a re-list is needed (``None``) or a refusal (its Status)."""
        while True:
            query = {
                **params,
                "watch": "true",
                "allowWatchBookmarks": "true",
                "resourceVersion": version,
                "timeoutSeconds": str(WATCH_TIMEOUT),
            }
            try:
                async with self.upstream.request(self.token, "GET", path, params=query) as resp:
                    if resp.status == 410:
                        return None
                    if resp.status >= 400:
                        return status_body(resp.status, await resp.read())
                    async for line in resp.content:
                        if not line.strip():
                            continue
                        event = _decoder.decode(line)
                        kind = event.get("type")
                        obj = event.get("object") or {}
                        if kind == "ERROR":
                            if obj.get("code") == 410:
                                return None
                            return dict(obj)
                        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                        if kind == "BOOKMARK":
                            continue
                        await self.send({"id": sid, "type": kind, "object": obj})
            except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
                _log.debug("dashboard: watch of %s broke: %s", path, exc)
                await asyncio.sleep(RETRY_DELAY)


async def serve(request: web.Request, upstream: Upstream, token: str) -> web.StreamResponse:
    """The ``/_/watch`` WebSocket of one logged-in page."""
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=1024 * 1024)
    await ws.prepare(request)
    subscriptions = Subscriptions(ws, upstream, token)
    try:
        async for msg in ws:
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                try:
                    decoded = _decoder.decode(msg.data)
                except msgspec.DecodeError:
                    decoded = None
                await subscriptions.handle(decoded)
            elif msg.type == aiohttp.WSMsgType.ERROR:
                break
    finally:
        await subscriptions.close()
    return ws
