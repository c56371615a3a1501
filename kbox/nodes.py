"""The node manager: which nodes run is cluster state, and this component makes it so.

As the addon manager does for addons, the nodes a cluster runs live in the ConfigMap
``kube-system/kbox-nodes`` (``data: {kbox: running, kbox-m02: stopped, kbox-m03: deleted}``): it is in
the cluster's own store, so ``kbox stop`` / ``kbox start`` keep it, and ``kbox node add|stop|start|delete``
are plain API writes the running cluster acts on at once.

* ``running``: the node's kubelet runs (an added node gets one; it registers its Node and Lease).
* ``stopped``: the kubelet is stopped, as a machine failure would stop it: its pods keep running in the
  runtime, nothing syncs them, the Lease is no longer renewed, and after the grace period the node
  lifecycle controller marks the node Unknown and taint-based eviction moves its pods elsewhere. The Node
  gets the annotation ``kbox.io/kubelet-stopped`` (the moment) so clients can tell. Starting it again
  runs a new kubelet that registers and adopts the pods still running.
* ``deleted``: the kubelet is stopped, the containers of its pods removed from the runtime, the pods
  bound to it deleted (as upstream's pod garbage collector removes pods of a vanished node) and the Node
  deleted; no drain. The entry stays ``deleted`` so a restart with ``--nodes`` does not bring it back.

Names in the cluster's settings (``kbox start --nodes N``) missing from the ConfigMap are added as
``running``. The manager acts on changes: an entry is applied when its value differs from what the
manager last applied, so a kubelet stopped directly (the test fixture's ``node(name).stop()``) is not
restarted behind the caller's back by an unrelated change. An entry that could not be applied (an API
or runtime error) is retried every few seconds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from kbox.api.objects import timestamp
from kbox.client.interface import CONFIGMAPS, NODES, PODS, Client, Obj, StatusError
from kbox.kubelet.runtime.interface import ContainerRuntimeError, Runtime

_log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
CONFIGMAP = "kbox-nodes"
RUNNING = "running"
STOPPED = "stopped"
DELETED = "deleted"
STATES = (RUNNING, STOPPED, DELETED)
STOPPED_ANNOTATION = "kbox.io/kubelet-stopped"
RETRY_SECONDS = 5.0


class NodeHost(Protocol):
    """What the node manager needs from the cluster it runs in (:class:`kbox.cluster.Cluster`)."""

    def kubelet_running(self, node: str) -> bool: ...

    async def start_kubelet(self, node: str, *, wait: bool = True) -> None: ...

    async def stop_kubelet(self, node: str) -> None: ...

    async def delete_node(self, node: str) -> None: ...


def desired(configmap: Obj | None, initial: list[str]) -> dict[str, str]:
    """Node name → state, from the ConfigMap's data, with ``initial`` names it lacks as ``running``;
    a value that is not a known state is logged and left out (that node is not touched)."""
    data = (configmap or {}).get("data") or {}
    result = dict.fromkeys(initial, RUNNING)
    for name, value in data.items():
        state = str(value).strip().lower()
        if state in STATES:
            result[name] = state
        else:
            result.pop(name, None)
            _log.warning("%s/%s: ignoring %s=%r (not one of %s)", NAMESPACE, CONFIGMAP, name, value, STATES)
    return result


async def read(client: Client) -> Obj | None:
    """The ConfigMap, or ``None`` on a cluster that has none yet."""
    try:
        return await client.get(CONFIGMAPS, CONFIGMAP, namespace=NAMESPACE)
    except StatusError as exc:
        if exc.code != 404:
            raise
        return None


async def planned(client: Client, initial: list[str]) -> dict[str, str]:
    """What should run when the cluster starts (read before the kubelets start)."""
    return desired(await read(client), initial)


async def remove_containers(runtime: Runtime, node: str) -> None:
    """Remove every sandbox (and so every container) the runtime holds for ``node``."""
    for sandbox in await runtime.list_sandboxes(node):
        try:
            await runtime.remove_sandbox(sandbox.id)
        except ContainerRuntimeError as exc:
            _log.warning("removing sandbox %s of node %s failed: %s", sandbox.id, node, exc)


async def stop_containers(runtime: Runtime, node: str, *, grace: float = 2.0) -> None:
    """Stop what a node without a kubelet still runs (``kbox stop`` of a cluster with stopped nodes):
    SIGTERM, SIGKILL after ``grace`` seconds, then the sandboxes. Nothing is removed: a kubelet started
    on the node later finds the stopped pods and starts them again."""

    async def stop(sandbox_id: str) -> None:
        running = [c for c in await runtime.list_containers(sandbox_id) if c.state in ("created", "running")]
        await asyncio.gather(*(runtime.stop_container(c.id, grace) for c in running))
        await runtime.stop_sandbox(sandbox_id)

    sandboxes = await runtime.list_sandboxes(node)
    results = await asyncio.gather(*(stop(s.id) for s in sandboxes), return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            _log.warning("stopping the pods of stopped node %s: %s", node, result)


async def forget_node(client: Client, node: str) -> None:
    """Delete the Node, then the pods bound to it (at once: no kubelet will confirm). The Node goes
    first so that the scheduler, which drops it on that event, never binds the pods' replacements to it."""
    try:
        await client.delete(NODES, node)
    except StatusError as exc:
        if exc.code != 404:
            raise
    listing = await client.list(PODS, field_selector=f"spec.nodeName={node}")
    for pod in listing["items"]:
        metadata = pod["metadata"]
        try:
            await client.delete(
                PODS,
                metadata["name"],
                namespace=metadata["namespace"],
                grace_period_seconds=0,
                preconditions={"uid": metadata["uid"]},
            )
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise


