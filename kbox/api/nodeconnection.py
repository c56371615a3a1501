"""What the apiserver asks of a node's kubelet: container logs, exec, attach and port-forward.

In Kubernetes the apiserver proxies ``pods/<name>/log|exec|attach|portforward`` to the kubelet of the
pod's node. In kbox a kubelet registers a ``NodeConnection`` for its node in the ``NodeConnections``
registry when it starts (in process; a remote kubelet would register an HTTP-backed one), and the
apiserver's streaming handlers speak the client protocols (chunked text for logs, the
``v5.channel.k8s.io`` WebSocket protocol for exec and attach, SPDY-over-WebSocket for port-forward)
on top of it. The kubelet issue implements the Docker- and simulation-backed connections.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from kbox.api import errors


@dataclass(frozen=True)
class LogOptions:
    """``pods/log`` query parameters."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: str | None = None
    limit_bytes: int | None = None


class ExecSession(abc.ABC):
    """A running command (exec) or a running container's main process (attach)."""

    @abc.abstractmethod
    async def write_stdin(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def close_stdin(self) -> None: ...

    @abc.abstractmethod
    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """``(stream, data)`` chunks in the order produced: stream 1 is stdout, 2 stderr (with a tty,
        everything is stdout). Ends when the process's output ends."""

    @abc.abstractmethod
    async def resize(self, width: int, height: int) -> None: ...

    @abc.abstractmethod
    async def wait(self) -> int:
        """The exit code (attach: of the container's process, if it ended)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop relaying; an exec'd process is killed if still running."""


class NodeConnection(abc.ABC):
    """One node's kubelet, as the apiserver reaches it."""

    @abc.abstractmethod
    def logs(self, namespace: str, pod: str, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        """The container's log bytes; with ``follow``, until the container stops or the caller stops."""

    @abc.abstractmethod
    async def exec(
        self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> ExecSession: ...

    @abc.abstractmethod
    async def attach(
        self, namespace: str, pod: str, container: str, *, stdin: bool, tty: bool
    ) -> ExecSession: ...

    @abc.abstractmethod
    async def port_forward(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to ``port`` inside the pod's network namespace."""


class Unavailable(NodeConnection):
    """Stands in for a node no kubelet is connected for (or no node at all): every call fails with the
    error given. ``NodeConnections.get`` returns it rather than raising, so a streaming request checks
    its own options and the pod first, in kube-apiserver's order, and meets this error only when it
    actually needs the kubelet."""

    def __init__(self, error: errors.StatusError) -> None:
        self.error = error

    def logs(self, namespace: str, pod: str, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        raise self.error

    async def exec(
        self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> ExecSession:
        raise self.error

    async def attach(
        self, namespace: str, pod: str, container: str, *, stdin: bool, tty: bool
    ) -> ExecSession:
        raise self.error

    async def port_forward(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise self.error


MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
"""Marks a mirror pod: the API's view of a static pod that a node runs by itself (kbox's control plane)."""


class NodeConnections:
    """Node name → its kubelet's connection; mirror pods go to the node's static-pod connection."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeConnection] = {}
        self._static: dict[str, NodeConnection] = {}

    def register_static(self, node: str, connection: NodeConnection | None) -> None:
        """Serve the node's mirror pods (logs, exec, port-forward) from ``connection`` (None: stop)."""
        if connection is None:
            self._static.pop(node, None)
        else:
            self._static[node] = connection

    def for_pod(self, pod: dict[str, object]) -> NodeConnection:
        """The connection serving ``pod``: its node's static-pod one for a mirror pod, else the kubelet's."""
        spec = pod.get("spec")
        node = spec.get("nodeName") if isinstance(spec, dict) else None
        metadata = pod.get("metadata")
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
        if isinstance(annotations, dict) and MIRROR_ANNOTATION in annotations and isinstance(node, str):
            static = self._static.get(node)
            if static is not None:
                return static
        return self.get(node if isinstance(node, str) else None)

    def register(self, node: str, connection: NodeConnection) -> None:
        self._nodes[node] = connection

    def unregister(self, node: str, connection: NodeConnection | None = None) -> None:
        if connection is None or self._nodes.get(node) is connection:
            self._nodes.pop(node, None)

    def get(self, node: str | None) -> NodeConnection:
        """The node's connection, or an ``Unavailable`` stand-in (never raises)."""
        if not node:
            return Unavailable(errors.bad_request("the pod is not scheduled to a node yet"))
        connection = self._nodes.get(node)
        if connection is None:
            # No Retry-After: client-go would retry a 503 carrying one up to ten times, silently.
            return Unavailable(
                errors.StatusError(f'no kubelet is connected for node "{node}"', 503, "ServiceUnavailable")
            )
        return connection
