"""The aiohttp application of the apiserver: middlewares, routes, and the component that serves it.

``make_app`` builds everything before start (aiohttp freezes routes and middlewares then). The error
middleware is the one place that turns exceptions into Kubernetes ``Status`` bodies: a ``StatusError``
keeps its code and reason, an aiohttp HTTP error becomes the matching Status, and anything unexpected is
logged and answered 500 without the server going down.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kbox.api import authn, discovery, errors, metrics, objects, openapi, serviceaccounts, version
from kbox.api.catalog import Catalog
from kbox.api.certs import TlsFiles
from kbox.api.handlers import ResourceHandler, json_response

_log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's MaxRequestBodyBytes
PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ApiSettings:
    """Where and how the apiserver listens."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str = ""  # required bearer token; empty disables authentication (tests of the app only)
    tls: TlsFiles | None = None  # serve HTTPS with these (clients send tokens only over TLS)


CATALOG = web.AppKey("catalog", Catalog)
SETTINGS = web.AppKey("settings", ApiSettings)
HANDLER = web.AppKey("handler", ResourceHandler)
OPENAPI = web.AppKey("openapi", openapi.OpenAPI)


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as a ``Status``."""
    try:
        return await handler(request)
    except errors.StatusError as exc:
        return _status_response(exc)
    except web.HTTPRequestEntityTooLarge:
        return _status_response(
            errors.too_large(f"the request body is larger than the limit of {MAX_BODY} bytes")
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = exc.reason.replace(" ", "")
        return _status_response(errors.StatusError(exc.text or exc.reason, exc.status, reason))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _log.exception("internal error serving %s %s", request.method, request.path)
        return _status_response(errors.internal(f"{type(exc).__name__}: {exc}"))


def _status_response(exc: errors.StatusError) -> web.Response:
    response = json_response(exc.status(), exc.code)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def authentication(token: str, catalog: Catalog) -> Any:
    """Bearer-token authentication: the cluster's token (the administrator) or a service account token
    (a JWT from the TokenRequest API, see :mod:`kbox.api.serviceaccounts`). The user is set for the
    request (:mod:`kbox.api.authn`); there is no RBAC, so any authenticated user may do everything.
    The health and version endpoints stay public, as Kubernetes' default RBAC grants them to everyone."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not token or request.path.rstrip("/") in PUBLIC_PATHS:
            return await handler(request)
        given = request.headers.get("Authorization", "")
        if secrets.compare_digest(given.encode(), expected):
            who = authn.ADMIN
        else:
            scheme, _, bearer = given.partition(" ")
            bearer = bearer.strip()
            if scheme.lower() != "bearer" or not serviceaccounts.looks_like_jwt(bearer):
                raise errors.unauthorized()
            who = await serviceaccounts.authenticate(catalog, bearer)
        with authn.acting_as(who):
            return await handler(request)

    return authenticate


def make_app(catalog: Catalog, settings: ApiSettings) -> web.Application:
    api_metrics = metrics.ApiMetrics(catalog.store)
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[api_metrics.middleware(), status_errors, authentication(settings.token, catalog)],
    )
    handler = ResourceHandler(catalog)
    app[CATALOG] = catalog
    app[SETTINGS] = settings
    app[HANDLER] = handler
    app[OPENAPI] = openapi.OpenAPI(catalog.resources())
    catalog.follow(app[OPENAPI])  # types added at run time (CRDs) join the documents

    async def stop_watches(app: web.Application) -> None:
        for task in list(handler.watch_tasks):
            task.cancel()

    async def unfollow(app: web.Application) -> None:
        catalog.unfollow(app[OPENAPI])

    app.on_shutdown.append(stop_watches)
    app.on_cleanup.append(unfollow)
    routes = [
        ("/version", _version),
        ("/healthz", _health),
        ("/livez", _health),
        ("/readyz", _health),
        ("/api", _api),
        ("/apis", _apis),
        ("/openapi/v2", _openapi_v2),
        ("/openapi/v3", _openapi_v3_root),
    ]
    for path, view in routes:
        app.router.add_get(path, view)
        app.router.add_get(path + "/", view)
    app.router.add_get("/openapi/v3/{path:.+}", _openapi_v3_document)
    app.router.add_get("/metrics", api_metrics.serve)
    app.router.add_get("/.well-known/openid-configuration", _openid_configuration)
    app.router.add_get("/openid/v1/jwks", _jwks)
    app.router.add_get("/healthz/{check}", _health)
    app.router.add_get("/livez/{check}", _health)
    app.router.add_get("/readyz/{check}", _health)
    app.router.add_route("*", "/api/{tail:.*}", _resources)
    app.router.add_route("*", "/apis/{tail:.*}", _resources)
    return app


