"""The SQLite backend across restarts: state, revision counter and history survive; compaction deletes
superseded rows but never current state; corrupt, foreign, newer-schema and in-use databases are refused
with a clear error and left untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kbox.config import StoreSettings
from kbox.store import errors
from kbox.store.interface import EventType
from kbox.store.sqlite import SCHEMA_VERSION, SqliteStore


async def opened(path: Path, **overrides: object) -> SqliteStore:
    store = SqliteStore(StoreSettings(path=path, **overrides))  # type: ignore[arg-type]
    await store.start()
    return store


def rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM kv").fetchone()[0])


async def test_state_revision_and_history_survive_restart(tmp_path: Path) -> None:
    db = tmp_path / "kbox.db"
    store = await opened(db)
    await store.create("/p/a", b"1")
    await store.create("/p/b", b"1")
    await store.update("/p/a", b"2")
    await store.delete("/p/b")
    await store.close()

    store = await opened(db)
    assert store.revision == 4
    assert [
        (kv.key, kv.value, kv.create_revision, kv.mod_revision) for kv in (await store.list("/p/")).items
    ] == [("/p/a", b"2", 1, 3)]
    # A watcher that was at revision 1 before the restart resumes with the same events.
    watch = store.watch("/p/", after_revision=1)
    events = [await watch.__anext__() for _ in range(3)]
    assert [(e.type, e.key, e.revision, e.prev_value) for e in events] == [
        (EventType.ADDED, "/p/b", 2, None),
        (EventType.MODIFIED, "/p/a", 3, b"1"),
        (EventType.DELETED, "/p/b", 4, b"1"),
    ]
    watch.close()
    kv = await store.create("/p/c", b"1")
    assert kv.mod_revision == 5
    await store.close()


async def test_compaction_deletes_superseded_rows_only(tmp_path: Path) -> None:
    db = tmp_path / "kbox.db"
    store = await opened(db)
    for i in range(10):
        await store.create(f"/p/{i}", b"v0")
    for i in range(10):
        await store.update(f"/p/{i}", b"v1")
    await store.delete("/p/9")
    assert rows(db) == 21
    await store.compact(store.revision)
    # Ten creates are superseded, the tombstone and its key's last row are gone: nine live rows remain.
    assert rows(db) == 9
    assert len((await store.list("/p/")).items) == 9
    await store.close()

    store = await opened(db)
    assert store.revision == 21
    assert store.compact_revision == 21
    assert {kv.value for kv in (await store.list("/p/")).items} == {b"v1"}
    with pytest.raises(errors.Expired):
        store.watch("/p/", after_revision=5)
    assert (await store.create("/p/new", b"x")).mod_revision == 22
    await store.close()


async def test_revision_never_goes_back_when_newest_row_was_compacted(tmp_path: Path) -> None:
    db = tmp_path / "kbox.db"
    store = await opened(db)
    await store.create("/p/a", b"1")
    await store.delete("/p/a")
    await store.compact(2)
    await store.close()
    assert rows(db) == 0
    store = await opened(db)
    assert store.revision == 2
    assert (await store.create("/p/a", b"again")).mod_revision == 3
    await store.close()


async def test_restart_keeps_only_the_configured_history(tmp_path: Path) -> None:
    db = tmp_path / "kbox.db"
    store = await opened(db)
    for i in range(30):
        await store.create(f"/p/{i}", b"x")
    await store.close()
    store = await opened(db, history_max_events=10)
    assert store.compact_revision == 20
    assert store.revision == 30
    await store.close()


async def test_corrupt_file_is_refused_and_kept(tmp_path: Path) -> None:
    db = tmp_path / "kbox.db"
    garbage = b"this is not a database at all" * 200
    db.write_bytes(garbage)
    with pytest.raises(errors.CorruptStore, match="cannot read the database"):
        await opened(db)
    assert db.read_bytes() == garbage


async def test_foreign_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    with pytest.raises(errors.CorruptStore, match="not a kbox database"):
        await opened(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT name FROM customers").fetchall() == [("ada",)]


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "kbox.db"
    store = await opened(db)
    await store.create("/p/a", b"1")
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(errors.SchemaTooNew, match="newer kbox"):
        await opened(db)


async def test_second_process_cannot_open_a_database_in_use(tmp_path: Path) -> None:
    db = tmp_path / "kbox.db"
    store = await opened(db)
    with pytest.raises(errors.StoreError, match="in use"):
        await opened(db)
    await store.close()
    again = await opened(db)
    await again.close()
