"""The dashboard's aiohttp application: login, the page and its assets, and the doors to the apiserver.

Routes (everything but the login page, the static assets and ``/healthz`` needs a session):

- ``GET /``: the page (``static/index.html``); without a session, a redirect to the login form
- ``GET /login``: the login form; ``?ticket=`` (from ``kbox dashboard``) logs in at once
- ``POST /login``: a pasted token, checked against the apiserver; ``POST /logout`` ends the session
- ``POST /_/tickets``: ``Authorization: Bearer <token>`` → a one-time login link (the CLI's door)
- ``GET /_/whoami``: the session's username
- ``GET /_/watch``: WebSocket, live lists (:mod:`kbox.addons.dashboard.watches`)
- ``* /k8s/<api path>``: one apiserver request (:mod:`kbox.addons.dashboard.proxy`)
- ``GET /_/exec/<api path>``: WebSocket, an exec session (:mod:`kbox.addons.dashboard.proxy`)
- ``GET /_/yaml``, ``POST /_/apply``, ``POST /_/edit``: YAML out and in (:mod:`.manifests`)

Cross-site requests: the cookie is ``SameSite=Strict``, writes need the ``X-Kbox-Dashboard`` header
(which no other site can send without a CORS preflight this server never grants) and WebSockets an
``Origin`` of this server. The page may load scripts only from here (a Content-Security-Policy).
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from kbox.addons.dashboard import manifests, proxy, watches
from kbox.addons.dashboard.sessions import SESSION_TTL, Sessions
from kbox.addons.dashboard.upstream import Upstream, UpstreamError

STATIC = Path(__file__).parent / "static"
_HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]+$")
CSRF_HEADER = "X-Kbox-Dashboard"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self' ws://{host} wss://{host}; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer browsers send "Origin: null" with the login and
    # logout forms, which the same-origin check must refuse; other sites still get no Referer.
    "Referrer-Policy": "same-origin",
}

UPSTREAM = web.AppKey("upstream", Upstream)
SESSIONS = web.AppKey("sessions", Sessions)
COOKIE = web.AppKey("cookie", str)
ACTIVE = web.AppKey("active", weakref.WeakSet[asyncio.Task[Any]])

Authed = Callable[[web.Request, Upstream, str], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(
    upstream: Upstream,
    *,
    cluster: str,
    sessions: Sessions | None = None,
    hosts: frozenset[str] | None = None,
) -> web.Application:
    """``hosts``: the host names the server answers to (others get 421), so a page on another site
    cannot reach it by rebinding its own name to 127.0.0.1; ``None`` answers any."""
    app = web.Application(
        client_max_size=manifests.MAX_MANIFEST, middlewares=[_host_check(hosts), _security_headers]
    )
    app[UPSTREAM] = upstream
    app[SESSIONS] = sessions or Sessions()
    app[COOKIE] = f"kbox-dashboard-{cluster}"
    app[ACTIVE] = weakref.WeakSet()
    app.on_shutdown.append(_end_streams)
    router = app.router
    router.add_get("/", _index)
    router.add_get("/healthz", _health)
    router.add_get("/login", _login_page)
    router.add_post("/login", _login)
    router.add_post("/logout", _logout)
    router.add_post("/_/tickets", _ticket)
    router.add_get("/_/whoami", _authed(_whoami))
    router.add_get("/_/watch", _authed(_watch, websocket=True))
    router.add_get("/_/exec/{tail:.*}", _authed(proxy.exec_relay, websocket=True))
    router.add_get("/_/yaml", _authed(manifests.read_yaml))
    router.add_post("/_/apply", _authed(manifests.apply))
    router.add_post("/_/edit", _authed(manifests.edit))
    router.add_route("*", "/k8s/{tail:.*}", _authed(proxy.forward))
    router.add_static("/static/", STATIC, append_version=False)
    return app


def _host_check(hosts: frozenset[str] | None) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        name = urlsplit(f"//{request.host}").hostname or ""
        if hosts is not None and name not in hosts:
            return proxy.status_response(
                421, f"this server does not answer for {name!r}", "MisdirectedRequest"
            )
        return await handler(request)

    return check


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        # WebSocket URLs are named explicitly: older browsers do not count ws: as 'self'.
        sockets = f"ws://{request.host} wss://{request.host}" if _HOST.match(request.host) else ""
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value.replace("ws://{host} wss://{host}", sockets)
    return response


def _session_id(request: web.Request) -> str | None:
    return request.cookies.get(request.app[COOKIE])


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser's cross-site request (browsers send Origin on those)
    return urlsplit(origin).netloc == request.host


def _authed(handler: Authed, *, websocket: bool = False) -> Handler:
    """``handler`` with the session's token; 401 (a Status) without a session, 403 for cross-site."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        session = request.app[SESSIONS].get(_session_id(request))
        if session is None:
            return proxy.status_response(401, "log in to the dashboard first", "Unauthorized")
        writes = request.method not in ("GET", "HEAD", "OPTIONS")
        if not _same_origin(request) or (writes and request.headers.get(CSRF_HEADER) != "1"):
            return proxy.status_response(403, "cross-site request refused", "Forbidden")
        if websocket and "Origin" not in request.headers:
            return proxy.status_response(403, "a WebSocket needs an Origin", "Forbidden")
        task = asyncio.current_task()
        if task is not None:
            request.app[ACTIVE].add(task)
        return await handler(request, request.app[UPSTREAM], session.token)

    return wrapped


