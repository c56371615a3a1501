"""The watch bus: fan-out of committed events to watchers, each behind its own bounded buffer.

Writers never wait for watchers. Each watcher owns a bounded buffer of references to shared
:class:`Event` objects; delivering an event is an append. A watcher whose buffer is full is dropped from
the bus at once and, after handing out what it already holds, ends with :class:`Expired`, so the client
resumes or re-lists (what kube-apiserver's cacher does to a slow watcher). Memory per watcher is bounded
by its buffer size, and a slow watcher never delays the writers or the other watchers.

Watchers are grouped by prefix: an event is tested once per distinct prefix, not once per watcher.
Within a prefix, watchers with a route (``spec.nodeName=<node>``: one per kubelet) are kept by the value
they want: an event asks its router once for the values it concerns and reaches only those watchers,
so 100 kubelets cost one lookup per pod event, not 100 selector checks.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable, Iterable

from kbox.store import errors
from kbox.store.interface import Event, EventType, Route, Router, Watch

_log = logging.getLogger(__name__)


class Watcher(Watch):
    """One watch: replayed history first, then live events, then the end (or ``Expired``)."""

    def __init__(
        self,
        bus: WatchBus,
        prefix: str,
        *,
        after_revision: int,
        replay: list[Event],
        bookmarks: bool,
        queue_size: int,
        accept: Callable[[Event], bool] | None = None,
        route: Route | None = None,
    ) -> None:
        self.prefix = prefix
        self.accept = accept
        self.route = route
        self.bookmarks = bookmarks
        self.last_revision = replay[-1].revision if replay else after_revision
        self._bus = bus
        self._after = after_revision
        self._replay: collections.deque[Event] = collections.deque(replay)
        self._buffer: collections.deque[Event] = collections.deque()
        self._size = queue_size
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: errors.StoreError | None = None

    def push(self, event: Event) -> None:
        """Deliver one event (called by the bus, on the loop, in revision order)."""
        if event.type is not EventType.BOOKMARK:
            if event.revision <= self._after:
                return
            # Not for this watcher: skipped without buffering or waking it. ``last_revision`` stays at
            # the last event it got, so bookmarks keep telling it how far the store has moved on.
            if self.accept is not None and not self._accepts(event):
                return
        if len(self._buffer) >= self._size:
            self._expire("watcher fell too far behind; re-list and watch again")
            return
        self._buffer.append(event)
        self.last_revision = event.revision
        self._wake()

    def _accepts(self, event: Event) -> bool:
        assert self.accept is not None
        try:
            return self.accept(event)
        except Exception:  # never break the publisher: let the consumer see (and judge) the event
            _log.exception("watch filter on %s failed; delivering the event", self.prefix)
            return True

    def end(self, error: errors.StoreError | None = None) -> None:
        """Stop the watch from the store's side: the consumer gets what is buffered, then the end."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._bus.remove(self)
        self._wake()

    def close(self) -> None:
        """Stop the watch from the consumer's side; buffered events are dropped."""
        self._replay.clear()
        self._buffer.clear()
        self.end()

    @property
    def backlog(self) -> int:
        """Events waiting to be consumed (for figures and tests)."""
        return len(self._replay) + len(self._buffer)

    def _expire(self, message: str) -> None:
        _log.info("closing slow watcher on %s at revision %d", self.prefix, self.last_revision)
        self.end(errors.Expired(message, compact_revision=self.last_revision))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._replay:
                return self._replay.popleft()
            if self._buffer:
                return self._buffer.popleft()
            if self._closed:
                error, self._error = self._error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class _Group:
    """The watchers of one prefix: plain ones, and routed ones by router and wanted value."""

    __slots__ = ("plain", "routed")

    def __init__(self) -> None:
        self.plain: set[Watcher] = set()
        self.routed: dict[Router, dict[str, set[Watcher]]] = {}

    def __bool__(self) -> bool:
        return bool(self.plain or self.routed)

    def all(self) -> list[Watcher]:
        watchers = list(self.plain)
        for buckets in self.routed.values():
            for bucket in buckets.values():
                watchers.extend(bucket)
        return watchers


class WatchBus:
    """Watchers by prefix, and the fan-out of each committed event to the ones whose prefix matches."""

    def __init__(self) -> None:
        self._by_prefix: dict[str, _Group] = {}

    def add(self, watcher: Watcher) -> None:
        group = self._by_prefix.setdefault(watcher.prefix, _Group())
        if watcher.route is None:
            group.plain.add(watcher)
        else:
            router, value = watcher.route
            group.routed.setdefault(router, {}).setdefault(value, set()).add(watcher)

    def remove(self, watcher: Watcher) -> None:
        group = self._by_prefix.get(watcher.prefix)
        if group is None:
            return
        if watcher.route is None:
            group.plain.discard(watcher)
        else:
            router, value = watcher.route
            buckets = group.routed.get(router)
            if buckets is not None:
                bucket = buckets.get(value)
                if bucket is not None:
                    bucket.discard(watcher)
                    if not bucket:
                        del buckets[value]
                if not buckets:
                    del group.routed[router]
        if not group:
            del self._by_prefix[watcher.prefix]

    def publish(self, events: Iterable[Event]) -> None:
        """Hand committed events, in revision order, to every matching watcher."""
        if not self._by_prefix:
            return
        for event in events:
            key = event.key
            for prefix, group in list(self._by_prefix.items()):
                if key.startswith(prefix):
                    # A push may expire a watcher, which removes it from the group: iterate a copy.
                    for watcher in tuple(group.plain):
                        watcher.push(event)
                    for router, buckets in list(group.routed.items()):
                        for watcher in self._routed(router, buckets, event):
                            watcher.push(event)

    @staticmethod
    def _routed(router: Router, buckets: dict[str, set[Watcher]], event: Event) -> list[Watcher]:
        try:
            values = set(router(event))
        except Exception:  # never break the publisher: every routed watcher's own filter decides
            _log.exception("watch router failed; offering the event to all its watchers")
            values = set(buckets)
        watchers: list[Watcher] = []
        for value in values:
            bucket = buckets.get(value)
            if bucket:
                watchers.extend(bucket)
        return watchers

    def bookmark(self, revision: int) -> None:
        """Send a BOOKMARK at ``revision`` to every bookmark watcher that has not seen that revision."""
        event = Event(EventType.BOOKMARK, "", b"", revision)
        for group in list(self._by_prefix.values()):
            for watcher in group.all():
                if watcher.bookmarks and watcher.last_revision < revision:
                    watcher.push(event)

    def close_all(self) -> None:
        """End every watch normally (store shutdown)."""
        for group in list(self._by_prefix.values()):
            for watcher in group.all():
                watcher.end()

    def __len__(self) -> int:
        return sum(len(group.all()) for group in self._by_prefix.values())
