"""The Docker runtime: pods as containers of the local Docker engine, driven through aiodocker.

A pod is a sandbox container plus app containers, as dockershim made them:

* The sandbox runs the pause image (``catatonit -P``, built locally on first use, see
  :mod:`kbox.kubelet.runtime.sandboximage`) on the cluster's user-defined bridge network
  ``kbox-<cluster>`` (created when missing), so it owns the pod's network namespace and IP, which the
  host reaches directly. It also carries the pod's hostname and DNS settings, and its IPC namespace is
  shareable.
* App containers join it (``NetworkMode``/``IpcMode`` ``container:<sandbox id>``): they share its
  localhost, IP, hostname, /etc/hosts and /etc/resolv.conf, and the IP outlives their restarts.

DNS, as Docker does it: a container on a user-defined network uses Docker's embedded resolver, so the
pod's /etc/resolv.conf reads ``nameserver 127.0.0.11`` with the pod's ``search`` list and ``options``
(ndots:5 stays), and the embedded resolver forwards every name it does not know itself (container
names on the network) to the pod's DNS servers, from inside the pod's network namespace. Docker offers
no way to write the nameserver line through its API (a copy onto the bind-mounted file fails with
EBUSY). Host-network pods get the servers verbatim.

Images are used by the name the user gave (``docker build -t app .`` then ``image: app``); with
imagePullPolicy Always, a failed pull of an image that is already local falls back to it with a
warning, as kbox users often work offline.

Every object carries the ``interface.LABEL_*`` labels; the node label comes from
``SandboxConfig.labels`` (the kubelet sets it) and app containers inherit the sandbox's labels plus
``io.kbox.sandbox-id`` (Docker also shows an image's own labels among its containers' labels). Names
follow dockershim: ``k8s_POD_<pod>_<ns>_<uid>_0`` and ``k8s_<container>_<pod>_<ns>_<uid>_<restart
count>``. Every Docker failure surfaces as a :class:`ContainerRuntimeError`; an unreachable daemon has
reason :data:`REASON_UNAVAILABLE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import signal
import struct
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer
from aiodocker.execs import Exec
from aiodocker.stream import Stream

from kbox.api.nodeconnection import ExecSession, LogOptions
from kbox.kubelet.runtime import interface, sandboximage
from kbox.kubelet.runtime.interface import (
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

LABEL_SANDBOX_ID = "io.kbox.sandbox-id"  # on app containers: the sandbox whose namespaces they join
REASON_UNAVAILABLE = "RuntimeUnavailable"

# Kubernetes' defaults for container log rotation (containerLogMaxSize, containerLogMaxFiles); json-file
# is forced so that logs can be read back whatever the daemon's default driver is.
_LOG_CONFIG = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "5"}}
_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")
_POLL_MAX_S = 0.5


def _epoch(text: str | None) -> float:
    """An RFC 3339 time as Docker writes it (nanoseconds, ``Z``) → seconds since the epoch; 0 if unset."""
    if not text or text.startswith("0001-01-01"):
        return 0.0
    m = _TIME_RE.match(text)
    if m is None:
        return 0.0
    zone = "+00:00" if m[3] == "Z" else m[3]
    return datetime.fromisoformat(m[1] + zone).timestamp() + (float("0." + m[2]) if m[2] else 0.0)


def sandbox_name(pod: PodRef) -> str:
    return f"k8s_POD_{pod.name}_{pod.namespace}_{pod.uid}_0"


def container_name(pod: PodRef, name: str, attempt: int) -> str:
    return f"k8s_{name}_{pod.name}_{pod.namespace}_{pod.uid}_{attempt}"


def _label_filter(**labels: str) -> str:
    return json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})


def _is_latest(image: str) -> bool:
    last = image.rsplit("/", 1)[-1]
    return "@" not in last and (":" not in last or last.endswith(":latest"))


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
        self.network = network or f"kbox-{cluster}"
        self.sandbox_image = sandbox_image
        self._docker = docker
        self._owns_docker = docker is None
        self._setup_lock = asyncio.Lock()
        self._ready: set[str] = set()  # "network", "image": set up (checked once per runtime)
        self._image_refs: dict[str, str] = {}

    # -- plumbing ----------------------------------------------------------------------------

    def _client(self) -> aiodocker.Docker:
        if self._docker is None:
            try:
                # Only connecting is bounded: stops, pulls and log streams legitimately take long.
                self._docker = aiodocker.Docker(timeout=aiohttp.ClientTimeout(connect=10, sock_connect=10))
            except Exception as e:  # aiodocker asserts, or raises ValueError, when it finds no endpoint
                raise ContainerRuntimeError(
                    f"Docker is not available: no Docker endpoint found ({e or type(e).__name__}); start "
                    "Docker (scripts/ensure-docker.sh does) or set DOCKER_HOST",
                    reason=REASON_UNAVAILABLE,
                ) from e
        return self._docker

    @contextlib.contextmanager
    def _errors(self, what: str, *, reason: str = "RuntimeError") -> Iterator[None]:
        """Turn aiodocker and connection errors raised inside into :class:`ContainerRuntimeError`."""
        try:
            yield
        except ContainerRuntimeError:
            raise
        except aiodocker.DockerError as e:
            if e.status == 900:  # aiodocker's code for "cannot connect"
                raise ContainerRuntimeError(
                    f"{what}: Docker is not available ({e.message}); start Docker "
                    "(scripts/ensure-docker.sh does) or set DOCKER_HOST",
                    reason=REASON_UNAVAILABLE,
                ) from e
            raise ContainerRuntimeError(
                f"{what}: {e.message}", reason="NotFound" if e.status == 404 else reason
            ) from e
        except (aiohttp.ClientError, OSError) as e:  # also TimeoutError
            raise ContainerRuntimeError(
                f"{what}: the connection to Docker failed ({e or type(e).__name__})",
                reason=REASON_UNAVAILABLE,
            ) from e

    async def close(self) -> None:
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
            docker = self._client()
            with self._errors(f"creating Docker network {self.network}"):
                try:
                    await docker.networks.get(self.network)
                except aiodocker.DockerError as e:
                    if e.status != 404:
                        raise
                    config = {
                        "Name": self.network,
                        "Driver": "bridge",
                        "CheckDuplicate": True,
                        "Labels": {interface.LABEL_CLUSTER: self.cluster},
                    }
                    try:
                        await docker.networks.create(config)
                        _log.info("created Docker network %s for cluster %s", self.network, self.cluster)
                    except aiodocker.DockerError as e2:
                        if e2.status != 409:  # another runtime of this cluster was quicker
                            raise
            self._ready.add("network")

    async def _ensure_sandbox_image(self) -> None:
        async with self._setup_lock:
            if "image" in self._ready:
                return
            with self._errors(f"building the pod sandbox image {self.sandbox_image}"):
                await sandboximage.ensure_sandbox_image(self._client(), self.sandbox_image)
            self._ready.add("image")

    # -- sandboxes ---------------------------------------------------------------------------

    async def run_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        docker = self._client()
        pod = config.pod
        labels = {
            **config.labels,
            interface.LABEL_CLUSTER: self.cluster,
            interface.LABEL_NAMESPACE: pod.namespace,
            interface.LABEL_POD_NAME: pod.name,
            interface.LABEL_POD_UID: pod.uid,
            interface.LABEL_CONTAINER_NAME: "POD",
            interface.LABEL_RESTART_COUNT: "0",
            interface.LABEL_KIND: "sandbox",
        }
        host_config: dict[str, Any] = {
            "NetworkMode": "host" if config.host_network else self.network,
            "IpcMode": "shareable",  # app containers join it
            "LogConfig": _LOG_CONFIG,
        }
        if config.dns_servers:
            host_config["Dns"] = list(config.dns_servers)
        if config.dns_searches:
            host_config["DnsSearch"] = list(config.dns_searches)
        if config.dns_options:
            host_config["DnsOptions"] = list(config.dns_options)
        body: dict[str, Any] = {
            "Image": self.sandbox_image,
            "Hostname": config.hostname,
            "Labels": labels,
            "HostConfig": host_config,
        }
        name = sandbox_name(pod)
        what = f"creating the sandbox of pod {pod.namespace}/{pod.name}"
        container: DockerContainer | None = None
        for attempt in range(3):
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
        """From a container inspection or a container list entry (they differ in a few fields)."""
        labels = (info.get("Config") or {}).get("Labels") or info.get("Labels") or {}
        networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
        ip = (networks.get(self.network) or {}).get("IPAddress") or ""
        if not ip:
            ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
        state = info.get("State")
        running = state.get("Running", False) if isinstance(state, dict) else state == "running"
        created = info.get("Created")
        return SandboxStatus(
            id=info["Id"],
            pod=PodRef(
                labels.get(interface.LABEL_NAMESPACE, ""),
                labels.get(interface.LABEL_POD_NAME, ""),
                labels.get(interface.LABEL_POD_UID, ""),
            ),
            ready=bool(running),
            ip=ip,
            labels=dict(labels),
            created_at=float(created) if isinstance(created, int | float) else _epoch(created),
        )

    async def _list(self, **labels: str) -> list[dict[str, Any]]:
        """Containers (any state) of this cluster carrying ``labels``, as Docker's list gives them."""
        with self._errors("listing containers"):
            found = await self._client().containers.list(
                all=True, filters=_label_filter(**{interface.LABEL_CLUSTER: self.cluster}, **labels)
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
        await self.remove_container(sandbox_id)

    async def list_sandboxes(self, node: str) -> list[SandboxStatus]:
        found = await self._list(**{interface.LABEL_NODE: node, interface.LABEL_KIND: "sandbox"})
        return [self._sandbox_status(c) for c in found]

    async def purge(self) -> None:
        """Remove every container and network labelled with this cluster (``kbox delete``)."""
        found = await self._list()
        apps = [c["Id"] for c in found if (c.get("Labels") or {}).get(interface.LABEL_KIND) != "sandbox"]
        await asyncio.gather(*(self.remove_container(c) for c in apps))
        await asyncio.gather(*(self.remove_container(c["Id"]) for c in found if c["Id"] not in apps))
        docker = self._client()
        with self._errors(f"removing the networks of cluster {self.cluster}"):
            networks = await docker.networks.list(
                filters={"label": f"{interface.LABEL_CLUSTER}={self.cluster}"}
            )
            for net in networks:
                with contextlib.suppress(aiodocker.DockerError):
                    await (await docker.networks.get(net["Id"])).delete()
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
        policy = pull_policy or ("Always" if _is_latest(image) else "IfNotPresent")
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
        # The pod's labels come from the sandbox; not its own ones, nor those Docker copied from its image.
        own = {interface.LABEL_KIND, interface.LABEL_CONTAINER_NAME, interface.LABEL_RESTART_COUNT}
        own.update(sandboximage.IMAGE_LABELS)
        labels = {
            **config.labels,
            **{k: v for k, v in sandbox.labels.items() if k not in own},
            interface.LABEL_CLUSTER: self.cluster,
            interface.LABEL_CONTAINER_NAME: config.name,
            interface.LABEL_RESTART_COUNT: str(config.restart_count),
            interface.LABEL_KIND: "container",
            LABEL_SANDBOX_ID: sandbox.id,
        }
        host: dict[str, Any] = {
            "NetworkMode": f"container:{sandbox.id}",
            "IpcMode": f"container:{sandbox.id}",
            "LogConfig": _LOG_CONFIG,
            "Binds": [
                f"{m.host_path}:{m.container_path}{':ro' if m.read_only else ''}" for m in config.mounts
            ],
            "Privileged": config.privileged,
            "ReadonlyRootfs": config.read_only_root,
            "CapAdd": list(config.cap_add) or None,
            "CapDrop": list(config.cap_drop) or None,
        }
        if config.memory_limit:
            host["Memory"] = host["MemorySwap"] = config.memory_limit  # no swap, as in Kubernetes
        if config.cpu_limit:
            host["NanoCpus"] = round(config.cpu_limit * 1e9)
        if config.cpu_request:
            host["CpuShares"] = max(2, int(config.cpu_request * 1024))  # Kubernetes' milli-CPU → shares
        body: dict[str, Any] = {
            "Image": config.image,
            "Labels": labels,
            "Env": [f"{k}={v}" for k, v in config.env],
            "OpenStdin": config.stdin,
            "StdinOnce": config.stdin_once,
            "Tty": config.tty,
            "HostConfig": host,
        }
        if config.command:  # a given entrypoint also drops the image's Cmd, as Kubernetes wants
            body["Entrypoint"] = list(config.command)
        if config.args:
            body["Cmd"] = list(config.args)
        if config.working_dir:
            body["WorkingDir"] = config.working_dir
        if config.run_as_user is not None or config.run_as_group is not None:
            user = "" if config.run_as_user is None else str(config.run_as_user)
            body["User"] = user if config.run_as_group is None else f"{user}:{config.run_as_group}"
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
        config, state = info["Config"], info["State"]
        labels = config.get("Labels") or {}
        docker_state, code, error = (
            state.get("Status", ""),
            int(state.get("ExitCode") or 0),
            state.get("Error", ""),
        )
        reason = ""
        if docker_state == "created" and error:  # the start failed: Docker keeps it "created"
            status, reason = "exited", "ContainerCannotRun"
        elif docker_state in ("running", "paused", "restarting"):
            status = "running"
        elif docker_state in ("exited", "dead", "removing"):
            status = "exited"
            reason = "OOMKilled" if state.get("OOMKilled") else "Completed" if code == 0 else "Error"
        elif docker_state == "created":
            status = "created"
        else:
            status = "unknown"
        started, finished = _epoch(state.get("StartedAt")), _epoch(state.get("FinishedAt"))
        if finished and started > finished:  # Docker stamps the start late when the process exits at once
            started = finished
        sandbox_id = labels.get(LABEL_SANDBOX_ID) or info["HostConfig"].get("NetworkMode", "").removeprefix(
            "container:"
        )
        return ContainerStatus(
            id=info["Id"],
            name=labels.get(interface.LABEL_CONTAINER_NAME) or info.get("Name", "").lstrip("/"),
            sandbox_id=sandbox_id,
            state=status,
            image=config.get("Image", ""),
            image_id=await self._image_ref(info["Image"]),
            exit_code=code if status == "exited" else 0,
            reason=reason,
            message=error,
            created_at=_epoch(info.get("Created")),
            started_at=started,
            finished_at=finished,
            restart_count=int(labels.get(interface.LABEL_RESTART_COUNT) or 0),
            labels=dict(labels),
        )

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

    # -- streams -----------------------------------------------------------------------------

    async def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[bytes]:
        docker = self._client()
        what = f"reading the logs of container {container_id[:12]}"
        params: dict[str, Any] = {
            "stdout": True,
            "stderr": True,
            "follow": options.follow,
            "timestamps": options.timestamps,
            "tail": "all" if options.tail_lines is None else str(max(0, options.tail_lines)),
        }
        since = 0.0
        if options.since_seconds is not None:
            since = time.time() - options.since_seconds
        elif options.since_time:
            since = _epoch(options.since_time)
            if not since:
                raise ContainerRuntimeError(f"sinceTime {options.since_time!r} is not an RFC 3339 time")
        if since:
            params["since"] = f"{since:.9f}"
        left = options.limit_bytes if options.limit_bytes is not None else -1
        with self._errors(what):
            info = await docker.containers.container(container_id).show()
            # aiodocker's log() decodes to text (dropping undecodable bytes); read the raw stream instead.
            response = await docker._do_query(
                f"containers/{container_id}/logs", method="GET", params=params, timeout=None
            )
        try:
            with self._errors(what):
                async for chunk in _demultiplex(response, tty=bool(info["Config"].get("Tty"))):
                    if left >= 0:
                        chunk = chunk[:left]
                        left -= len(chunk)
                    if chunk:
                        yield chunk
                    if left == 0:
                        return
        finally:
            response.close()

    async def exec(self, container_id: str, command: list[str], *, stdin: bool, tty: bool) -> ExecSession:
        with self._errors(f"exec in container {container_id[:12]}"):
            container = self._client().containers.container(container_id)
            ex = await container.exec(command, stdout=True, stderr=True, stdin=stdin, tty=tty)
            session = _ExecSession(self, container_id, ex, ex.start(detach=False))
            await session.open()
        return session

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
        with self._errors(f"attaching to container {container_id[:12]}"):
            container = self._client().containers.container(container_id)
            session = _AttachSession(self, container, container.attach(stdin=stdin, stdout=True, stderr=True))
            await session.open()
        return session

    async def port_forward(
        self, sandbox: SandboxStatus, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host = sandbox.ip or "127.0.0.1"  # a host-network pod listens on the host
        try:
            return await asyncio.wait_for(asyncio.open_connection(host, port), timeout=10)
        except OSError as e:  # refused, unreachable, timed out
            raise ContainerRuntimeError(
                f"cannot connect to port {port} of pod {sandbox.pod.namespace}/{sandbox.pod.name} at "
                f"{host}:{port}: {e.strerror or e or type(e).__name__}",
                reason="PortForwardError",
            ) from e


async def _demultiplex(response: aiohttp.ClientResponse, *, tty: bool) -> AsyncIterator[bytes]:
    """The payloads of Docker's stream framing (8-byte header: stream, 0, 0, 0, length); tty: raw."""
    if tty:
        async for chunk in response.content.iter_any():
            yield chunk
        return
    while True:
        try:
            header = await response.content.readexactly(8)
            _, length = struct.unpack(">BxxxL", header)
            data = await response.content.readexactly(length) if length else b""
        except asyncio.IncompleteReadError:
            return
        if data:
            yield data


def _pid_in_container(pid: int, container_id: str) -> str | None:
    """The in-container pid of host process ``pid`` if it runs in the container ("" if unknown), else None."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            if container_id not in f.read():
                return None
        with open(f"/proc/{pid}/status") as f:
            return next((line.split()[-1] for line in f if line.startswith("NSpid:")), "")
    except OSError:
        return None


class _StreamSession(ExecSession):
    """An exec or attach over aiodocker's hijacked connection (stdout 1, stderr 2; a tty: all on 1)."""

    def __init__(self, runtime: DockerRuntime, stream: Stream) -> None:
        self._runtime = runtime
        self._stream = stream
        self._eof = asyncio.Event()
        self._closed = False

    async def open(self) -> None:
        await self._stream.__aenter__()  # connects; the process starts now, read or not

    async def write_stdin(self, data: bytes) -> None:
        if self._closed:
            raise ContainerRuntimeError("the session is closed")
        with self._runtime._errors("writing to stdin"):
            await self._stream.write_in(data)

    async def close_stdin(self) -> None:
        # Half-close: the process sees EOF on stdin while its output still arrives. aiodocker's
        # Stream.close() would drop the whole connection, so reach for its transport.
        response = self._stream._resp
        transport = response.connection.transport if response and response.connection else None
        if transport is not None and transport.can_write_eof():
            transport.write_eof()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while True:
            try:
                message = await self._stream.read_out()
            except (aiohttp.ClientError, OSError):
                message = None
            if message is None:
                self._eof.set()
                return
            yield (message.stream if message.stream in (1, 2) else 1), message.data

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay``, waking early when the output ends (then the process has exited or is about to)."""
        if self._eof.is_set():
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._eof.wait(), delay)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._eof.set()
            await self._stream.close()


class _ExecSession(_StreamSession):
    def __init__(self, runtime: DockerRuntime, container_id: str, ex: Exec, stream: Stream) -> None:
        super().__init__(runtime, stream)
        self._container_id = container_id
        self._exec = ex

    async def resize(self, width: int, height: int) -> None:
        with contextlib.suppress(aiodocker.DockerError):  # best effort: no tty, or already ended
            await self._exec.resize(w=width, h=height)

    async def wait(self) -> int:
        delay = 0.01
        while True:
            with self._runtime._errors("inspecting an exec"):
                info = await self._exec.inspect()
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            await self._pause(delay)
            delay = min(delay * 2, _POLL_MAX_S)

    async def close(self) -> None:
        if self._closed:
            return
        await super().close()  # stdin EOF and, with a tty, a hangup: most commands end here
        with contextlib.suppress(aiodocker.DockerError, aiohttp.ClientError, OSError):
            async with asyncio.timeout(2):
                while True:
                    info = await self._exec.inspect()
                    if not info.get("Running") and info.get("ExitCode") is not None:
                        return
                    if info.get("Pid"):  # 0 until Docker has spawned the process
                        await self._kill(int(info["Pid"]))
                        return
                    await asyncio.sleep(0.02)

    async def _kill(self, pid: int) -> None:
        """Kill the exec'd process (Docker has no API for it), if ``pid`` provably is it on this host.

        The pid is the daemon's view; it is ours only if /proc/<pid>/cgroup names the container (same
        host and pid namespace). Without the right to signal it, ``kill`` runs inside the container.
        """
        nspid = await asyncio.to_thread(_pid_in_container, pid, self._container_id)
        if nspid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except PermissionError:
            if nspid:
                container = self._runtime._client().containers.container(self._container_id)
                killer = await container.exec(["kill", "-KILL", nspid], stdout=False, stderr=False)
                await killer.start(detach=True)
        except ProcessLookupError:
            pass


class _AttachSession(_StreamSession):
    def __init__(self, runtime: DockerRuntime, container: DockerContainer, stream: Stream) -> None:
        super().__init__(runtime, stream)
        self._container = container

    async def resize(self, width: int, height: int) -> None:
        with contextlib.suppress(aiodocker.DockerError):
            await self._container.resize(w=width, h=height)

    async def wait(self) -> int:
        """The exit code once the container's process ends; 0 if it keeps running after the attach ended."""
        delay, settled = 0.01, 0.0
        while True:
            with self._runtime._errors("inspecting an attached container"):
                state = (await self._container.show())["State"]
            if not state.get("Running"):
                return int(state.get("ExitCode") or 0)
            if self._eof.is_set():
                settled += delay
                if settled > 1.0:
                    return 0
            await self._pause(delay)
            delay = min(delay * 2, _POLL_MAX_S)
