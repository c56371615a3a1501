"""The composition root: settings → store and apiserver → supervised components and kubelets.

Every component gets an in-process ``LocalClient`` (the same pipeline as HTTP requests) and talks to
the others only through the API. The store and apiserver open first (everything needs them); then the
kubelets register their nodes; then the :class:`~kbox.supervisor.Supervisor` runs etcd and
kube-apiserver (core: watched, not restartable), kube-controller-manager and kube-scheduler
(restarted with back-off when they fail), the addon manager and, when asked, the mirror pods that show
all of them in kube-system. ``start`` returns when every supervised component is healthy. Stop runs in
reverse: supervised components, kubelets, runtime, and the store last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kbox import componentlogs, components, mirrorpods, profile, supervisor, testhooks
from kbox import nodes as node_manager
from kbox.addons import manager as addon_manager
from kbox.api.app import ApiSettings
from kbox.api.certs import TlsFiles, ensure_certificates
from kbox.api.controlplane import ControlPlane
from kbox.api.crd.custom import CustomResourceDef
from kbox.client import informer as informers
from kbox.client.local import LocalClient
from kbox.config import StoreSettings
from kbox.controllers.base import Controller
from kbox.controllers.crdkinds import CustomKindsController
from kbox.controllers.cronjob import CronJobController
from kbox.controllers.daemonset import DaemonSetController
from kbox.controllers.deployment import DeploymentController
from kbox.controllers.disruption import DisruptionController
from kbox.controllers.endpoints import EndpointsController
from kbox.controllers.endpointslice import EndpointSliceController
from kbox.controllers.garbagecollector import GarbageCollector, served_kinds
from kbox.controllers.job import JobController
from kbox.controllers.namespace import NamespaceController
from kbox.controllers.nodelifecycle import NodeLifecycleController, NodeLifecycleSettings
from kbox.controllers.persistentvolume import PersistentVolumeController, ensure_default_class
from kbox.controllers.podgc import PodGarbageCollector
from kbox.controllers.replicaset import ReplicaSetController
from kbox.controllers.rootcacert import RootCACertPublisher
from kbox.controllers.serviceaccount import ServiceAccountsController
from kbox.controllers.statefulset import StatefulSetController
from kbox.controllers.taintmanager import TaintEvictionController
from kbox.controllers.ttlafterfinished import TTLAfterFinishedController
from kbox.kubelet import node as kubelet_node
from kbox.kubelet.kubelet import Kubelet, KubeletSettings
from kbox.kubelet.runtime.interface import Runtime
from kbox.profile import load_token

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
    mirror_pods: bool = False  # show the components as pods in kube-system (kbox start does)
    kube_proxy: bool = False  # Service addresses and relays (kbox start with the docker runtime)
    dns_ip: str = "10.96.0.10"  # the kube-dns Service's ClusterIP, where the dns addon listens
    cluster_domain: str = "cluster.local"
    stop_pods: bool = False  # stop() also stops the pods' containers (kbox stop), not just the agents
    addons: dict[str, bool] | None = None  # addon → enabled to set at start; None keeps the cluster's
    backoff_initial: float = 1.0  # supervisor: first restart delay after a repeated crash
    backoff_max: float = 30.0
    ready_timeout: float = 60.0  # start() fails when components are not healthy by then
    # node health grace period, eviction rates, default toleration seconds (KBOX_* environment overrides)
    node_lifecycle: NodeLifecycleSettings = field(default_factory=NodeLifecycleSettings.from_env)
    job_backoff_base: float = 10.0  # Job controller: delay before a failed pod is replaced, doubling
    job_backoff_max: float = 360.0  # ... up to this
    cronjob_clock: Any = None  # the CronJob controller's clock (tests: a cronschedule.ManualClock)
    pod_gc_quarantine: float = 40.0  # pod GC: a pod's node must stay missing this long before it goes


def node_names(settings: ClusterSettings) -> list[str]:
    """minikube's scheme: the first node is named after the cluster, the others ``<name>-m02``..."""
    return profile.node_names(settings.name, settings.nodes)


def make_runtime(settings: ClusterSettings) -> Runtime:
    if settings.runtime == "fake":
        from kbox.kubelet.runtime.fake import FakeRuntime

        return FakeRuntime(cluster=settings.name)
    from kbox.kubelet.runtime.docker import DockerRuntime

    return DockerRuntime(cluster=settings.name)