async def _end_streams(app: web.Application) -> None:
    """Open streams (followed logs, live lists, shells) end at shutdown instead of being waited for."""
    active: weakref.WeakSet[asyncio.Task[Any]] = app[ACTIVE]
    for task in [*active]:
        task.cancel()


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def _health(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


async def _index(request: web.Request) -> web.StreamResponse:
    if request.app[SESSIONS].get(_session_id(request)) is None:
        raise web.HTTPFound("/login")
    response = web.FileResponse(STATIC / "index.html")
    response.headers["Cache-Control"] = "no-store"
    return response


async def _login_page(request: web.Request) -> web.StreamResponse:
    ticket = request.query.get("ticket")
    if ticket:
        token = request.app[SESSIONS].redeem(ticket)
        if token is None:
            raise web.HTTPFound("/login?error=expired")
        return await _start_session(request, token)
    return web.FileResponse(STATIC / "login.html")


async def _login(request: web.Request) -> web.StreamResponse:
    if not _same_origin(request):
        return proxy.status_response(403, "cross-site request refused", "Forbidden")
    form = await request.post()
    token = str(form.get("token") or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    return await _start_session(request, token)


async def _start_session(request: web.Request, token: str) -> web.StreamResponse:
    try:
        username = await request.app[UPSTREAM].who_am_i(token)
    except UpstreamError as exc:
        return proxy.status_response(502, f"the apiserver refused the check: {exc}", "ServiceUnavailable")
    if username is None:
        return _redirect("/login?error=token")
    session = request.app[SESSIONS].open(token, username)
    response = _redirect("/")
    response.set_cookie(
        request.app[COOKIE],
        session.id,
        httponly=True,
        samesite="Strict",
        path="/",
        max_age=int(SESSION_TTL),
    )
    return response


async def _logout(request: web.Request) -> web.StreamResponse:
    if not _same_origin(request):
        return proxy.status_response(403, "cross-site request refused", "Forbidden")
    request.app[SESSIONS].close(_session_id(request))
    response = _redirect("/login")
    response.del_cookie(request.app[COOKIE], path="/")
    return response


async def _ticket(request: web.Request) -> web.StreamResponse:
    """A one-time login link for the holder of a valid token (``kbox dashboard`` posts its profile's)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or "Origin" in request.headers:
        return proxy.status_response(401, "a bearer token is required", "Unauthorized")
    try:
        username = await request.app[UPSTREAM].who_am_i(token)
    except UpstreamError as exc:
        return proxy.status_response(502, f"the apiserver refused the check: {exc}", "ServiceUnavailable")
    if username is None:
        return proxy.status_response(401, "the apiserver does not accept this token", "Unauthorized")
    ticket = request.app[SESSIONS].new_ticket(token)
    return web.json_response({"ticket": ticket, "path": f"/login?ticket={ticket}"})


async def _whoami(request: web.Request, upstream: Upstream, token: str) -> web.StreamResponse:
    session = request.app[SESSIONS].get(_session_id(request))
    return web.json_response({"username": session.username if session else ""})


async def _watch(request: web.Request, upstream: Upstream, token: str) -> web.StreamResponse:
    return await watches.serve(request, upstream, token)
