"""SQLite persistence for the log store: one row per revision, like kine.

Table ``kv``: ``id`` is the revision; ``created``/``deleted`` give the event type; ``create_revision`` and
``prev_revision`` the key's creation and previous revisions; ``value`` the new value (empty for a delete)
and ``old_value`` the value it replaced, so a restarted store can replay MODIFIED and DELETED events with
their previous objects. The current value of a key is its highest row. Compaction deletes rows at or
below the compact revision that a newer row supersedes, and tombstones, a thousand ids per transaction.

Table ``meta`` holds the compact revision. ``PRAGMA application_id`` marks the file as kbox's and
``PRAGMA user_version`` is the schema version: a foreign or newer database is refused, never reset.
A lock file next to the database keeps a second process from opening it.

All methods run on the store's single worker thread (see ``log.py``), so the connection is used by one
thread at a time.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import IO

import sqlite_utils

from kbox.config import StoreSettings
from kbox.store import errors
from kbox.store.interface import Event, EventType, KeyValue
from kbox.store.log import Loaded, LogStore

APPLICATION_ID = 0x6B626F78  # "kbox"
SCHEMA_VERSION = 1
COMPACT_STEP = 1000

_INSERT = (
    "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value, old_value)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# A row at or below the target is droppable when a newer row for its key exists (that row carries the
# old value) or when it is a tombstone (the key is gone and no retained event needs it).
_COMPACT = """
DELETE FROM kv WHERE id IN (
    SELECT k.id FROM kv AS k
    WHERE k.id > :low AND k.id <= :high
      AND (k.deleted = 1 OR EXISTS (SELECT 1 FROM kv AS n WHERE n.name = k.name AND n.id > k.id))
)
"""


class SqlitePersister:
    """The :class:`kbox.store.log.Persister` over a SQLite file in WAL mode."""

    def __init__(self, path: Path, *, synchronous: str = "full") -> None:
        self.path = path
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._lock: IO[bytes] | None = None
        self._compacted = 0  # persisted compact revision

    # -- opening -----------------------------------------------------------------------------

    def load(self, *, max_history: int) -> Loaded:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            conn = self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._check_and_migrate(conn)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            return self._read(conn, max_history=max_history)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise errors.CorruptStore(f"{self.path}: cannot read the database: {exc}") from None
        except errors.StoreError:
            self.close()
            raise

    def _take_lock(self) -> None:
        lock = open(f"{self.path}.lock", "a+b")  # noqa: SIM115 - held for the store's lifetime
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise errors.StoreError(f"{self.path} is in use by another kbox process") from None
        self._lock = lock

    def _check_and_migrate(self, conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id == 0 and not tables:
            self._create_schema(conn)
            return
        if app_id != APPLICATION_ID:
            raise errors.CorruptStore(f"{self.path} is not a kbox database (it has tables {sorted(tables)})")
        if version > SCHEMA_VERSION:
            raise errors.SchemaTooNew(
                f"{self.path} has schema version {version}; this kbox knows up to {SCHEMA_VERSION}."
                " Use a newer kbox, or move the file away to start afresh."
            )
        if not {"kv", "meta"} <= tables:
            raise errors.CorruptStore(f"{self.path}: kbox tables are missing ({sorted(tables)})")
        # Migrations from older schema versions go here, one step per version.

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        db = sqlite_utils.Database(conn)
        conn.execute("BEGIN")
        db["kv"].create(  # type: ignore[union-attr]
            {
                "id": int,
                "name": str,
                "created": int,
                "deleted": int,
                "create_revision": int,
                "prev_revision": int,
                "value": bytes,
                "old_value": bytes,
            },
            pk="id",
            not_null={"name", "created", "deleted", "create_revision", "prev_revision"},
        )
        db["kv"].create_index(["name", "id"], index_name="kv_name_id", unique=True)  # type: ignore[union-attr]
        db["meta"].create({"key": str, "value": int}, pk="key")  # type: ignore[union-attr]
        conn.execute("INSERT INTO meta (key, value) VALUES ('compact_revision', 0)")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")

    def _read(self, conn: sqlite3.Connection, *, max_history: int) -> Loaded:
        row = conn.execute("SELECT value FROM meta WHERE key = 'compact_revision'").fetchone()
        compacted = int(row[0]) if row else 0
        live: dict[str, KeyValue] = {}
        history: list[Event] = []
        revision = compacted
        cursor = conn.execute(
            "SELECT id, name, created, deleted, create_revision, prev_revision, value, old_value"
            " FROM kv ORDER BY id"
        )
        for rev, name, created, deleted, create_rev, prev_rev, value, old_value in cursor:
            revision = rev
            value = bytes(value) if value is not None else b""
            if deleted:
                live.pop(name, None)
            else:
                live[name] = KeyValue(name, value, create_rev, rev)
            if rev > compacted:
                history.append(_event(rev, name, created, deleted, create_rev, prev_rev, value, old_value))
        # Compaction may have removed the newest row (a tombstone); the counter never goes back.
        revision = max(revision, compacted)
        self._compacted = compacted
        # Only the newest ``max_history`` events are kept in memory; older ones count as compacted.
        if len(history) > max_history:
            compacted = history[-max_history - 1].revision
            del history[:-max_history]
        return Loaded(live=live, history=history, revision=revision, compact_revision=compacted)

    # -- writing -----------------------------------------------------------------------------

    def append(self, events: list[Event]) -> None:
        conn = self._connection()
        rows = [
            (
                e.revision,
                e.key,
                1 if e.type is EventType.ADDED else 0,
                1 if e.type is EventType.DELETED else 0,
                e.create_revision,
                e.prev_revision,
                b"" if e.type is EventType.DELETED else e.value,
                e.prev_value,
            )
            for e in events
        ]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def compact_step(self, revision: int) -> bool:
        if revision <= self._compacted:
            return False
        conn = self._connection()
        high = min(revision, self._compacted + COMPACT_STEP)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_COMPACT, {"low": self._compacted, "high": high})
            conn.execute("UPDATE meta SET value = ? WHERE key = 'compact_revision'", (high,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._compacted = high
        if high >= revision:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            return False
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise errors.StoreClosed(f"{self.path} is not open")
        return self._conn


def _event(
    rev: int,
    name: str,
    created: int,
    deleted: int,
    create_rev: int,
    prev_rev: int,
    value: bytes,
    old_value: bytes | None,
) -> Event:
    old = bytes(old_value) if old_value is not None else None
    if deleted:
        return Event(
            EventType.DELETED,
            name,
            old or b"",
            rev,
            create_revision=create_rev,
            prev_value=old,
            prev_revision=prev_rev,
        )
    kind = EventType.ADDED if created else EventType.MODIFIED
    return Event(kind, name, value, rev, create_revision=create_rev, prev_value=old, prev_revision=prev_rev)


class SqliteStore(LogStore):
    """The durable store: the log store with SQLite underneath."""

    def __init__(self, settings: StoreSettings) -> None:
        if settings.path is None:
            raise ValueError("SqliteStore needs settings.path")
        super().__init__(
            settings, SqlitePersister(Path(os.fspath(settings.path)), synchronous=settings.synchronous)
        )
