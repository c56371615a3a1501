"""Shared informers: one list+watch per resource (and namespace and selection) in the process, feeding a
cache every component reads and the handlers every component registers.

A :class:`SharedInformer` owns an :class:`~kbox.client.cache.Indexer` and the
:class:`~kbox.client.reflector.Reflector` that keeps it current. Components never list or watch on their
own: they get informers from the process's :class:`InformerFactory`, so the scheduler, the controllers,
the proxy and DNS share one watch on pods, services and endpoints, and one copy of each object.

**Handlers are plain callbacks, called synchronously, and must not block.** ``on_add(obj)``,
``on_update(old, new)`` and ``on_delete(obj_or_tombstone)`` run on the event loop right after the cache
changed, in event order, and should only map the object to keys and put them in a
:class:`~kbox.client.workqueue.WorkQueue` (an O(1) set insert). This is a deliberate difference from
client-go, whose ``processorListener`` gives each handler its own buffer and goroutine so a handler that
blocks stalls no one. In asyncio a callback cannot block on I/O at all (it has no ``await``), so the only
way a handler stalls the others is burning CPU, which a buffer would not fix either; and the work queue
already is the per-consumer buffer that client-go's listener duplicates, with a better property: it
deduplicates, so its size is bounded by the number of distinct keys, where a buffer of notifications
grows with the event rate. Synchronous delivery also keeps event order per handler, costs no task per
handler, and makes ``has_synced`` mean that every handler has seen the initial list. A handler that
raises is logged and skipped; it never breaks the watch or the other handlers.

A handler added after the informer synced first gets ``on_add`` for every cached object, so a late
component sees the same world as an early one. Periodic resync (``resync_period``) calls ``on_update(obj,
obj)`` for every cached object, which re-enqueues every key: a safety net for controllers whose world
can drift outside the watch (external state), not a substitute for level-triggered syncs.

Cached objects are shared and read-only (see :mod:`kbox.client.cache`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kbox.client import cache, reflector, workqueue
from kbox.client.interface import Client, Obj, Resource
from kbox.util import aiotasks

_log = logging.getLogger(__name__)

OnAdd = Callable[[Obj], None]
OnUpdate = Callable[[Obj, Obj], None]
OnDelete = Callable[[Obj | cache.DeletedFinalStateUnknown], None]


@dataclass(eq=False)
class Registration:
    """A handler added to an informer; :meth:`remove` stops its notifications."""

    informer: SharedInformer
    on_add: OnAdd | None
    on_update: OnUpdate | None
    on_delete: OnDelete | None

    def remove(self) -> None:
        self.informer.remove_handler(self)


class SharedInformer:
    """One resource (optionally one namespace and selection) kept in an indexer, with handlers."""

    def __init__(
        self,
        client: Client,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float | None = None,
        page_size: int = reflector.PAGE_SIZE,
        clock: workqueue.Clock | None = None,
        backoff: reflector.Backoff | None = None,
    ) -> None:
        self.resource = resource
        self.namespace = namespace if resource.namespaced else None
        self.label_selector = label_selector or None
        self.field_selector = field_selector or None
        self.resync_period = resync_period
        self.clock: workqueue.Clock = clock or workqueue.LoopClock()
        self.name = _name(resource, self.namespace, self.label_selector, self.field_selector)
        self.indexer = cache.Indexer()
        self.reflector = reflector.Reflector(
            client,
            resource,
            indexer=self.indexer,
            handler=self,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            page_size=page_size,
            clock=self.clock,
            backoff=backoff,
            name=self.name,
        )
        self._handlers: list[Registration] = []
        self._running = False
        self._resync_task: asyncio.Task[None] | None = None

    # -- reading -----------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """The first list is in the cache and every handler has seen it."""
        return self.reflector.has_synced

    async def wait_synced(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - client-go's shape
        """Wait until :attr:`has_synced`; ``False`` if ``timeout`` seconds passed first."""
        if self.has_synced:
            return True
        try:
            await asyncio.wait_for(self.reflector.synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def resource_version(self) -> str:
        """The last revision the cache is known to be current at."""
        return self.reflector.resource_version

    def add_index(self, name: str, fn: cache.IndexFunc) -> None:
        """Index the cache by ``fn`` under ``name`` (idempotent for the same function)."""
        self.indexer.add_index(name, fn)

    # -- handlers ----------------------------------------------------------------------------

    def add_handler(
        self,
        on_add: OnAdd | None = None,
        on_update: OnUpdate | None = None,
        on_delete: OnDelete | None = None,
    ) -> Registration:
        """Call these (synchronously, non-blocking) on each change; replay adds if already synced."""
        registration = Registration(self, on_add, on_update, on_delete)
        self._handlers.append(registration)
        if self.has_synced and on_add is not None:
            for obj in self.indexer.list():
                self._call(on_add, obj)
        return registration

    def remove_handler(self, registration: Registration) -> None:
        try:
            self._handlers.remove(registration)
        except ValueError:
            pass

    # The reflector's EventHandler: fan out to every registration, in order.

    def on_add(self, obj: Obj) -> None:
        for registration in tuple(self._handlers):
            if registration.on_add is not None:
                self._call(registration.on_add, obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        for registration in tuple(self._handlers):
            if registration.on_update is not None:
                self._call(registration.on_update, old, new)

    def on_delete(self, obj: Obj | cache.DeletedFinalStateUnknown) -> None:
        for registration in tuple(self._handlers):
            if registration.on_delete is not None:
                self._call(registration.on_delete, obj)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            _log.exception("%s: handler %r failed", self.name, fn)

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the reflector (and the resync loop) until cancelled."""
        if self._running:
            raise RuntimeError(f"{self.name} is already running")
        self._running = True
        try:
            self._start_resync()
            await self.reflector.run()
        finally:
            self._running = False
            task, self._resync_task = self._resync_task, None
            if task is not None:
                await aiotasks.stop([task], title=self.name)

    def set_resync_period(self, period: float | None) -> None:
        """Ask for resyncs at least every ``period`` seconds; the shortest period asked for wins."""
        if period is None or period <= 0:
            return
        if self.resync_period is None or period < self.resync_period:
            self.resync_period = period
        if self._running:
            self._start_resync()

    def resync(self) -> None:
        """Deliver ``on_update(obj, obj)`` for every cached object now."""
        for obj in self.indexer.list():
            self.on_update(obj, obj)

    def _start_resync(self) -> None:
        if self.resync_period is None or self.resync_period <= 0 or self._resync_task is not None:
            return
        self._resync_task = aiotasks.create_guarded_task(
            self._resync_loop(), name=f"{self.name}/resync", logger=_log
        )

    async def _resync_loop(self) -> None:
        while True:
            assert self.resync_period is not None
            await self.clock.sleep(self.resync_period)
            if self.has_synced:
                self.resync()


