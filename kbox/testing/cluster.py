"""A whole kbox cluster inside a test process: apiserver, store, scheduler, controllers and kubelets, on a
free loopback port, with its state in a temporary directory removed on exit.

One implementation, two faces:

- :class:`AsyncCluster` runs on the caller's event loop; every helper is a coroutine. ``async with
  Cluster() as c`` gives one.
- :class:`SyncCluster` runs the same ``AsyncCluster`` on an event loop of its own, in a background thread
  (``kbox-testing/<name>``); every helper blocks until done and returns the same result. ``with
  Cluster() as c`` gives one, and so does the ``kbox_cluster`` pytest fixture. Objects bound to the
  cluster's loop (``c.client``, its watches) are used through ``c.run(coro)``, which runs a coroutine
  there and returns its result; ``c.aio`` offers the helpers as awaitables for async tests (run on the
  cluster's loop, awaited on the caller's), so an async test need not block its own loop.

Which to use: an ``AsyncCluster`` serves from the test's own loop, so anything blocking that talks to it
(the official ``kubernetes`` client, ``subprocess.run(["kubectl", ...])``) must run off the loop
(``await asyncio.to_thread(...)``, ``asyncio.create_subprocess_exec``) or it waits for itself. A
``SyncCluster`` has no such constraint, which is why the pytest fixture is one.

What a test gets (both faces): ``kubeconfig_path`` (CA and token inside: kubectl ``--kubeconfig`` and the
official client's ``config.load_kube_config(config_file=...)`` work), ``url``, ``token``, ``client``
(kbox's in-process client), ``node_names``, and the helpers ``apply``, ``get``, ``delete``, ``wait_for``,
``logs``, ``create_namespace``, ``delete_namespace``; fault injection with ``node(name).stop()`` /
``.start()`` and ``restart()``.

Timers that make tests slow are keyword arguments of the cluster, with test-friendly defaults
(:data:`TEST_TIMERS`; the kubelet's so far, the controllers' join them as they land).

Kinds are named as kubectl names them: ``"Pod"``, ``"pods"``, ``"po"``, ``"deployments.apps"``; a
namespaced kind without a namespace means ``default``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import dataclasses
import errno
import logging
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import yaml

from kbox import kubeconfig
from kbox.api.errors import StatusError
from kbox.api.nodeconnection import LogOptions
from kbox.api.resource import ResourceDef
from kbox.api.streaming import common as streaming
from kbox.client.interface import APPLY_PATCH, NAMESPACES, PODS, Obj, Resource
from kbox.client.local import LocalClient
from kbox.cluster import Cluster as KboxCluster
from kbox.cluster import ClusterSettings, make_runtime, node_names
from kbox.controllers import nodelifecycle
from kbox.kubelet import memoryfs
from kbox.kubelet.kubelet import Kubelet, KubeletSettings
from kbox.kubelet.runtime.interface import ContainerRuntimeError, Runtime

_log = logging.getLogger(__name__)

T = TypeVar("T")
RuntimeName = Literal["fake", "docker"]
Manifest = str | Mapping[str, Any] | Sequence[Mapping[str, Any]]
Predicate = Callable[[Obj], bool]

FIELD_MANAGER = "kbox-testing"

TEST_TIMERS: dict[str, float] = {
    "lease_interval": 1.0,  # kubelet renews its node's Lease (Kubernetes: 10 s)
    "node_status_interval": 10.0,  # kubelet rewrites Node status at least this often (Kubernetes: 60 s)
    "relist_interval": 0.2,  # kubelet polls the runtime for container changes (Kubernetes: 1 s)
    "backoff_base": 0.5,  # first container restart back-off (Kubernetes: 10 s)
    "backoff_max": 5.0,  # back-off cap (Kubernetes: 300 s)
    "node_monitor_grace_period": 10.0,  # a silent node turns Unknown (Kubernetes: 40 s)
    "job_backoff_base": 0.5,  # Job controller: first delay before a failed pod is replaced (Kubernetes: 10 s)
    "job_backoff_max": 5.0,  # its cap (Kubernetes: 360 s)
    "pod_gc_quarantine": 2.0,  # pod GC: how long a pod's node stays missing before the pod goes (40 s)
}
"""Defaults of the timers a test can set as ``Cluster(..., lease_interval=0.1)``."""

_LIFECYCLE_TIMERS = nodelifecycle.FIELDS  # also default_*_toleration_seconds, node_eviction_rate...
_JOB_TIMERS = frozenset({"job_backoff_base", "job_backoff_max", "pod_gc_quarantine"})  # ClusterSettings
_KUBELET_TIMERS = frozenset(
    f.name for f in dataclasses.fields(KubeletSettings) if isinstance(f.default, float)
)


class DockerUnavailable(RuntimeError):
    """``runtime="docker"`` was asked for and no Docker engine answers."""


class WaitTimeout(TimeoutError):
    """``wait_for`` ran out of time; the message shows what it saw last."""


class WaitFailed(AssertionError):
    """``wait_for`` can no longer succeed (a pod reached a terminal phase that is not the one awaited)."""


# -- the async cluster ------------------------------------------------------------------------------


class AsyncCluster:
    """A kbox cluster on the running event loop. ``start()``/``stop()``, or ``async with``.

    ``runtime``: ``"fake"`` (simulated containers, the default) or ``"docker"`` (real containers on the
    local Docker engine; everything labelled with the cluster and removed on exit). ``nodes``: how many
    kubelets. ``state_dir``: where state lives (default: a new temporary directory, removed on exit; a
    directory given is kept). ``durable``: a SQLite store in ``state_dir`` instead of memory, which
    ``restart()`` needs. ``keep``: leave the temporary directory (and Docker containers) behind on exit,
    for debugging. ``name``: the cluster's name (default ``kbox-<random>``); the first node is named
    after it, the others ``<name>-m02``... ``timers``: see :data:`TEST_TIMERS`.
    """

    def __init__(
        self,
        runtime: RuntimeName = "fake",
        nodes: int = 1,
        state_dir: Path | str | None = None,
        *,
        name: str | None = None,
        durable: bool = False,
        keep: bool = False,
        ready_timeout: float = 30.0,
        cronjob_clock: Any = None,
        **timers: float,
    ) -> None:
        if runtime not in ("fake", "docker"):
            raise ValueError(f'runtime must be "fake" or "docker", not {runtime!r}')
        if nodes < 0:
            raise ValueError("nodes must be 0 or more")
        unknown = set(timers) - _KUBELET_TIMERS - _LIFECYCLE_TIMERS - _JOB_TIMERS
        if unknown:
            known = sorted(_KUBELET_TIMERS | _LIFECYCLE_TIMERS | _JOB_TIMERS)
            raise TypeError(f"unknown timers {sorted(unknown)}; known: {known}")
        self.name = name or f"kbox-{secrets.token_hex(3)}"
        self.runtime_name: RuntimeName = runtime
        self.nodes = nodes
        self.durable = durable
        self.keep = keep
        self.ready_timeout = ready_timeout
        self.cronjob_clock = cronjob_clock
        """The CronJob controller's clock: a ``kbox.controllers.cronschedule.ManualClock`` lets a test
        jump to the next schedule time with ``clock.advance(seconds)``."""
        self.timers: dict[str, float] = {**TEST_TIMERS, **timers}
        self._given_state_dir = Path(state_dir) if state_dir is not None else None
        self._state_dir: Path | None = None
        self._temp_root: Path | None = None  # holds state_dir, named after the cluster, when not given
        self._cluster: KboxCluster | None = None
        self._client: LocalClient | None = None
        self._runtime: Runtime | None = None
        self._nodes: dict[str, Node] = {}

    def __repr__(self) -> str:
        where = self._cluster.url if self._cluster is not None else "not running"
        return f"<{type(self).__name__} {self.name} {self.runtime_name} x{self.nodes}: {where}>"

    # -- what a test reads ------------------------------------------------------------------------

    @property
    def cluster(self) -> KboxCluster:
        """The underlying :class:`kbox.cluster.Cluster` (a new one after ``restart()``)."""
        if self._cluster is None:
            raise RuntimeError(f"the cluster {self.name} is not running")
        return self._cluster

    @property
    def state_dir(self) -> Path:
        if self._state_dir is None:
            raise RuntimeError(f"the cluster {self.name} is not running")
        return self._state_dir

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def token(self) -> str:
        return self.cluster.token

    @property
    def ca_path(self) -> Path:
        """The cluster CA's certificate (PEM), for clients configured by hand."""
        return self.cluster.tls.ca_cert

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def client(self) -> LocalClient:
        """kbox's in-process client (the apiserver's pipeline without HTTP). A new one after
        ``restart()``: do not keep it across a restart."""
        if self._client is None:
            self._client = self.cluster.client(FIELD_MANAGER)
        return self._client

    @property
    def node_names(self) -> list[str]:
        return node_names(self._settings(port=0))

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncCluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start and wait until ready: API answering, every node Ready, kube-system pods Running."""
        if self._cluster is not None:
            raise RuntimeError(f"the cluster {self.name} is already running")
        if self._given_state_dir is not None:
            self._given_state_dir.mkdir(parents=True, exist_ok=True)
            self._state_dir = self._given_state_dir
        else:
            self._temp_root = Path(tempfile.mkdtemp(prefix="kbox-testing-"))
            self._state_dir = self._temp_root / self.name
            self._state_dir.mkdir()
        try:
            self._runtime = await self._open_runtime()
            await self._start_cluster(port=0)
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop everything and remove the temporary state (and, with Docker, this cluster's containers
        and network), unless ``keep`` is set."""
        try:
            await self._stop_cluster()
        finally:
            runtime, self._runtime = self._runtime, None
            if runtime is not None:
                purge = getattr(runtime, "purge", None)  # Docker: this cluster's containers and network
                if purge is not None and not self.keep:
                    with contextlib.suppress(Exception):
                        await purge()
                with contextlib.suppress(Exception):
                    await runtime.close()
            self._nodes.clear()
            state_dir, self._state_dir = self._state_dir, None
            root, self._temp_root = self._temp_root, None
            if state_dir is not None and not self.keep:
                memoryfs.remove_all(state_dir / "kubelet")
            if root is not None:
                if self.keep:
                    _log.warning("kbox.testing: kept the state of cluster %s in %s", self.name, state_dir)
                else:
                    shutil.rmtree(root, ignore_errors=True)

    async def restart(self) -> None:
        """Restart the whole control plane (and every kubelet) over the same state, on the same port:
        objects persist, the kubeconfig stays valid, and pods keep running (the new kubelets adopt
        them from the runtime). Needs ``durable=True``: an in-memory store would start empty."""
        if not self.durable:
            raise RuntimeError(
                "restart() needs a durable store: use Cluster(durable=True) (SQLite in the state directory)"
            )
        port = self._port()
        await self._stop_cluster()
        for _ in range(50):  # the port was ours a moment ago; it is free again at once on Linux
            try:
                await self._start_cluster(port=port)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                await asyncio.sleep(0.1)
        else:
            _log.warning("port %d stayed busy; cluster %s restarts on another one", port, self.name)
            await self._start_cluster(port=0)
        await self._wait_ready()

    def _settings(self, *, port: int) -> ClusterSettings:
        return ClusterSettings(
            name=self.name,
            state_dir=self._state_dir or Path(tempfile.gettempdir()) / self.name,
            runtime=self.runtime_name,
            nodes=self.nodes,
            host="127.0.0.1",
            port=port,
            durable=self.durable,
            kubelet={k: v for k, v in self.timers.items() if k in _KUBELET_TIMERS},
            node_lifecycle=nodelifecycle.NodeLifecycleSettings().overridden(
                **{k: v for k, v in self.timers.items() if k in _LIFECYCLE_TIMERS}
            ),
            job_backoff_base=self.timers["job_backoff_base"],
            job_backoff_max=self.timers["job_backoff_max"],
            cronjob_clock=self.cronjob_clock,
            pod_gc_quarantine=self.timers["pod_gc_quarantine"],
        )

    async def _open_runtime(self) -> Runtime:
        runtime = make_runtime(self._settings(port=0))
        if self.runtime_name == "docker":
            try:
                await runtime.version()
            except ContainerRuntimeError as exc:
                with contextlib.suppress(Exception):
                    await runtime.close()
                raise DockerUnavailable(
                    'kbox.testing.Cluster(runtime="docker") needs a running Docker engine, and none '
                    f"answered: {exc}. Start Docker (or point DOCKER_HOST at one), or use runtime='fake'."
                ) from None
        return runtime

    async def _start_cluster(self, *, port: int) -> None:
        cluster = KboxCluster(self._settings(port=port), runtime=self._runtime)
        await cluster.start()  # stops what it started if it fails
        self._cluster = cluster
        self._client = None
        config = kubeconfig.build(
            name=self.name, url=cluster.url, token=cluster.token, ca=cluster.tls.ca_pem()
        )
        kubeconfig.write(self.kubeconfig_path, config)

    async def _stop_cluster(self) -> None:
        cluster, self._cluster = self._cluster, None
        self._client = None
        if cluster is not None:
            await cluster.stop()

    def _port(self) -> int:
        server = self.cluster.plane.server
        assert server is not None
        return int(server.port)

    async def _wait_ready(self) -> None:
        for name in self.node_names:
            await self.wait_for("Node", name, condition="Ready", timeout=self.ready_timeout)
        system = await self.client.list(PODS, namespace="kube-system")
        for pod in system["items"]:
            await self.wait_for(
                "Pod",
                pod["metadata"]["name"],
                namespace="kube-system",
                predicate=lambda p: (p.get("status") or {}).get("phase") in ("Running", "Succeeded"),
                timeout=self.ready_timeout,
            )

    # -- kinds ------------------------------------------------------------------------------------

    def resource(self, kind: str, api_version: str | None = None) -> Resource:
        """The resource a kind names: ``Pod``, ``pods``, ``po``, ``deployments.apps``, ``Deployment``
        (with ``api_version``, exactly that group and version)."""
        return _as_resource(self._resource_def(kind, api_version))

    def _resource_def(self, kind: str, api_version: str | None = None) -> ResourceDef:
        catalog = self.cluster.plane.catalog
        if api_version is not None:
            group, _, version = api_version.rpartition("/")
            generic = catalog.for_kind(group, kind)
            if generic is not None and generic.resource.version != version:
                generic = catalog.lookup(group, version, generic.resource.plural)
            if generic is None:
                raise LookupError(f'no kind "{kind}" is served in "{api_version}"')
            return generic.resource
        name, _, group = kind.partition(".")
        wanted = name.lower()
        for resource in catalog.resources():
            if group and resource.group != group:
                continue
            names = (resource.kind.lower(), resource.plural, resource.singular_name, *resource.short_names)
            if wanted in names:
                preferred = catalog.for_kind(resource.group, resource.kind)
                return preferred.resource if preferred is not None else resource
        raise LookupError(f'the server does not serve a resource "{kind}"')

    def _namespace(self, resource: Resource, namespace: str | None) -> str | None:
        return (namespace or "default") if resource.namespaced else None

    # -- helpers ----------------------------------------------------------------------------------

    @overload
    async def apply(self, manifest: Mapping[str, Any], *, namespace: str | None = None) -> Obj: ...
    @overload
    async def apply(
        self, manifest: Sequence[Mapping[str, Any]], *, namespace: str | None = None
    ) -> list[Obj]: ...
    @overload
    async def apply(self, manifest: str, *, namespace: str | None = None) -> Any: ...

    async def apply(self, manifest: Manifest, *, namespace: str | None = None) -> Any:
        """Create or update objects, as ``kubectl apply --server-side --force-conflicts`` does.

        ``manifest`` is an object (a dict), a list of them, or YAML text (several documents allowed;
        ``kind: List`` is unpacked). Namespaced objects without a namespace go to ``namespace`` or
        ``default``. Returns the object as stored: one for a dict or a one-document YAML, a list for a
        list or several documents. Objects with only ``generateName`` are created. A
        CustomResourceDefinition is waited for until Established, so objects of its kind may follow in
        the same manifest (``ValueError`` when it cannot be: a name in use, webhook conversion)."""
        documents = _documents(manifest)
        results = [await self._apply_one(doc, namespace) for doc in documents]
        if isinstance(manifest, Mapping) or (isinstance(manifest, str) and len(results) == 1):
            return results[0]
        return results

    async def _apply_one(self, document: Mapping[str, Any], namespace: str | None) -> Obj:
        obj = copy.deepcopy(dict(document))
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError(f"an object to apply needs apiVersion and kind: {_describe(obj)}")
        resource = _as_resource(self._resource_def(kind, api_version))
        metadata = obj.setdefault("metadata", {})
        target = None
        if resource.namespaced:
            given = metadata.get("namespace")
            if given and namespace and given != namespace:
                raise ValueError(
                    f"{kind} {metadata.get('name')!r} is in namespace {given!r}, not {namespace!r}"
                )
            target = metadata["namespace"] = given or namespace or "default"
        name = metadata.get("name")
        if not name:
            if not metadata.get("generateName"):
                raise ValueError(f"an object to apply needs metadata.name or generateName: {_describe(obj)}")
            return await self.client.create(resource, obj, namespace=target)
        applied = await self.client.patch(
            resource,
            name,
            obj,
            namespace=target,
            patch_type=APPLY_PATCH,
            field_manager=FIELD_MANAGER,
            force=True,
        )
        if (resource.group, resource.plural) == ("apiextensions.k8s.io", "customresourcedefinitions"):
            # As `kubectl wait --for=condition=Established`: its objects can be applied next.
            settled = await self.wait_for(kind, name, predicate=_crd_settled, timeout=10)
            if settled is not None and not _crd_condition(settled, "Established"):
                raise ValueError(
                    f"CustomResourceDefinition {name} is not established: {_crd_problem(settled)}"
                )
            return settled or applied
        return applied

    async def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        """The object; ``StatusError`` (404) when it does not exist."""
        resource = self.resource(kind)
        return await self.client.get(resource, name, namespace=self._namespace(resource, namespace))

    async def delete(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        missing_ok: bool = False,
        wait: bool = False,
        timeout: float = 30.0,  # noqa: ASYNC109 - the API asked of a test helper
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
    ) -> Obj | None:
        """Delete an object (graceful for pods, as kubectl's delete). ``wait``: until it is gone.
        ``missing_ok``: a missing object is not an error (returns None)."""
        resource = self.resource(kind)
        target = self._namespace(resource, namespace)
        try:
            result = await self.client.delete(
                resource,
                name,
                namespace=target,
                grace_period_seconds=grace_period_seconds,
                propagation_policy=propagation_policy,
            )
        except StatusError as exc:
            if exc.code == 404 and missing_ok:
                return None
            raise
        if wait:
            await self.wait_for(kind, name, target, condition="delete", timeout=timeout)
        return result

    async def wait_for(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        condition: str | None = None,
        predicate: Predicate | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 - the API asked of a test helper
    ) -> Obj | None:
        """Wait, by watching, until the object satisfies ``condition`` or ``predicate`` (or, with
        neither, exists); returns it (None for ``"delete"``).

        ``condition``: a condition type that must be ``True`` (``"Ready"``, ``"Available"``, matched
        case-insensitively as kubectl does), or ``"Type=Status"`` (``"Ready=False"``); a phase
        (``"Running"``, ``"Succeeded"``, ``"Active"``...); or ``"delete"`` for the object to be gone.
        Raises :class:`WaitTimeout` after ``timeout`` seconds (with the last state seen), and
        :class:`WaitFailed` at once when a pod ends in a phase that cannot satisfy the condition."""
        resource = self.resource(kind)
        target = self._namespace(resource, namespace)
        check = _matcher(condition, predicate)
        gone = condition is not None and condition.lower() in ("delete", "deleted")
        where = f"{kind} {target}/{name}" if target else f"{kind} {name}"
        last: list[Obj | None] = [None]

        def satisfied(current: Obj | None) -> bool:
            last[0] = current
            if current is None:
                return gone
            if gone:
                return False
            if check(current):
                return True
            phase = (current.get("status") or {}).get("phase")
            if condition is not None and current.get("kind") == "Pod" and phase in ("Succeeded", "Failed"):
                raise WaitFailed(f"{where} is {phase}; it will never be {condition}: {_summary(current)}")
            return False

        async def run() -> Obj | None:
            selector = f"metadata.name={name}"
            while True:
                listing = await self.client.list(resource, namespace=target, field_selector=selector)
                current = listing["items"][0] if listing["items"] else None
                if satisfied(current):
                    return current
                try:
                    async for event in self.client.watch(
                        resource,
                        namespace=target,
                        field_selector=selector,
                        resource_version=listing["metadata"]["resourceVersion"],
                    ):
                        if event.type in ("BOOKMARK", "ERROR"):
                            continue
                        current = None if event.type == "DELETED" else event.object
                        if satisfied(current):
                            return copy.deepcopy(current)
                except StatusError as exc:
                    if exc.code != 410:
                        raise
                # the watch ended (expired, or the server went away): list again

        try:
            return await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            wanted = condition or ("a match of the predicate" if predicate else "existence")
            seen = _summary(last[0]) if last[0] is not None else "no such object"
            raise WaitTimeout(f"{where}: not {wanted} after {timeout:g}s; last seen: {seen}") from None

    async def logs(
        self,
        pod: str,
        namespace: str | None = None,
        container: str | None = None,
        *,
        previous: bool = False,
        tail_lines: int | None = None,
    ) -> str:
        """A container's log (default container: the only one, or the annotated default), as
        ``kubectl logs`` shows it, from the pod's kubelet through the apiserver's node connection."""
        target = namespace or "default"
        obj = await self.client.get(PODS, pod, namespace=target)
        name = streaming.container(obj, container)
        node = (obj.get("spec") or {}).get("nodeName")
        if not node:
            return ""  # an unscheduled pod has an empty log, as in kube-apiserver
        streaming.require_log_available(obj, name, previous=previous)
        options = LogOptions(previous=previous, tail_lines=tail_lines)
        chunks = self.cluster.plane.catalog.node_connections.get(node).logs(target, pod, name, options)
        data = bytearray()
        try:
            async for chunk in chunks:
                data += chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        return data.decode(errors="replace")

    async def create_namespace(self, name: str, *, labels: Mapping[str, str] | None = None) -> Obj:
        body: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        if labels:
            body["metadata"]["labels"] = dict(labels)
        return await self.client.create(NAMESPACES, body)

    async def delete_namespace(self, name: str) -> None:
        """Delete every object in the namespace, then the namespace, which the namespace controller
        removes once it is empty. Pods are deleted gracefully (their kubelet finishes them)."""
        seen: set[str] = set()
        for definition in list(self.cluster.plane.catalog.resources()):
            if not definition.namespaced or not definition.stored or definition.key_root in seen:
                continue
            if "list" not in definition.verbs or "delete" not in definition.verbs:
                continue
            seen.add(definition.key_root)
            resource = _as_resource(definition)
            listing = await self.client.list(resource, namespace=name)
            results = await asyncio.gather(
                *(
                    self.client.delete(resource, item["metadata"]["name"], namespace=name)
                    for item in listing["items"]
                ),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, StatusError) and result.code in (404, 409):
                    continue
                if isinstance(result, BaseException):
                    raise result
        with contextlib.suppress(StatusError):
            await self.client.delete(NAMESPACES, name)

    # -- fault injection --------------------------------------------------------------------------

    def node(self, name: str | None = None) -> Node:
        """The handle of a node (default: the first) for ``stop()`` / ``start()``."""
        name = name or self.node_names[0]
        if name not in self.node_names:
            raise LookupError(f"cluster {self.name} has no node {name!r}; nodes: {self.node_names}")
        return self._nodes.setdefault(name, Node(self, name))


