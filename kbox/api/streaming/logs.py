"""``GET pods/<name>/log``: the container's log as ``200 text/plain``, chunked, flushed as it comes.

With ``follow`` the body stays open until the log ends or the client goes away. The options
(``tailLines``, ``timestamps``, ``sinceSeconds``/``sinceTime``, ``limitBytes``, ``previous``) are
validated here as ``PodLogOptions`` and applied by the node's kubelet; ``limitBytes`` is also enforced
here. An unscheduled pod has an empty log, as in kube-apiserver.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from kbox.api import errors
from kbox.api.nodeconnection import LogOptions, NodeConnection
from kbox.api.streaming import common

_log = logging.getLogger(__name__)

# How long the first log bytes may take before the response headers go out anyway: errors the kubelet
# raises at once (container not started, no previous instance) still become a Status.
FIRST_CHUNK_WAIT = 0.5
# How often a follow with nothing new checks whether its client is still there.
DISCONNECT_POLL = 1.0


def options(query: Any, pod_name: str) -> LogOptions:
    tail_lines = common.integer(query, "tailLines")
    since_seconds = common.integer(query, "sinceSeconds")
    limit_bytes = common.integer(query, "limitBytes")
    since_time = query.get("sinceTime") or None
    causes: list[errors.FieldError] = []
    if tail_lines is not None and tail_lines < 0:
        causes.append(errors.invalid("tailLines", tail_lines, "must be greater than or equal to 0"))
    if limit_bytes is not None and limit_bytes < 1:
        causes.append(errors.invalid("limitBytes", limit_bytes, "must be greater than 0"))
    if since_seconds is not None and since_time is not None:
        causes.append(errors.forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif since_seconds is not None and since_seconds < 1:
        causes.append(errors.invalid("sinceSeconds", since_seconds, "must be greater than 0"))
    if since_time is not None:
        try:
            datetime.datetime.fromisoformat(since_time.replace("Z", "+00:00"))
        except ValueError:
            raise errors.bad_request(
                f'parsing time "{since_time}" as "2006-01-02T15:04:05Z07:00": cannot parse'
            ) from None
    if causes:
        raise errors.invalid_object("", "PodLogOptions", pod_name, causes)
    return LogOptions(
        follow=common.flag(query, "follow"),
        previous=common.flag(query, "previous"),
        timestamps=common.flag(query, "timestamps"),
        tail_lines=tail_lines,
        since_seconds=since_seconds,
        since_time=since_time,
        limit_bytes=limit_bytes,
    )


async def serve(request: web.Request, pod: common.Pod, connection: NodeConnection) -> web.StreamResponse:
    namespace, name = common.namespace_and_name(pod)
    container = common.container(pod, request.query.get("container"))
    opts = options(request.query, name)
    if not (pod.get("spec") or {}).get("nodeName"):
        return _text_response()
    common.require_log_available(pod, container, previous=opts.previous)
    chunks = connection.logs(namespace, name, container, opts)
    try:
        with common.long_lived(request):
            return await _stream(request, chunks, opts)
    finally:
        await _close(chunks)


def _text_response() -> web.StreamResponse:
    return web.Response(body=b"", content_type="text/plain")


async def _stream(request: web.Request, chunks: AsyncIterator[bytes], opts: LogOptions) -> web.StreamResponse:
    first = asyncio.ensure_future(_next(chunks))
    try:
        await asyncio.wait({first}, timeout=FIRST_CHUNK_WAIT)
    except asyncio.CancelledError:
        first.cancel()
        raise
    if first.done() and first.exception() is not None:
        exc = first.exception()
        if isinstance(exc, StopAsyncIteration):
            return _text_response()
        assert exc is not None
        raise exc
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    budget = opts.limit_bytes

    async def copy() -> None:
        nonlocal budget
        pending: asyncio.Future[bytes] | None = first
        while True:
            try:
                chunk = await pending if pending is not None else await _next(chunks)
            except StopAsyncIteration:
                return
            except (errors.StatusError, OSError) as exc:
                # The status line is out already: end the body, as the kubelet's stream would end.
                _log.info("log stream ended early: %s", exc)
                return
            pending = None
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            if chunk:
                await response.write(chunk)
            if budget is not None and budget <= 0:
                return

    task = asyncio.ensure_future(copy())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL)
            transport = request.transport
            if not task.done() and (transport is None or transport.is_closing()):
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


async def _next(chunks: AsyncIterator[bytes]) -> bytes:
    return await chunks.__anext__()


async def _close(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
