"""API server benchmark: creates/s, gets/s and lists/s over HTTPS with concurrent clients, watch delivery
latency with 200 HTTP watchers, server memory with 100,000 pods, and the store's own durable writes/s
measured in the same run for reference.

The server (``ControlPlane`` with the durable SQLite store, synchronous=FULL, TLS, bearer token) runs in
a child process; this process is the load generator (aiohttp), so on a 2-core machine each has a core.
Run by ``make bench``; prints a Markdown section and, with ``--write``, puts it into BENCHMARKS.md.
``--profile DIR`` also records each phase of the server with py-spy (``pip install py-spy``) and prints
where its time goes; profiled runs are slower, so their figures are not written.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import multiprocessing
import os
import platform
import random
import re
import secrets
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from store_bench import durable_writes, percentile

NAMESPACE = "default"
LIST_NAMESPACE = "bench-list"  # holds exactly LIST_SIZE pods
BULK_NAMESPACE = "bench-bulk"  # filled in-process up to MEMORY_PODS pods in all
CLIENTS = 50
LIST_CLIENTS = 10
LIST_SIZE = 1000
WATCHERS = 200
WATCH_RATE = 200  # pod updates per second during the watch phase
WATCH_SECONDS = 10.0
CREATES = 20_000
GETS = 60_000
LISTS = 400
MEMORY_PODS = 100_000
PHASE_SECONDS = 30.0  # no measured phase runs longer than this
SENT = "kbox.bench/sent"  # annotation carrying the update's submission time (perf_counter)
_SENT_RE = re.compile(rb'"kbox\.bench/sent":"([0-9.]+)"')
_CONTINUE_RE = re.compile(rb'"continue":"([^"]+)"')

TARGETS = {"creates": 2000.0, "gets": 5000.0, "write_p99_ms": 50.0, "watch_p99_ms": 50.0}


def pod(name: str, *, sent: str = "0") -> dict[str, Any]:
    """A pod as a ReplicaSet would make it: one container, labels, env, probe, volume (~2 KB stored)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app": "web",
                "tier": "frontend",
                "release": "stable",
                "pod-template-hash": "5d8f7c9b6d",
            },
            "annotations": {"kbox.bench/owner": "api-bench", SENT: sent},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-5d8f7c9b6d",
                    "uid": "6f1c2a5e-8c3b-4c57-9b0e-2f6d7a1e9c42",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "registry.example.com/team/web-frontend:1.27.3",
                    "args": ["--listen=:8080", "--config=/etc/web/config.yaml"],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "REGION", "value": "eu-west-1"},
                        {"name": "CACHE_URL", "value": "redis://cache.default.svc.cluster.local:6379/0"},
                        {"name": "FEATURE_FLAGS", "value": "search,recommendations,new-checkout"},
                    ],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"cpu": "500m", "memory": "256Mi"},
                    },
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/web", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
        },
    }


def _pod_template() -> tuple[bytes, bytes]:
    """The pod's JSON split around its name, so clients build bodies without encoding each one."""
    before, after = msgspec.json.encode(pod("@@NAME@@")).split(b"@@NAME@@")
    return before, after


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the server process ---------------------------------------------------------------------------


def serve(directory: str, conn: Connection) -> None:
    """Child process: the control plane on the durable SQLite store, driven by commands on ``conn``."""
    asyncio.run(_serve(Path(directory), conn))


async def _serve(directory: Path, conn: Connection) -> None:
    from kbox.api.app import ApiSettings
    from kbox.api.certs import ensure_certificates
    from kbox.api.controlplane import ControlPlane
    from kbox.api.pipeline import Pipeline
    from kbox.config import StoreSettings

    token = secrets.token_urlsafe(24)
    tls = ensure_certificates(directory / "pki")
    plane = ControlPlane(
        StoreSettings(path=directory / "state.db"),
        ApiSettings(host="127.0.0.1", port=0, token=token, tls=tls),
    )
    await plane.start()
    conn.send({"url": plane.url, "token": token, "ca": str(tls.ca_cert), "pid": os.getpid()})
    pipeline = Pipeline(plane.catalog)
    pods = pipeline.resolve("", "v1", "pods")
    try:
        while True:
            command, *args = await asyncio.to_thread(conn.recv)
            if command == "stop":
                break
            if command == "seed":  # create pods in-process, through the same pipeline as HTTP creates
                namespace, first, count = args
                started = time.perf_counter()
                for start in range(first, first + count, 1000):
                    stop = min(start + 1000, first + count)
                    await asyncio.gather(
                        *(pipeline.create(pods, namespace, pod(f"bulk-{i}")) for i in range(start, stop))
                    )
                conn.send(count / (time.perf_counter() - started))
            elif command == "gc":
                gc.collect()
                conn.send(None)
    finally:
        await plane.stop()


