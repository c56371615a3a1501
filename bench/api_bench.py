"""API server benchmark: creates/s, gets/s and lists/s over HTTPS with concurrent clients, watch delivery
latency with 200 HTTP watchers, server memory with 100,000 pods, and the store's own durable writes/s
measured in the same run for reference.

The server (``ControlPlane`` with the durable SQLite store, synchronous=FULL, TLS, bearer token) runs in
a child process; this process is the load generator (aiohttp), so on a 2-core machine each has a core.
Run by ``make bench``; prints a Markdown section and, with ``--write``, puts it into BENCHMARKS.md.
``--profile DIR`` also records each phase of the server with py-spy (``pip install py-spy``) and prints
where its CPU goes; profiled runs are slower, so their figures are never written.
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
BULK_NAMESPACE = "bench-bulk"  # filled in the server process up to MEMORY_PODS pods in all
CLIENTS = 50
LIST_CLIENTS = 10
LIST_SIZE = 1000
LIST_PAGE = 500
WATCHERS = 200
WATCH_RATES = (200, 50)  # pod updates per second during the watch phases; the first is the target's
WATCH_SECONDS = 10.0
CREATES = 20_000
GETS = 60_000
LISTS = 400
MEMORY_PODS = 100_000
STORE_WRITERS = 50
PHASE_SECONDS = 30.0  # no measured phase runs longer than this
SENT = "kbox.bench/sent"  # annotation carrying an update's submission time (perf_counter, this process)
_SENT_RE = re.compile(rb'"kbox\.bench/sent":"([0-9.]+)"')
_CONTINUE_RE = re.compile(rb'"continue":"([^"]+)"')

CREATES_TARGET = 2000.0
GETS_TARGET = 5000.0
WRITE_P99_MS = 50.0
WATCH_P99_MS = 50.0


def pod(name: str, *, sent: str = "0") -> dict[str, Any]:
    """A pod as a ReplicaSet makes it: one container, labels, env, a probe, a volume (~2 KB stored)."""
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


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (every core), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


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
    from kbox.util import gctune

    # Collector pauses stop the whole loop, so they are reported with each phase.
    pauses: list[tuple[int, float]] = []
    began = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], time.perf_counter() - began[0]))

    # Collector settings as `kbox serve` applies them (kbox/util/gctune.py): the process is the cluster.
    gctune.tune()
    freezer = asyncio.ensure_future(gctune.freeze_periodically(5.0))
    token = secrets.token_urlsafe(24)
    tls = ensure_certificates(directory / "pki")
    plane = ControlPlane(
        StoreSettings(path=directory / "state.db"),
        ApiSettings(host="127.0.0.1", port=0, token=token, tls=tls),
    )
    started = time.perf_counter()
    await plane.start()
    ready = time.perf_counter() - started
    gc.callbacks.append(timed)
    conn.send(
        {"url": plane.url, "token": token, "ca": str(tls.ca_cert), "pid": os.getpid(), "ready_s": ready}
    )
    pipeline = Pipeline(plane.catalog)
    pods = pipeline.resolve("", "v1", "pods")
    try:
        while True:
            command, *args = await asyncio.to_thread(conn.recv)
            if command == "stop":
                break
            if command == "seed":  # create pods in-process, through the same pipeline as HTTP creates
                namespace, count = args
                started = time.perf_counter()
                for start in range(0, count, 1000):
                    names = (f"bulk-{i}" for i in range(start, min(start + 1000, count)))
                    await asyncio.gather(*(pipeline.create(pods, namespace, pod(name)) for name in names))
                conn.send(count / (time.perf_counter() - started))
            elif command == "gc":  # collector pauses since the last call
                full = [seconds for generation, seconds in pauses if generation == 2]
                conn.send(
                    {
                        "full": len(full),
                        "full_max_s": max(full, default=0.0),
                        "max_s": max((seconds for _, seconds in pauses), default=0.0),
                        "total_s": sum(seconds for _, seconds in pauses),
                    }
                )
                pauses.clear()
            elif command == "collect":
                gc.collect()
                pauses.clear()
                conn.send(None)
    finally:
        freezer.cancel()
        await plane.stop()


class Server:
    """The server process and its command pipe."""

    def __init__(self, directory: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=serve, args=(str(directory), theirs), daemon=True)
        self.process.start()
        if not self.conn.poll(120):
            self.kill()
            raise RuntimeError("the server did not start within 120 s")
        self.info: dict[str, Any] = self.conn.recv()
        self.pid: int = self.info["pid"]

    def call(self, *command: Any, timeout: float = 300) -> Any:
        self.conn.send(command)
        if not self.conn.poll(timeout):
            raise RuntimeError(f"the server did not answer {command[0]!r} within {timeout} s")
        return self.conn.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            self.conn.send(("stop",))
            self.process.join(30)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# -- the load generator ---------------------------------------------------------------------------


class Client:
    """HTTPS sessions to the server: one pool of CLIENTS connections, one unlimited pool for watches."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.url = info["url"]
        context = ssl.create_default_context(cafile=info["ca"])
        headers = {"Authorization": f"Bearer {info['token']}"}
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CLIENTS, ssl=context), headers=headers
        )
        self.watch_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=context),
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
    """Latencies, errors, CPU use and server collector pauses of one measured phase."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.latencies: list[float] = []
        self.errors = 0
        self.done = 0
        self.elapsed = 0.0
        self.server_cpu = 0.0
        self.client_cpu = 0.0
        self.other_cpu = 0.0  # other processes of the machine (tests, builds) compete for the 2 cores
        self.gc: dict[str, float] = {}

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
                    self.failed(exc)
                    continue
                self.latencies.append(time.perf_counter() - start)
                self.done += 1

        with self.measure():
            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(workers))), PHASE_SECONDS + 30)
        return self

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        if self.errors <= 3:
            print(f"error: {exc}", file=sys.stderr)

    def measure(self) -> _Measure:
        return _Measure(self)

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed else 0.0

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000 if self.latencies else float("nan")

    def resources(self) -> str:
        return (
            f"CPU: server {self.server_cpu:.0%}, load generator {self.client_cpu:.0%},"
            f" other processes {self.other_cpu:.0%};"
            f" server GC {1000 * self.gc['total_s']:.0f} ms in all, {self.gc['full']:.0f} full,"
            f" longest pause {1000 * self.gc['max_s']:.0f} ms"
        )

    def describe(self) -> str:
        errors = f", {self.errors} errors" if self.errors else ""
        return (
            f"{self.rate:,.0f}/s (p50 {self.ms(0.5):.1f} ms, p99 {self.ms(0.99):.1f} ms{errors};"
            f" {self.resources()})"
        )


class _Measure:
    def __init__(self, phase: Phase) -> None:
        self.phase = phase

    def __enter__(self) -> None:
        self.phase.server.call("gc")
        self.server = cpu_seconds(self.phase.server.pid)
        self.client = time.process_time()
        self.machine = machine_busy_seconds()
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        phase = self.phase
        phase.elapsed = time.perf_counter() - self.started
        phase.server_cpu = (cpu_seconds(phase.server.pid) - self.server) / phase.elapsed
        phase.client_cpu = (time.process_time() - self.client) / phase.elapsed
        machine = (machine_busy_seconds() - self.machine) / phase.elapsed
        phase.other_cpu = max(0.0, machine - phase.server_cpu - phase.client_cpu)
        phase.gc = phase.server.call("gc")


class Profiler:
    """py-spy recording the server during one phase (only with ``--profile``)."""

    def __init__(self, directory: Path | None, pid: int) -> None:
        self.directory = directory
        self.pid = pid
        self.process: subprocess.Popen[bytes] | None = None
        self.path: Path | None = None
        self.spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if directory is not None:
            if not Path(self.spy).exists():
                sys.exit("--profile needs py-spy: .venv/bin/pip install py-spy")
            directory.mkdir(parents=True, exist_ok=True)

    def start(self, name: str) -> None:
        self.path = Path(name)
        if self.directory is None:
            return
        self.path = self.directory / f"{name}.txt"
        self.process = subprocess.Popen(
            [
                *(self.spy, "record", "--pid", str(self.pid), "--threads", "--gil", "--rate", "250"),
                *("--format", "raw", "--output", str(self.path), "--duration", str(int(PHASE_SECONDS * 3))),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)  # attached before the phase starts

    def stop(self) -> None:
        name = self.path.stem if self.path else "phase"
        print(f"{name} done: server RSS {rss_mib(self.pid):,.0f} MiB", file=sys.stderr)
        if self.process is None or self.path is None:
            return
        self.process.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        self.process.wait(30)
        self.process = None
        print(summarise_profile(self.path), file=sys.stderr)


def summarise_profile(path: Path, top: int = 20) -> str:
    """Where the server's CPU goes, from py-spy's collapsed stacks (sampled while holding the GIL): share
    per thread, functions by own samples, and kbox functions by inclusive samples."""
    if not path.exists():
        return f"{path}: no profile written"
    threads: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in frames]  # by function, not by line
        total += count
        threads[thread.split(": ", 1)[-1]] += count
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            if "(kbox/" in frame:
                inclusive[frame] += count
    total = max(total, 1)
    lines = [f"== {path.stem}: {total} samples holding the GIL"]
    lines += [f"{100 * n / total:5.1f}%  thread {name}" for name, n in threads.most_common(4)]
    lines.append("-- own time")
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("-- inclusive time, kbox functions")
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


async def load(server: Server, profile: Path | None) -> dict[str, Any]:
    """Every HTTP phase against one server; returns the measured phases by name."""
    client = Client(server.info)
    profiler = Profiler(profile, server.pid)
    results: dict[str, Any] = {}
    before, after = msgspec.json.encode(pod("@@NAME@@")).split(b"@@NAME@@")  # bodies without encoding
    pods_path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    try:
        # Open the pool's connections (TLS handshakes) before measuring.
        await asyncio.gather(*(client.request("GET", pods_path + "?limit=1") for _ in range(CLIENTS)))
        names: list[str] = []

        async def create(n: int) -> None:
            await client.request("POST", pods_path, before + f"web-{n}".encode() + after)
            names.append(f"web-{n}")

        profiler.start("creates")
        results["creates"] = await Phase(server).run(CLIENTS, CREATES, create)
        profiler.stop()

        async def get(n: int) -> None:
            await client.request("GET", f"{pods_path}/{random.choice(names)}")

        profiler.start("gets")
        results["gets"] = await Phase(server).run(CLIENTS, GETS, get)
        profiler.stop()

        # A namespace holding exactly LIST_SIZE pods, and one for the memory figure's pods.
        for namespace in (LIST_NAMESPACE, BULK_NAMESPACE):
            body = msgspec.json.encode({"metadata": {"name": namespace}})
            await client.request("POST", "/api/v1/namespaces", body)
        list_path = f"/api/v1/namespaces/{LIST_NAMESPACE}/pods"

        async def create_listed(n: int) -> None:
            await client.request("POST", list_path, before + f"listed-{n}".encode() + after)

        seeded = await Phase(server).run(CLIENTS, LIST_SIZE, create_listed)
        assert seeded.done == LIST_SIZE, f"created {seeded.done} of {LIST_SIZE} pods to list"
        listed = msgspec.json.decode(await client.request("GET", list_path))
        assert len(listed["items"]) == LIST_SIZE, len(listed["items"])
        results["pod_bytes"] = len(msgspec.json.encode(listed["items"][0]))

        async def list_paged(n: int) -> None:
            token = ""
            for _ in range(LIST_SIZE // LIST_PAGE + 1):
                query = f"?limit={LIST_PAGE}" + (f"&continue={token}" if token else "")
                found = _CONTINUE_RE.search(await client.request("GET", list_path + query), 0, 1000)
                if found is None:
                    return
                token = found.group(1).decode()
            raise RuntimeError("more pages than pods")

        async def list_whole(n: int) -> None:
            await client.request("GET", list_path)

        profiler.start("lists")
        results["lists_paged"] = await Phase(server).run(LIST_CLIENTS, LISTS, list_paged)
        results["lists_whole"] = await Phase(server).run(LIST_CLIENTS, LISTS, list_whole)
        profiler.stop()

        for rate in WATCH_RATES:
            profiler.start(f"watch-{rate}")
            results[f"watch_{rate}"] = await watch(client, server, names[:5000], rate)
            profiler.stop()
    finally:
        await client.close()
    results["stored"] = len(names) + LIST_SIZE
    return results


async def watch(client: Client, server: Server, names: list[str], rate: int) -> dict[str, Any]:
    """WATCHERS HTTP watches from one list's resourceVersion while pods are updated at ``rate``/s; each
    event's delay runs from its update's submission (the time is in an annotation) to its arrival."""
    pods_path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    listed = msgspec.json.decode(await client.request("GET", pods_path + "?limit=1"))
    total = int(rate * WATCH_SECONDS)
    delays: list[float] = []
    connected: list[int] = []
    all_connected = asyncio.Event()
    deadline = time.perf_counter() + WATCH_SECONDS + PHASE_SECONDS

    async def watcher() -> None:
        query = f"?watch=1&resourceVersion={listed['metadata']['resourceVersion']}"
        async with client.watch_session.get(client.url + pods_path + query) as response:
            assert response.status == 200, response.status
            connected.append(1)
            if len(connected) == WATCHERS:
                all_connected.set()
            seen = 0
            rest = b""
            # Whole chunks rather than lines: the events of one chunk arrived together.
            async for chunk in response.content.iter_any():
                arrived = time.perf_counter()
                lines, _, rest = (rest + chunk).rpartition(b"\n")
                for sent in _SENT_RE.findall(lines):
                    delays.append(arrived - float(sent))
                    seen += 1
                if seen >= total or arrived > deadline:
                    return

    watchers = [asyncio.ensure_future(watcher()) for _ in range(WATCHERS)]
    await asyncio.wait_for(all_connected.wait(), 60)
    writes = Phase(server)
    pending: set[asyncio.Future[None]] = set()

    async def update(n: int, sent: float) -> None:
        body = msgspec.json.encode({"metadata": {"annotations": {SENT: f"{sent:.6f}"}}})
        path = f"{pods_path}/{names[n % len(names)]}"
        try:
            await client.request("PATCH", path, body, "application/merge-patch+json")
        except (RuntimeError, aiohttp.ClientError) as exc:
            writes.failed(exc)
            return
        writes.latencies.append(time.perf_counter() - sent)
        writes.done += 1

    with writes.measure():
        started = time.perf_counter()
        for n in range(total):
            # Paced updates, each submitted when due without waiting for earlier ones.
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            future = asyncio.ensure_future(update(n, time.perf_counter()))
            pending.add(future)
            future.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending), PHASE_SECONDS)
        remaining = max(1.0, deadline - time.perf_counter())
        await asyncio.wait_for(asyncio.gather(*watchers, return_exceptions=True), remaining)
    return {
        "p50_ms": percentile(delays, 0.5) * 1000 if delays else float("nan"),
        "p99_ms": percentile(delays, 0.99) * 1000 if delays else float("nan"),
        "max_ms": max(delays, default=float("nan")) * 1000,
        "missing": total * WATCHERS - len(delays),
        "events_per_s": len(delays) / writes.elapsed,
        "writes": writes,
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

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    rows = ["| figure | measured | target | met |", "| --- | --- | --- | --- |"]
    rows.append(
        f"| creates/s, {CLIENTS} clients (POST pods) | {creates.describe()} | ≥ 2,000; p99 < 50 ms"
        f" | {met(creates.rate >= CREATES_TARGET and creates.ms(0.99) < WRITE_P99_MS)} |"
    )
    rows.append(
        f"| gets/s, {CLIENTS} clients (GET one pod) | {gets.describe()} | ≥ 5,000"
        f" | {met(gets.rate >= GETS_TARGET)} |"
    )
    rows.append(
        f"| lists/s of {LIST_SIZE:,} pods, {LIST_CLIENTS} clients, pages of {LIST_PAGE} (`limit`, `continue`)"
        f" | {results['lists_paged'].describe()} | | |"
    )
    rows.append(
        f"| lists/s of {LIST_SIZE:,} pods, {LIST_CLIENTS} clients, one page"
        f" | {results['lists_whole'].describe()} | | |"
    )
    for rate in WATCH_RATES:
        watch = results[f"watch_{rate}"]
        writes = watch["writes"]
        missing = f", {watch['missing']:,} missing" if watch["missing"] else ""
        target = rate == WATCH_RATES[0]
        rows.append(
            f"| watch delivery, {WATCHERS} HTTP watchers, {rate} pod updates/s (PATCH) for {WATCH_SECONDS:.0f} s"
            f" | p50 {watch['p50_ms']:.1f} ms, p99 {watch['p99_ms']:.1f} ms, max {watch['max_ms']:.0f} ms"
            f" ({watch['events_per_s']:,.0f} events/s delivered{missing}; PATCH p50 {writes.ms(0.5):.1f} ms,"
            f" p99 {writes.ms(0.99):.1f} ms; {writes.resources()})"
            f" | {'p99 < 50 ms' if target else ''}"
            f" | {met(watch['p99_ms'] < WATCH_P99_MS and not watch['missing']) if target else ''} |"
        )
    rows.append(
        f"| store alone: durable writes/s, {STORE_WRITERS} writers (`store_bench.durable_writes`, same run)"
        f" | {store['writes_per_s']:,.0f} (p50 {store['p50_ms']:.1f} ms, p99 {store['p99_ms']:.1f} ms) | | |"
    )
    rows.append(
        f"| API creates/s ÷ store durable writes/s | {100 * creates.rate / store['writes_per_s']:.0f}% | | |"
    )
    rows.append(f"| server RSS after start (default objects only) | {results['rss_idle']:,.0f} MiB | | |")
    rows.append(
        f"| server RSS with {MEMORY_PODS:,} pods, after the phases above | {results['rss_full']:,.0f} MiB"
        f" (peak {results['rss_peak']:,.0f} MiB) | | |"
    )
    rows.append(
        f"| server RSS with {MEMORY_PODS:,} pods, restarted on the same database | {results['rss_restart']:,.0f}"
        f" MiB (ready in {results['restart_s']:.1f} s) | | |"
    )
    header = (
        "## API server (`bench/api_bench.py`)\n\n"
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, aiohttp {aiohttp.__version__}, SQLite {sqlite3.sqlite_version}."
        " The server (`ControlPlane`: durable SQLite store, synchronous=FULL, WAL; HTTPS with a bearer token)"
        " runs in one process and the load generator (aiohttp, keep-alive connections) in another, so each"
        " has about one core. Pods have one container, labels, env, a probe and an owner reference:"
        f" {results['pod_bytes']:,} bytes as stored, in namespace `{NAMESPACE}` (the listed ones in"
        f" `{LIST_NAMESPACE}`, which holds exactly {LIST_SIZE:,}). Latencies are per request as the client"
        " sees them; a watch event's delay runs from its update's submission to its arrival at each watcher."
        f" The {MEMORY_PODS:,} pods of the memory figures are the {results['stored']:,} created over HTTP"
        f" plus pods created inside the server process through the same pipeline as HTTP creates (admission,"
        f" defaults, validation, durable store) at {results['seed_rate']:,.0f}/s. CPU is the share of one"
        " core over the phase (other processes: whatever else ran on the machine meanwhile); GC figures are"
        " the server's collector pauses during the phase.\n\n"
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
        store = asyncio.run(durable_writes(directory / "store", STORE_WRITERS, 20_000))
        server = Server(directory / "server")
        try:
            rss_idle = rss_mib(server.pid)
            results = asyncio.run(load(server, args.profile))
            results["rss_idle"] = rss_idle
            # Memory: fill a namespace in the server process up to MEMORY_PODS pods in all.
            results["seed_rate"] = server.call("seed", BULK_NAMESPACE, MEMORY_PODS - results["stored"])
            server.call("collect")
            results["rss_full"] = rss_mib(server.pid)
            results["rss_peak"] = rss_mib(server.pid, "VmHWM")
        finally:
            server.stop()
        server = Server(directory / "server")
        try:
            results["restart_s"] = server.info["ready_s"]
            server.call("collect")
            results["rss_restart"] = rss_mib(server.pid)
        finally:
            server.stop()
    section = report(results, store)
    print(section)
    if args.write and args.profile is None:
        replace_section(args.write, "## API server (", section)


if __name__ == "__main__":
    main()
