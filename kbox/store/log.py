"""The store as a log of revisions, kept in memory and made durable by a pluggable persister.

Shape (after kine, simplified for one writer in one process):

- Every write is validated against the newest state, including writes not yet committed, and gets the
  next revision at once. So revisions are handed out in the order writes were accepted, compare-and-swap
  sees every earlier write, and two writes from one revision cannot both win.
- Accepted writes queue for the committer task, which writes everything queued as *one* transaction in a
  worker thread (group commit: one fsync for many writes, and the event loop never waits on the disk).
  Only after that transaction commits are the writes applied to the readable state, appended to the
  history and published on the watch bus, and only then are their callers answered. Readers therefore
  never see a write that could still be lost, and watchers see exactly the durable revision order.
- If a commit fails, every write accepted after the last good commit fails with it and the newest state
  falls back to the committed one: nothing half-applied survives.

With no persister (the in-memory store) a write is applied as soon as it is accepted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, Protocol, TypeVar

from sortedcontainers import SortedDict

from kbox.config import StoreSettings
from kbox.store import continuation, errors
from kbox.store.bus import WatchBus, Watcher
from kbox.store.history import History
from kbox.store.interface import Event, EventType, KeyValue, ListResult, Route, Store, Value
from kbox.util import aiotasks

_log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclass(slots=True)
class Loaded:
    """What a persister hands back when the store opens."""

    live: dict[str, KeyValue]
    history: list[Event]
    revision: int
    compact_revision: int


class Persister(Protocol):
    """The durable half of the store. Every method is called from one worker thread, one at a time."""

    def load(self, *, max_history: int) -> Loaded:
        """Open (creating if new) and read the live keys and the retained history."""

    def append(self, events: list[Event]) -> None:
        """Write ``events`` (consecutive revisions) in one transaction; return only once it is committed."""

    def compact_step(self, revision: int) -> bool:
        """Delete, in one short transaction, some rows no longer needed once history at or below
        ``revision`` is gone; return whether more remain. Short steps let commits interleave."""

    def close(self) -> None:
        """Release the database."""


class _Write:
    """An accepted write waiting for its commit, and what its caller gets back once committed."""

    __slots__ = ("event", "future", "result")

    def __init__(self, event: Event, result: KeyValue, future: asyncio.Future[KeyValue]) -> None:
        self.event = event
        self.result = result
        self.future = future


# ``LogStore.list`` shadows the builtin inside the class body; these aliases keep annotations readable.
_Writes = list[_Write]
_KeyValues = list[KeyValue]
_Keys = list[str]
_Events = list[Event]
_Tasks = list[asyncio.Task[None]]


class LogStore(Store):
    """A :class:`Store` over an in-memory log and state, durable through a :class:`Persister`."""

    def __init__(self, settings: StoreSettings, persister: Persister | None) -> None:
        self.settings = settings
        self._persister = persister
        self._live: SortedDict = SortedDict()  # key -> KeyValue, committed state only
        self._pending: dict[str, tuple[int, KeyValue | None]] = {}  # key -> (revision, newest state)
        self._history = History(max_events=settings.history_max_events)
        self._bus = WatchBus()
        self._revision = 0  # newest committed
        self._next_revision = 1  # for the next accepted write
        self._queue: _Writes = []
        self._wakeup = asyncio.Event()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._committer: asyncio.Task[None] | None = None
        self._tasks: _Tasks = []
        self._state = "new"  # new -> running -> closing -> closed
        self.batches = 0  # committed transactions, for figures
        self.commit_failures = 0
        self._last_commit_failed = False

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compact_revision(self) -> int:
        return self._history.compact_revision

    async def start(self) -> None:
        if self._state != "new":
            raise errors.StoreClosed(f"store cannot start from state {self._state}")
        if self._persister is not None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kbox-store")
            loaded = await self._in_thread(self._persister.load, max_history=self.settings.history_max_events)
            self._live.update(loaded.live)
            self._history = History(
                max_events=self.settings.history_max_events, compact_revision=loaded.compact_revision
            )
            self._history.append(loaded.history, now=asyncio.get_running_loop().time())
            self._revision = loaded.revision
            self._next_revision = loaded.revision + 1
            self._committer = aiotasks.create_guarded_task(self._commit_loop(), name="store/committer")
        self._tasks = [
            aiotasks.create_guarded_task(self._compact_loop(), name="store/compactor"),
            aiotasks.create_guarded_task(self._bookmark_loop(), name="store/bookmarks"),
        ]
        self._state = "running"

    def problem(self) -> str | None:
        if self._state != "running":
            return f"the store is {self._state}"
        if self._committer is not None and self._committer.done():
            return "the store's committer stopped"
        if self._last_commit_failed:
            return "the last commit to the database failed"
        return None

    def fatal(self) -> bool:
        return self._state in ("closing", "closed") or (
            self._committer is not None and self._committer.done()
        )

    async def close(self) -> None:
        if self._state in ("closing", "closed"):
            return
        self._state = "closing"
        if self._committer is not None:
            self._wakeup.set()
            await asyncio.wait([self._committer])
        await aiotasks.stop(self._tasks, title="store")
        self._bus.close_all()
        if self._persister is not None and self._executor is not None:
            await self._in_thread(self._persister.close)
            self._executor.shutdown(wait=True)
        self._state = "closed"

    async def __aenter__(self) -> LogStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reads -------------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        self._check_running()
        kv: KeyValue | None = self._live.get(key)
        return kv

    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        continue_token: str | None = None,
        revision: int = 0,
    ) -> ListResult:
        self._check_running()
        after_key: str | None = None
        if continue_token:
            revision, after_key = continuation.decode(continue_token, prefix=prefix)
        if revision > self._revision:
            raise errors.RevisionTooNew(f"revision {revision} is newer than the store's {self._revision}")
        if revision in (0, self._revision):
            revision = self._revision
            changed: dict[str, KeyValue | None] = {}
        else:
            if revision < self.compact_revision:
                raise errors.Expired(
                    f"revision {revision} has been compacted (oldest is {self.compact_revision})",
                    compact_revision=self.compact_revision,
                )
            changed = self._history.state_at(revision, lambda k: k.startswith(prefix))

        items: _KeyValues = []
        more = False
        for key in self._keys(prefix, after_key, changed):
            kv = changed[key] if key in changed else self._live[key]
            if kv is None:
                continue
            if limit and len(items) == limit:
                more = True
                break
            items.append(kv)
        token = continuation.encode(revision=revision, last_key=items[-1].key) if more else None
        return ListResult(items=items, revision=revision, continue_token=token)

    def _keys(self, prefix: str, after_key: str | None, changed: dict[str, KeyValue | None]) -> _Keys:
        """Keys under ``prefix`` after ``after_key``: live ones merged with those changed since the
        revision being read (which may be gone now but existed then)."""
        start = after_key if after_key is not None else prefix
        live = self._live.irange(minimum=start, inclusive=(after_key is None, False))
        keys: _Keys = []
        for key in live:
            if not key.startswith(prefix):
                break
            keys.append(key)
        if changed:
            extra = [k for k in changed if k not in self._live and (after_key is None or k > after_key)]
            if extra:
                keys = sorted(keys + extra)
        return keys

    # -- writes ------------------------------------------------------------------------------

    async def create(self, key: str, value: Value) -> KeyValue:
        self._check_running()
        current = self._newest(key)
        if current is not None:
            raise errors.KeyExists(key)
        # The value is computed before the revision is taken, so a failing factory leaves no gap.
        data = value(self._next_revision) if callable(value) else value
        revision = self._take_revision()
        event = Event(EventType.ADDED, key, data, revision, create_revision=revision)
        return await self._submit(event)

    async def update(self, key: str, value: Value, *, expected_revision: int | None = None) -> KeyValue:
        self._check_running()
        current = self._newest(key)
        if current is None:
            raise errors.KeyNotFound(key)
        if expected_revision is not None and expected_revision != current.mod_revision:
            raise errors.Conflict(key, expected_revision, current.mod_revision)
        # The value is computed before the revision is taken, so a failing factory leaves no gap.
        data = value(self._next_revision) if callable(value) else value
        revision = self._take_revision()
        event = Event(
            EventType.MODIFIED,
            key,
            data,
            revision,
            create_revision=current.create_revision,
            prev_value=current.value,
            prev_revision=current.mod_revision,
        )
        return await self._submit(event)

    async def delete(self, key: str, *, expected_revision: int | None = None) -> KeyValue:
        self._check_running()
        current = self._newest(key)
        if current is None:
            raise errors.KeyNotFound(key)
        if expected_revision is not None and expected_revision != current.mod_revision:
            raise errors.Conflict(key, expected_revision, current.mod_revision)
        revision = self._take_revision()
        event = Event(
            EventType.DELETED,
            key,
            current.value,
            revision,
            create_revision=current.create_revision,
            prev_value=current.value,
            prev_revision=current.mod_revision,
        )
        return await self._submit(event)

    def _newest(self, key: str) -> KeyValue | None:
        pending = self._pending.get(key)
        if pending is not None:
            return pending[1]
        kv: KeyValue | None = self._live.get(key)
        return kv

    def _take_revision(self) -> int:
        revision = self._next_revision
        self._next_revision = revision + 1
        return revision

    async def _submit(self, event: Event) -> KeyValue:
        result = KeyValue(event.key, event.value, event.create_revision, event.revision)
        if self._persister is None:
            self._apply([event], [result])
            return result
        self._pending[event.key] = (event.revision, None if event.type is EventType.DELETED else result)
        future: asyncio.Future[KeyValue] = asyncio.get_running_loop().create_future()
        self._queue.append(_Write(event, result, future))
        self._wakeup.set()
        # If this caller is cancelled, only ``future`` is: the write stays queued and commits anyway.
        return await future

    async def _commit_loop(self) -> None:
        assert self._persister is not None
        persister = self._persister
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = self._queue[: self.settings.max_batch]
                del self._queue[: len(batch)]
                events = [write.event for write in batch]
                try:
                    await self._in_thread(persister.append, events)
                except Exception as exc:
                    self._last_commit_failed = True
                    self._fail_uncommitted(batch, exc)
                    continue
                self._last_commit_failed = False
                self.batches += 1
                self._apply(events, [write.result for write in batch])
                for write in batch:
                    if not write.future.done():
                        write.future.set_result(write.result)
            if self._state == "closing":
                return

    def _fail_uncommitted(self, batch: _Writes, exc: Exception) -> None:
        """A commit failed: fail it and every write accepted after it, and forget their state."""
        self.commit_failures += 1
        _log.error("store commit of %d writes failed: %s", len(batch), exc)
        failed = batch + self._queue
        self._queue = []
        self._pending.clear()
        self._next_revision = self._revision + 1
        error = errors.StoreError(f"commit failed: {exc}")
        for write in failed:
            if not write.future.done():
                write.future.set_exception(error)

    def _apply(self, events: _Events, results: _KeyValues) -> None:
        """Make committed events visible: state, history, pending bookkeeping, then the watch bus.
        ``results[i]`` is the live KeyValue that ``events[i]`` leaves (unused for a delete)."""
        live = self._live
        pending = self._pending
        for event, result in zip(events, results, strict=True):
            key = event.key
            if event.type is EventType.DELETED:
                del live[key]
            else:
                live[key] = result
            entry = pending.get(key)
            if entry is not None and entry[0] == event.revision:
                del pending[key]
        self._revision = events[-1].revision
        self._history.append(events, now=asyncio.get_running_loop().time())
        self._bus.publish(events)

    # -- watch -------------------------------------------------------------------------------

    def watch(
        self,
        prefix: str,
        *,
        after_revision: int | None = None,
        bookmarks: bool = False,
        queue_size: int | None = None,
        accept: Callable[[Event], bool] | None = None,
        route: Route | None = None,
    ) -> Watcher:
        self._check_running()
        if after_revision is None:
            after_revision = self._revision
        if after_revision < self.compact_revision:
            raise errors.Expired(
                f"too old resource version: {after_revision} ({self.compact_revision})",
                compact_revision=self.compact_revision,
            )
        replay = self._history.since(after_revision, lambda k: k.startswith(prefix))
        if accept is not None:
            replay = [event for event in replay if accept(event)]
        watcher = Watcher(
            self._bus,
            prefix,
            after_revision=after_revision,
            replay=replay,
            bookmarks=bookmarks,
            queue_size=queue_size or self.settings.watch_queue_size,
            accept=accept,
            route=route,
        )
        self._bus.add(watcher)
        return watcher

    @property
    def watcher_count(self) -> int:
        return len(self._bus)

    def request_progress(self) -> None:
        """Send a bookmark at the current revision to every bookmark watcher that is behind it now."""
        self._bus.bookmark(self._revision)

    async def _bookmark_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.bookmark_interval)
            self.request_progress()

    # -- compaction --------------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        self._check_running()
        revision = min(revision, self._revision)
        self._history.trim_to(revision)
        await self._compact_persisted()

    async def _compact_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.compact_interval)
            self._history.trim_older_than(loop.time() - self.settings.history_seconds)
            await self._compact_persisted()

    async def _compact_persisted(self) -> None:
        if self._persister is None:
            return
        target = self._history.compact_revision
        while await self._in_thread(self._persister.compact_step, target):
            pass

    # -- helpers -----------------------------------------------------------------------------

    async def _in_thread(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a persister call on the store's one worker thread, keeping the event loop free."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def _check_running(self) -> None:
        if self._state != "running":
            raise errors.StoreClosed(f"store is {self._state}")
