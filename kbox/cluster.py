"""The composition root: settings → store and apiserver → controllers, scheduler and kubelets.

Every component gets an in-process ``LocalClient`` (the same pipeline as HTTP requests) and talks to
the others only through the API. Start order: control plane (store + apiserver, the core), then the
node agents, then the scheduler and controllers; stop in reverse, core last.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kbox.api.app import ApiSettings
from kbox.api.certs import TlsFiles, ensure_certificates
from kbox.api.controlplane import ControlPlane
from kbox.client import informer as informers
from kbox.client.local import LocalClient
from kbox.config import StoreSettings
from kbox.controllers.base import Controller
from kbox.controllers.deployment import DeploymentController
from kbox.controllers.endpoints import EndpointsController
from kbox.controllers.endpointslice import EndpointSliceController
from kbox.controllers.garbagecollector import GarbageCollector, served_kinds
from kbox.controllers.namespace import NamespaceController
from kbox.controllers.replicaset import ReplicaSetController
from kbox.controllers.serviceaccount import ServiceAccountsController
from kbox.kubelet.kubelet import Kubelet, KubeletSettings
from kbox.kubelet.runtime.interface import Runtime
from kbox.scheduler.scheduler import Scheduler
from kbox.util import aiotasks

_log = logging.getLogger(__name__)

RuntimeName = Literal["docker", "fake"]


@dataclass
class ClusterSettings:
    """One cluster: where its state lives, how it is reached, what runs its pods."""

    name: str = "kbox"
    state_dir: Path = field(default_factory=lambda: Path.home() / ".kbox" / "kbox")
    runtime: RuntimeName = "docker"
    nodes: int = 1
    host: str = "127.0.0.1"
    port: int = 6443
    durable: bool = True  # SQLite store under state_dir; False keeps the store in memory
    token: str = ""  # generated on first start when empty
    kubelet: dict[str, Any] = field(default_factory=dict)  # KubeletSettings overrides (tests)


def node_names(settings: ClusterSettings) -> list[str]:
    """minikube's scheme: the first node is named after the cluster, the others ``<name>-m02``..."""
    return [settings.name] + [f"{settings.name}-m{i:02d}" for i in range(2, settings.nodes + 1)]


def make_runtime(settings: ClusterSettings) -> Runtime:
    if settings.runtime == "fake":
        from kbox.kubelet.runtime.fake import FakeRuntime

        return FakeRuntime(cluster=settings.name)
    from kbox.kubelet.runtime.docker import DockerRuntime

    return DockerRuntime(cluster=settings.name)


class Cluster:
    """A running cluster in this process: ``async with Cluster(settings) as cluster: ...``."""

    def __init__(self, settings: ClusterSettings, *, runtime: Runtime | None = None) -> None:
        """``runtime``: use this one instead of making one; the caller owns it (closes it), and it outlives
        ``stop()``, so a cluster restarted over it has its kubelets adopt the pods still running there."""
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.token = settings.token or load_token(settings.state_dir)
        self.tls: TlsFiles = ensure_certificates(settings.state_dir / "pki")
        store = StoreSettings(path=settings.state_dir / "state.db" if settings.durable else None)
        self.plane = ControlPlane(
            store, ApiSettings(host=settings.host, port=settings.port, token=self.token, tls=self.tls)
        )
        self.runtime: Runtime | None = runtime
        self._owns_runtime = runtime is None
        self.kubelets: list[Kubelet] = []
        self._components: list[tuple[str, Callable[[], Awaitable[None]]]] = []

    @property
    def url(self) -> str:
        return self.plane.url

    def client(self, field_manager: str = "kbox") -> LocalClient:
        return LocalClient(self.plane.catalog, field_manager=field_manager)

    async def start(self) -> None:
        await self.plane.start()
        try:
            await self._start_controllers()
            if self.runtime is None:
                self.runtime = make_runtime(self.settings)
            for index, name in enumerate(node_names(self.settings)):
                kubelet = Kubelet(
                    self.client("kubelet"),
                    self.runtime,
                    KubeletSettings(
                        node_name=name,
                        cluster=self.settings.name,
                        state_dir=self.settings.state_dir / "kubelet",
                        control_plane=index == 0,
                        **self.settings.kubelet,
                    ),
                    connections=self.plane.catalog.node_connections,
                )
                await kubelet.start()
                self.kubelets.append(kubelet)
        except BaseException:
            await self.stop()
            raise

    async def _start_controllers(self) -> None:
        """The controller-manager: controllers sharing one informer factory on an in-process client."""
        factory = informers.InformerFactory(self.client("kube-controller-manager"))
        kinds = served_kinds(self.plane.catalog.resources())
        controllers: list[Controller] = [
            ReplicaSetController(factory),
            DeploymentController(factory),
            GarbageCollector(factory, kinds),
            NamespaceController(factory, [k.resource for k in kinds]),
            EndpointsController(factory),
            EndpointSliceController(factory),
            ServiceAccountsController(factory),
        ]
        tasks = []
        for controller in controllers:
            tasks.append(
                aiotasks.create_guarded_task(
                    controller.run(workers=2), name=f"controller-manager/{controller.name}"
                )
            )

        async def stop() -> None:
            await aiotasks.stop(tasks, title="controller-manager")
            await factory.stop()

        self._components.append(("controller-manager", stop))
        scheduler = Scheduler(self.client("default-scheduler"))
        await scheduler.start()
        self._components.append(("scheduler", scheduler.stop))

    async def stop(self) -> None:
        for name, stop in reversed(self._components):
            try:
                await stop()
            except Exception:
                _log.exception("stopping %s failed", name)
        self._components.clear()
        for kubelet in reversed(self.kubelets):
            await kubelet.stop()
        self.kubelets.clear()
        if self.runtime is not None and self._owns_runtime:
            with contextlib.suppress(Exception):
                await self.runtime.close()
            self.runtime = None
        await self.plane.stop()

    async def __aenter__(self) -> Cluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def load_token(directory: Path) -> str:
    """The cluster's bearer token, created (mode 0600) on first use and never logged."""
    path = directory / "token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token
