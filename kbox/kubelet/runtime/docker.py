"""The Docker runtime: pods as containers of the local Docker engine, driven through aiodocker.

A pod is a sandbox container plus app containers, as dockershim made them:

* The sandbox runs the pause image (``catatonit -P``, built locally on first use, see
  :mod:`kbox.kubelet.runtime.sandboximage`) on the cluster's user-defined bridge network
  ``kbox-<cluster>`` (created when missing), so it owns the pod's network namespace and IP, which the
  host reaches directly. It also carries the pod's hostname and DNS settings, and its IPC namespace is
  shareable.
* App containers join it (``NetworkMode``/``IpcMode`` ``container:<sandbox id>``): they share its
  localhost, IP and hostname, and the IP outlives their restarts.
* As root, kbox connects the sandbox to the cluster bridge itself instead (:mod:`.podnet`: it starts
  with no network, then gets a veth on the bridge and an address from the subnet's upper half, about
  80 ms sooner than Docker's own attach); pods whose DNS is the runtime's own setup still join
  Docker's network when the host has only loopback nameservers (only its embedded resolver reaches
  them). ``KBOX_POD_NETWORK=docker`` turns it off.

DNS: the kubelet forms each pod's /etc/resolv.conf and /etc/hosts (:mod:`kbox.kubelet.dns`) and
passes them as ordinary bind mounts of files under its state folder; Docker leaves a path the
container mounts alone, so the pod reads exactly what Kubernetes would write (the cluster nameserver
itself, not Docker's embedded resolver). Where the kubelet writes no resolv.conf (dnsPolicy Default,
or ClusterFirst without cluster DNS), Docker's own setup stays: on the cluster network its embedded
resolver (``nameserver 127.0.0.11``) forwards to the host's servers; host-network pods get the host's
file. The sandbox also carries the pod's DNS servers, so that resolver forwards to them too.

Images are used by the name the user gave (``docker build -t app .`` then ``image: app``); with
imagePullPolicy Always, a failed pull of an image that is already local falls back to it with a
warning, as kbox users often work offline.

Every object carries the ``interface.LABEL_*`` labels; the node label comes from
``SandboxConfig.labels`` (the kubelet sets it) and app containers inherit the sandbox's labels plus
``io.kbox.sandbox-id`` (Docker also shows an image's own labels among its containers' labels). Every
Docker failure surfaces as a :class:`ContainerRuntimeError`; an unreachable daemon has reason
:data:`REASON_UNAVAILABLE`.

This module holds the calls; :mod:`.dockerspec` what they send and parse, :mod:`.dockernet` the
cluster network, :mod:`.dockerstreams` logs, exec, attach and port-forward, :mod:`.dockererrors` the
error mapping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer

from kbox.api.nodeconnection import ExecSession, LogOptions
from kbox.kubelet.runtime import (
    dockererrors,
    dockernet,
    dockerspec,
    dockerstreams,
    interface,
    podnet,
    sandboximage,
)
from kbox.kubelet.runtime.dockererrors import REASON_UNAVAILABLE
from kbox.kubelet.runtime.dockerspec import (
    LABEL_SANDBOX_ID,
    container_name,
    is_latest,
    label_filter,
    sandbox_name,
)
from kbox.kubelet.runtime.interface import (
    ContainerBrief,
    ContainerConfig,
    ContainerRuntimeError,
    ContainerStatus,
    ImageError,
    PodRef,
    Runtime,
    SandboxConfig,
    SandboxStatus,
)

_log = logging.getLogger(__name__)

__all__ = ["LABEL_SANDBOX_ID", "REASON_UNAVAILABLE", "DockerRuntime", "container_name", "sandbox_name"]


class DockerRuntime(Runtime):
    """The :class:`Runtime` on the local Docker engine, for one kbox cluster."""

    name = "docker"

    def __init__(
        self,
        *,
        cluster: str,
        network: str | None = None,
        sandbox_image: str = sandboximage.DEFAULT_SANDBOX_IMAGE,
        docker: aiodocker.Docker | None = None,
    ) -> None:
        self.cluster = cluster
        self.network = network or dockernet.default_name(cluster)
        self.sandbox_image = sandbox_image
        self._docker = docker
        self._owns_docker = docker is None
        self._setup_lock = asyncio.Lock()
        self._ready: set[str] = set()  # "network", "image": set up (checked once per runtime)
        self._image_refs: dict[str, str] = {}
        self._subnet: podnet.Subnet | None = None  # set when kbox wires pod networks (see podnet)
        self._host_dns_reachable = False  # the host's resolv.conf serves pods with no Docker network
        self._wiring_threads: concurrent.futures.ThreadPoolExecutor | None = None
        self._wired: set[str] = set()  # sandboxes seen wired (by this runtime, or checked once)

    # -- plumbing ----------------------------------------------------------------------------

    def _client(self) -> aiodocker.Docker:
        if self._docker is None:
            try:
                # Only connecting is bounded: stops, pulls and log streams legitimately take long.
                self._docker = aiodocker.Docker(timeout=aiohttp.ClientTimeout(connect=10, sock_connect=10))
            except Exception as e:  # aiodocker asserts, or raises ValueError, when it finds no endpoint
                raise dockererrors.no_endpoint(e) from e
        return self._docker

    def _errors(self, what: str, *, reason: str = "RuntimeError") -> contextlib.AbstractContextManager[None]:
        return dockererrors.translated(what, reason=reason)

    async def close(self) -> None:
        threads, self._wiring_threads = self._wiring_threads, None
        if threads is not None:
            await asyncio.to_thread(threads.shutdown)
        if self._docker is not None and self._owns_docker:
            await self._docker.close()
            self._docker = None

    async def version(self) -> str:
        with self._errors("asking Docker for its version"):
            info = await self._client().version()
        return f"docker://{info.get('Version', 'unknown')}"

    async def _ensure_network(self) -> None:
        async with self._setup_lock:
            if "network" in self._ready:
                return
            await dockernet.ensure(self._client(), network=self.network, cluster=self.cluster)
            self._subnet = await self._wiring() if podnet.can_wire() else None
            self._host_dns_reachable = await asyncio.to_thread(podnet.host_servers_reachable)
            self._ready.add("network")

    async def _wiring(self) -> podnet.Subnet | None:
        """The cluster network's subnet when kbox wires pods to it, with the process's allocator for
        it knowing every address Docker's labels show in use."""
        with self._errors(f"inspecting Docker network {self.network}"):
            info = await (await self._client().networks.get(self.network)).show()
        subnet = podnet.subnet_of(info)
        if subnet is None:
            _log.info("network %s is not one IPv4 bridge: pods join it through Docker", self.network)
            return None
        sandboxes = await self._list(**{interface.LABEL_KIND: "sandbox"})
        in_use = [(c.get("Labels") or {}).get(podnet.LABEL_POD_IP, "") for c in sandboxes]
        podnet.register(self.network, subnet, in_use)
        return subnet

    async def _ensure_sandbox_image(self) -> None:
        async with self._setup_lock:
            if "image" in self._ready:
                return
            with self._errors(f"building the pod sandbox image {self.sandbox_image}"):
                await sandboximage.ensure_sandbox_image(self._client(), self.sandbox_image)
            self._ready.add("image")

    # -- sandboxes ---------------------------------------------------------------------------

    async def run_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        await self._ensure_sandbox_image()
        if not config.host_network:
            await self._ensure_network()
        subnet = self._subnet
        allocator = podnet.allocator(self.network) if subnet is not None else None
        needs_embedded_dns = config.runtime_dns and not self._host_dns_reachable
        if config.host_network or needs_embedded_dns or allocator is None:
            return await self._run_sandbox(config, pod_ip="")
        pod_ip = allocator.take()
        try:
            return await self._run_sandbox(config, pod_ip=pod_ip)
        except BaseException:
            allocator.release(pod_ip)
            raise

    async def _run_sandbox(self, config: SandboxConfig, *, pod_ip: str) -> SandboxStatus:
        docker = self._client()
        pod = config.pod
        body = dockerspec.sandbox_body(
            config, cluster=self.cluster, network=self.network, image=self.sandbox_image, pod_ip=pod_ip
        )
        name = sandbox_name(pod)
        what = f"creating the sandbox of pod {pod.namespace}/{pod.name}"
        container: DockerContainer | None = None
        for attempt in range(3):
            if attempt:
                await self._ensure_sandbox_image()
                if not config.host_network:
                    await self._ensure_network()
            try:
                with self._errors(what, reason="CreatePodSandboxError"):
                    container = await docker.containers.create(body, name=name)
                break
            except ContainerRuntimeError as e:
                cause = e.__cause__
                if attempt == 2 or not isinstance(cause, aiodocker.DockerError):
                    raise
                if cause.status == 404:  # the network or the image went away meanwhile: set up again
                    self._ready.clear()
                elif cause.status == 409:  # a sandbox of this pod exists already
                    existing = await self._existing_sandbox(name, pod)
                    if existing is not None:
                        if pod_ip:
                            podnet.allocator(self.network).release(pod_ip)  # type: ignore[union-attr]
                        return existing
                else:
                    raise
        assert container is not None
        with self._errors(
            f"starting the sandbox of pod {pod.namespace}/{pod.name}", reason="RunPodSandboxError"
        ):
            try:
                await container.start()
            except aiodocker.DockerError:
                with contextlib.suppress(aiodocker.DockerError):
                    await container.delete(force=True)
                raise
            info = await container.show()
        if pod_ip and self._subnet is not None:
            try:
                if self._wiring_threads is None:
                    self._wiring_threads = podnet.worker()
                pid = int(info["State"].get("Pid") or 0)
                await podnet.wire(pid, info["Id"], pod_ip, self._subnet, self._wiring_threads)
                self._wired.add(info["Id"])
            except (podnet.WiringError, OSError) as e:
                with contextlib.suppress(aiodocker.DockerError):
                    await container.delete(force=True)
                raise ContainerRuntimeError(
                    f"wiring the network of pod {pod.namespace}/{pod.name}: {e}", reason="RunPodSandboxError"
                ) from e
        return self._sandbox_status(info)

    async def _existing_sandbox(self, name: str, pod: PodRef) -> SandboxStatus | None:
        """The running sandbox holding ``name`` if it is this pod's; else remove a stale one (→ None)."""
        with self._errors(f"inspecting the existing sandbox {name}"):
            info = await self._client().containers.container(name).show()
        labels = info["Config"].get("Labels") or {}
        if labels.get(interface.LABEL_CLUSTER) != self.cluster:
            raise ContainerRuntimeError(
                f"the container name {name} is taken by a container kbox cluster {self.cluster} did not make",
                reason="CreatePodSandboxError",
            )
        if info["State"].get("Running") and labels.get(interface.LABEL_POD_UID) == pod.uid:
            return self._sandbox_status(info)
        await self.remove_sandbox(info["Id"])
        return None

    def _sandbox_status(self, info: dict[str, Any]) -> SandboxStatus:
        return dockerspec.sandbox_status(info, network=self.network)

    async def _list(self, **labels: str) -> list[dict[str, Any]]:
        """Containers (any state) of this cluster carrying ``labels``, as Docker's list gives them."""
        with self._errors("listing containers"):
            found = await self._client().containers.list(
                all=True, filters=label_filter(**{interface.LABEL_CLUSTER: self.cluster}, **labels)
            )
        return [c._container for c in found]

    async def _pod_containers(self, sandbox_id: str) -> list[dict[str, Any]]:
        """App containers of the pod whose sandbox is ``sandbox_id`` (by pod uid; by sandbox id if gone)."""
        try:
            with self._errors(f"inspecting sandbox {sandbox_id}"):
                info = await self._client().containers.container(sandbox_id).show()
        except ContainerRuntimeError as e:
            if e.reason != "NotFound":
                raise
            return await self._list(**{LABEL_SANDBOX_ID: sandbox_id, interface.LABEL_KIND: "container"})
        uid = (info["Config"].get("Labels") or {}).get(interface.LABEL_POD_UID, "")
        return await self._list(**{interface.LABEL_POD_UID: uid, interface.LABEL_KIND: "container"})

    async def stop_sandbox(self, sandbox_id: str) -> None:
        """Kill what still runs in the pod (the kubelet stopped it gracefully before), then the sandbox."""
        running = [c["Id"] for c in await self._pod_containers(sandbox_id) if c.get("State") == "running"]
        await asyncio.gather(*(self.stop_container(c, 0) for c in running))
        await self.stop_container(sandbox_id, 2)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        containers = await self._pod_containers(sandbox_id)
        await asyncio.gather(*(self.remove_container(c["Id"]) for c in containers))
        pod_ip = ""
        with contextlib.suppress(aiodocker.DockerError):
            info = await self._client().containers.container(sandbox_id).show()
            pod_ip = (info["Config"].get("Labels") or {}).get(podnet.LABEL_POD_IP, "")
        await self.remove_container(sandbox_id)
        self._wired.discard(sandbox_id)
        allocator = podnet.allocator(self.network)
        if pod_ip and allocator is not None:
            allocator.release(pod_ip)

    async def list_sandboxes(self, node: str) -> list[SandboxStatus]:
        found = await self._list(**{interface.LABEL_NODE: node, interface.LABEL_KIND: "sandbox"})
        return await self._unwired_not_ready([self._sandbox_status(c) for c in found])

    async def _unwired_not_ready(self, sandboxes: list[SandboxStatus]) -> list[SandboxStatus]:
        """A kbox-wired sandbox this runtime has not seen wired is checked once: without its veth on
        the host (kbox stopped between the sandbox's start and its wiring, or someone removed it) the
        pod has no network, so it is reported not ready and the kubelet replaces it."""
        unchecked = [
            s for s in sandboxes if s.ready and s.labels.get(podnet.LABEL_POD_IP) and s.id not in self._wired
        ]
        if not unchecked:
            return sandboxes
        try:
            present = await asyncio.to_thread(podnet.host_ends)
        except OSError as e:
            _log.warning("could not list the host's interfaces to check pod wiring: %s", e)
            return sandboxes
        broken = {s.id for s in unchecked if podnet.host_end(s.id) not in present}
        self._wired.update(s.id for s in unchecked if s.id not in broken)
        for sandbox_id in broken:
            _log.warning("sandbox %s has no network (never wired): the pod gets a new one", sandbox_id[:12])
        return [dataclasses.replace(s, ready=False) if s.id in broken else s for s in sandboxes]

    async def list_node(self, node: str) -> list[ContainerBrief]:
        return [dockerspec.brief(c) for c in await self._list(**{interface.LABEL_NODE: node})]

    async def purge(self) -> None:
        """Remove every container and network labelled with this cluster (``kbox delete``)."""
        found = await self._list()
        apps = [c["Id"] for c in found if (c.get("Labels") or {}).get(interface.LABEL_KIND) != "sandbox"]
        await asyncio.gather(*(self.remove_container(c) for c in apps))
        await asyncio.gather(*(self.remove_container(c["Id"]) for c in found if c["Id"] not in apps))
        await dockernet.remove_all(self._client(), cluster=self.cluster)
        podnet.forget(self.network)
        self._ready.discard("network")

    # -- images ------------------------------------------------------------------------------

    async def _image_ref(self, image_id: str) -> str:
        """The imageID a pod status shows: ``docker-pullable://<repo digest>`` or ``docker://<id>``."""
        if image_id not in self._image_refs:
            ref = f"docker://{image_id}"
            with contextlib.suppress(aiodocker.DockerError):
                digests = (await self._client().images.inspect(image_id)).get("RepoDigests") or []
                if digests:
                    ref = f"docker-pullable://{digests[0]}"
            self._image_refs[image_id] = ref
        return self._image_refs[image_id]

    async def _local_image(self, image: str) -> dict[str, Any] | None:
        """The local image the user's name means (``app`` is ``app:latest``), or None."""
        try:
            with self._errors(f"inspecting image {image}"):
                return await self._client().images.inspect(image)
        except ContainerRuntimeError as e:
            cause = e.__cause__
            if isinstance(cause, aiodocker.DockerError) and "invalid reference format" in cause.message:
                raise ImageError(
                    f'"{image}" is not a valid image name: {cause.message}', reason="InvalidImageName"
                ) from e
            if e.reason == "NotFound":
                return None
            raise

    async def ensure_image(self, image: str, pull_policy: str) -> str:
        if not image:
            raise ImageError("no image given", reason="InvalidImageName")
        policy = pull_policy or ("Always" if is_latest(image) else "IfNotPresent")
        local = await self._local_image(image)
        if policy == "Never" or (policy == "IfNotPresent" and local is not None):
            if local is None:
                raise ImageError(
                    f'image "{image}" is not present in the local Docker engine and imagePullPolicy is Never',
                    reason="ErrImageNeverPull",
                )
            return await self._image_ref(local["Id"])
        _log.info("pulling image %s", image)
        try:
            with self._errors(f'pulling image "{image}"'):
                try:
                    await self._client().images.pull(image)
                except aiodocker.DockerError as e:
                    if e.status == 900:
                        raise  # Docker itself is away: not an image problem
                    if local is not None:
                        # kbox users often work offline: an image already here does (the kubelet warns).
                        _log.warning("pulling image %s failed (%s); using the local image", image, e.message)
                        return await self._image_ref(local["Id"])
                    raise ImageError(
                        f'pulling image "{image}" failed: {e.message}', reason="ErrImagePull"
                    ) from e
        finally:
            self._image_refs.clear()  # a pull may add repo digests, or move the tag to a new image
        pulled = await self._local_image(image)
        if pulled is None:
            raise ImageError(f'image "{image}" is not present after pulling it', reason="ErrImagePull")
        return await self._image_ref(pulled["Id"])

    # -- containers --------------------------------------------------------------------------

    async def create_container(self, sandbox: SandboxStatus, config: ContainerConfig) -> str:
        body = dockerspec.container_body(sandbox, config, cluster=self.cluster)
        name = container_name(sandbox.pod, config.name, config.restart_count)
        what = f"creating container {config.name} of pod {sandbox.pod.namespace}/{sandbox.pod.name}"
        docker = self._client()
        for attempt in range(2):
            try:
                with self._errors(what, reason="CreateContainerError"):
                    return (await docker.containers.create(body, name=name)).id
            except ContainerRuntimeError as e:
                cause = e.__cause__
                if attempt or not (isinstance(cause, aiodocker.DockerError) and cause.status == 409):
                    raise
                await self._clear_name(name)
        raise AssertionError("unreachable")

    async def _clear_name(self, name: str) -> None:
        """Remove a leftover (not running) container of this cluster that holds ``name``."""
        with self._errors(f"inspecting the existing container {name}", reason="CreateContainerError"):
            info = await self._client().containers.container(name).show()
        if (info["Config"].get("Labels") or {}).get(interface.LABEL_CLUSTER) != self.cluster:
            raise ContainerRuntimeError(
                f"the container name {name} is taken by a container kbox cluster {self.cluster} did not make",
                reason="CreateContainerError",
            )
        if info["State"].get("Running"):
            raise ContainerRuntimeError(
                f"container {name} already runs (as {info['Id'][:12]})", reason="CreateContainerError"
            )
        await self.remove_container(info["Id"])

    async def start_container(self, container_id: str) -> None:
        with self._errors(f"starting container {container_id[:12]}", reason="RunContainerError"):
            await self._client().containers.container(container_id).start()

    async def stop_container(self, container_id: str, grace: float) -> None:
        # Docker's stop sends the stop signal (SIGTERM), waits t seconds, then SIGKILLs.
        try:
            with self._errors(f"stopping container {container_id[:12]}"):
                container = self._client().containers.container(container_id)
                await container.stop(t=max(0, math.ceil(grace)))
        except ContainerRuntimeError as e:
            if e.reason != "NotFound":
                raise

    async def remove_container(self, container_id: str) -> None:
        try:
            with self._errors(f"removing container {container_id[:12]}"):
                await self._client().containers.container(container_id).delete(force=True, v=True)
        except ContainerRuntimeError as e:
            cause = e.__cause__
            gone = e.reason == "NotFound" or (
                isinstance(cause, aiodocker.DockerError) and cause.status == 409
            )
            if not gone:  # 409: a removal is already in progress
                raise

    async def container_status(self, container_id: str) -> ContainerStatus:
        with self._errors(f"inspecting container {container_id[:12]}"):
            info = await self._client().containers.container(container_id).show()
        return dockerspec.container_status(info, image_id=await self._image_ref(info["Image"]))

    async def list_containers(self, sandbox_id: str) -> list[ContainerStatus]:
        async def status(container_id: str) -> ContainerStatus | None:
            try:
                return await self.container_status(container_id)
            except ContainerRuntimeError as e:
                if e.reason == "NotFound":  # removed between the list and the inspection
                    return None
                raise

        found = await asyncio.gather(*(status(c["Id"]) for c in await self._pod_containers(sandbox_id)))
        return sorted((s for s in found if s is not None), key=lambda s: s.created_at)

    # -- streams (see dockerstreams) ---------------------------------------------------------

    def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[bytes]:
        return dockerstreams.logs(self._client(), container_id, options)

    async def exec(self, container_id: str, command: list[str], *, stdin: bool, tty: bool) -> ExecSession:
        return await dockerstreams.exec_in(self._client(), container_id, command, stdin=stdin, tty=tty)

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
        return await dockerstreams.attach(self._client(), container_id, stdin=stdin, tty=tty)

    async def port_forward(
        self, sandbox: SandboxStatus, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await dockerstreams.port_forward(sandbox, port)