class NodeManager:
    """Reconciles the cluster's kubelets with ``kube-system/kbox-nodes``; see the module docstring."""

    name = "node-manager"

    def __init__(self, client: Client, host: NodeHost, *, initial: list[str]) -> None:
        """``initial``: the node names of the cluster's settings (running unless the ConfigMap says
        otherwise)."""
        self.client = client
        self.host = host
        self.initial = initial
        self.applied: dict[str, str] = {}
        self._failed: list[str] = []  # names whose last apply failed: retried after RETRY_SECONDS
        self._synced = False

    def healthy(self) -> bool:
        return self._synced

    def stopped(self) -> list[str]:
        """The nodes this manager holds stopped (their pods may still run in the runtime)."""
        return [name for name, state in self.applied.items() if state == STOPPED]

    async def run(self) -> None:
        try:
            await self._seed()
            while True:
                listing = await self.client.list(
                    CONFIGMAPS, namespace=NAMESPACE, field_selector=f"metadata.name={CONFIGMAP}"
                )
                items = listing.get("items") or []
                await self._reconcile(items[0] if items else None)
                if self._failed:
                    await asyncio.sleep(RETRY_SECONDS)  # then list again and retry what failed
                    continue
                try:
                    async for event in self.client.watch(
                        CONFIGMAPS,
                        namespace=NAMESPACE,
                        field_selector=f"metadata.name={CONFIGMAP}",
                        resource_version=listing["metadata"]["resourceVersion"],
                    ):
                        if event.type in ("ADDED", "MODIFIED"):
                            await self._reconcile(event.object)
                            if self._failed:
                                break
                except StatusError as exc:
                    if exc.code != 410:
                        raise
        finally:
            self._synced = False

    async def _seed(self) -> None:
        """Write the ConfigMap on a new cluster; add the settings' nodes it does not mention."""
        current = await read(self.client)
        if current is None:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE},
                "data": dict.fromkeys(self.initial, RUNNING),
            }
            try:
                await self.client.create(CONFIGMAPS, body, namespace=NAMESPACE)
                return
            except StatusError as exc:
                if exc.code != 409:
                    raise
                current = await read(self.client)
        data = (current or {}).get("data") or {}
        missing = {name: RUNNING for name in self.initial if name not in data}
        if missing:
            await self.client.patch(CONFIGMAPS, CONFIGMAP, {"data": missing}, namespace=NAMESPACE)

    async def _reconcile(self, configmap: Obj | None) -> None:
        if not self.applied:  # first look: what the cluster started with counts as applied
            for name, state in desired(configmap, self.initial).items():
                running = self.host.kubelet_running(name)
                if (state == RUNNING) == running:
                    self.applied[name] = state
        self._failed = []
        for name, state in desired(configmap, self.initial).items():
            if self.applied.get(name) == state:
                continue
            try:
                await self._apply(name, state)
            except (StatusError, ContainerRuntimeError, TimeoutError) as exc:
                _log.warning(
                    "node %s: could not make it %s (retried in %gs): %s", name, state, RETRY_SECONDS, exc
                )
                self._failed.append(name)
                continue
            self.applied[name] = state
        self._synced = True

    async def _apply(self, name: str, state: str) -> None:
        _log.info("node %s: %s", name, {RUNNING: "starting", STOPPED: "stopping", DELETED: "deleting"}[state])
        if state == RUNNING:
            await self._annotate(name, None)
            await self.host.start_kubelet(name, wait=False)
        elif state == STOPPED:
            await asyncio.shield(self.host.stop_kubelet(name))
            await self._annotate(name, timestamp())
        else:
            await asyncio.shield(self.host.delete_node(name))

    async def _annotate(self, name: str, value: str | None) -> None:
        try:
            await self.client.patch(NODES, name, {"metadata": {"annotations": {STOPPED_ANNOTATION: value}}})
        except StatusError as exc:
            if exc.code != 404:
                raise
