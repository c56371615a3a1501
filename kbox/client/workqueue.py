"""The work queue between informer handlers and a controller's workers: fair, stingy, keys only.

Shaped like client-go's ``util/workqueue``. Items are keys (``"ns/name"``), never objects: a worker reads
the current state from the informer's cache when it gets to the key, so ten events about one object cost
one sync. The guarantees:

- **Dedup.** A key added while it is already waiting is not added twice (the *dirty* set).
- **No concurrent processing of one key.** A key handed to a worker by :meth:`WorkQueue.get` is *processing*
  until that worker calls :meth:`WorkQueue.done`; adding it meanwhile marks it dirty, and it goes back to the
  end of the queue at ``done``, so it runs again, after the current run, on whichever worker is free.
- **Delays.** :meth:`~WorkQueue.add_after` parks a key until a time on the injected clock (the earliest
  requested time wins); :meth:`~WorkQueue.add_rate_limited` asks the rate limiter for the delay: per-key
  exponential back-off (5 ms doubling to 1000 s) combined with an overall token bucket (10 per second,
  burst 100), the maximum of the two, as client-go's default controller rate limiter does.
  :meth:`~WorkQueue.forget` resets a key's back-off once it synced.
- **Shutdown.** :meth:`~WorkQueue.shutdown` makes every :meth:`~WorkQueue.get`, waiting or future, raise
  :class:`ShutDown` at once; queued and delayed keys are dropped (the state they stand for lives in the
  apiserver; the next run re-lists it). :meth:`~WorkQueue.shutdown_with_drain` stops accepting keys but
  keeps handing out the ones already queued (and re-runs of dirty keys) until nothing is queued or
  processing, then does the same. Either way later adds are ignored.

Time comes from a :class:`Clock` (``time()`` and ``sleep()``); the default is the event loop's, tests pass
a fake one. Delays need one short-lived timer task per queue (``workqueue/<name>/timer``), armed for the
earliest delayed key; due keys are also promoted whenever the queue is read, so a fake clock that jumps is
seen at once by ``len()`` and ``get()``.

Everything runs on the event loop; nothing here is thread-safe, and nothing needs to be.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
from typing import Protocol

from kbox.util import aiotasks

_log = logging.getLogger(__name__)


class Clock(Protocol):
    """Where time comes from: the event loop in production, a fake in tests."""

    def time(self) -> float:
        """Seconds on a monotonic scale."""

    async def sleep(self, delay: float) -> None:
        """Return once ``time()`` has advanced by ``delay``."""


class LoopClock:
    """The running event loop's monotonic clock."""

    def time(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)


class ShutDown(Exception):
    """Raised by :meth:`WorkQueue.get` once the queue is shut down: the worker should return."""


class RateLimiter(Protocol):
    """How long a key waits before its next retry (client-go's ``RateLimiter``)."""

    def when(self, key: str) -> float:
        """The delay for this retry of ``key``; counts the retry."""

    def forget(self, key: str) -> None:
        """``key`` succeeded: start its back-off from scratch next time."""

    def num_requeues(self, key: str) -> int:
        """Retries of ``key`` since it was last forgotten."""


class ItemExponentialBackoff:
    """Per-key back-off: ``base * 2**n`` for the n-th retry since the last :meth:`forget`, capped."""

    def __init__(self, *, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        exponent = self._failures.get(key, 0)
        self._failures[key] = exponent + 1
        if exponent >= 64:  # 2**64 * any sane base is far past any cap; avoid float overflow
            return self.cap
        return min(self.base * 2.0**exponent, self.cap)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)


class TokenBucket:
    """An overall limit: ``rate`` keys per second with bursts of ``burst``, shared by all keys.

    Each call takes a token; when none is left the caller gets the time until its token will exist (the
    balance goes negative, as ``rate.Limiter.Reserve`` does), so a storm of failures is spread out.
    """

    def __init__(self, *, rate: float = 10.0, burst: int = 100, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, key: str) -> float:
        now = self._clock.time()
        if self._last is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= 1.0
        return max(0.0, -self._tokens / self.rate)

    def forget(self, key: str) -> None:
        pass

    def num_requeues(self, key: str) -> int:
        return 0