# -- the load generator ---------------------------------------------------------------------------


class Client:
    """HTTPS sessions to the server: one pool of CLIENTS connections, one unlimited pool for watches."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.url = info["url"]
        self.ssl = ssl.create_default_context(cafile=info["ca"])
        headers = {"Authorization": f"Bearer {info['token']}"}
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CLIENTS, ssl=self.ssl), headers=headers
        )
        self.watch_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=self.ssl),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=PHASE_SECONDS),
        )

    async def close(self) -> None:
        await self.session.close()
        await self.watch_session.close()

    async def request(self, method: str, path: str, body: bytes | None = None, ctype: str = "") -> bytes:
        headers = {"Content-Type": ctype or "application/json"} if body is not None else None
        async with self.session.request(method, self.url + path, data=body, headers=headers) as response:
            data = await response.read()
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
            return data


class Phase:
    """Latencies, errors and CPU use of one measured phase."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.latencies: list[float] = []
        self.errors = 0
        self.done = 0
        self.elapsed = 0.0
        self.server_cpu = 0.0
        self.client_cpu = 0.0

    async def run(self, workers: int, total: int, job: Callable[[int], Awaitable[None]]) -> Phase:
        """``total`` jobs by ``workers`` concurrent clients, or as many as PHASE_SECONDS allows."""
        counter = iter(range(total))
        deadline = time.perf_counter() + PHASE_SECONDS

        async def worker() -> None:
            for n in counter:
                if time.perf_counter() > deadline:
                    break
                start = time.perf_counter()
                try:
                    await job(n)
                except (RuntimeError, aiohttp.ClientError, TimeoutError) as exc:
                    self.errors += 1
                    if self.errors <= 3:
                        print(f"error: {exc}", file=sys.stderr)
                    continue
                self.latencies.append(time.perf_counter() - start)
                self.done += 1

        with self.measure():
            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(workers))), PHASE_SECONDS + 30)
        return self

    def measure(self) -> _Measure:
        return _Measure(self)

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed else 0.0

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000 if self.latencies else float("nan")

    def describe(self, unit: str = "/s") -> str:
        errors = f", {self.errors} errors" if self.errors else ""
        return (
            f"{self.rate:,.0f}{unit} (p50 {self.ms(0.5):.1f} ms, p99 {self.ms(0.99):.1f} ms{errors};"
            f" server CPU {self.server_cpu:.0%}, load generator CPU {self.client_cpu:.0%})"
        )


class _Measure:
    def __init__(self, phase: Phase) -> None:
        self.phase = phase

    def __enter__(self) -> None:
        self.server = cpu_seconds(self.phase.server_pid)
        self.client = time.process_time()
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        phase = self.phase
        phase.elapsed = time.perf_counter() - self.started
        phase.server_cpu = (cpu_seconds(phase.server_pid) - self.server) / phase.elapsed
        phase.client_cpu = (time.process_time() - self.client) / phase.elapsed


