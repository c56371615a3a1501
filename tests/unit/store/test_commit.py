"""Group commit in the durable store: concurrent writes share transactions, a failed commit fails every
write that depended on it and leaves no trace, and a caller that goes away does not undo its write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kbox.config import StoreSettings
from kbox.store import errors
from kbox.store.interface import Event
from kbox.store.sqlite import SqliteStore
from tests.support.wait import eventually


@pytest.fixture
async def durable(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(StoreSettings(path=tmp_path / "kbox.db"))
    await store.start()
    yield store  # type: ignore[misc]
    await store.close()


async def test_concurrent_writes_share_transactions(durable: SqliteStore) -> None:
    await asyncio.gather(*(durable.create(f"/k/{i}", b"x") for i in range(500)))
    assert durable.revision == 500
    assert durable.batches < 100


async def test_failed_commit_fails_dependent_writes_and_leaves_no_trace(durable: SqliteStore) -> None:
    await durable.create("/k/a", b"1")
    persister = durable._persister
    assert persister is not None
    real_append = persister.append

    def failing_append(events: list[Event]) -> None:
        raise OSError("disk full")

    persister.append = failing_append  # type: ignore[method-assign]
    results = await asyncio.gather(
        durable.update("/k/a", b"2"),
        durable.create("/k/b", b"1"),
        return_exceptions=True,
    )
    assert all(isinstance(r, errors.StoreError) for r in results)
    persister.append = real_append  # type: ignore[method-assign]

    assert durable.revision == 1
    assert (await durable.get("/k/a")).value == b"1"  # type: ignore[union-attr]
    assert await durable.get("/k/b") is None
    # The store keeps working, and the failed revisions are handed out again.
    kv = await durable.update("/k/a", b"3", expected_revision=1)
    assert kv.mod_revision == 2


async def test_cancelled_caller_still_commits(durable: SqliteStore) -> None:
    task = asyncio.ensure_future(durable.create("/k/a", b"1"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: durable.revision == 1, 1)
    assert (await durable.get("/k/a")).value == b"1"  # type: ignore[union-attr]


async def test_close_waits_for_accepted_writes(tmp_path: Path) -> None:
    store = SqliteStore(StoreSettings(path=tmp_path / "kbox.db"))
    await store.start()
    writes = [asyncio.ensure_future(store.create(f"/k/{i}", b"x")) for i in range(50)]
    await asyncio.sleep(0)
    await store.close()
    assert all(w.done() and not w.exception() for w in writes)
    again = SqliteStore(StoreSettings(path=tmp_path / "kbox.db"))
    await again.start()
    assert len((await again.list("/k/")).items) == 50
    await again.close()
