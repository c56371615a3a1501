"""The control plane's components as pods in kube-system: the mirror pods of a real cluster.

On a kubeadm cluster etcd, kube-apiserver, kube-controller-manager and kube-scheduler are static pods:
the kubelet runs them from files and publishes a *mirror pod* for each (annotation
``kubernetes.io/config.mirror``) so the API shows them; kube-proxy and CoreDNS are ordinary pods. In kbox
every one of them is a supervised task of this process, and :class:`MirrorPods` plays the kubelet's
part for them: it creates one pod per component (``kube-proxy-<hash>`` on every node), writes the pod
status from the supervisor's record (Running and Ready while the task is healthy, ``restartCount``
counting real restarts, ``CrashLoopBackOff`` while it waits to restart, ``lastState.terminated`` with
the crash's message), recreates a mirror pod someone deleted, and removes the pods of components that
are gone (an addon disabled). Logs, ``exec`` and port-forward for these pods are served by
:class:`StaticConnection`: logs from the component's in-memory buffer (``previous`` is the crashed
run), port-forward to the node's own ports (the pods use the host network), exec refused.

Kubelets skip mirror pods (see ``kbox.kubelet.kubelet.is_mirror_pod``), so they never try to run them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from kbox import __version__, componentlogs, supervisor
from kbox.api import errors
from kbox.api.nodeconnection import (
    MIRROR_ANNOTATION,
    ExecSession,
    LogOptions,
    NodeConnection,
    NodeConnections,
)
from kbox.client.interface import NODES, PODS, Client, Obj, StatusError

_log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the characters Kubernetes uses for generated name suffixes


@dataclass(frozen=True)
class Template:
    """How one component looks as a pod."""

    component: str
    labels: dict[str, str]
    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)
    per_node: bool = False  # kube-proxy: one pod on every node (a DaemonSet's shape)
    static: bool = True  # a static pod of the first node (else an addon's pod, named like a Deployment's)


TEMPLATES: dict[str, Template] = {
    t.component: t
    for t in (
        Template("etcd", {"component": "etcd", "tier": "control-plane"}, {"cpu": "100m", "memory": "100Mi"}),
        Template("kube-apiserver", {"component": "kube-apiserver", "tier": "control-plane"}, {"cpu": "250m"}),
        Template(
            "kube-controller-manager",
            {"component": "kube-controller-manager", "tier": "control-plane"},
            {"cpu": "200m"},
        ),
        Template("kube-scheduler", {"component": "kube-scheduler", "tier": "control-plane"}, {"cpu": "100m"}),
        Template("kube-proxy", {"k8s-app": "kube-proxy"}, per_node=True, static=False),
        Template(
            "coredns",
            {"k8s-app": "kube-dns"},
            {"cpu": "100m", "memory": "70Mi"},
            {"memory": "170Mi"},
            static=False,
        ),
        Template("kubernetes-dashboard", {"k8s-app": "kubernetes-dashboard"}, {"cpu": "50m"}, static=False),
    )
}


def suffix(seed: str, length: int) -> str:
    """A stable name suffix in Kubernetes' alphabet (same node, same name across restarts)."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:length])


def pod_names(template: Template, nodes: list[str]) -> list[tuple[str, str]]:
    """``(pod name, node)`` for a component's pods."""
    if template.per_node:
        return [(f"{template.component}-{suffix(template.component + '/' + n, 5)}", n) for n in nodes]
    if template.static:
        return [(f"{template.component}-{nodes[0]}", nodes[0])]
    replica_set = suffix(template.component, 10)
    return [(f"{template.component}-{replica_set}-{suffix(template.component + '/0', 5)}", nodes[0])]


