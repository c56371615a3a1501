"""The runtime interface: what the kubelet asks of a container runtime, shaped after the CRI.

A pod is a sandbox (it owns the network namespace and the pod IP) plus containers that join it. The
kubelet's logic (what to start, restart, kill, and what status to report) lives above this interface
and is shared by the Docker runtime and the simulated one.

Every sandbox and container carries labels (``LABEL_*``) naming its cluster, node, pod and container,
so a restarted kbox finds and adopts what already runs, and cleanup removes exactly what kbox made.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from kbox.api.nodeconnection import ExecSession, LogOptions

LABEL_CLUSTER = "io.kbox.cluster"
LABEL_NODE = "io.kbox.node"
LABEL_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_RESTART_COUNT = "io.kubernetes.container.restartCount"
LABEL_KIND = "io.kbox.kind"  # "sandbox" or "container"

# The reason of a ContainerRuntimeError whose cause is that the runtime itself cannot be reached (the
# Docker daemon is down or its socket gone): a node problem, not a pod problem.
REASON_UNAVAILABLE = "RuntimeUnavailable"


class ContainerRuntimeError(Exception):
    """A runtime operation failed; ``reason`` is what the pod status shows (e.g. ErrImagePull)."""

    def __init__(self, message: str, *, reason: str = "RuntimeError") -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def unavailable(self) -> bool:
        """The runtime itself is unreachable (see :data:`REASON_UNAVAILABLE`)."""
        return self.reason == REASON_UNAVAILABLE


class ImageError(ContainerRuntimeError):
    """An image is missing and was not pulled (``ErrImagePull``, or ``ErrImageNeverPull`` for Never)."""


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class SandboxConfig:
    pod: PodRef
    hostname: str
    labels: dict[str, str] = field(default_factory=dict)
    dns_servers: tuple[str, ...] = ()
    dns_searches: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    host_network: bool = False
    annotations: dict[str, str] = field(default_factory=dict)  # the pod's (the fake runtime reads some)
    owner_kind: str = ""  # kind of the pod's controller owner, e.g. "Job"
    runtime_dns: bool = False  # the kubelet writes no resolv.conf: the runtime's own resolver serves the pod


@dataclass(frozen=True)
class SandboxStatus:
    id: str
    pod: PodRef
    ready: bool
    ip: str
    labels: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerConfig:
    name: str
    image: str
    command: tuple[str, ...] = ()  # entrypoint; empty: the image's
    args: tuple[str, ...] = ()  # empty: the image's
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    mounts: tuple[Mount, ...] = ()
    memory_limit: int = 0  # bytes; 0 = none
    cpu_limit: float = 0.0  # cores; 0 = none
    cpu_request: float = 0.0
    run_as_user: int | None = None
    run_as_group: int | None = None
    privileged: bool = False
    read_only_root: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    restart_count: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerStatus:
    id: str
    name: str
    sandbox_id: str
    state: str  # "created", "running", "exited", "unknown"
    image: str
    image_id: str = ""
    exit_code: int = 0
    reason: str = ""  # for exited: "Completed", "Error", "OOMKilled"
    message: str = ""
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    restart_count: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerBrief:
    """One line of a node's relist: enough to notice that something changed in a pod, nothing more."""

    id: str
    pod_uid: str
    name: str  # the container's name; "POD" for the sandbox
    running: bool
    sandbox: bool = False
    created_at: float = 0.0


class Runtime(abc.ABC):
    """A container runtime for one cluster (``cluster`` names it in every label it sets)."""

    name: str

    @abc.abstractmethod
    async def version(self) -> str:
        """``<runtime>://<version>``, as node status reports ``containerRuntimeVersion``."""

    # -- sandboxes ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def run_sandbox(self, config: SandboxConfig) -> SandboxStatus: ...

    @abc.abstractmethod
    async def stop_sandbox(self, sandbox_id: str) -> None: ...

    @abc.abstractmethod
    async def remove_sandbox(self, sandbox_id: str) -> None:
        """Remove the sandbox and every container in it."""

    @abc.abstractmethod
    async def list_sandboxes(self, node: str) -> list[SandboxStatus]:
        """Sandboxes of this cluster on ``node`` (for adoption after a restart)."""

    # -- the relist ------------------------------------------------------------------------
    @abc.abstractmethod
    async def list_node(self, node: str) -> list[ContainerBrief]:
        """Every sandbox and container of this cluster on ``node``, in one cheap call: the kubelet's
        relist runs it once per period for the whole node, never once per pod."""

    def node_revision(self, node: str) -> int | None:
        """A number that changes whenever anything on ``node`` changes, if the runtime knows one
        (the simulated runtime does); then a relist that sees the same number skips the listing.
        ``None``: unknown, always list."""
        return None

    # -- containers --------------------------------------------------------------------------
    @abc.abstractmethod
    async def ensure_image(self, image: str, pull_policy: str) -> str:
        """Make ``image`` available per the pull policy; return its id. Raises :class:`ImageError`."""

    @abc.abstractmethod
    async def create_container(self, sandbox: SandboxStatus, config: ContainerConfig) -> str: ...

    @abc.abstractmethod
    async def start_container(self, container_id: str) -> None: ...

    @abc.abstractmethod
    async def stop_container(self, container_id: str, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""

    @abc.abstractmethod
    async def remove_container(self, container_id: str) -> None: ...

    @abc.abstractmethod
    async def container_status(self, container_id: str) -> ContainerStatus: ...

    @abc.abstractmethod
    async def list_containers(self, sandbox_id: str) -> list[ContainerStatus]: ...

    # -- streams -----------------------------------------------------------------------------
    @abc.abstractmethod
    def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[bytes]: ...

    @abc.abstractmethod
    async def exec(self, container_id: str, command: list[str], *, stdin: bool, tty: bool) -> ExecSession: ...

    @abc.abstractmethod
    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession: ...

    @abc.abstractmethod
    async def port_forward(
        self, sandbox: SandboxStatus, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...

    async def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections."""