class Profiler:
    """py-spy recording the server during one phase (only with ``--profile``)."""

    def __init__(self, directory: Path | None, pid: int) -> None:
        self.directory = directory
        self.pid = pid
        self.process: subprocess.Popen[bytes] | None = None
        self.path: Path | None = None
        if directory is not None:
            self.spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            if not Path(self.spy).exists():
                sys.exit("--profile needs py-spy: .venv/bin/pip install py-spy")
            directory.mkdir(parents=True, exist_ok=True)

    def start(self, name: str) -> None:
        if self.directory is None:
            return
        self.path = self.directory / f"{name}.txt"
        self.process = subprocess.Popen(
            [self.spy, "record", "--pid", str(self.pid), "--rate", "200", "--format", "raw"]
            + ["--output", str(self.path), "--duration", str(int(PHASE_SECONDS + 30)), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # attached before the phase starts

    def stop(self) -> None:
        if self.process is None or self.path is None:
            return
        self.process.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        self.process.wait(30)
        self.process = None
        print(summarise_profile(self.path), file=sys.stderr)


def summarise_profile(path: Path, top: int = 25) -> str:
    """Top functions by own samples and by inclusive samples, from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    if not path.exists():
        return f"{path}: no profile written"
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")[1:]]  # drop thread, line numbers
        total += count
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"== {path.name}: {total} samples", "-- own time"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("-- inclusive time")
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


async def load(info: dict[str, Any], conn: Connection, profile: Path | None) -> dict[str, Any]:
    pid = info["pid"]
    client = Client(info)
    profiler = Profiler(profile, pid)
    results: dict[str, Any] = {"rss_idle": rss_mib(pid)}
    before, after = _pod_template()
    pods_path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    try:
        # Open the pool's connections (TLS handshakes) before measuring.
        await asyncio.gather(*(client.request("GET", pods_path + "?limit=1") for _ in range(CLIENTS)))

        names: list[str] = []

        async def create(n: int) -> None:
            await client.request("POST", pods_path, before + f"web-{n}".encode() + after)
            names.append(f"web-{n}")

        profiler.start("creates")
        results["creates"] = creates = await Phase(pid).run(CLIENTS, CREATES, create)
        profiler.stop()
        created = creates.done

        async def get(n: int) -> None:
            await client.request("GET", f"{pods_path}/{random.choice(names)}")

        profiler.start("gets")
        results["gets"] = await Phase(pid).run(CLIENTS, GETS, get)
        profiler.stop()

        # A namespace holding exactly LIST_SIZE pods, and one for the memory figure's pods.
        for namespace in (LIST_NAMESPACE, BULK_NAMESPACE):
            await client.request(
                "POST", "/api/v1/namespaces", msgspec.json.encode({"metadata": {"name": namespace}})
            )
        list_path = f"/api/v1/namespaces/{LIST_NAMESPACE}/pods"

        async def create_listed(n: int) -> None:
            await client.request("POST", list_path, before + f"listed-{n}".encode() + after)

        seeded = await Phase(pid).run(CLIENTS, LIST_SIZE, create_listed)
        assert seeded.done == LIST_SIZE, f"created {seeded.done} of {LIST_SIZE} pods to list"
        listed = msgspec.json.decode(await client.request("GET", list_path))
        assert len(listed["items"]) == LIST_SIZE, len(listed["items"])
        results["pod_bytes"] = len(msgspec.json.encode(listed["items"][0]))

        async def list_paged(n: int) -> None:
            token = ""
            for _ in range(LIST_SIZE // 500 + 1):
                page = await client.request(
                    "GET", f"{list_path}?limit=500" + (f"&continue={token}" if token else "")
                )
                found = _CONTINUE_RE.search(page, 0, 1000)
                if found is None:
                    return
                token = found.group(1).decode()
            raise RuntimeError("more pages than pods")

        async def list_whole(n: int) -> None:
            await client.request("GET", list_path)

        profiler.start("lists")
        results["lists_paged"] = await Phase(pid).run(LIST_CLIENTS, LISTS, list_paged)
        profiler.stop()
        results["lists_whole"] = await Phase(pid).run(LIST_CLIENTS, LISTS, list_whole)

        profiler.start("watch")
        results["watch"] = await watch_phase(client, pid, names[:5000])
        profiler.stop()
    finally:
        await client.close()

    # Memory: fill a namespace in the server process up to MEMORY_PODS pods in all.
    stored = created + LIST_SIZE
    conn.send(("seed", BULK_NAMESPACE, 0, MEMORY_PODS - stored))
    results["seed_rate"] = conn.recv()
    conn.send(("gc",))
    conn.recv()
    results["rss_full"] = rss_mib(pid)
    results["rss_peak"] = rss_mib(pid, "VmHWM")
    return results


async def watch_phase(client: Client, pid: int, names: list[str]) -> dict[str, Any]:
    """WATCHERS HTTP watches from one list's resourceVersion while pods are updated at WATCH_RATE/s; the
    delay of each event is from its update's submission (time in an annotation) to its arrival."""
    pods_path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    rv = msgspec.json.decode(await client.request("GET", pods_path + "?limit=1"))["metadata"][
        "resourceVersion"
    ]
    total = int(WATCH_RATE * WATCH_SECONDS)
    delays: list[float] = []
    received = [0] * WATCHERS
    ready = 0
    all_ready = asyncio.Event()
    deadline = time.perf_counter() + PHASE_SECONDS + 20

    async def watcher(index: int) -> None:
        nonlocal ready
        url = f"{client.url}{pods_path}?watch=1&resourceVersion={rv}"
        async with client.watch_session.get(url) as response:
            assert response.status == 200, response.status
            ready += 1
            if ready == WATCHERS:
                all_ready.set()
            while received[index] < total and time.perf_counter() < deadline:
                line = await response.content.readline()
                arrived = time.perf_counter()
                if not line:
                    break
                found = _SENT_RE.search(line)
                if found is not None:
                    delays.append(arrived - float(found.group(1)))
                    received[index] += 1

    tasks = [asyncio.ensure_future(watcher(i)) for i in range(WATCHERS)]
    await asyncio.wait_for(all_ready.wait(), 30)
    writes = Phase(pid)
    pending: set[asyncio.Future[None]] = set()

    async def update(n: int, sent: float) -> None:
        body = msgspec.json.encode({"metadata": {"annotations": {SENT: f"{sent:.6f}"}}})
        try:
            await client.request(
                "PATCH", f"{pods_path}/{names[n % len(names)]}", body, "application/merge-patch+json"
            )
        except (RuntimeError, aiohttp.ClientError) as exc:
            writes.errors += 1
            print(f"error: {exc}", file=sys.stderr)
            return
        writes.latencies.append(time.perf_counter() - sent)
        writes.done += 1

    with writes.measure():
        started = time.perf_counter()
        for n in range(total):
            # Paced writes, submitted when due without waiting for earlier ones (at most CLIENTS in flight).
            delay = started + n / WATCH_RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            future = asyncio.ensure_future(update(n, time.perf_counter()))
            pending.add(future)
            future.add_done_callback(pending.discard)
        behind = time.perf_counter() - started - WATCH_SECONDS
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending), PHASE_SECONDS)
        await asyncio.wait_for(
            asyncio.gather(*tasks, return_exceptions=True), max(1.0, deadline - time.perf_counter())
        )
    expected = total * WATCHERS
    return {
        "p50_ms": percentile(delays, 0.5) * 1000 if delays else float("nan"),
        "p99_ms": percentile(delays, 0.99) * 1000 if delays else float("nan"),
        "max_ms": max(delays) * 1000 if delays else float("nan"),
        "delivered": len(delays),
        "expected": expected,
        "events_per_s": len(delays) / writes.elapsed,
        "writes": writes,
        "behind_s": max(0.0, behind),
    }