def _time(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.datetime.fromtimestamp(value, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_status(state: supervisor.ComponentState, template: Template, *, host_ip: str) -> Obj:
    """The status a kubelet would report for a static pod whose one container is this component."""
    now = _time(time.time())
    ready = "True" if state.running and state.healthy else "False"
    container: Obj = {
        "name": template.component,
        "image": _image(template),
        "imageID": "",
        "containerID": f"kbox://{template.component}",
        "ready": ready == "True",
        "started": state.running,
        "restartCount": state.restarts,
    }
    if state.running:
        container["state"] = {"running": {"startedAt": _time(state.started_at)}}
    elif state.waiting_reason:
        container["state"] = {"waiting": {"reason": state.waiting_reason, "message": state.waiting_message}}
    elif state.last is not None:
        container["state"] = {"terminated": _terminated(state.last)}
    else:
        container["state"] = {"waiting": {"reason": "ContainerCreating"}}
    container["lastState"] = {"terminated": _terminated(state.last)} if state.last and state.running else {}
    if state.waiting_reason and state.last is not None:
        container["lastState"] = {"terminated": _terminated(state.last)}
    started = state.first_started_at is not None
    conditions: list[dict[str, Any]] = [
        {"type": "PodReadyToStartContainers", "status": "True" if started else "False"},
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": ready},
        {"type": "ContainersReady", "status": ready},
        {"type": "PodScheduled", "status": "True"},
    ]
    for condition in conditions:
        condition["lastProbeTime"] = None
        condition["lastTransitionTime"] = now
    status: Obj = {
        "phase": "Running" if started else "Pending",
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": host_ip,
        "podIPs": [{"ip": host_ip}],
        "startTime": _time(state.first_started_at) or now,
        "containerStatuses": [container],
        "qosClass": "Burstable" if template.requests else "BestEffort",
    }
    return status


def _terminated(last: supervisor.Termination) -> Obj:
    return {
        "exitCode": last.exit_code,
        "reason": last.reason,
        "message": last.message,
        "startedAt": _time(last.started_at),
        "finishedAt": _time(last.finished_at),
        "containerID": "",
    }


def _image(template: Template) -> str:
    return f"kbox.local/{template.component}:v{__version__}"


def pod_object(template: Template, name: str, node: Obj) -> Obj:
    """A mirror pod for ``template`` on ``node`` (owned by the node, as kubelet's mirror pods are)."""
    node_name = node["metadata"]["name"]
    resources: Obj = {}
    if template.requests:
        resources["requests"] = dict(template.requests)
    if template.limits:
        resources["limits"] = dict(template.limits)
    digest = suffix(f"{template.component}/{__version__}", 16)
    annotations = {
        MIRROR_ANNOTATION: digest,
        "kubernetes.io/config.hash": digest,
        "kubernetes.io/config.source": "kbox",
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": dict(template.labels),
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": node_name,
                    "uid": node["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": node_name,
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "priority": 2000001000,
            "restartPolicy": "Always",
            "tolerations": [{"operator": "Exists", "effect": "NoExecute"}],
            "containers": [
                {
                    "name": template.component,
                    "image": _image(template),
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["kbox", "component", template.component],
                    "resources": resources,
                }
            ],
        },
    }


@dataclass
class _Mirror:
    template: Template
    node: str
    uid: str = ""
    written: Any = None  # the status last written
    not_before: float = 0.0  # monotonic time before which a deleted mirror pod is not recreated


class MirrorPods:
    """Keeps one pod per supervised component in kube-system, with the component's real status."""

    name = "static-pods"

    def __init__(
        self,
        client: Client,
        supervised: supervisor.Supervisor,
        *,
        nodes: list[str],
        logs: componentlogs.LogBuffers | None,
        connections: NodeConnections | None,
        resync: float = 30.0,
        recreate_delay: float = 1.0,
    ) -> None:
        self.client = client
        self.recreate_delay = recreate_delay
        self.supervisor = supervised
        self.nodes = nodes
        self.logs = logs
        self.connections = connections
        self.resync = resync
        self.mirrors: dict[str, _Mirror] = {}
        self._nodes: dict[str, Obj] = {}
        self._dirty = asyncio.Event()
        self._synced = False
        self.connection = StaticConnection(self)

    def healthy(self) -> bool:
        return self._synced

    async def run(self) -> None:
        for node in self.nodes:
            if self.connections is not None:
                self.connections.register_static(node, self.connection)
        watcher = asyncio.ensure_future(self._watch())
        try:
            while True:
                seen = self.supervisor.generation
                self._dirty.clear()
                self._synced = await self._sync()
                if watcher.done():
                    watcher.result()  # a failed watch is this component's failure
                changed = asyncio.ensure_future(self.supervisor.changed(seen))
                dirty = asyncio.ensure_future(self._dirty.wait())
                try:
                    await asyncio.wait(
                        [changed, dirty, watcher],
                        timeout=self.resync if self._synced else 0.2,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    changed.cancel()
                    dirty.cancel()
                await asyncio.sleep(0.05)  # coalesce a burst of changes into one write per pod
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            for node in self.nodes:
                if self.connections is not None:
                    self.connections.register_static(node, None)
            self._synced = False

    async def _watch(self) -> None:
        """Deleted or changed mirror pods make the next sync put them back."""
        while True:
            listing = await self.client.list(PODS, namespace=NAMESPACE)
            version = listing["metadata"]["resourceVersion"]
            try:
                async for event in self.client.watch(
                    PODS, namespace=NAMESPACE, resource_version=version, bookmarks=True
                ):
                    name = event.object.get("metadata", {}).get("name", "")
                    mirror = self.mirrors.get(name)
                    if mirror is None or event.type == "BOOKMARK":
                        continue
                    if event.type == "DELETED":
                        _log.info("mirror pod %s/%s was deleted; recreating it", NAMESPACE, name)
                        mirror.uid, mirror.written = "", None
                        # A kubelet recreates mirror pods on its next sync, not in the same instant;
                        # clients waiting for the deletion (kubectl delete) rely on seeing it first.
                        mirror.not_before = time.monotonic() + self.recreate_delay
                        self._dirty.set()
                    elif event.object["metadata"].get("deletionTimestamp"):
                        await self._finish_deletion(event.object)
            except StatusError as exc:
                if exc.code != 410:
                    raise

    async def _finish_deletion(self, pod: Obj) -> None:
        """A graceful delete of a mirror pod waits for its node, as any pod's does: the node here is
        this manager, which confirms at once (the component itself keeps running, as a static pod's
        container does when its mirror pod is deleted) and then recreates the pod."""
        metadata = pod["metadata"]
        with contextlib.suppress(StatusError):
            await self.client.delete(
                PODS,
                metadata["name"],
                namespace=NAMESPACE,
                grace_period_seconds=0,
                preconditions={"uid": metadata["uid"]},
            )

    def _desired(self) -> dict[str, tuple[_Mirror, supervisor.ComponentState]]:
        desired: dict[str, tuple[_Mirror, supervisor.ComponentState]] = {}
        for state in self.supervisor.states():
            template = TEMPLATES.get(state.name)
            if template is None:
                continue
            for name, node in pod_names(template, self.nodes):
                mirror = self.mirrors.get(name) or _Mirror(template, node)
                desired[name] = (mirror, state)
        return desired

    async def _node(self, name: str) -> Obj | None:
        node = self._nodes.get(name)
        if node is None:
            try:
                node = await self.client.get(NODES, name)
            except StatusError as exc:
                if exc.code == 404:
                    return None  # the kubelet has not registered it yet
                raise
            self._nodes[name] = node
        return node

    async def _sync(self) -> bool:
        """Create missing mirror pods, write changed statuses, delete those of removed components."""
        desired = self._desired()
        complete = True
        for name in set(self.mirrors) - set(desired):
            self.mirrors.pop(name)
            with contextlib.suppress(StatusError):
                await self.client.delete(PODS, name, namespace=NAMESPACE, grace_period_seconds=0)
        for name, (mirror, state) in desired.items():
            self.mirrors[name] = mirror
            node = await self._node(mirror.node)
            if node is None:
                complete = False
                continue
            if not mirror.uid and time.monotonic() < mirror.not_before:
                complete = False
                continue
            if not mirror.uid:
                mirror.uid = await self._ensure(mirror, name, node)
                mirror.written = None
            status = pod_status(state, mirror.template, host_ip=_internal_ip(node))
            if _same(status, mirror.written):
                continue
            try:
                await self.client.patch(
                    PODS, name, {"status": status}, namespace=NAMESPACE, subresource="status"
                )
            except StatusError as exc:
                if exc.code != 404:
                    raise
                mirror.uid = ""
                complete = False
                continue
            mirror.written = status
        return complete

    async def _ensure(self, mirror: _Mirror, name: str, node: Obj) -> str:
        try:
            created = await self.client.create(
                PODS, pod_object(mirror.template, name, node), namespace=NAMESPACE
            )
        except StatusError as exc:
            if exc.code != 409:
                raise
            existing = await self.client.get(PODS, name, namespace=NAMESPACE)
            if MIRROR_ANNOTATION not in (existing["metadata"].get("annotations") or {}):
                _log.warning("pod %s/%s exists and is not a mirror pod; leaving it alone", NAMESPACE, name)
            return str(existing["metadata"]["uid"])
        return str(created["metadata"]["uid"])

    def component_of(self, namespace: str, pod: str) -> str | None:
        mirror = self.mirrors.get(pod) if namespace == NAMESPACE else None
        return mirror.template.component if mirror else None


def _same(status: Obj, written: Any) -> bool:
    """Equal apart from the condition transition times (which are stamped at every write)."""
    if written is None:
        return False

    def strip(value: Obj) -> Obj:
        copy = dict(value)
        copy["conditions"] = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in value["conditions"]
        ]
        copy.pop("startTime", None)
        return copy

    return bool(strip(status) == strip(written))


def _internal_ip(node: Obj) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address"))
    return "127.0.0.1"


class StaticConnection(NodeConnection):
    """What a kubelet serves for its static pods, served from the supervisor's record and log buffers."""

    def __init__(self, mirrors: MirrorPods) -> None:
        self.mirrors = mirrors

    def _component(self, namespace: str, pod: str, container: str) -> tuple[str, supervisor.ComponentState]:
        component = self.mirrors.component_of(namespace, pod)
        state = self.mirrors.supervisor.state(component) if component else None
        if component is None or state is None:
            raise errors.bad_request(f'pod "{pod}" is not running on this node')
        if container != component:
            raise errors.bad_request(f"container {container} is not valid for pod {pod}")
        return component, state

    async def logs(
        self, namespace: str, pod: str, container: str, options: LogOptions
    ) -> AsyncIterator[bytes]:
        component, state = self._component(namespace, pod, container)
        buffers = self.mirrors.logs
        if buffers is None:
            raise errors.bad_request(f"logs of {component} are not kept in this process (no log buffers)")
        run: int | None = state.restarts
        if options.previous:
            if state.last is None or state.restarts == 0:
                raise errors.bad_request(
                    f'previous terminated container "{container}" in pod "{pod}" not found'
                )
            run = state.restarts - 1
        since = None
        if options.since_seconds is not None:
            since = time.time() - options.since_seconds
        elif options.since_time:
            since = datetime.datetime.fromisoformat(options.since_time.replace("Z", "+00:00")).timestamp()
        async for chunk in buffers.read(
            component,
            run=run,
            follow=options.follow and not options.previous,
            tail_lines=options.tail_lines,
            since=since,
            timestamps=options.timestamps,
            limit_bytes=options.limit_bytes,
        ):
            yield chunk

    async def exec(
        self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> ExecSession:
        component, _ = self._component(namespace, pod, container)
        raise errors.bad_request(
            f"{component} runs as a task inside the kbox process, not in a container: exec is not possible"
        )

    async def attach(
        self, namespace: str, pod: str, container: str, *, stdin: bool, tty: bool
    ) -> ExecSession:
        component, _ = self._component(namespace, pod, container)
        raise errors.bad_request(
            f"{component} runs as a task inside the kbox process, not in a container: attach is not possible"
        )

    async def port_forward(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        mirror = self.mirrors.mirrors.get(pod) if namespace == NAMESPACE else None
        if mirror is None:
            raise errors.bad_request(f'pod "{pod}" is not running on this node')
        node = self.mirrors._nodes.get(mirror.node)
        host = _internal_ip(node) if node else "127.0.0.1"
        try:
            return await asyncio.open_connection(host, port)
        except OSError:
            return await asyncio.open_connection("127.0.0.1", port)