class Node:
    """One node's kubelet, to stop and start as a machine failure would.

    ``stop()``: the kubelet stops, so its Lease is no longer renewed and its Node status no longer
    written; pods on it keep running in the runtime but nothing syncs them, and their logs and exec are
    unavailable (503). What follows is the node lifecycle controller's business: after the timer
    ``node_monitor_grace_period`` the node turns Unknown and gets the unreachable taints, and its pods
    are evicted once their tolerations run out (``default_unreachable_toleration_seconds``, 300 s
    unless set; the cluster's other nodes must be up). ``start()``: a new kubelet for the node registers
    again (Ready), resumes the Lease and adopts the pods still running. ``restart()`` of the cluster
    brings every node back."""

    def __init__(self, owner: AsyncCluster, name: str) -> None:
        self.owner = owner
        self.name = name

    def __repr__(self) -> str:
        return f"<Node {self.name} {'running' if self.running else 'stopped'}>"

    @property
    def running(self) -> bool:
        return self.kubelet is not None

    @property
    def kubelet(self) -> Kubelet | None:
        for kubelet in self.owner.cluster.kubelets:
            if kubelet.name == self.name:
                return kubelet
        return None

    async def stop(self) -> None:
        await self.owner.cluster.stop_kubelet(self.name)

    async def start(self) -> None:
        await self.owner.cluster.start_kubelet(self.name)


