"""Child process of test_crash.py: writes to a SQLite store under load and prints every acknowledged
write as ``<key> <revision>``, flushed at once, until it is killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from kbox.config import StoreSettings
from kbox.store.sqlite import SqliteStore


async def writer(store: SqliteStore, index: int) -> None:
    counter = f"/crash/counters/{index}"
    await store.create(counter, b"0")
    n = 0
    while True:
        n += 1
        created = await store.create(f"/crash/items/{index}/{n}", str(n).encode())
        sys.stdout.write(f"{created.key} {created.mod_revision}\n")
        updated = await store.update(counter, str(n).encode())
        sys.stdout.write(f"{counter} {updated.mod_revision}\n")
        sys.stdout.flush()


async def main() -> None:
    store = SqliteStore(StoreSettings(path=Path(sys.argv[1])))
    await store.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.gather(*(writer(store, i) for i in range(int(sys.argv[2]))))


if __name__ == "__main__":
    asyncio.run(main())
