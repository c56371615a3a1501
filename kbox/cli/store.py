"""``kbox store ...`` (look inside a store's database) and ``kbox demo`` (the store at work).

``kbox store inspect`` reads a database with sqlite-utils without starting anything, so it is safe on
the file of a running cluster. ``kbox demo`` is the smoke demo that ``make run`` runs until
``kbox start`` exists: it opens a durable store, watches it, writes through it and shows both sides.
"""

from __future__ import annotations

import asyncio
import collections
import os
import sqlite3
from pathlib import Path

import click
import msgspec
import sqlite_utils
from rich.console import Console
from rich.table import Table

from kbox.config import StoreSettings
from kbox.store import errors
from kbox.store.interface import Event
from kbox.store.sqlite import APPLICATION_ID, SqliteStore


def kbox_home() -> Path:
    """Where kbox keeps state: ``$KBOX_HOME`` or ``~/.kbox``."""
    return Path(os.environ.get("KBOX_HOME") or Path.home() / ".kbox")


@click.group()
def store() -> None:
    """Look inside a kbox store database."""


@store.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def inspect(path: Path) -> None:
    """Show revision, history and keys per resource of the database at PATH."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db = sqlite_utils.Database(conn)
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID or not db["kv"].exists():
            raise errors.CorruptStore(f"{path} is not a kbox database")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        revision = conn.execute("SELECT max(id) FROM kv").fetchone()[0] or 0
        compacted = conn.execute("SELECT value FROM meta WHERE key = 'compact_revision'").fetchone()[0]
        live = conn.execute(
            "SELECT name FROM kv AS k WHERE deleted = 0 AND id = (SELECT max(id) FROM kv WHERE name = k.name)"
        )
        counts = collections.Counter(name.rsplit("/", 1)[0] for (name,) in live)
        rows = db["kv"].count
    except sqlite3.DatabaseError as exc:
        raise errors.CorruptStore(f"{path}: cannot read the database: {exc}") from None
    console = Console()
    console.print(
        f"[bold]{path}[/]: schema {version}, revision {revision}, compacted at {compacted}, {rows} rows"
    )
    table = Table("prefix", "live keys")
    for folder, count in sorted(counts.items()):
        table.add_row(folder + "/", str(count))
    console.print(table)


@click.command()
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Database file (default: $KBOX_HOME/demo/state.db).",
)
@click.option("--objects", default=5, show_default=True, help="ConfigMaps to create, update and delete.")
def demo(path: Path | None, objects: int) -> None:
    """Smoke demo of the store: write ConfigMaps, watch the events, keep the revision across runs."""
    path = path or kbox_home() / "demo" / "state.db"
    asyncio.run(_demo(path, objects))


async def _demo(path: Path, objects: int) -> None:
    console = Console()
    store = SqliteStore(StoreSettings(path=path))
    await store.start()
    try:
        console.print(f"store [bold]{path}[/] opened at revision {store.revision}")
        watch = store.watch("/registry/configmaps/")
        table = Table("event", "key", "revision")
        encoder = msgspec.json.Encoder()
        for i in range(objects):
            key = f"/registry/configmaps/demo/settings-{i}"
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"settings-{i}"}}
            existing = await store.get(key)
            if existing is not None:
                await store.delete(key)
            await store.create(key, encoder.encode({**body, "data": {"n": "0"}}))
            await store.update(key, encoder.encode({**body, "data": {"n": "1"}}))
        target = store.revision
        while True:
            event: Event = await asyncio.wait_for(watch.__anext__(), 5)
            table.add_row(str(event.type), event.key, str(event.revision))
            if event.revision >= target:
                break
        watch.close()
        console.print(table)
        listed = await store.list("/registry/configmaps/demo/", limit=2)
        console.print(
            f"first page of {len(listed.items)} at revision {listed.revision}; continue token: "
            f"{'yes' if listed.continue_token else 'no'}. Run again: the revision continues from "
            f"{store.revision}."
        )
    finally:
        await store.close()
