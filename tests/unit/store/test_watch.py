"""Watch semantics: order and exactly-once delivery, resume from a revision, start from now, expiry of
compacted history, bookmarks, previous values on DELETED, encode-once sharing, and isolation of a slow
watcher from writers and other watchers. Runs against every backend."""

from __future__ import annotations

import asyncio

import pytest

from kbox.store import errors
from kbox.store.interface import Event, EventType, Store, Watch

from .conftest import MakeStore


async def take(watch: Watch, count: int, *, timeout: float = 5.0) -> list[Event]:
    """The next ``count`` events of ``watch``, failing instead of hanging if they never come."""

    async def collect() -> list[Event]:
        out = []
        async for event in watch:
            out.append(event)
            if len(out) == count:
                break
        return out

    return await asyncio.wait_for(collect(), timeout)


async def test_events_in_revision_order_with_types(store: Store) -> None:
    watch = store.watch("/p/")
    await store.create("/p/a", b"1")
    await store.create("/other/x", b"ignored")
    await store.update("/p/a", b"2")
    await store.delete("/p/a")
    events = await take(watch, 3)
    assert [(e.type, e.key, e.value, e.revision) for e in events] == [
        (EventType.ADDED, "/p/a", b"1", 1),
        (EventType.MODIFIED, "/p/a", b"2", 3),
        (EventType.DELETED, "/p/a", b"2", 4),
    ]
    assert events[1].prev_value == b"1"
    assert events[2].prev_value == b"2"
    watch.close()


async def test_resume_from_revision_replays_exactly_once(store: Store) -> None:
    for i in range(10):
        await store.create(f"/p/{i}", str(i).encode())
    watch = store.watch("/p/", after_revision=4)
    # Writes racing with the replay must neither be lost nor duplicated.
    writes = asyncio.gather(*(store.update(f"/p/{i}", b"new") for i in range(10)))
    events = await take(watch, 16)
    await writes
    assert [e.revision for e in events] == list(range(5, 21))
    watch.close()


async def test_watch_from_now_sees_only_later_writes(store: Store) -> None:
    await store.create("/p/old", b"1")
    watch = store.watch("/p/")
    await store.create("/p/new", b"1")
    [event] = await take(watch, 1)
    assert event.key == "/p/new"
    watch.close()


async def test_watch_from_future_revision_waits_for_it(store: Store) -> None:
    watch = store.watch("/p/", after_revision=2)
    for i in range(4):
        await store.create(f"/p/{i}", b"x")
    events = await take(watch, 2)
    assert [e.revision for e in events] == [3, 4]
    watch.close()


async def test_watch_before_compacted_history_is_expired(make_store: MakeStore) -> None:
    store = await make_store(history_max_events=5)
    for i in range(10):
        await store.create(f"/p/{i}", b"x")
    assert store.compact_revision == 5
    with pytest.raises(errors.Expired) as expired:
        store.watch("/p/", after_revision=3)
    assert expired.value.compact_revision == 5
    watch = store.watch("/p/", after_revision=5)
    assert [e.revision for e in await take(watch, 5)] == [6, 7, 8, 9, 10]
    watch.close()


async def test_bookmarks_advance_a_quiet_watcher(make_store: MakeStore) -> None:
    store = await make_store(bookmark_interval=0.05)
    quiet = store.watch("/quiet/", bookmarks=True)
    plain = store.watch("/quiet/")
    await store.create("/busy/a", b"x")
    [bookmark] = await take(quiet, 1)
    assert bookmark.type is EventType.BOOKMARK
    assert bookmark.revision == 1
    # Without bookmarks asked for, none arrive.
    with pytest.raises(TimeoutError):
        await take(plain, 1, timeout=0.2)
    quiet.close()
    plain.close()


async def test_slow_watcher_is_expired_without_slowing_others(store: Store) -> None:
    slow = store.watch("/p/", queue_size=10)
    fast = store.watch("/p/", queue_size=10)
    received: list[int] = []

    async def consume() -> None:
        async for event in fast:
            received.append(event.revision)
            if len(received) == 50:
                return

    consumer = asyncio.ensure_future(consume())
    for i in range(50):
        await store.create(f"/p/{i}", b"x")
        await asyncio.sleep(0)
    await asyncio.wait_for(consumer, 5)
    assert received == list(range(1, 51))

    # The slow one gets what it buffered, then the expired error, and holds no more memory.
    got = []
    with pytest.raises(errors.Expired):
        async for event in slow:
            got.append(event.revision)
    assert got == list(range(1, 11))
    assert store.watcher_count == 1  # type: ignore[attr-defined]
    fast.close()
    assert store.watcher_count == 0  # type: ignore[attr-defined]


