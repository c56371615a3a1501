"""Store operations and their errors: create, get, update (compare-and-swap), delete, list by prefix,
the revision counter, and reads at an older revision. Runs against every backend."""

from __future__ import annotations

import asyncio

import pytest

from kbox.store import errors
from kbox.store.interface import Store


async def test_create_get_update_delete(store: Store) -> None:
    assert store.revision == 0
    created = await store.create("/registry/pods/default/a", b'{"v":1}')
    assert (created.create_revision, created.mod_revision) == (1, 1)
    assert store.revision == 1
    got = await store.get("/registry/pods/default/a")
    assert got == created

    updated = await store.update("/registry/pods/default/a", b'{"v":2}', expected_revision=1)
    assert (updated.create_revision, updated.mod_revision, updated.value) == (1, 2, b'{"v":2}')

    deleted = await store.delete("/registry/pods/default/a")
    assert deleted.value == b'{"v":2}'
    assert deleted.mod_revision == 3
    assert await store.get("/registry/pods/default/a") is None
    assert store.revision == 3


async def test_errors(store: Store) -> None:
    await store.create("/k", b"1")
    with pytest.raises(errors.KeyExists):
        await store.create("/k", b"2")
    with pytest.raises(errors.KeyNotFound):
        await store.update("/missing", b"x")
    with pytest.raises(errors.KeyNotFound):
        await store.delete("/missing")
    with pytest.raises(errors.Conflict) as conflict:
        await store.update("/k", b"2", expected_revision=7)
    assert (conflict.value.expected, conflict.value.actual) == (7, 1)
    with pytest.raises(errors.Conflict):
        await store.delete("/k", expected_revision=99)
    # Failed writes consume no revision and change nothing.
    assert store.revision == 1
    assert (await store.get("/k")).value == b"1"  # type: ignore[union-attr]


async def test_recreate_after_delete_gets_new_create_revision(store: Store) -> None:
    await store.create("/k", b"1")
    await store.delete("/k")
    again = await store.create("/k", b"2")
    assert again.create_revision == 3


async def test_concurrent_compare_and_swap_has_one_winner(store: Store) -> None:
    await store.create("/counter", b"0")
    results = await asyncio.gather(
        *(store.update("/counter", str(i).encode(), expected_revision=1) for i in range(20)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, errors.Conflict) for r in results if isinstance(r, BaseException))


async def test_concurrent_writers_get_distinct_increasing_revisions(store: Store) -> None:
    kvs = await asyncio.gather(*(store.create(f"/k/{i:03}", b"x") for i in range(200)))
    revisions = sorted(kv.mod_revision for kv in kvs)
    assert revisions == list(range(1, 201))
    assert store.revision == 200


async def test_list_by_prefix_in_key_order(store: Store) -> None:
    for key in ["/registry/pods/b/x", "/registry/pods/a/y", "/registry/pods/a/x", "/registry/podsx/z"]:
        await store.create(key, key.encode())
    await store.create("/registry/services/a/s", b"s")
    result = await store.list("/registry/pods/")
    assert [kv.key for kv in result.items] == [
        "/registry/pods/a/x",
        "/registry/pods/a/y",
        "/registry/pods/b/x",
    ]
    assert result.revision == store.revision
    assert result.continue_token is None
    assert [kv.key for kv in (await store.list("/registry/pods/a/")).items] == [
        "/registry/pods/a/x",
        "/registry/pods/a/y",
    ]
    assert (await store.list("/nothing/")).items == []


async def test_list_at_older_revision_sees_the_past(store: Store) -> None:
    await store.create("/p/a", b"a1")
    await store.create("/p/b", b"b1")
    then = store.revision
    await store.update("/p/a", b"a2")
    await store.delete("/p/b")
    await store.create("/p/c", b"c1")

    past = await store.list("/p/", revision=then)
    assert [(kv.key, kv.value, kv.mod_revision) for kv in past.items] == [
        ("/p/a", b"a1", 1),
        ("/p/b", b"b1", 2),
    ]
    assert past.revision == then
    now = await store.list("/p/")
    assert [(kv.key, kv.value) for kv in now.items] == [("/p/a", b"a2"), ("/p/c", b"c1")]


async def test_list_beyond_current_revision_is_refused(store: Store) -> None:
    await store.create("/p/a", b"a1")
    with pytest.raises(errors.RevisionTooNew):
        await store.list("/p/", revision=5)


async def test_compacted_revision_cannot_be_read(store: Store) -> None:
    for i in range(5):
        await store.create(f"/p/{i}", b"x")
    await store.update("/p/0", b"y")
    await store.compact(3)
    assert store.compact_revision == 3
    with pytest.raises(errors.Expired):
        await store.list("/p/", revision=2)
    # Compaction never loses current state.
    assert len((await store.list("/p/")).items) == 5
    assert (await store.get("/p/0")).value == b"y"  # type: ignore[union-attr]


async def test_closed_store_refuses_work(store: Store) -> None:
    await store.close()
    with pytest.raises(errors.StoreClosed):
        await store.create("/k", b"1")
    with pytest.raises(errors.StoreClosed):
        await store.get("/k")


async def test_value_factory_gets_the_write_revision(store: Store) -> None:
    created = await store.create("/k", lambda rev: b"rev=%d" % rev)
    assert created.value == b"rev=1"
    updated = await store.update("/k", lambda rev: b"rev=%d" % rev, expected_revision=1)
    assert (updated.value, updated.mod_revision) == (b"rev=2", 2)

    def broken(rev: int) -> bytes:
        raise ValueError("cannot encode")

    try:
        await store.create("/other", broken)
    except ValueError:
        pass
    # A factory that fails takes no revision: the next write is contiguous.
    assert (await store.create("/third", b"x")).mod_revision == 3