async def _version(request: web.Request) -> web.StreamResponse:
    return json_response(version.info())


async def _openid_configuration(request: web.Request) -> web.StreamResponse:
    return json_response(await request.app[CATALOG].tokens.openid_configuration())


async def _jwks(request: web.Request) -> web.StreamResponse:
    response = json_response(await request.app[CATALOG].tokens.jwks())
    response.content_type = "application/jwk-set+json"
    return response


async def _health(request: web.Request) -> web.StreamResponse:
    """``ok``, or with ``?verbose`` one line per check, as kube-apiserver prints them."""
    catalog = request.app[CATALOG]
    checks = {"ping": True, "etcd": catalog.store.revision >= 0}
    wanted = request.match_info.get("check")
    if wanted is not None:
        if wanted not in checks:
            raise errors.StatusError(f"no such health check: {wanted}", 404, "NotFound")
        checks = {wanted: checks[wanted]}
    healthy = all(checks.values())
    if "verbose" in request.query:
        lines = [f"[{'+' if ok else '-'}]{name} {'ok' if ok else 'failed'}" for name, ok in checks.items()]
        name = request.path.strip("/").split("/")[0]
        lines.append(f"{name} check {'passed' if healthy else 'failed'}")
        return web.Response(text="\n".join(lines) + "\n", status=200 if healthy else 500)
    return web.Response(text="ok" if healthy else "failed", status=200 if healthy else 500)


async def _api(request: web.Request) -> web.StreamResponse:
    catalog = request.app[CATALOG]
    if discovery.wants_aggregated(request.headers.get("Accept")):
        return _aggregated(discovery.aggregated(catalog, core=True))
    return json_response(discovery.api_versions(request.host))


async def _apis(request: web.Request) -> web.StreamResponse:
    catalog = request.app[CATALOG]
    if discovery.wants_aggregated(request.headers.get("Accept")):
        return _aggregated(discovery.aggregated(catalog, core=False))
    return json_response(discovery.api_group_list(catalog))


def _aggregated(body: dict[str, object]) -> web.Response:
    response = web.Response(body=objects.encode(body))
    response.headers["Content-Type"] = discovery.AGGREGATED
    return response


async def _resources(request: web.Request) -> web.StreamResponse:
    """Resource paths, plus the discovery documents of a group or group version."""
    catalog = request.app[CATALOG]
    parts = [p for p in request.path.split("/") if p]
    if request.method == "GET":
        if parts[0] == "api" and len(parts) == 2:
            body = discovery.resource_list(catalog, "", parts[1])
            if body is None:
                raise errors.StatusError("the server could not find the requested resource", 404, "NotFound")
            return json_response(body)
        if parts[0] == "apis" and len(parts) == 2:
            group = discovery.group(catalog, parts[1])
            if group is None:
                raise errors.StatusError("the server could not find the requested resource", 404, "NotFound")
            return json_response(group)
        if parts[0] == "apis" and len(parts) == 3:
            body = discovery.resource_list(catalog, parts[1], parts[2])
            if body is None:
                raise errors.StatusError("the server could not find the requested resource", 404, "NotFound")
            return json_response(body)
    return await request.app[HANDLER].handle(request)


async def _openapi_v2(request: web.Request) -> web.StreamResponse:
    body, content_type = request.app[OPENAPI].v2()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


async def _openapi_v3_root(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[OPENAPI].v3_root())


async def _openapi_v3_document(request: web.Request) -> web.StreamResponse:
    document = request.app[OPENAPI].v3_document(request.match_info["path"].rstrip("/"))
    if document is None:
        raise errors.StatusError("the server could not find the requested resource", 404, "NotFound")
    return web.Response(body=document, content_type="application/json")


class ApiServer:
    """The apiserver as a component: serve ``make_app`` on ``settings.host:port`` until cancelled."""

    name = "kube-apiserver"

    def __init__(self, catalog: Catalog, settings: ApiSettings) -> None:
        self.catalog = catalog
        self.settings = settings
        self.app = make_app(catalog, settings)
        self.port = settings.port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        # Long selectors and field lists fit in a URL, as with Go's 1 MiB header limit.
        self._runner = web.AppRunner(
            self.app,
            handle_signals=False,
            shutdown_timeout=5.0,
            access_log=None,
            max_line_size=256 * 1024,
            max_field_size=256 * 1024,
        )
        await self._runner.setup()
        context = self.settings.tls.server_context() if self.settings.tls is not None else None
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port, ssl_context=context)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        _log.info("apiserver listening on %s:%d", self.settings.host, self.port)

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.tls is not None else "http"
        return f"{scheme}://{self.settings.host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
