"""The work queue's client-go semantics, in fake time: dedup of waiting keys, one key never processed by
two workers at once, re-adds during processing run again after ``done``, ``add_after`` ordering and
earliest-time-wins, getters woken by the delay timer, per-key back-off growth, its cap and ``forget``, the
overall token bucket, shutdown (waiting getters end, later adds ignored) and shutdown with drain.
Leaves the controller loop around the queue to the component tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator

import pytest

from kbox.client import workqueue


class FakeClock:
    """Time stands still until :meth:`advance`; sleepers wake when it passes their deadline."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + delay, next(self._seq), future))
        await future

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def queue(clock: FakeClock) -> AsyncIterator[workqueue.WorkQueue]:
    q = workqueue.WorkQueue(name="test", clock=clock)
    yield q
    q.shutdown()


async def get(q: workqueue.WorkQueue) -> str:
    return await asyncio.wait_for(q.get(), 2)


async def test_add_dedups_waiting_keys(queue: workqueue.WorkQueue) -> None:
    for key in ("a", "b", "a", "c", "b"):
        queue.add(key)
    assert len(queue) == 3
    assert [await get(queue) for _ in range(3)] == ["a", "b", "c"]
    assert len(queue) == 0 and queue.processing == {"a", "b", "c"}
    for key in ("a", "b", "c"):
        queue.done(key)
    assert not queue.processing


async def test_readd_during_processing_runs_again_after_done(queue: workqueue.WorkQueue) -> None:
    queue.add("a")
    assert await get(queue) == "a"
    queue.add("a")
    queue.add("a")
    # Dirty, but not handed out while a worker still holds it.
    assert len(queue) == 0 and queue.processing == {"a"}
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not second.done()
    queue.done("a")
    assert await asyncio.wait_for(second, 2) == "a"  # once, although added twice meanwhile
    queue.done("a")
    assert len(queue) == 0 and not queue.processing
    queue.done("a")  # done for a key not processing is ignored


async def test_one_key_is_never_processed_concurrently(queue: workqueue.WorkQueue) -> None:
    active: set[str] = set()
    runs: list[str] = []
    release = asyncio.Event()
    progress = asyncio.Event()

    async def until_runs(count: int) -> None:
        async with asyncio.timeout(2):
            while len(runs) < count:
                progress.clear()
                await progress.wait()

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except workqueue.ShutDown:
                return
            assert key not in active, f"{key} handed to two workers"
            active.add(key)
            runs.append(key)
            progress.set()
            await release.wait()
            active.discard(key)
            queue.done(key)

    workers = [asyncio.ensure_future(worker()) for _ in range(4)]
    queue.add("a")
    queue.add("b")
    await until_runs(2)
    queue.add("a")  # while "a" is processing on one worker; two workers are idle
    queue.add("c")
    await until_runs(3)
    assert sorted(runs) == ["a", "b", "c"] and active == {"a", "b", "c"}
    release.set()
    await until_runs(4)
    assert runs[3] == "a"
    await queue.shutdown_with_drain()
    await asyncio.wait_for(asyncio.gather(*workers), 2)
    assert sorted(runs) == ["a", "a", "b", "c"]


async def test_add_after_orders_by_time(queue: workqueue.WorkQueue, clock: FakeClock) -> None:
    queue.add_after("c", 3)
    queue.add_after("a", 1)
    queue.add_after("b", 2)
    queue.add_after("b", 5)  # a later time never postpones a key already waiting
    queue.add_after("c", 2.5)  # an earlier one moves it forward
    queue.add_after("now", 0)
    assert len(queue) == 1 and queue.delayed == 3
    assert await get(queue) == "now"
    clock.advance(0.999)
    assert len(queue) == 0
    clock.advance(0.001)
    assert len(queue) == 1 and await get(queue) == "a"
    clock.advance(1.5)
    assert len(queue) == 2
    assert [await get(queue), await get(queue)] == ["b", "c"]
    assert queue.delayed == 0
    clock.advance(10)
    assert len(queue) == 0  # the superseded times left nothing behind


async def test_waiting_getter_is_woken_by_the_timer(queue: workqueue.WorkQueue, clock: FakeClock) -> None:
    getter = asyncio.ensure_future(queue.get())
    queue.add_after("later", 10)
    queue.add_after("sooner", 4)
    await asyncio.sleep(0)
    clock.advance(4)
    assert await asyncio.wait_for(getter, 2) == "sooner"
    getter = asyncio.ensure_future(queue.get())
    clock.advance(6)
    assert await asyncio.wait_for(getter, 2) == "later"