class MaxOf:
    """The longest delay any of ``limiters`` asks for (client-go's ``MaxOfRateLimiter``)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, key: str) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: str) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return max(limiter.num_requeues(key) for limiter in self.limiters)


def default_rate_limiter(clock: Clock) -> RateLimiter:
    """Per-key 5 ms doubling to 1000 s, and 10 retries per second overall with bursts of 100."""
    per_key = ItemExponentialBackoff(base=0.005, cap=1000.0)
    return MaxOf(per_key, TokenBucket(rate=10.0, burst=100, clock=clock))


class WorkQueue:
    """Keys waiting for a worker; see the module docstring for the guarantees."""

    def __init__(
        self, *, name: str = "workqueue", clock: Clock | None = None, rate_limiter: RateLimiter | None = None
    ) -> None:
        self.name = name
        self.clock: Clock = clock or LoopClock()
        self.rate_limiter = rate_limiter or default_rate_limiter(self.clock)
        self._queue: collections.deque[str] = collections.deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        # Delayed keys: a heap of (ready_at, seq, key) and the live ready time per key; a heap entry whose
        # time no longer matches ``_delayed`` is stale (the key was re-scheduled earlier) and is skipped.
        self._heap: list[tuple[float, int, str]] = []
        self._delayed: dict[str, float] = {}
        self._seq = 0
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = 0.0
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._drained: asyncio.Future[None] | None = None
        self._shutting_down = False
        self._draining = False

    # -- adding ------------------------------------------------------------------------------

    def add(self, key: str) -> None:
        """Queue ``key`` unless it is already waiting; if it is processing, run it again after ``done``.

        A pending :meth:`add_after` of the key stays pending (a requeue a sync asked for is never lost).
        """
        if self._shutting_down:
            return
        self._insert(key)

    def add_after(self, key: str, delay: float) -> None:
        """Queue ``key`` once ``delay`` seconds have passed on the clock (at once if ``delay <= 0``).

        A key already delayed keeps the earlier of its two times.
        """
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready_at = self.clock.time() + delay
        current = self._delayed.get(key)
        if current is not None and current <= ready_at:
            return
        self._delayed[key] = ready_at
        self._seq += 1
        heapq.heappush(self._heap, (ready_at, self._seq, key))
        self._arm()

    def add_rate_limited(self, key: str) -> None:
        """Queue ``key`` after the delay the rate limiter gives it (the retry path of a failed sync)."""
        if self._shutting_down:
            return
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: str) -> None:
        """``key`` synced: reset its back-off. Does not remove it from the queue."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        """Rate-limited re-adds of ``key`` since it was last forgotten."""
        return self.rate_limiter.num_requeues(key)

    # -- taking ------------------------------------------------------------------------------

    async def get(self) -> str:
        """The next key, marked processing until :meth:`done`; waits while the queue is empty.

        Raises :class:`ShutDown` once the queue is shut down (after draining, for a drain).
        """
        loop = asyncio.get_running_loop()
        while True:
            self._promote_due()
            if self._shutting_down and not self._draining:
                raise ShutDown(self.name)
            if self._queue:
                key = self._queue.popleft()
                self._processing.add(key)
                self._dirty.discard(key)
                return key
            if self._draining and not self._processing:
                raise ShutDown(self.name)
            waiter: asyncio.Future[None] = loop.create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # A wake-up meant for this getter must not be lost: pass it on.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                raise
            finally:
                if not waiter.done():
                    waiter.cancel()
                try:
                    self._getters.remove(waiter)
                except ValueError:
                    pass

    def done(self, key: str) -> None:
        """The worker finished ``key``; if it was re-added meanwhile, it is queued again now."""
        if key not in self._processing:
            return
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()
        elif self._draining and not self._processing and not self._queue:
            self._finish_drain()

    def __len__(self) -> int:
        """Keys queued and ready (not those processing or still delayed)."""
        self._promote_due()
        return len(self._queue)

    @property
    def processing(self) -> frozenset[str]:
        """Keys handed to workers and not yet done (for figures and tests)."""
        return frozenset(self._processing)

    @property
    def delayed(self) -> int:
        """Keys waiting for their time (for figures and tests)."""
        return len(self._delayed)

    # -- shutdown ----------------------------------------------------------------------------

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def shutdown(self) -> None:
        """Stop now: every ``get`` raises :class:`ShutDown`; queued and delayed keys are dropped."""
        self._shutting_down = True
        self._draining = False
        self._stop_delays()
        self._wake_all()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def shutdown_with_drain(self) -> None:
        """Stop accepting keys; return once the keys already queued (and re-runs of dirty keys) are done.

        Workers must keep calling ``get`` and ``done`` until then, or this waits forever (as in client-go).
        Delayed keys are dropped.
        """
        if self._shutting_down and not self._draining:
            return
        self._shutting_down = True
        self._draining = True
        self._stop_delays()
        if not self._queue and not self._processing:
            self._finish_drain()
            return
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drained)

    # -- internals ---------------------------------------------------------------------------

    def _insert(self, key: str) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    def _promote_due(self) -> None:
        if not self._heap:
            return
        now = self.clock.time()
        while self._heap and self._heap[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._heap)
            if self._delayed.get(key) == ready_at:
                del self._delayed[key]
                self._insert(key)

    def _arm(self) -> None:
        """Make sure a timer wakes the queue when the earliest delayed key is due."""
        while self._heap and self._delayed.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # drop stale entries so the head is real
        if not self._heap:
            return
        ready_at = self._heap[0][0]
        if self._timer is not None and not self._timer.done():
            if self._timer_at <= ready_at:
                return
            self._timer.cancel()
        self._timer_at = ready_at
        self._timer = aiotasks.create_guarded_task(
            self._fire_at(ready_at), name=f"workqueue/{self.name}/timer", logger=_log
        )

    async def _fire_at(self, ready_at: float) -> None:
        await self.clock.sleep(max(0.0, ready_at - self.clock.time()))
        if self._timer is asyncio.current_task():
            self._timer = None
        self._promote_due()
        self._arm()

    def _stop_delays(self) -> None:
        self._heap.clear()
        self._delayed.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_all(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _finish_drain(self) -> None:
        self._draining = False  # drained: from now on a plain shutdown
        self._wake_all()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