def replace_section(path: Path, heading: str, section: str) -> None:
    """Replace the section starting with ``heading`` in BENCHMARKS.md (or append it), keeping the others."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\nFigures from `make bench`.\n\n"
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def report(results: dict[str, Any], store: dict[str, float]) -> str:
    creates, gets = results["creates"], results["gets"]
    watch = results["watch"]

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    rows = ["| figure | measured | target | met |", "| --- | --- | --- | --- |"]
    rows.append(
        f"| creates/s, {CLIENTS} clients (POST pods) | {creates.describe()} | ≥ 2,000; p99 < 50 ms"
        f" | {met(creates.rate >= TARGETS['creates'] and creates.ms(0.99) < TARGETS['write_p99_ms'])} |"
    )
    rows.append(
        f"| gets/s, {CLIENTS} clients (GET one pod) | {gets.describe()} | ≥ 5,000"
        f" | {met(gets.rate >= TARGETS['gets'])} |"
    )
    rows.append(
        f"| lists/s of {LIST_SIZE:,} pods, {LIST_CLIENTS} clients, pages of 500 (`limit`+`continue`)"
        f" | {results['lists_paged'].describe()} | reference | |"
    )
    rows.append(
        f"| lists/s of {LIST_SIZE:,} pods, {LIST_CLIENTS} clients, one page"
        f" | {results['lists_whole'].describe()} | reference | |"
    )
    writes = watch["writes"]
    lost = watch["expected"] - watch["delivered"]
    rows.append(
        f"| watch delivery, {WATCHERS} HTTP watchers, {WATCH_RATE} updates/s (PATCH) for {WATCH_SECONDS:.0f} s"
        f" | p50 {watch['p50_ms']:.1f} ms, p99 {watch['p99_ms']:.1f} ms, max {watch['max_ms']:.0f} ms"
        f" ({watch['events_per_s']:,.0f} events/s delivered{f', {lost:,} missing' if lost else ''};"
        f" PATCH p99 {writes.ms(0.99):.1f} ms; server CPU {writes.server_cpu:.0%},"
        f" load generator CPU {writes.client_cpu:.0%}) | p99 < 50 ms"
        f" | {met(watch['p99_ms'] < TARGETS['watch_p99_ms'] and not lost)} |"
    )
    rows.append(
        f"| store alone: durable writes/s, 50 writers (`store_bench.durable_writes`, same run)"
        f" | {store['writes_per_s']:,.0f} (p50 {store['p50_ms']:.1f} ms, p99 {store['p99_ms']:.1f} ms) | reference | |"
    )
    rows.append(
        f"| API creates/s ÷ store durable writes/s | {100 * creates.rate / store['writes_per_s']:.0f}% | reference | |"
    )
    rows.append(f"| server RSS after start (defaults only) | {results['rss_idle']:,.0f} MiB | reference | |")
    rows.append(
        f"| server RSS with {MEMORY_PODS:,} pods stored | {results['rss_full']:,.0f} MiB"
        f" (peak {results['rss_peak']:,.0f} MiB) | reference | |"
    )
    header = (
        "## API server (`bench/api_bench.py`)\n\n"
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, aiohttp {aiohttp.__version__}, SQLite {sqlite3.sqlite_version}."
        " The server (`ControlPlane`: durable SQLite store, synchronous=FULL, WAL; HTTPS with a bearer token)"
        " runs in one process, the load generator (aiohttp, keep-alive connections) in another. Pods have one"
        f" container, labels, env and an owner reference: {results['pod_bytes']:,} bytes as stored, in"
        f" namespace `{NAMESPACE}` (the listed ones in `{LIST_NAMESPACE}`, which holds exactly"
        f" {LIST_SIZE:,}). Latencies are per request as the client sees them; a watch event's delay runs"
        " from its update's submission to its arrival at each watcher. The memory figure counts the pods"
        f" created over HTTP plus pods created in the server process through the same pipeline (no HTTP) at"
        f" {results['seed_rate']:,.0f}/s, {MEMORY_PODS:,} in all. CPU is the share of one core over the"
        " phase.\n\n"
    )
    return header + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", type=Path, help="update this BENCHMARKS.md")
    parser.add_argument(
        "--profile", type=Path, help="record the server with py-spy per phase into this directory"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("KBOX_BENCH_DIR")) as name:
        directory = Path(name)
        (directory / "store").mkdir()
        (directory / "server").mkdir()
        gc.collect()
        store = asyncio.run(durable_writes(directory / "store", 50, 20_000))
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        server = context.Process(target=serve, args=(str(directory / "server"), theirs), daemon=True)
        server.start()
        try:
            if not ours.poll(60):
                raise RuntimeError("the server did not start within 60 s")
            info = ours.recv()
            results = asyncio.run(load(info, ours, args.profile))
            ours.send(("stop",))
            server.join(30)
        finally:
            if server.is_alive():
                server.kill()
                server.join(5)
    section = report(results, store)
    print(section)
    if args.write and args.profile is None:
        replace_section(args.write, "## API server (", section)


if __name__ == "__main__":
    main()
