"""Durability under SIGKILL: a child process writes under load and reports each acknowledged revision;
the test kills it mid-load, reopens the database and checks that every acknowledged write is there and
that the revision counter continues upward."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from kbox.config import StoreSettings
from kbox.store.sqlite import SqliteStore

WRITER = Path(__file__).with_name("crash_writer.py")


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "kbox.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WRITER),
        str(db),
        "20",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.stdout is not None
    acked: dict[str, int] = {}
    try:
        assert await asyncio.wait_for(child.stdout.readline(), 30) == b"ready\n"
        while len(acked) < 3000:
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            key, revision = line.decode().split()
            acked[key] = max(acked.get(key, 0), int(revision))
    finally:
        child.send_signal(signal.SIGKILL)
        # Lines acknowledged before the kill landed may still be in the pipe: read them all.
        rest = await child.stdout.read()
        await child.wait()
    for line in rest.decode().splitlines():
        parts = line.split()
        if len(parts) == 2:  # the last line may be cut by the kill
            acked[parts[0]] = max(acked.get(parts[0], 0), int(parts[1]))
    assert child.returncode == -signal.SIGKILL

    store = SqliteStore(StoreSettings(path=db))
    await store.start()
    try:
        missing = []
        for key, revision in acked.items():
            kv = await store.get(key)
            if kv is None or kv.mod_revision < revision:
                missing.append((key, revision, kv))
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
        newest = max(acked.values())
        assert store.revision >= newest
        assert (await store.create("/crash/after", b"x")).mod_revision == store.revision > newest
    finally:
        await store.close()