# -- the sync facade --------------------------------------------------------------------------------


class _LoopThread:
    """An event loop run by a daemon thread; ``close()`` cancels what is left and joins the thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._ready = threading.Event()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        self._ready.wait()

    def on_loop(self) -> bool:
        return threading.get_ident() == self.thread.ident

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self.on_loop():
            coro.close()
            raise RuntimeError(
                "a blocking kbox.testing call was made on the cluster's own event loop (it would wait for "
                "itself): await the AsyncCluster (SyncCluster.async_cluster) there instead"
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = self.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        if not self.thread.is_alive():
            self.loop.close()
            return
        with contextlib.suppress(Exception):
            self.run(self._drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        if not self.thread.is_alive():
            self.loop.close()

    async def _drain(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.loop.shutdown_asyncgens()
        await self.loop.shutdown_default_executor()


class SyncCluster:
    """The cluster for synchronous code: an :class:`AsyncCluster` on its own loop in a background thread.

    Takes the same arguments as ``AsyncCluster``; ``start()``/``stop()``, or ``with``. Every helper
    blocks and returns what the async one returns. ``run(coro)`` runs any coroutine on the cluster's
    loop (``c.run(c.client.list(PODS))``); ``aio`` has the helpers as awaitables for async tests."""

    def __init__(
        self,
        runtime: RuntimeName = "fake",
        nodes: int = 1,
        state_dir: Path | str | None = None,
        **options: Any,
    ) -> None:
        self.async_cluster = AsyncCluster(runtime, nodes, state_dir, **options)
        self.aio = AioBridge(self)
        self._thread: _LoopThread | None = None

    def __repr__(self) -> str:
        return repr(self.async_cluster).replace("AsyncCluster", "SyncCluster", 1)

    def __enter__(self) -> SyncCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"the cluster {self.name} is already running")
        thread = _LoopThread(f"kbox-testing/{self.name}")
        thread.start()
        self._thread = thread
        try:
            thread.run(self.async_cluster.start())
        except BaseException:
            self._thread = None
            thread.close()
            raise

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            thread.run(self.async_cluster.stop())
        finally:
            thread.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the cluster's loop and return its result."""
        if self._thread is None:
            coro.close()
            raise RuntimeError(f"the cluster {self.name} is not running")
        return self._thread.run(coro)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the cluster's loop and await it from the caller's loop."""
        if self._thread is None:
            coro.close()
            raise RuntimeError(f"the cluster {self.name} is not running")
        if self._thread.on_loop():
            return await coro
        return await asyncio.wrap_future(self._thread.submit(coro))

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._thread is None:
            raise RuntimeError(f"the cluster {self.name} is not running")
        return self._thread.loop

    # -- what a test reads (see AsyncCluster) ------------------------------------------------------

    @property
    def name(self) -> str:
        return self.async_cluster.name

    @property
    def keep(self) -> bool:
        return self.async_cluster.keep

    @keep.setter
    def keep(self, value: bool) -> None:
        self.async_cluster.keep = value

    @property
    def cluster(self) -> KboxCluster:
        return self.async_cluster.cluster

    @property
    def state_dir(self) -> Path:
        return self.async_cluster.state_dir

    @property
    def url(self) -> str:
        return self.async_cluster.url

    @property
    def token(self) -> str:
        return self.async_cluster.token

    @property
    def ca_path(self) -> Path:
        return self.async_cluster.ca_path

    @property
    def kubeconfig_path(self) -> Path:
        return self.async_cluster.kubeconfig_path

    @property
    def client(self) -> LocalClient:
        """kbox's async client, bound to the cluster's loop: call it through ``run``/``arun``."""
        return self.async_cluster.client

    @property
    def node_names(self) -> list[str]:
        return self.async_cluster.node_names

    def resource(self, kind: str, api_version: str | None = None) -> Resource:
        return self.async_cluster.resource(kind, api_version)

    # -- helpers (blocking) -----------------------------------------------------------------------

    @overload
    def apply(self, manifest: Mapping[str, Any], *, namespace: str | None = None) -> Obj: ...
    @overload
    def apply(self, manifest: Sequence[Mapping[str, Any]], *, namespace: str | None = None) -> list[Obj]: ...
    @overload
    def apply(self, manifest: str, *, namespace: str | None = None) -> Any: ...

    def apply(self, manifest: Manifest, *, namespace: str | None = None) -> Any:
        return self.run(self.async_cluster.apply(manifest, namespace=namespace))

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        return self.run(self.async_cluster.get(kind, name, namespace))

    def delete(self, kind: str, name: str, namespace: str | None = None, **options: Any) -> Obj | None:
        return self.run(self.async_cluster.delete(kind, name, namespace, **options))

    def wait_for(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        condition: str | None = None,
        predicate: Predicate | None = None,
        timeout: float = 30.0,
    ) -> Obj | None:
        return self.run(
            self.async_cluster.wait_for(
                kind, name, namespace, condition=condition, predicate=predicate, timeout=timeout
            )
        )

    def logs(
        self, pod: str, namespace: str | None = None, container: str | None = None, **options: Any
    ) -> str:
        return self.run(self.async_cluster.logs(pod, namespace, container, **options))

    def create_namespace(self, name: str, *, labels: Mapping[str, str] | None = None) -> Obj:
        return self.run(self.async_cluster.create_namespace(name, labels=labels))

    def delete_namespace(self, name: str) -> None:
        self.run(self.async_cluster.delete_namespace(name))

    def restart(self) -> None:
        self.run(self.async_cluster.restart())

    def node(self, name: str | None = None) -> SyncNode:
        return SyncNode(self, self.async_cluster.node(name))


class SyncNode:
    """:class:`Node` with blocking ``stop()`` / ``start()``."""

    def __init__(self, owner: SyncCluster, node: Node) -> None:
        self.owner = owner
        self.node = node
        self.name = node.name

    def __repr__(self) -> str:
        return repr(self.node)

    @property
    def running(self) -> bool:
        return self.node.running

    def stop(self) -> None:
        self.owner.run(self.node.stop())

    def start(self) -> None:
        self.owner.run(self.node.start())


class AioBridge:
    """A :class:`SyncCluster`'s helpers as awaitables (``await kbox_cluster.aio.apply(...)``): each runs
    on the cluster's loop and is awaited from the caller's, which keeps running meanwhile."""

    def __init__(self, owner: SyncCluster) -> None:
        self.owner = owner

    @property
    def _async(self) -> AsyncCluster:
        return self.owner.async_cluster

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return await self.owner.arun(coro)

    async def apply(self, manifest: Manifest, *, namespace: str | None = None) -> Any:
        return await self.owner.arun(self._async.apply(manifest, namespace=namespace))

    async def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        return await self.owner.arun(self._async.get(kind, name, namespace))

    async def delete(self, kind: str, name: str, namespace: str | None = None, **options: Any) -> Obj | None:
        return await self.owner.arun(self._async.delete(kind, name, namespace, **options))

    async def wait_for(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        condition: str | None = None,
        predicate: Predicate | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 - the API asked of a test helper
    ) -> Obj | None:
        return await self.owner.arun(
            self._async.wait_for(
                kind, name, namespace, condition=condition, predicate=predicate, timeout=timeout
            )
        )

    async def logs(
        self, pod: str, namespace: str | None = None, container: str | None = None, **options: Any
    ) -> str:
        return await self.owner.arun(self._async.logs(pod, namespace, container, **options))


# -- the entry point ---------------------------------------------------------------------------------


class Cluster:
    """``async with Cluster(...) as c`` gives an :class:`AsyncCluster` on the running loop;
    ``with Cluster(...) as c`` gives a :class:`SyncCluster` on a loop of its own. The arguments are
    ``AsyncCluster``'s: ``runtime="fake"|"docker"``, ``nodes=1``, ``state_dir=None``, and keywords
    ``name``, ``durable``, ``keep``, ``ready_timeout`` and the timers of :data:`TEST_TIMERS`."""

    def __init__(
        self,
        runtime: RuntimeName = "fake",
        nodes: int = 1,
        state_dir: Path | str | None = None,
        **options: Any,
    ) -> None:
        AsyncCluster(runtime, nodes, state_dir, **options)  # check the arguments now, not at entry
        self._arguments: tuple[RuntimeName, int, Path | str | None] = (runtime, nodes, state_dir)
        self._options = options
        self._async: AsyncCluster | None = None
        self._sync: SyncCluster | None = None

    async def __aenter__(self) -> AsyncCluster:
        self._async = AsyncCluster(*self._arguments, **self._options)
        await self._async.start()
        return self._async

    async def __aexit__(self, *exc: object) -> None:
        cluster, self._async = self._async, None
        if cluster is not None:
            await cluster.stop()

    def __enter__(self) -> SyncCluster:
        self._sync = SyncCluster(*self._arguments, **self._options)
        self._sync.start()
        return self._sync

    def __exit__(self, *exc: object) -> None:
        cluster, self._sync = self._sync, None
        if cluster is not None:
            cluster.stop()


# -- small pieces -----------------------------------------------------------------------------------


def _as_resource(definition: ResourceDef) -> Resource:
    return Resource(definition.group, definition.version, definition.plural, definition.namespaced)


def _crd_condition(crd: Obj, kind: str, status: str = "True") -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == status for c in conditions)


def _crd_settled(crd: Obj) -> bool:
    """Established, or refused for good (a name in use, a webhook conversion kbox cannot run)."""
    return (
        _crd_condition(crd, "Established")
        or _crd_condition(crd, "NamesAccepted", "False")
        or any(
            c.get("type") == "Established" and c.get("reason") == "WebhookConversionNotSupported"
            for c in (crd.get("status") or {}).get("conditions") or []
        )
    )


def _crd_problem(crd: Obj) -> str:
    for condition in (crd.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "False" and condition.get("type") in ("NamesAccepted", "Established"):
            return f"{condition.get('reason')}: {condition.get('message')}"
    return "unknown"


def _documents(manifest: Manifest) -> list[Mapping[str, Any]]:
    if isinstance(manifest, str):
        loaded = [doc for doc in yaml.safe_load_all(manifest) if doc is not None]
    elif isinstance(manifest, Mapping):
        loaded = [manifest]
    else:
        loaded = list(manifest)
    documents: list[Mapping[str, Any]] = []
    for doc in loaded:
        if not isinstance(doc, Mapping):
            raise ValueError(f"a manifest document must be a mapping, not {type(doc).__name__}")
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            documents.extend(doc["items"])
        else:
            documents.append(doc)
    if not documents:
        raise ValueError("the manifest has no objects")
    return documents


def _matcher(condition: str | None, predicate: Predicate | None) -> Predicate:
    if condition is not None and predicate is not None:
        raise ValueError("give condition or predicate, not both")
    if predicate is not None:
        return predicate
    if condition is None:
        return lambda obj: True
    kind, sep, want = condition.partition("=")
    kind, want = kind.strip().lower(), (want.strip() or "True").lower()

    def met(obj: Obj) -> bool:
        status = obj.get("status") or {}
        if not sep and str(status.get("phase", "")).lower() == kind:
            return True
        return any(
            str(c.get("type", "")).lower() == kind and str(c.get("status", "")).lower() == want
            for c in status.get("conditions") or []
        )

    return met


def _describe(obj: Mapping[str, Any]) -> str:
    text = yaml.safe_dump(dict(obj), sort_keys=False).strip()
    return text if len(text) < 300 else text[:300] + "..."


def _summary(obj: Obj) -> str:
    """What ``wait_for`` reports of the last state it saw: phase, conditions, container states."""
    status = obj.get("status") or {}
    parts = []
    if "phase" in status:
        parts.append(f"phase={status['phase']}")
    for c in status.get("conditions") or []:
        parts.append(f"{c.get('type')}={c.get('status')}" + (f" ({c['reason']})" if c.get("reason") else ""))
    for c in status.get("containerStatuses") or []:
        state = c.get("state") or {}
        for name, detail in state.items():
            reason = (detail or {}).get("reason")
            parts.append(f"container {c.get('name')}: {name}" + (f" ({reason})" if reason else ""))
    return ", ".join(parts) or "no status"


__all__ = [
    "TEST_TIMERS",
    "AioBridge",
    "AsyncCluster",
    "Cluster",
    "DockerUnavailable",
    "Node",
    "SyncCluster",
    "SyncNode",
    "WaitFailed",
    "WaitTimeout",
]
