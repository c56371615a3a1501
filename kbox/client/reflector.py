"""The reflector: keeps an :class:`~kbox.client.cache.Indexer` equal to one resource (optionally one
namespace and selection) on the apiserver, and tells a handler what changed.

The loop, in the shape of client-go's ``Reflector.ListAndWatch``, over any
:class:`~kbox.client.interface.Client` (``LocalClient`` and ``HttpClient`` alike):

1. **List** in pages of ``page_size`` following ``continue`` (every page is read at the first page's
   revision, so the pages form one snapshot); ``replace`` the cache with the result; announce the
   difference to the old cache: adds, updates, and a :class:`~kbox.client.cache.DeletedFinalStateUnknown`
   tombstone for every object that vanished while nobody was watching.
2. **Watch** from the list's resourceVersion, with bookmarks. Each event updates the cache, advances the
   revision, then is announced; a BOOKMARK only advances the revision, so a later resume starts as late
   as possible. Watches carry a server-side timeout of 5 to 10 minutes (spread so informers do not all
   re-watch at once); a watch that ends normally is re-opened from the last revision, no list needed.
3. **410 Gone** (the revision was compacted away) means events were missed: go back to 1, at once the
   first time. Any other error (apiserver unreachable, a broken stream) backs off, 0.5 s doubling to 30 s
   with jitter, then retries: the watch from the last revision if there is one, else the list. The
   back-off resets once a watch delivers something. A watch that ends at once with nothing counts as an
   error, so a server that closes watches straight away is not hammered. Nothing but cancellation ends
   :meth:`Reflector.run`.

The handler is called synchronously, after the cache already holds the new state, and must not block
(:mod:`kbox.client.informer` explains why). Time comes from an injectable clock, randomness for jitter
from an injectable function, so tests drive back-off without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from kbox.client import cache, workqueue
from kbox.client.interface import Client, Obj, Resource, StatusError, WatchEvent

_log = logging.getLogger(__name__)

PAGE_SIZE = 500
MIN_WATCH_TIMEOUT = 300
"""Seconds; each watch asks for a timeout between this and twice this."""
SHORT_WATCH = 1.0
"""A watch that ends within this many seconds having delivered nothing counts as a failure."""


class EventHandler(Protocol):
    """What the reflector tells about changes (the informer); calls must return quickly and not raise."""

    def on_add(self, obj: Obj) -> None: ...

    def on_update(self, old: Obj, new: Obj) -> None: ...

    def on_delete(self, obj: Obj | cache.DeletedFinalStateUnknown) -> None: ...


class Backoff:
    """Exponential back-off with jitter: ``initial * 2**(n-1)`` capped at ``cap`` for the n-th failure in
    a row, then scaled by a random factor between 0.75 and 1 so many clients do not retry in step."""

    def __init__(
        self, *, initial: float = 0.5, cap: float = 30.0, rand: Callable[[], float] = random.random
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.rand = rand

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        base = min(self.cap, self.initial * 2.0 ** min(failures - 1, 32))
        return base * (0.75 + 0.25 * self.rand())


class Reflector:
    """List, then watch, one resource into ``indexer``; announce changes to ``handler``."""

    def __init__(
        self,
        client: Client,
        resource: Resource,
        *,
        indexer: cache.Indexer,
        handler: EventHandler,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = PAGE_SIZE,
        clock: workqueue.Clock | None = None,
        backoff: Backoff | None = None,
        rand: Callable[[], float] = random.random,
        name: str | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.indexer = indexer
        self.handler = handler
        self.namespace = namespace if resource.namespaced else None
        self.label_selector = label_selector or None
        self.field_selector = field_selector or None
        self.page_size = page_size
        self.clock: workqueue.Clock = clock or workqueue.LoopClock()
        self.backoff = backoff or Backoff(rand=rand)
        self.rand = rand
        self.name = name or f"reflector/{resource.plural}"
        self.resource_version = ""
        """The last revision this reflector has seen: of the list, or of the last event or bookmark."""
        self.synced = asyncio.Event()
        """Set once the first list is in the cache and announced."""
        self.lists = 0
        self.watches = 0
        """Lists and watches opened so far (for figures and tests)."""
        self._failures = 0

    @property
    def has_synced(self) -> bool:
        return self.synced.is_set()

    async def run(self) -> None:
        """List and watch until cancelled; see the module docstring."""
        need_list = True
        while True:
            delay = 0.0
            try:
                if need_list:
                    await self._list()
                    need_list = False
                if await self._watch():
                    self._failures = 0
                    continue
                self._failures += 1
                delay = self.backoff.delay(self._failures)
                _log.debug("%s: watch ended at once; re-watching in %.2fs", self.name, delay)
            except StatusError as exc:
                self._failures += 1
                if exc.code == 410:
                    need_list = True
                    # The first 410 in a row is routine (history moved on): re-list at once.
                    delay = self.backoff.delay(self._failures - 1)
                    _log.info("%s: %s; re-listing", self.name, exc.message or "410 Gone")
                else:
                    delay = self.backoff.delay(self._failures)
                    _log.warning(
                        "%s: %s failed: %s (%d %s); retrying in %.2fs",
                        self.name,
                        "list" if need_list else "watch",
                        exc.message,
                        exc.code,
                        exc.reason,
                        delay,
                    )
            except Exception as exc:
                self._failures += 1
                delay = self.backoff.delay(self._failures)
                _log.warning(
                    "%s: %s failed: %r; retrying in %.2fs",
                    self.name,
                    "list" if need_list else "watch",
                    exc,
                    delay,
                )
            if delay > 0:
                await self.clock.sleep(delay)

    # -- list --------------------------------------------------------------------------------

    async def _list(self) -> None:
        self.lists += 1
        items: list[Obj] = []
        token: str | None = None
        while True:
            try:
                page = await self._list_page(limit=self.page_size, token=token)
            except StatusError as exc:
                if exc.code != 410 or token is None:
                    raise
                # The snapshot the pages were read from was compacted away: read it whole, now.
                _log.info("%s: list continuation expired; listing without pages", self.name)
                items = []
                page = await self._list_page(limit=0, token=None)
            items.extend(_with_kind(page))
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                break
        version: str = (page.get("metadata") or {}).get("resourceVersion", "")
        changes = self.indexer.replace(items, version)
        self.resource_version = version
        for obj in changes.added:
            self.handler.on_add(obj)
        for old, new in changes.updated:
            self.handler.on_update(old, new)
        for tombstone in changes.deleted:
            self.handler.on_delete(tombstone)
        if changes.deleted:
            _log.debug("%s: %d objects vanished across the re-list", self.name, len(changes.deleted))
        self.synced.set()

    async def _list_page(self, *, limit: int, token: str | None) -> Obj:
        return await self.client.list(
            self.resource,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            limit=limit,
            continue_token=token,
        )

    # -- watch -------------------------------------------------------------------------------

    async def _watch(self) -> bool:
        """Watch from the last revision until the stream ends; whether it was a healthy watch."""
        self.watches += 1
        started = self.clock.time()
        delivered = 0
        stream = self.client.watch(
            self.resource,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=self.resource_version,
            bookmarks=True,
            timeout_seconds=int(MIN_WATCH_TIMEOUT * (1.0 + self.rand())),
        )
        try:
            async for event in stream:
                self._apply(event)
                if not delivered:
                    self._failures = 0
                delivered += 1
        finally:
            await _aclose(stream)
        return delivered > 0 or self.clock.time() - started >= SHORT_WATCH

    def _apply(self, event: WatchEvent) -> None:
        kind, obj = event.type, event.object
        if kind == "BOOKMARK":
            version = cache.resource_version_of(obj)
            if version:
                self._advance(version)
            return
        if kind == "ERROR":
            raise StatusError(
                obj.get("message", "watch error"), obj.get("code", 500), obj.get("reason", "InternalError")
            )
        if kind in ("ADDED", "MODIFIED"):
            old = self.indexer.add(obj)
            self._advance(cache.resource_version_of(obj))
            if old is None:
                self.handler.on_add(obj)
            else:
                self.handler.on_update(old, obj)
        elif kind == "DELETED":
            old = self.indexer.delete(obj)
            self._advance(cache.resource_version_of(obj))
            if old is not None:
                self.handler.on_delete(obj)
        else:
            _log.warning("%s: ignoring watch event of type %r", self.name, kind)

    def _advance(self, version: str) -> None:
        if version:
            self.resource_version = version
            self.indexer.resource_version = version


def _with_kind(page: Obj) -> list[Obj]:
    """The list's items with ``kind`` and ``apiVersion`` set, as watch events carry them (list items
    are fresh copies owned by the caller, so filling them in mutates nothing shared)."""
    items: list[Obj] = page.get("items") or []
    list_kind: str = page.get("kind", "")
    kind = list_kind[: -len("List")] if list_kind.endswith("List") else ""
    api_version = page.get("apiVersion", "")
    if kind and api_version:
        for item in items:
            if "kind" not in item:
                item["kind"] = kind
            if "apiVersion" not in item:
                item["apiVersion"] = api_version
    return items


async def _aclose(stream: AsyncIterator[Any]) -> None:
    """Close a watch stream now (an async generator is otherwise closed only when collected, which would
    keep an HTTP connection or a store watcher open)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