class InformerFactory:
    """The process's informers: one per (resource, namespace, label selector, field selector).

    Components ask for informers while they are built, then the composition root (or the first
    controller to run) calls :meth:`start`; informers asked for later are started by the next
    :meth:`start`. :meth:`stop` cancels them all.
    """

    def __init__(
        self,
        client: Client,
        *,
        resync_period: float | None = None,
        page_size: int = reflector.PAGE_SIZE,
        clock: workqueue.Clock | None = None,
        backoff: reflector.Backoff | None = None,
    ) -> None:
        self.client = client
        self.resync_period = resync_period
        self.page_size = page_size
        self.clock = clock
        self.backoff = backoff
        self._informers: dict[tuple[Resource, str | None, str | None, str | None], SharedInformer] = {}
        self._tasks: dict[SharedInformer, asyncio.Task[None]] = {}

    def informer(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float | None = None,
    ) -> SharedInformer:
        """The shared informer for this selection, made on first request."""
        key = (
            resource,
            namespace if resource.namespaced and namespace else None,
            label_selector or None,
            field_selector or None,
        )
        informer = self._informers.get(key)
        if informer is None:
            informer = SharedInformer(
                self.client,
                resource,
                namespace=key[1],
                label_selector=key[2],
                field_selector=key[3],
                resync_period=self.resync_period,
                page_size=self.page_size,
                clock=self.clock,
                backoff=self.backoff,
            )
            self._informers[key] = informer
        informer.set_resync_period(resync_period)
        return informer

    @property
    def informers(self) -> list[SharedInformer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Run every informer not running yet, each as a task named after it. Idempotent."""
        for informer in self._informers.values():
            task = self._tasks.get(informer)
            if task is None or task.done():
                self._tasks[informer] = aiotasks.create_guarded_task(
                    informer.run(), name=informer.name, logger=_log
                )

    async def wait_synced(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - client-go's shape
        """Wait until every informer asked for so far has synced; ``False`` on timeout."""
        waits = [informer.wait_synced() for informer in self._informers.values()]
        try:
            results = await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return all(results)

    async def discard(self, informer: SharedInformer) -> None:
        """Stop one informer and forget it (its resource is no longer served: a deleted CRD's)."""
        for key, found in list(self._informers.items()):
            if found is informer:
                del self._informers[key]
        task = self._tasks.pop(informer, None)
        if task is not None:
            await aiotasks.stop([task], title=informer.name)

    async def stop(self) -> None:
        """Cancel every informer task and wait for them to end."""
        tasks, self._tasks = list(self._tasks.values()), {}
        await aiotasks.stop(tasks, title="informers")


def _name(
    resource: Resource, namespace: str | None, label_selector: str | None, field_selector: str | None
) -> str:
    name = f"informer/{resource.plural}" + (f".{resource.group}" if resource.group else "")
    if namespace:
        name += f"/{namespace}"
    selection = ",".join(s for s in (label_selector, field_selector) if s)
    if selection:
        name += f"[{selection}]"
    return name
