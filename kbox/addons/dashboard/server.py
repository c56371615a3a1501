"""The Dashboard addon's component: serve the dashboard on a loopback port and say where.

It listens on ``127.0.0.1`` (by default; plain HTTP, like ``minikube dashboard``'s proxy, so only this
machine reaches it) and records its URL in the ConfigMap ``kube-system/kbox-dashboard`` (``data.url``),
where ``kbox dashboard`` looks it up through the API. A restart tries the port recorded last time first,
so a bookmarked URL keeps working; when that port is taken it takes a free one and records that.

The component's own client only writes that record. Everything the page shows or changes goes through
:mod:`kbox.addons.dashboard.upstream`, over HTTPS, with the token of the browser's session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from kbox.addons.dashboard.app import make_app
from kbox.addons.dashboard.upstream import Upstream
from kbox.client.interface import CONFIGMAPS, Client, StatusError

_log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
RECORD = "kbox-dashboard"
COMPONENT = "kubernetes-dashboard"


@dataclass
class DashboardSettings:
    """Where the dashboard listens and how it reaches the apiserver."""

    api_url: Callable[[], str]
    """The apiserver's URL (a callable: known only once the apiserver listens)."""
    ca_file: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    """0: the port recorded last time if free, else any free one."""
    cluster: str = "kbox"


class DashboardServer:
    """The ``kubernetes-dashboard`` component: ``run()`` until cancelled."""

    name = COMPONENT

    def __init__(self, client: Client, settings: DashboardSettings) -> None:
        self.client = client
        self.settings = settings
        self.url: str | None = None
        """``http://host:port/`` once listening."""
        self._ready = False

    def healthy(self) -> bool:
        return self._ready

    async def run(self) -> None:
        upstream = Upstream(self.settings.api_url(), ca_file=self.settings.ca_file)
        runner = web.AppRunner(
            make_app(upstream, cluster=self.settings.cluster, hosts=self._hosts()),
            handle_signals=False,
            shutdown_timeout=2.0,
            access_log=None,
            # A closed tab ends its followed log or shell at once, not at the stream's next write.
            handler_cancellation=True,
        )
        try:
            await runner.setup()
            port = await self._listen(runner)
            self.url = f"http://{self.settings.host}:{port}/"
            await self._record(self.url)
            self._ready = True
            _log.info("dashboard: serving on %s", self.url)
            await asyncio.Future()  # until cancelled
        finally:
            self._ready = False
            await runner.cleanup()
            await upstream.close()

    def _hosts(self) -> frozenset[str] | None:
        """On loopback, only loopback names: no other site can reach it by DNS rebinding."""
        if self.settings.host in ("127.0.0.1", "::1", "localhost"):
            return frozenset({"127.0.0.1", "localhost", "::1"})
        return None

    async def _listen(self, runner: web.AppRunner) -> int:
        candidates = [self.settings.port] if self.settings.port else [await self._recorded_port(), 0]
        for port in candidates:
            if port is None:
                continue
            site = web.TCPSite(runner, self.settings.host, port)
            try:
                await site.start()
            except OSError as exc:
                if port == candidates[-1]:
                    where = f"{self.settings.host}:{port}"
                    raise RuntimeError(f"dashboard: cannot listen on {where}: {exc}") from None
                _log.info("dashboard: port %d is taken (%s), taking another", port, exc.strerror)
                continue
            sockets = getattr(site._server, "sockets", None) or []
            return int(sockets[0].getsockname()[1]) if sockets else port
        raise AssertionError("unreachable")

    async def _recorded_port(self) -> int | None:
        with contextlib.suppress(StatusError, ValueError, TypeError):
            current = await self.client.get(CONFIGMAPS, RECORD, namespace=NAMESPACE)
            url = str(((current or {}).get("data") or {}).get("url") or "")
            return int(url.rstrip("/").rsplit(":", 1)[1]) if url else None
        return None

    async def _record(self, url: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": RECORD,
                "namespace": NAMESPACE,
                "labels": {"app.kubernetes.io/name": COMPONENT, "app.kubernetes.io/managed-by": "kbox"},
            },
            "data": {"url": url},
        }
        try:
            await self.client.create(CONFIGMAPS, body, namespace=NAMESPACE)
        except StatusError as exc:
            if exc.code != 409:
                raise
            await self.client.patch(CONFIGMAPS, RECORD, {"data": {"url": url}}, namespace=NAMESPACE)
