"""The controller loop every kbox controller shares (client-go's ``examples/workqueue`` made a class).

A controller declares, when built, the informers it needs (:meth:`Controller.informer`, shared through
the process's :class:`~kbox.client.informers.InformerFactory`) and how their events map to keys of the
objects it owns: by default an object's own ``ns/name`` (:meth:`Controller.key_for`); pods map to their
owning ReplicaSet, endpoints slices to their Service, and so on, by passing ``keys=``. Handlers only put
keys in the work queue.

:meth:`Controller.run` then waits for every declared informer to sync, starts ``workers`` tasks, and each
loops: take a key, ``await sync(key)``, on success ``forget`` it (reset its back-off), on error re-add it
rate-limited until ``max_retries`` (then drop it: the next event or resync brings it back), and always
``done``. The work queue guarantees one key is never synced by two workers at once.

``sync(key)`` is level-triggered: it reads the current state from the informers' caches (which may lag
the apiserver, never lead it), computes what should be, and writes the difference through the client. It
must be idempotent; it is called again after any failure, and more than once per change. It must never
mutate cached objects (copy first).

Cancelling :meth:`Controller.run` stops cleanly: the handlers are removed, the queue shut down, the
workers cancelled and awaited. ``run`` may be called again afterwards (a supervisor restart) and starts
from a fresh queue; the informers keep running, owned by the factory.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from kbox.client import cache, workqueue
from kbox.client import informer as informers
from kbox.client.interface import Obj, Resource, StatusError
from kbox.util import aiotasks

_log = logging.getLogger(__name__)

KeysFor = Callable[[Obj], Iterable[str]]


class Controller(abc.ABC):
    """Informers → keys → work queue → workers running ``sync(key)``; subclasses implement :meth:`sync`."""

    name = "controller"
    """Names the queue, the worker tasks (``<name>/worker-<n>``) and the log lines."""
    max_retries = 15
    """Failed syncs of one key retried (with growing back-off) before the key is dropped."""

    def __init__(
        self,
        factory: informers.InformerFactory,
        *,
        name: str | None = None,
        max_retries: int | None = None,
        clock: workqueue.Clock | None = None,
    ) -> None:
        self.factory = factory
        if name is not None:
            self.name = name
        if max_retries is not None:
            self.max_retries = max_retries
        self.clock = clock
        self.queue = self._new_queue()
        self.synced = asyncio.Event()
        """Set once every declared informer has synced and the workers are starting."""
        self._watched: list[tuple[informers.SharedInformer, bool, KeysFor | None]] = []

    # -- declaring ---------------------------------------------------------------------------

    def informer(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float | None = None,
        keys: KeysFor | None = None,
        enqueue: bool = True,
    ) -> informers.SharedInformer:
        """Declare a shared informer this controller needs: :meth:`run` waits for it to sync, and (unless
        ``enqueue`` is false: a cache only read) each event about an object enqueues ``keys(obj)``,
        by default :meth:`key_for` of it. Call from ``__init__``; returns the informer to read from."""
        shared = self.factory.informer(
            resource,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            resync_period=resync_period,
        )
        self._watched.append((shared, enqueue, keys))
        return shared

    def key_for(self, obj: Obj) -> str | None:
        """The queue key for an event about ``obj`` (``None``: ignore it); default ``ns/name``."""
        return cache.key_of(obj)

    # -- the loop ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def sync(self, key: str) -> None:
        """Make the world match what the cached state says for ``key``; raise to be retried."""

    @property
    def has_synced(self) -> bool:
        return self.synced.is_set()

    async def run(self, *, workers: int = 1, ready: asyncio.Event | None = None) -> None:
        """Wait for the caches, then sync keys with ``workers`` tasks until cancelled (or the queue is
        shut down). Starts the factory's informers that are not running yet. Sets ``ready`` once the
        caches synced."""
        if workers < 1:
            raise ValueError(f"{self.name}: workers must be at least 1, not {workers}")
        if self.queue.shutting_down:
            self.queue = self._new_queue()
        self.synced.clear()
        registrations = [
            shared.add_handler(*self._handlers(keys)) for shared, enqueue, keys in self._watched if enqueue
        ]
        tasks: list[asyncio.Task[None]] = []
        try:
            self.factory.start()
            # Re-read the declared informers each round: one may be dropped meanwhile (a CRD's type
            # that stopped being served), and a dropped informer never syncs.
            while pending := [shared for shared, _, _ in self._watched if not shared.has_synced]:
                _log.debug("%s: waiting for %s to sync", self.name, pending[0].name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pending[0].wait_synced(), 1.0)
            _log.info("%s: caches synced, starting %d workers", self.name, workers)
            self.synced.set()
            if ready is not None:
                ready.set()
            tasks = [
                aiotasks.create_guarded_task(self._worker(), name=f"{self.name}/worker-{n}", logger=_log)
                for n in range(workers)
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise RuntimeError(f"{task.get_name()} crashed") from task.exception()
        finally:
            for registration in registrations:
                registration.remove()
            self.queue.shutdown()
            await aiotasks.stop(tasks, title=self.name)

    async def _worker(self) -> None:
        queue = self.queue
        while True:
            try:
                key = await queue.get()
            except workqueue.ShutDown:
                return
            try:
                await self.sync(key)
            except Exception as exc:
                self._retry(queue, key, exc)
            else:
                queue.forget(key)
            finally:
                queue.done(key)

    def _retry(self, queue: workqueue.WorkQueue, key: str, exc: Exception) -> None:
        retries = queue.num_requeues(key)
        if retries >= self.max_retries:
            _log.error("%s: dropping %s after %d retries: %s", self.name, key, retries, _describe(exc))
            queue.forget(key)
            return
        queue.add_rate_limited(key)
        if isinstance(exc, StatusError):
            # Conflicts are routine (a stale cache); other API errors are worth a line, not a traceback.
            level = logging.DEBUG if exc.code == 409 else logging.INFO
            _log.log(level, "%s: sync %s failed (retry %d): %s", self.name, key, retries + 1, _describe(exc))
        else:
            _log.warning("%s: sync %s failed (retry %d)", self.name, key, retries + 1, exc_info=exc)

    def _handlers(
        self, keys: KeysFor | None
    ) -> tuple[informers.OnAdd, informers.OnUpdate, informers.OnDelete]:
        keys_for = keys or self._own_key

        def on_add(obj: Obj) -> None:
            for key in keys_for(obj):
                self.queue.add(key)

        def on_update(old: Obj, new: Obj) -> None:
            new_keys = list(keys_for(new))
            for key in new_keys:
                self.queue.add(key)
            if old is not new:
                # The object may have moved (a pod adopted by another owner): its old key changed too.
                for key in keys_for(old):
                    if key not in new_keys:
                        self.queue.add(key)

        def on_delete(obj: Obj | cache.DeletedFinalStateUnknown) -> None:
            for key in keys_for(cache.deleted_object(obj)):
                self.queue.add(key)

        return on_add, on_update, on_delete

    def _own_key(self, obj: Obj) -> list[str]:
        key = self.key_for(obj)
        return [key] if key else []

    def _new_queue(self) -> workqueue.WorkQueue:
        return workqueue.WorkQueue(name=self.name, clock=self.clock)


def _describe(exc: Exception) -> str:
    if isinstance(exc, StatusError):
        return f"{exc.code} {exc.reason}: {exc.message}"
    return repr(exc)