async def test_event_is_encoded_once_for_all_watchers(store: Store) -> None:
    watches = [store.watch("/p/") for _ in range(20)]
    await store.create("/p/a", b'{"x":1}')
    calls = 0

    def encode(event: Event) -> bytes:
        nonlocal calls
        calls += 1
        return b'{"type":"%s","object":%s}' % (event.type.encode(), event.value)

    frames = set()
    for watch in watches:
        [event] = await take(watch, 1)
        frames.add(event.encoded("json", encode))
        watch.close()
    assert calls == 1
    assert frames == {b'{"type":"ADDED","object":{"x":1}}'}


async def test_close_ends_iteration(store: Store) -> None:
    watch = store.watch("/p/")

    async def drain() -> list[Event]:
        return [event async for event in watch]

    task = asyncio.ensure_future(drain())
    await asyncio.sleep(0)
    watch.close()
    assert await asyncio.wait_for(task, 1) == []


async def test_store_close_ends_watches(make_store: MakeStore) -> None:
    store = await make_store()
    watch = store.watch("/p/")
    await store.create("/p/a", b"x")
    await store.close()
    assert [e.key async for e in watch] == ["/p/a"]


async def test_accept_filters_history_and_live_events_without_buffering_the_rest(store: Store) -> None:
    await store.create("/p/keep-0", b"old")
    await store.create("/p/skip-0", b"old")
    watch = store.watch("/p/", after_revision=0, queue_size=2, accept=lambda e: "keep" in e.key)
    for i in range(10):  # far more than the queue holds: skipped events must not count against it
        await store.create(f"/p/skip-{i + 1}", b"x")
    await store.create("/p/keep-1", b"new")
    events = await take(watch, 2)
    assert [e.key for e in events] == ["/p/keep-0", "/p/keep-1"]
    assert watch.backlog == 0
    watch.close()


async def test_a_filtered_watcher_still_gets_bookmarks_of_the_progress(store: Store) -> None:
    watch = store.watch("/p/", bookmarks=True, accept=lambda e: False)
    await store.create("/p/a", b"1")
    store.request_progress()  # type: ignore[attr-defined]
    (event,) = await take(watch, 1)
    assert event.type is EventType.BOOKMARK and event.revision == store.revision
    watch.close()


async def test_routed_watchers_get_only_their_values_and_leaving_events(store: Store) -> None:
    """Watchers routed by value (as the kubelets' ``spec.nodeName=<node>`` watches are) get the events
    whose router names their value, including a change away from it; the router runs once per event."""
    calls: list[str] = []

    def node_of(event: Event) -> set[str]:
        calls.append(event.key)
        values = {event.value.decode()}
        if event.prev_value is not None:
            values.add(event.prev_value.decode())
        return values

    a = store.watch("/pods/", route=(node_of, "node-a"), bookmarks=True)
    b = store.watch("/pods/", route=(node_of, "node-b"))
    plain = store.watch("/pods/")
    await store.create("/pods/one", b"node-a")
    await store.create("/pods/two", b"node-b")
    await store.update("/pods/one", b"node-b")  # moves from a to b: both hear of it
    assert [(e.key, e.value) for e in await take(a, 2)] == [
        ("/pods/one", b"node-a"),
        ("/pods/one", b"node-b"),
    ]
    assert [(e.key, e.value) for e in await take(b, 2)] == [
        ("/pods/two", b"node-b"),
        ("/pods/one", b"node-b"),
    ]
    assert len(await take(plain, 3)) == 3
    assert calls == ["/pods/one", "/pods/two", "/pods/one"], "one router call per event, not per watcher"
    calls.clear()
    assert store.watcher_count == 3  # type: ignore[attr-defined]
    await store.create("/pods/three", b"node-c")  # for nobody routed: a falls behind the store...
    store.request_progress()  # type: ignore[attr-defined]  # ...so a bookmark tells it how far
    (bookmark,) = await take(a, 1)
    assert bookmark.type is EventType.BOOKMARK
    for watch in (a, b, plain):
        watch.close()
    assert store.watcher_count == 0  # type: ignore[attr-defined]