class Cluster:
    """A running cluster in this process: ``async with Cluster(settings) as cluster: ...``."""

    def __init__(
        self,
        settings: ClusterSettings,
        *,
        runtime: Runtime | None = None,
        logs: componentlogs.LogBuffers | None = None,
        addons: dict[str, addon_manager.Addon] | None = None,
    ) -> None:
        """``runtime``: use this one instead of making one; the caller owns it (closes it), and it outlives
        ``stop()``, so a cluster restarted over it has its kubelets adopt the pods still running there.
        ``logs``: where components' log lines are kept for their mirror pods (``kbox serve`` sets it up).
        ``addons``: the addons this cluster can run (default: every addon kbox has)."""
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.token = settings.token or load_token(settings.state_dir)
        self.tls: TlsFiles = ensure_certificates(settings.state_dir / "pki")
        store = StoreSettings(path=settings.state_dir / "state.db" if settings.durable else None)
        self.plane = ControlPlane(
            store, ApiSettings(host=settings.host, port=settings.port, token=self.token, tls=self.tls)
        )
        lifecycle, catalog = settings.node_lifecycle, self.plane.catalog
        catalog.default_not_ready_toleration_seconds = lifecycle.default_not_ready_toleration_seconds
        catalog.default_unreachable_toleration_seconds = lifecycle.default_unreachable_toleration_seconds
        self.runtime: Runtime | None = runtime
        self._owns_runtime = runtime is None
        self._kubelets: dict[str, components.KubeletComponent] = {}
        self._node_manager: node_manager.NodeManager | None = None
        self.logs = logs
        self.supervisor = supervisor.Supervisor(
            backoff_initial=settings.backoff_initial,
            backoff_max=settings.backoff_max,
            on_start=logs.new_run if logs is not None else None,
        )
        self.addons = addons if addons is not None else available_addons(self)

    @property
    def url(self) -> str:
        return self.plane.url

    def client(self, field_manager: str = "kbox") -> LocalClient:
        return LocalClient(self.plane.catalog, field_manager=field_manager)

    async def start(self) -> None:
        await self.plane.start()
        try:
            await ensure_default_class(self.client("storage-provisioner"))
            if self.runtime is None:
                self.runtime = make_runtime(self.settings)
            names = node_names(self.settings)
            for name, state in (await node_manager.planned(self.client("node-manager"), names)).items():
                if state == node_manager.RUNNING:
                    self.supervisor.add(self._kubelet_component(name, control_plane=name == names[0]))
            self._add_components()
            await self.supervisor.start()
            try:
                async with asyncio.timeout(self.settings.ready_timeout):
                    await self.supervisor.wait_ready()
            except TimeoutError:
                stuck = [s.name for s in self.supervisor.states() if not (s.running and s.healthy)]
                raise TimeoutError(
                    f"components not healthy after {self.settings.ready_timeout:g}s: {stuck}"
                ) from None
        except BaseException:
            await self.stop()
            raise

    @property
    def kubelets(self) -> list[Kubelet]:
        """The running kubelets, one per node (started or restarting)."""
        return [c.kubelet for c in self._kubelets.values() if c.kubelet is not None]

    def _kubelet_component(self, node: str, *, control_plane: bool) -> components.KubeletComponent:
        settings = KubeletSettings(
            node_name=node,
            cluster=self.settings.name,
            state_dir=self.settings.state_dir / "kubelet",
            control_plane=control_plane,
            **self._kubelet_overrides(),
        )
        runtime = self.runtime
        assert runtime is not None

        def make() -> Kubelet:
            client = self.client("kubelet")
            return Kubelet(client, runtime, settings, connections=self.plane.catalog.node_connections)

        component = components.KubeletComponent(node, make)
        self._kubelets[node] = component
        return component

    async def stop_kubelet(self, node: str) -> None:
        """Stop one node's kubelet (a machine failure, for tests); pods keep running in the runtime."""
        component = self._kubelets.pop(node, None)
        if component is not None:
            await self.supervisor.remove(component.name)

    async def start_kubelet(self, node: str, *, wait: bool = True) -> None:
        """Start the node's kubelet (again: it registers and adopts its pods); ``wait`` until it runs."""
        if node in self._kubelets:
            return
        names = node_names(self.settings)
        component = self._kubelet_component(node, control_plane=bool(names) and node == names[0])
        self.supervisor.add(component)
        if wait:
            async with asyncio.timeout(self.settings.ready_timeout):
                await self.supervisor.wait_ready()

    def kubelet_running(self, node: str) -> bool:
        return node in self._kubelets

    async def delete_node(self, node: str) -> None:
        """Remove a node without draining it: kubelet stopped, its pods' containers removed, its pods
        and Node object deleted (kbox node delete)."""
        await self.stop_kubelet(node)
        if self.runtime is not None:
            await node_manager.remove_containers(self.runtime, node)
        await node_manager.forget_node(self.client("node-manager"), node)

    def _kubelet_overrides(self) -> dict[str, Any]:
        """Pods resolve through the cluster DNS address when Services work (kube-proxy owns it)."""
        overrides = dict(self.settings.kubelet)
        # The kubelet renews its Lease at least four times per grace period of the node lifecycle
        # controller (Kubernetes: 10 s and 40 s), so a short grace period never flaps healthy nodes.
        grace = self.settings.node_lifecycle.node_monitor_grace_period
        if overrides.get("lease_interval", KubeletSettings.lease_interval) > grace / 4:
            overrides["lease_interval"] = grace / 4
        if self.settings.kube_proxy:
            overrides.setdefault("cluster_dns", [self.settings.dns_ip])
            overrides.setdefault("cluster_domain", self.settings.cluster_domain)
        return overrides

    def _add_components(self) -> None:
        """The supervised set, in start order (stopped in reverse)."""
        sup = self.supervisor
        sup.add(components.StoreComponent(self.plane.store), core=True)
        sup.add(components.ApiServerComponent(self.plane), core=True)
        sup.add(components.ControllerManager(self.client("kube-controller-manager"), self._controllers))
        sup.add(components.SchedulerComponent(self.client("default-scheduler")))
        if self.settings.kube_proxy:
            from kbox.proxy import KubeProxy, ProxySettings

            node_address = self.settings.kubelet.get("address") or kubelet_node.host_address()
            node_addresses = tuple(dict.fromkeys(["127.0.0.1", node_address]))
            sup.add(
                KubeProxy(
                    self.client("kube-proxy"),
                    ProxySettings(cluster=self.settings.name, node_addresses=node_addresses),
                )
            )
        sup.add(
            addon_manager.AddonManager(
                self.client("addon-manager"), sup, self.addons, initial=self.settings.addons
            )
        )
        initial = node_names(self.settings)
        self._node_manager = node_manager.NodeManager(self.client("node-manager"), self, initial=initial)
        sup.add(self._node_manager)
        if testhooks.enabled():
            sup.add(testhooks.TestHooks(self.client("test-hooks"), sup))
        nodes = node_names(self.settings)
        if self.settings.mirror_pods and nodes:
            sup.add(
                mirrorpods.MirrorPods(
                    self.client("kubelet"),
                    sup,
                    nodes=nodes,
                    logs=self.logs,
                    connections=self.plane.catalog.node_connections,
                )
            )

    def _controllers(self, factory: informers.InformerFactory) -> list[Controller]:
        """The controller-manager's controllers, built afresh on each of its runs. The garbage collector
        and the namespace controller start with the built-in types; CRDs' types join them through
        CustomKindsController as its informer sees them, so a CRD deleted while the controllers start
        never leaves them waiting on a type that is no longer served."""
        builtin = (r for r in self.plane.catalog.resources() if not isinstance(r, CustomResourceDef))
        kinds = served_kinds(builtin)
        collector = GarbageCollector(factory, kinds)
        namespaces = NamespaceController(factory, [k.resource for k in kinds])
        return [
            ReplicaSetController(factory),
            DeploymentController(factory),
            DaemonSetController(factory),
            collector,
            namespaces,
            CustomKindsController(factory, garbage_collector=collector, namespaces=namespaces),
            EndpointsController(factory),
            EndpointSliceController(factory),
            ServiceAccountsController(factory),
            RootCACertPublisher(factory, self.tls.ca_pem()),
            NodeLifecycleController(factory, self.settings.node_lifecycle),
            TaintEvictionController(factory),
            PersistentVolumeController(factory, volumes_dir=self.settings.state_dir / "volumes"),
            StatefulSetController(factory),
            DisruptionController(factory),
            CronJobController(factory, clock=self.settings.cronjob_clock),
            JobController(
                factory,
                backoff_base=self.settings.job_backoff_base,
                backoff_max=self.settings.job_backoff_max,
            ),
            TTLAfterFinishedController(factory),
            PodGarbageCollector(factory, quarantine=self.settings.pod_gc_quarantine),
        ]

    async def wait(self) -> supervisor.ComponentState:
        """Until a core component (store, apiserver) fails: the cluster cannot go on."""
        return await self.supervisor.wait()

    async def stop(self) -> None:
        try:
            await self.supervisor.stop()
        except Exception:
            _log.exception("stopping the supervised components failed")
        if self.settings.stop_pods:
            for kubelet in self.kubelets:  # stopped by now: nothing restarts what this stops
                try:
                    await kubelet.stop_pods()
                except Exception:
                    _log.exception("stopping the pods of node %s failed", kubelet.name)
            if self.runtime is not None and self._node_manager is not None:
                for name in self._node_manager.stopped():  # no kubelet there: stop what still runs
                    await node_manager.stop_containers(self.runtime, name)
        self._kubelets.clear()
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


@contextlib.contextmanager
def _as_component(name: str) -> Iterator[None]:
    """Attribute log lines (and tasks started) inside the block to component ``name``."""
    token = componentlogs.current.set(name)
    try:
        yield
    finally:
        componentlogs.current.reset(token)


def available_addons(cluster: Cluster) -> dict[str, addon_manager.Addon]:
    """Every addon kbox has, bound to ``cluster``."""
    from kbox.addons import catalog  # the addons import the cluster's parts, not the reverse

    return catalog.addons_for(cluster)
