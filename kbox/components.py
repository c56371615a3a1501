"""The cluster's parts as supervised components (see kbox.supervisor).

Each adapter turns a part with its own start/stop shape into a ``run()`` that works until cancelled and
raises when the part fails, plus a ``healthy()`` check that reads real state:

- ``etcd``: the store. Healthy while its committer runs and its last commit did not fail. Core.
- ``kube-apiserver``: the HTTPS server. Healthy while its own ``/livez`` answers over the network,
  probed every few seconds as a kubelet probes a static pod. Core.
- ``kube-controller-manager``: the controllers on one informer factory; a controller that crashes
  takes the whole manager down and the supervisor restarts it, as kubelet restarts the real process.
- ``kube-scheduler``: the scheduler; healthy once its informers synced and its loops run.
- ``kubelet-<node>``: one node's kubelet, made afresh on every run (a restarted kubelet adopts the
  containers still running, as after a real kubelet restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any

import aiohttp

from kbox.api.controlplane import ControlPlane
from kbox.client import informer as informers
from kbox.client.interface import Client
from kbox.controllers.base import Controller
from kbox.kubelet.kubelet import Kubelet
from kbox.scheduler.scheduler import Scheduler
from kbox.store.interface import Store
from kbox.util import aiotasks

_log = logging.getLogger(__name__)


async def _first_failure(tasks: list[asyncio.Task[Any]], what: str) -> None:
    """Wait until one of ``tasks`` ends; that is a failure of the component they make up."""
    if not tasks:
        await asyncio.Event().wait()
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    task = next(iter(done))
    if task.cancelled():
        raise RuntimeError(f"{what}: task {task.get_name()} was cancelled")
    error = task.exception()
    if error is not None:
        raise RuntimeError(f"{what}: task {task.get_name()} failed: {error!r}") from error
    raise RuntimeError(f"{what}: task {task.get_name()} ended")


class StoreComponent:
    """The store as ``etcd``: opened before the supervisor starts, watched while it runs."""

    name = "etcd"

    def __init__(self, store: Store, *, interval: float = 1.0) -> None:
        self.store = store
        self.interval = interval

    async def run(self) -> None:
        while True:
            problem = self.store.problem()
            if problem is not None and self.store.fatal():
                raise RuntimeError(problem)
            await asyncio.sleep(self.interval)

    def healthy(self) -> bool:
        return self.store.problem() is None


class ApiServerComponent:
    """The apiserver as ``kube-apiserver``: its ``/livez`` probed over HTTPS, as a kubelet would.

    A failing probe makes the pod NotReady and is logged, but never stops anything: the apiserver is
    core, so ending its run would end the cluster, and a probe can fail merely because the loop is busy
    (10,000 pods arriving at once). Only a server that is gone ends the run."""

    name = "kube-apiserver"

    def __init__(self, plane: ControlPlane, *, interval: float = 5.0, timeout: float = 10.0) -> None:
        self.plane = plane
        self.interval = interval
        self.timeout = timeout
        self._ok = False

    async def run(self) -> None:
        context: ssl.SSLContext | bool = False
        tls = self.plane.api_settings.tls
        if tls is not None:
            context = ssl.create_default_context(cafile=str(tls.ca_cert))
        failed = 0
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context), timeout=timeout
        ) as session:
            try:
                while True:
                    if self.plane.server is None:
                        raise RuntimeError("the apiserver is not serving")
                    problem = await self._probe(session)
                    self._ok = problem is None
                    if problem is None:
                        if failed:
                            _log.info("apiserver liveness probe passes again")
                        failed = 0
                    else:
                        failed += 1
                        if failed in (1, 3) or failed % 60 == 0:
                            _log.warning("apiserver liveness probe failed (%d in a row): %s", failed, problem)
                    await asyncio.sleep(self.interval if self._ok else min(1.0, self.interval))
            finally:
                self._ok = False

    async def _probe(self, session: aiohttp.ClientSession) -> str | None:
        try:
            async with session.get(self.plane.url + "/livez") as response:
                if response.status != 200:
                    return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return str(exc) or type(exc).__name__
        return None

    def healthy(self) -> bool:
        return self._ok


ControllerBuilder = Callable[[informers.InformerFactory], list[Controller]]


class ControllerManager:
    """The controllers as ``kube-controller-manager``, on one informer factory per run."""

    name = "kube-controller-manager"

    def __init__(self, client: Client, build: ControllerBuilder, *, workers: int = 2) -> None:
        self.client = client
        self.build = build
        self.workers = workers
        self._controllers: list[Controller] = []

    async def run(self) -> None:
        factory = informers.InformerFactory(self.client)
        self._controllers = self.build(factory)
        tasks = [
            aiotasks.create_guarded_task(
                controller.run(workers=self.workers), name=f"controller-manager/{controller.name}"
            )
            for controller in self._controllers
        ]
        try:
            await _first_failure(tasks, self.name)
        finally:
            await aiotasks.stop(tasks, title=self.name)
            await factory.stop()
            self._controllers = []

    def healthy(self) -> bool:
        return bool(self._controllers) and all(c.synced.is_set() for c in self._controllers)


class SchedulerComponent:
    """The scheduler as ``kube-scheduler``; a fresh Scheduler (and informers) on every run."""

    name = "kube-scheduler"

    def __init__(self, client: Client) -> None:
        self.client = client
        self._scheduler: Scheduler | None = None

    async def run(self) -> None:
        scheduler = Scheduler(self.client)
        try:
            await scheduler.start()
            self._scheduler = scheduler
            await _first_failure(scheduler.tasks, self.name)
        finally:
            self._scheduler = None
            with contextlib.suppress(Exception):
                await scheduler.stop()

    def healthy(self) -> bool:
        scheduler = self._scheduler
        return scheduler is not None and all(not t.done() for t in scheduler.tasks)


class KubeletComponent:
    """One node's kubelet as ``kubelet-<node>``; ``make`` builds a fresh Kubelet for every run."""

    def __init__(self, node: str, make: Callable[[], Kubelet]) -> None:
        self.name = f"kubelet-{node}"
        self.node = node
        self.make = make
        self.kubelet: Kubelet | None = None
        """The current (or last) run's kubelet."""
        self._started = False

    async def run(self) -> None:
        kubelet = self.make()
        self.kubelet = kubelet
        try:
            await kubelet.start()
            self._started = True
            await _first_failure(kubelet.tasks, self.name)
        finally:
            self._started = False
            try:
                await kubelet.stop()
            except Exception:
                _log.exception("stopping kubelet %s failed", self.node)

    def healthy(self) -> bool:
        kubelet = self.kubelet
        return self._started and kubelet is not None and all(not t.done() for t in kubelet.tasks)