async def test_add_during_processing_keeps_a_pending_delay(
    queue: workqueue.WorkQueue, clock: FakeClock
) -> None:
    queue.add_after("a", 5)
    queue.add("a")
    assert await get(queue) == "a"
    queue.done("a")
    clock.advance(5)
    assert len(queue) == 1  # the requeue asked for is not lost


async def test_rate_limited_backoff_grows_and_forget_resets(
    queue: workqueue.WorkQueue, clock: FakeClock
) -> None:
    for attempt, expected in enumerate([0.005, 0.01, 0.02, 0.04]):
        start = clock.now
        queue.add_rate_limited("a")
        assert queue.num_requeues("a") == attempt + 1
        clock.advance(expected * 0.999)
        assert len(queue) == 0
        clock.now = start + expected
        assert len(queue) == 1
        assert await get(queue) == "a"
        queue.done("a")
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    queue.add_rate_limited("a")
    clock.advance(0.005)
    assert len(queue) == 1


def test_item_backoff_is_capped() -> None:
    backoff = workqueue.ItemExponentialBackoff()
    delays = [backoff.when("a") for _ in range(30)]
    assert delays[:3] == [0.005, 0.01, 0.02]
    assert delays[17] == 0.005 * 2**17 and delays[18] == 1000.0 and delays[-1] == 1000.0
    assert backoff.when("b") == 0.005  # per key
    for _ in range(100):
        backoff.when("c")
    assert backoff.when("c") == 1000.0  # no overflow far past the cap


def test_token_bucket_spreads_a_storm(clock: FakeClock) -> None:
    limiter = workqueue.default_rate_limiter(clock)
    # A burst of 100 distinct keys only pays the per-key back-off...
    assert {limiter.when(f"k{i}") for i in range(100)} == {0.005}
    # ...then each further retry waits for its token, at 10 per second.
    assert [round(limiter.when(f"x{i}"), 3) for i in range(3)] == [0.1, 0.2, 0.3]
    clock.advance(10)  # the bucket refills (to the burst, never beyond)
    assert limiter.when("y") == 0.005
    assert limiter.num_requeues("k1") == 1
    limiter.forget("k1")
    assert limiter.num_requeues("k1") == 0


async def test_shutdown_ends_getters_and_ignores_adds(queue: workqueue.WorkQueue, clock: FakeClock) -> None:
    waiting = [asyncio.ensure_future(queue.get()) for _ in range(2)]
    await asyncio.sleep(0)
    queue.add_after("delayed", 1)
    queue.shutdown()
    for getter in waiting:
        with pytest.raises(workqueue.ShutDown):
            await asyncio.wait_for(getter, 2)
    queue.add("a")
    queue.add_rate_limited("b")
    clock.advance(10)
    assert len(queue) == 0 and queue.delayed == 0 and queue.shutting_down
    with pytest.raises(workqueue.ShutDown):
        await get(queue)


async def test_shutdown_drops_queued_keys(queue: workqueue.WorkQueue) -> None:
    queue.add("a")
    queue.shutdown()
    with pytest.raises(workqueue.ShutDown):
        await get(queue)


async def test_shutdown_with_drain_finishes_queued_work(queue: workqueue.WorkQueue) -> None:
    queue.add("a")
    queue.add("b")
    assert await get(queue) == "a"
    queue.add("a")  # dirty while processing: still runs during the drain
    drain = asyncio.ensure_future(queue.shutdown_with_drain())
    await asyncio.sleep(0)
    queue.add("c")  # ignored: the queue no longer accepts keys
    assert not drain.done()
    assert await get(queue) == "b"
    queue.done("b")
    idle = asyncio.ensure_future(queue.get())  # waits: "a" may still come back
    await asyncio.sleep(0)
    assert not idle.done() and not drain.done()
    queue.done("a")
    assert await asyncio.wait_for(idle, 2) == "a"
    assert not drain.done()
    queue.done("a")
    await asyncio.wait_for(drain, 2)
    with pytest.raises(workqueue.ShutDown):
        await get(queue)
    await asyncio.wait_for(queue.shutdown_with_drain(), 2)  # again: returns at once


async def test_cancelled_getter_passes_its_wakeup_on(queue: workqueue.WorkQueue) -> None:
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.add("a")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, 2) == "a"
    assert first.cancelled()
