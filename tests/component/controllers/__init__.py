"""A small cluster for controller tests: apiserver, fake-runtime kubelets, a test-only binder standing in
for the scheduler, an informer factory and whatever controllers a test starts, all on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbox.api.errors import StatusError
from kbox.client import informer as informers
from kbox.client import interface
from kbox.client.local import LocalClient
from kbox.controllers import base
from kbox.kubelet.kubelet import Kubelet, KubeletSettings
from kbox.kubelet.runtime.fake import FakeRuntime
from kbox.util import aiotasks
from tests.support.apiserver import Served, served
from tests.support.wait import eventually as eventually  # re-exported for the controller tests

Obj = dict[str, Any]


class Binder:
    """Binds every pending pod to one of the nodes, round robin; ``paused`` holds pods unbound."""

    def __init__(self, client: LocalClient, nodes: list[str]) -> None:
        self.client = client
        self.nodes = nodes
        self.paused = False
        self._unbound: dict[tuple[str, str], None] = {}
        self._next = 0
        self._wake = asyncio.Event()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._wake.set()

    async def run(self) -> None:
        watcher = aiotasks.create_guarded_task(self._watch(), name="test/binder-watch")
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self.paused:
                    continue
                for namespace, name in list(self._unbound):
                    self._unbound.pop((namespace, name), None)
                    node = self.nodes[self._next % len(self.nodes)]
                    self._next += 1
                    try:
                        await self.client.bind(name, node, namespace=namespace)
                    except StatusError:
                        pass  # deleted or bound meanwhile
        finally:
            await aiotasks.stop([watcher], title="binder")

    async def _watch(self) -> None:
        async for event in self.client.watch(interface.PODS):
            metadata = event.object["metadata"]
            key = (metadata["namespace"], metadata["name"])
            if event.type == "DELETED" or event.object["spec"].get("nodeName"):
                self._unbound.pop(key, None)
            elif event.type in ("ADDED", "MODIFIED") and not metadata.get("deletionTimestamp"):
                self._unbound[key] = None
                self._wake.set()


@dataclass
class Cluster:
    server: Served
    client: LocalClient
    factory: informers.InformerFactory
    binder: Binder
    kubelets: list[Kubelet]
    tmp_path: Path
    tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)

    def start(self, controller: base.Controller, *, workers: int = 2) -> asyncio.Task[Any]:
        task = aiotasks.create_guarded_task(controller.run(workers=workers), name=f"test/{controller.name}")
        self.tasks[controller.name] = task
        return task

    async def stop(self, name: str) -> None:
        """Stop the controller started under ``name`` (as a crash or a restart would)."""
        task = self.tasks.pop(name)
        await aiotasks.stop([task], title="test")


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, *, nodes: int = 2) -> AsyncIterator[Cluster]:
    async with served(tmp_path) as server:
        client = LocalClient(server.plane.catalog)
        kubelets: list[Kubelet] = []
        names = [f"node-{n + 1}" for n in range(nodes)]
        for name in names:
            settings = KubeletSettings(
                node_name=name,
                cluster="test",
                state_dir=tmp_path / f"kubelet-{name}",
                relist_interval=0.05,
                backoff_base=0.3,
                backoff_max=1.0,
                lease_interval=0.5,
                events=False,
            )
            kubelet = Kubelet(
                client,
                FakeRuntime(cluster="test"),
                settings,
                connections=server.plane.catalog.node_connections,
            )
            await kubelet.start()
            kubelets.append(kubelet)
        binder = Binder(client, names)
        binder_task = aiotasks.create_guarded_task(binder.run(), name="test/binder")
        factory = informers.InformerFactory(client)
        c = Cluster(server, client, factory, binder, kubelets, tmp_path)
        try:
            yield c
        finally:
            await aiotasks.stop(list(c.tasks.values()), title="test")
            await factory.stop()
            await aiotasks.stop([binder_task], title="test")
            for kubelet in kubelets:
                await kubelet.stop()


def is_ready(pod: Obj) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def pods(client: LocalClient, selector: str, namespace: str = "default") -> list[Obj]:
    result = await client.list(interface.PODS, namespace=namespace, label_selector=selector)
    items: list[Obj] = result["items"]
    return items


async def active_pods(client: LocalClient, selector: str, namespace: str = "default") -> list[Obj]:
    return [p for p in await pods(client, selector, namespace) if not p["metadata"].get("deletionTimestamp")]


def template(labels: dict[str, str], image: str = "busybox:1", **annotations: str) -> Obj:
    meta: Obj = {"labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"containers": [{"name": "main", "image": image}]}}
