"""The simulated runtime: containers without Docker, cheap enough for 100,000 pods in one process.

Containers move through the same states as real ones, on timers instead of processes: a started
container runs at once (or after ``fake.kbox.io/start-delay``), and exits with
``fake.kbox.io/exit-code`` after ``fake.kbox.io/exit-after`` when the pod's annotations ask for it.
Pods owned by a Job exit 0 after ``job_duration`` by default, as kwok's default stages complete them;
other pods run until deleted. Pod IPs come from ``pod_cidr``. Logs are synthetic but streamable; exec,
attach and port-forward are refused with a clear error (there is no process to reach).

No task per container: state changes are ``call_later`` callbacks, and a container's state is a small
object in a dict. Sandboxes are indexed by node, and every change bumps its node's revision, so a
kubelet's relist of a quiet node costs one dict lookup (:meth:`FakeRuntime.node_revision`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from kbox.api.nodeconnection import ExecSession, LogOptions
from kbox.kubelet.runtime import interface
from kbox.kubelet.runtime.interface import (
    ContainerBrief,
    ContainerConfig,
    ContainerRuntimeError,
    ContainerStatus,
    Runtime,
    SandboxConfig,
    SandboxStatus,
)

ANNOTATION_START_DELAY = "fake.kbox.io/start-delay"
ANNOTATION_EXIT_AFTER = "fake.kbox.io/exit-after"
ANNOTATION_EXIT_CODE = "fake.kbox.io/exit-code"


@dataclass
class _Sandbox:
    status: SandboxStatus
    config: SandboxConfig
    containers: list[str] = field(default_factory=list)
    briefs: list[ContainerBrief] | None = None  # its relist lines, kept until it changes

    @property
    def node(self) -> str:
        return self.config.labels.get(interface.LABEL_NODE, "")


@dataclass
class _Container:
    status: ContainerStatus
    config: ContainerConfig
    sandbox: _Sandbox
    logs: list[bytes] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def parse_duration(text: str) -> float:
    """``"1.5"``, ``"500ms"``, ``"2s"``, ``"3m"`` → seconds."""
    text = text.strip()
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


# One range for every simulated node of the process: 10.244.0.0/16 (kind's pod subnet) ran out at 65,533
# pods on the way to issue 4's 100,000; a /14 from the same start holds 262,141 and still stays clear
# of the service range (10.96.0.0/12).
FAKE_POD_CIDR = "10.244.0.0/14"


class FakeRuntime(Runtime):
    name = "fake"

    def __init__(self, *, cluster: str, pod_cidr: str = FAKE_POD_CIDR, job_duration: float = 1.0) -> None:
        self.cluster = cluster
        self.job_duration = job_duration
        network = ipaddress.ip_network(pod_cidr)
        self._addresses = (str(a) for a in itertools.islice(network.hosts(), 1, None))
        self._free: list[str] = []
        self._ids = itertools.count(1)
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._by_node: dict[str, dict[str, _Sandbox]] = {}
        self._revisions: dict[str, int] = {}

    def _touch(self, sandbox: _Sandbox) -> None:
        """Something in ``sandbox`` changed: its node's next relist must look."""
        sandbox.briefs = None
        self._revisions[sandbox.node] = self._revisions.get(sandbox.node, 0) + 1

    async def version(self) -> str:
        return "fake://1.0.0"

    # -- sandboxes ---------------------------------------------------------------------------

    async def run_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        sandbox_id = f"sandbox-{next(self._ids)}"
        ip = self._free.pop() if self._free else next(self._addresses, "")
        if not ip:
            raise ContainerRuntimeError("the fake pod CIDR is exhausted", reason="IPExhausted")
        labels = {
            **config.labels,
            interface.LABEL_CLUSTER: self.cluster,
            interface.LABEL_NAMESPACE: config.pod.namespace,
            interface.LABEL_POD_NAME: config.pod.name,
            interface.LABEL_POD_UID: config.pod.uid,
            interface.LABEL_KIND: "sandbox",
        }
        status = SandboxStatus(sandbox_id, config.pod, True, ip, labels, time.time())
        box = self._sandboxes[sandbox_id] = _Sandbox(status, config)
        self._by_node.setdefault(box.node, {})[sandbox_id] = box
        self._touch(box)
        return status

    async def stop_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        for container_id in sandbox.containers:
            await self.stop_container(container_id, 0)
        sandbox.status = replace(sandbox.status, ready=False)
        self._touch(sandbox)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.pop(sandbox_id, None)
        if sandbox is None:
            return
        for container_id in list(sandbox.containers):
            await self.remove_container(container_id)
        self._by_node.get(sandbox.node, {}).pop(sandbox_id, None)
        self._touch(sandbox)
        if sandbox.status.ip:
            self._free.append(sandbox.status.ip)

    async def list_sandboxes(self, node: str) -> list[SandboxStatus]:
        return [
            s.status
            for s in self._sandboxes.values()
            if s.status.labels.get(interface.LABEL_NODE, node) == node
        ]

    async def list_node(self, node: str) -> list[ContainerBrief]:
        found: list[ContainerBrief] = []
        for box in self._by_node.get(node, {}).values():
            if box.briefs is None:
                status = box.status
                uid = status.pod.uid
                box.briefs = [ContainerBrief(status.id, uid, "POD", status.ready, True, status.created_at)]
                for container_id in box.containers:
                    c = self._containers[container_id].status
                    box.briefs.append(ContainerBrief(c.id, uid, c.name, c.state == "running"))
            found.extend(box.briefs)
        return found

    def node_revision(self, node: str) -> int | None:
        return self._revisions.get(node, 0)

    # -- containers --------------------------------------------------------------------------

    async def ensure_image(self, image: str, pull_policy: str) -> str:
        if not image:
            raise interface.ImageError("no image given", reason="InvalidImageName")
        return f"fake-image://{image}"

    async def create_container(self, sandbox: SandboxStatus, config: ContainerConfig) -> str:
        box = self._sandboxes.get(sandbox.id)
        if box is None:
            raise ContainerRuntimeError(f"sandbox {sandbox.id} does not exist")
        container_id = f"container-{next(self._ids)}"
        labels = {
            **config.labels,
            **{k: v for k, v in sandbox.labels.items() if k != interface.LABEL_KIND},
            interface.LABEL_CONTAINER_NAME: config.name,
            interface.LABEL_RESTART_COUNT: str(config.restart_count),
            interface.LABEL_KIND: "container",
        }
        status = ContainerStatus(
            id=container_id,
            name=config.name,
            sandbox_id=sandbox.id,
            state="created",
            image=config.image,
            image_id=f"fake-image://{config.image}",
            created_at=time.time(),
            restart_count=config.restart_count,
            labels=labels,
        )
        self._containers[container_id] = _Container(status, config, box)
        box.containers.append(container_id)
        self._touch(box)
        return container_id

    async def start_container(self, container_id: str) -> None:
        container = self._get(container_id)
        if container.status.state != "created":
            raise ContainerRuntimeError(f"container {container_id} is {container.status.state}, not created")
        annotations = container.sandbox.config.annotations
        delay = parse_duration(annotations.get(ANNOTATION_START_DELAY, "0"))
        loop = asyncio.get_running_loop()
        if delay > 0:
            container.timer = loop.call_later(delay, self._run, container)
        else:
            self._run(container)

    def _run(self, container: _Container) -> None:
        if container.status.state != "created":
            return
        container.status = replace(container.status, state="running", started_at=time.time())
        container.logs.append(f"fake container {container.config.name} started\n".encode())
        container.changed.set()
        self._touch(container.sandbox)
        annotations = container.sandbox.config.annotations
        exit_after: float | None = None
        if ANNOTATION_EXIT_AFTER in annotations:
            exit_after = parse_duration(annotations[ANNOTATION_EXIT_AFTER])
        elif container.sandbox.config.owner_kind == "Job":
            exit_after = self.job_duration
        if exit_after is not None:
            code = int(annotations.get(ANNOTATION_EXIT_CODE, "0"))
            container.timer = asyncio.get_running_loop().call_later(exit_after, self._exit, container, code)

    def _exit(self, container: _Container, code: int) -> None:
        if container.status.state != "running":
            return
        container.timer = None
        reason = "Completed" if code == 0 else "Error"
        container.status = replace(
            container.status, state="exited", exit_code=code, reason=reason, finished_at=time.time()
        )
        container.logs.append(f"fake container {container.config.name} exited with code {code}\n".encode())
        container.changed.set()
        self._touch(container.sandbox)

    async def stop_container(self, container_id: str, grace: float) -> None:
        container = self._containers.get(container_id)
        if container is None:
            return
        if container.timer is not None:
            container.timer.cancel()
            container.timer = None
        if container.status.state in ("created", "running"):
            # A simulated process stops at SIGTERM: exit code 143, as a shell would report.
            container.status = replace(
                container.status, state="exited", exit_code=143, reason="Error", finished_at=time.time()
            )
            container.changed.set()
            self._touch(container.sandbox)

    async def remove_container(self, container_id: str) -> None:
        container = self._containers.pop(container_id, None)
        if container is None:
            return
        if container.timer is not None:
            container.timer.cancel()
        container.changed.set()
        if container_id in container.sandbox.containers:
            container.sandbox.containers.remove(container_id)
        self._touch(container.sandbox)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._get(container_id).status

    async def list_containers(self, sandbox_id: str) -> list[ContainerStatus]:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return []
        return [self._containers[c].status for c in sandbox.containers]

    def _get(self, container_id: str) -> _Container:
        container = self._containers.get(container_id)
        if container is None:
            raise ContainerRuntimeError(f"container {container_id} does not exist", reason="NotFound")
        return container

    # -- streams -----------------------------------------------------------------------------

    async def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[bytes]:
        container = self._get(container_id)
        lines = list(container.logs)
        if options.tail_lines is not None:
            lines = lines[-options.tail_lines :] if options.tail_lines else []
        sent = len(container.logs)
        for line in lines:
            yield line
        while options.follow and container.status.state in ("created", "running"):
            container.changed.clear()
            await container.changed.wait()
            for line in container.logs[sent:]:
                yield line
            sent = len(container.logs)
            if container_id not in self._containers:
                return

    async def exec(self, container_id: str, command: list[str], *, stdin: bool, tty: bool) -> ExecSession:
        raise ContainerRuntimeError(
            "exec is not possible on the fake runtime (no processes run)", reason="NotSupported"
        )

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
        raise ContainerRuntimeError(
            "attach is not possible on the fake runtime (no processes run)", reason="NotSupported"
        )

    async def port_forward(
        self, sandbox: SandboxStatus, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise ContainerRuntimeError(
            "port-forward is not possible on the fake runtime (nothing listens)", reason="NotSupported"
        )
