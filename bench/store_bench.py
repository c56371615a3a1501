"""Store benchmark: durable write throughput and latency against raw SQLite measured in the same run,
watch delivery latency, event-loop lag under load, and memory for 100,000 pod-sized objects.

Run by ``make bench``; prints a Markdown section and, with ``--write``, puts it into BENCHMARKS.md.
Figures are only comparable within one run (this machine is shared and noisy), hence the references.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kbox.config import StoreSettings
from kbox.store.sqlite import SqliteStore

VALUE = b'{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x"},"spec":' + b'"' + b"x" * 1900 + b'"}'
WRITES_PER_RUN = 20_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def durable_writes(directory: Path, writers: int, total: int) -> dict[str, float]:
    """Acknowledged creates per second with ``writers`` concurrent writers, latency per write, loop lag."""
    store = SqliteStore(StoreSettings(path=directory / f"w{writers}.db"))
    await store.start()
    per_writer = total // writers
    latencies: list[float] = []
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - before - 0.005)

    async def writer(index: int) -> None:
        for n in range(per_writer):
            start = time.perf_counter()
            await store.create(f"/registry/pods/w{index}/{n}", VALUE)
            latencies.append(time.perf_counter() - start)

    tick = asyncio.ensure_future(ticker())
    started = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(writers)))
    elapsed = time.perf_counter() - started
    stop.set()
    await tick
    batches = store.batches
    await store.close()
    return {
        "writes_per_s": per_writer * writers / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "lag_p99_ms": percentile(lags, 0.99) * 1000 if lags else 0.0,
        "writes_per_commit": per_writer * writers / max(batches, 1),
    }


def raw_sqlite(directory: Path, total: int, batch: int) -> float:
    """Rows/s for plain sqlite3 inserts of the same values, WAL and synchronous=FULL, ``batch`` per commit."""
    conn = sqlite3.connect(directory / f"raw{batch}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE kv (id INTEGER PRIMARY KEY, name TEXT NOT NULL, value BLOB)")
    conn.execute("CREATE UNIQUE INDEX kv_name ON kv (name)")
    started = time.perf_counter()
    for first in range(0, total, batch):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO kv (id, name, value) VALUES (?, ?, ?)",
            [(i + 1, f"/registry/pods/raw/{i}", VALUE) for i in range(first, min(first + batch, total))],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return total / elapsed


async def watch_latency(directory: Path, watchers: int, rate: int, seconds: float) -> dict[str, float]:
    """Delay from a write's submission (so including its commit) to its arrival at each watcher."""
    store = SqliteStore(StoreSettings(path=directory / "watch.db"))
    await store.start()
    submitted: dict[str, float] = {}
    delays: list[float] = []
    total = int(rate * seconds)

    async def consume(index: int) -> None:
        watch = store.watch("/registry/pods/")
        seen = 0
        async for event in watch:
            arrived = time.perf_counter()
            delays.append(arrived - submitted[event.key])
            seen += 1
            if seen == total:
                break
        watch.close()

    consumers = [asyncio.ensure_future(consume(i)) for i in range(watchers)]
    writes: list[asyncio.Future[object]] = []
    await asyncio.sleep(0)
    started = time.perf_counter()
    for n in range(total):
        # Paced writes, submitted when due without waiting for the previous ack.
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        key = f"/registry/pods/watch/{n}"
        submitted[key] = time.perf_counter()
        writes.append(asyncio.ensure_future(store.create(key, VALUE)))
    await asyncio.wait_for(asyncio.gather(*consumers, *writes), 60)
    await store.close()
    return {"p50_ms": percentile(delays, 0.5) * 1000, "p99_ms": percentile(delays, 0.99) * 1000}


def memory_for_objects(count: int) -> float:
    """MiB of resident memory added by ``count`` pod-sized objects in a SQLite store (own process)."""
    code = f"""
import asyncio, gc, sys, tempfile
from pathlib import Path
from kbox.config import StoreSettings
from kbox.store.sqlite import SqliteStore
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
async def main():
    with tempfile.TemporaryDirectory() as d:
        store = SqliteStore(StoreSettings(path=Path(d) / 'm.db', synchronous='normal'))
        await store.start()
        gc.collect(); before = rss()
        value = {VALUE!r}
        for start in range(0, {count}, 1000):
            await asyncio.gather(*(store.create(f'/registry/pods/ns{{i % 100}}/pod-{{i}}', value + str(i).encode())
                                   for i in range(start, start + 1000)))
        gc.collect(); print(rss() - before)
        await store.close()
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


async def main() -> str:
    rows: list[str] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("KBOX_BENCH_DIR")) as name:
        directory = Path(name)
        raw_single = raw_sqlite(directory, 3000, 1)
        raw_batched = raw_sqlite(directory, WRITES_PER_RUN, 1000)
        results = {}
        for writers in (1, 10, 100):
            total = 3000 if writers == 1 else WRITES_PER_RUN
            gc.collect()
            results[writers] = await durable_writes(directory, writers, total)
        watch = await watch_latency(directory, watchers=100, rate=1000, seconds=5)
    memory = memory_for_objects(100_000)

    best = results[100]["writes_per_s"]
    rows.append("| figure | measured | target |")
    rows.append("| --- | --- | --- |")
    for writers, r in results.items():
        rows.append(
            f"| durable writes/s, {writers} writer{'s' if writers > 1 else ''} | {r['writes_per_s']:,.0f}"
            f" (p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, {r['writes_per_commit']:.0f} writes/commit)"
            f" | {'≥ 10,000' if writers == 100 else ('p99 < 5 ms' if writers == 1 else '')} |"
        )
    rows.append(f"| raw sqlite3, one synced commit per insert | {raw_single:,.0f} rows/s | reference |")
    rows.append(f"| raw sqlite3, 1,000 inserts per commit | {raw_batched:,.0f} rows/s | reference |")
    rows.append(f"| kbox 100 writers / raw one-per-commit | {best / raw_single:.1f}x | > 1x |")
    rows.append(f"| kbox 100 writers / raw batched | {100 * best / raw_batched:.0f}% | ≥ 25% |")
    rows.append(
        f"| watch delivery, 100 watchers at 1,000 writes/s | p50 {watch['p50_ms']:.1f} ms,"
        f" p99 {watch['p99_ms']:.1f} ms | p99 < 50 ms |"
    )
    rows.append(f"| event-loop lag p99, 100 writers | {results[100]['lag_p99_ms']:.1f} ms | < 20 ms |")
    rows.append(f"| memory, 100,000 pod-sized (2 KB) objects | {memory:,.0f} MiB | < 1 GiB |")

    header = (
        f"## Store (`bench/store_bench.py`)\n\n"
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, synchronous=FULL, WAL,"
        f" values of {len(VALUE)} bytes. Raw sqlite3 figures are from the same run on the same disk.\n\n"
    )
    return header + "\n".join(rows) + "\n"


def write_section(path: Path, section: str, heading: str = "## Store (") -> None:
    """Replace the section starting with ``heading`` in BENCHMARKS.md (or append it), keeping the others."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\nFigures from `make bench`.\n\n"
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="update this BENCHMARKS.md")
    args = parser.parse_args()
    section = asyncio.run(main())
    print(section)
    if args.write:
        write_section(args.write, section)
