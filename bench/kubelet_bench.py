"""Kubelet benchmark: pod start on Docker against raw ``docker run``, and 10,000 pods on the fake runtime.

Docker: one in-process cluster (``kbox.testing.Cluster(runtime="docker")``: apiserver, scheduler,
controllers and one kubelet on the local Docker engine). 50 pods of the locally built busybox image
(``tests/support/images.py``: FROM scratch, Debian's busybox-static) running ``sleep 3600`` are created
one after another (each waited for before the next), then 50 more ten at a time. A pod's start latency
runs from just before its create call to the moment a watch opened beforehand delivers the pod with its
Ready condition True (monotonic clock, same process): admission, store, scheduling, the kubelet's
sandbox and container in Docker, and the status write all count. In the same run, interleaved with the
pods (one reference container per pod, the same concurrency), the same image and command are started
raw twice: through the Docker API with aiodocker (create + start, what kbox's runtime uses; timed until
the call returns with the container started) and with the docker CLI (``docker run -d``, timed until
the command exits, which it does once the container runs; the client process start is included, as a
user pays it). Target (issue 4): kbox p50 at most 1.5x the raw ``docker run`` p50.

Fake: one in-process cluster with 100 kubelets on the simulated runtime; 50 concurrent clients create
10,000 bare pods (in-process client: the apiserver's whole pipeline without HTTP), and the clock runs
from the first create to the last pod Ready as a watch sees it. Target (issue 4): all Ready within 60 s.
The process's RSS (VmRSS, and its peak VmHWM) is read from /proc/self/status. The process is the
cluster, so the garbage collector is set as ``kbox serve`` sets it (:mod:`kbox.util.gctune`), and its
pauses are reported: with the default settings, full collections of a 100,000-pod heap took 5 s each and
40% of the run. ``--pods N --nodes M`` change the fake half's scale (issue 4 asks for 100,000 pods on
1,000 nodes to be cheap).

Every container is labelled and removed at the end (the cluster purges its own; the raw ones are
removed by label). Prints a Markdown section; ``--write`` puts it into BENCHMARKS.md. ``--only docker``
or ``--only fake`` runs one half (for profiling); ``--profile FILE`` writes a cProfile of the fake half.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import aiodocker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from store_bench import write_section  # noqa: E402

from kbox.api.errors import StatusError  # noqa: E402
from kbox.client.interface import PODS, Obj  # noqa: E402
from kbox.kubelet.runtime.sandboximage import DEFAULT_SANDBOX_IMAGE  # noqa: E402
from kbox.testing import Cluster  # noqa: E402
from kbox.util import aiotasks, gctune  # noqa: E402
from tests.support.images import BUSYBOX_TAG, TEST_LABELS, ensure_busybox_image  # noqa: E402

DOCKER_PODS = 50
BATCH = 10
FAKE_PODS = 10_000
FAKE_NODES = 100
FAKE_CLIENTS = 50
FAKE_TARGET_S = 60.0
DOCKER_TARGET = 1.5  # kbox p50 / raw docker run p50
COMMAND = ["sleep", "3600"]
RAW_LABEL = "kbox.bench.raw"
SECTION = "## Kubelet (`bench/kubelet_bench.py`)"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def memory() -> dict[str, float]:
    """This process's resident memory now and at its peak, in MiB."""
    fields: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def is_ready(pod: Obj) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


TIMED_CALLS = ("run_sandbox", "ensure_image", "create_container", "start_container", "container_status")


def time_runtime_calls(runtime: Any) -> dict[str, list[float]]:
    """Wrap the runtime's pod-start calls on this instance to record how long each takes (what Docker
    and the runtime's request building cost, as against the rest of kbox)."""
    calls: dict[str, list[float]] = {name: [] for name in TIMED_CALLS}
    for name in TIMED_CALLS:
        original = getattr(runtime, name)

        def timed(*args: Any, _original: Any = original, _into: list[float] = calls[name]) -> Any:
            async def call() -> Any:
                started = time.perf_counter()
                try:
                    return await _original(*args)
                finally:
                    _into.append(time.perf_counter() - started)

            return call()

        setattr(runtime, name, timed)
    return calls


class ReadyWatch:
    """One watch on the benchmark's pods, opened before any is created: records when each pod is first
    seen Ready (monotonic) and wakes whoever waits for it."""

    def __init__(self, cluster: Any, namespace: str, selector: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.selector = selector
        self.ready_at: dict[str, float] = {}
        self.bound_at: dict[str, float] = {}  # first seen with spec.nodeName
        self.events = 0
        self.restarts = 0  # watches the server ended, resumed
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self._all: asyncio.Future[None] | None = None
        self._expected = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listing = await self._list()
        self._task = asyncio.create_task(self._run(listing), name="bench/ready-watch")

    async def _list(self) -> Obj:
        listing: Obj = await self.cluster.client.list(
            PODS, namespace=self.namespace, label_selector=self.selector
        )
        for item in listing["items"]:
            self._saw(item)
        return listing

    async def _run(self, listing: Obj) -> None:
        """Watch from the listing; a watch the server ends (a slow watcher is closed, or its revision
        expired) is resumed from the last revision seen, or from a new listing."""
        version = listing["metadata"]["resourceVersion"]
        while True:
            try:
                async for event in self.cluster.client.watch(
                    PODS, namespace=self.namespace, label_selector=self.selector, resource_version=version
                ):
                    version = event.object["metadata"].get("resourceVersion") or version
                    if event.type in ("ADDED", "MODIFIED"):
                        self.events += 1
                        self._saw(event.object)
            except StatusError as exc:
                if exc.code != 410:
                    raise
                version = (await self._list())["metadata"]["resourceVersion"]
            self.restarts += 1

    def _saw(self, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if name in self.ready_at:
            return
        now = time.perf_counter()
        if name not in self.bound_at and (obj.get("spec") or {}).get("nodeName"):
            self.bound_at[name] = now
        if not is_ready(obj):
            return
        self.ready_at[name] = now
        waiter = self._waiters.pop(name, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)
        if self._all is not None and len(self.ready_at) >= self._expected and not self._all.done():
            self._all.set_result(None)

    async def ready(self, name: str, timeout: float = 120.0) -> float:  # noqa: ASYNC109
        """When ``name`` became Ready (perf_counter), waiting for it if need be."""
        if name in self.ready_at:
            return self.ready_at[name]
        waiter = self._waiters.setdefault(name, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(waiter), timeout)

    async def all_ready(self, count: int, timeout: float) -> None:  # noqa: ASYNC109
        self._expected = count
        if len(self.ready_at) >= count:
            return
        self._all = asyncio.get_running_loop().create_future()
        await asyncio.wait_for(self._all, timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def pod(name: str, image: str, command: list[str] | None, labels: dict[str, str]) -> Obj:
    container: Obj = {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent"}
    if command:
        container["command"] = command
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 0},
    }


# -- Docker ---------------------------------------------------------------------------------------


async def raw_api(docker: aiodocker.Docker, name: str) -> float:
    """Seconds for create + start of the same container through the Docker API (aiodocker)."""
    config = {"Image": BUSYBOX_TAG, "Cmd": COMMAND, "Labels": {**TEST_LABELS, RAW_LABEL: "1"}}
    started = time.perf_counter()
    container = await docker.containers.run(config=config, name=name)
    elapsed = time.perf_counter() - started
    info = await container.show()
    if not info["State"]["Running"]:
        raise RuntimeError(f"raw container {name} is not running: {info['State']}")
    return elapsed


async def raw_pod(docker: aiodocker.Docker, name: str, network: str) -> float:
    """Seconds for the two containers a pod is in Docker, started raw through the API: kbox's sandbox
    image on the cluster's bridge network (it holds the network namespace), then the busybox container
    joining it."""
    labels = {**TEST_LABELS, RAW_LABEL: "1"}
    started = time.perf_counter()
    sandbox = await docker.containers.run(
        config={"Image": DEFAULT_SANDBOX_IMAGE, "Labels": labels, "HostConfig": {"NetworkMode": network}},
        name=f"{name}-sandbox",
    )
    config = {
        "Image": BUSYBOX_TAG,
        "Cmd": COMMAND,
        "Labels": labels,
        "HostConfig": {"NetworkMode": f"container:{sandbox.id}"},
    }
    await docker.containers.run(config=config, name=name)
    return time.perf_counter() - started


async def raw_cli(name: str) -> float:
    """Seconds for ``docker run -d`` of the same image and command, until the command exits."""
    args = ["docker", "run", "-d", "--name", name, "--label", f"{RAW_LABEL}=1"]
    for key, value in TEST_LABELS.items():
        args += ["--label", f"{key}={value}"]
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *args, BUSYBOX_TAG, *COMMAND, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"docker run failed ({process.returncode}): {err.decode().strip()}")
    return elapsed


async def remove_raw(docker: aiodocker.Docker) -> None:
    for container in await docker.containers.list(all=True, filters={"label": [f"{RAW_LABEL}=1"]}):
        with contextlib.suppress(aiodocker.DockerError):
            await container.delete(force=True)


async def kbox_pod(cluster: Any, watch: ReadyWatch, name: str, bound: list[float]) -> float:
    """Seconds from just before the create call to the watch seeing the pod Ready; appends the time from
    the create to the pod bound to its node to ``bound``."""
    body = pod(name, BUSYBOX_TAG, COMMAND, {"bench": "kubelet"})
    started = time.perf_counter()
    await cluster.client.create(PODS, body, namespace="default")
    ready = await watch.ready(name)
    bound.append(watch.bound_at.get(name, ready) - started)
    return ready - started


async def delete_pods(cluster: Any) -> None:
    """Delete the benchmark's pods at once and wait until they are gone (not timed)."""
    listing = await cluster.client.list(PODS, namespace="default", label_selector="bench=kubelet")
    names = [item["metadata"]["name"] for item in listing["items"]]
    await asyncio.gather(*(cluster.delete("Pod", n, grace_period_seconds=0, missing_ok=True) for n in names))
    for name in names:
        await cluster.wait_for("Pod", name, condition="delete", timeout=120)


async def docker_half() -> dict[str, Any]:
    docker = aiodocker.Docker()
    try:
        await ensure_busybox_image(docker)
        version = (await docker.version())["Version"]
        await remove_raw(docker)
        # Warm Docker's and kbox's caches alike once (image layers, the sandbox image), not counted.
        await raw_api(docker, "kbox-bench-warm-api")
        await raw_cli("kbox-bench-warm-cli")
        await remove_raw(docker)
        figures: dict[str, Any] = {"docker": version, "load": [os.getloadavg()[0]]}
        async with Cluster(runtime="docker", nodes=1, relist_interval=1.0, ready_timeout=120) as cluster:
            watch = ReadyWatch(cluster, "default", "bench=kubelet")
            await watch.start()
            try:
                calls = time_runtime_calls(cluster.cluster.runtime)
                network = cluster.cluster.runtime.network  # the cluster's bridge: the raw pods join it too
                await kbox_pod(cluster, watch, "warm", [])  # builds kbox's sandbox image if missing
                await raw_pod(docker, "kbox-bench-warm-pod", network)
                await delete_pods(cluster)
                await remove_raw(docker)
                for values in calls.values():
                    values.clear()
                serial: dict[str, Any] = {"kbox": [], "api": [], "cli": [], "pod": [], "bound": []}
                for n in range(DOCKER_PODS):  # interleaved, one at a time
                    serial["api"].append(await raw_api(docker, f"kbox-bench-api-{n}"))
                    serial["cli"].append(await raw_cli(f"kbox-bench-cli-{n}"))
                    serial["pod"].append(await raw_pod(docker, f"kbox-bench-pod-{n}", network))
                    serial["kbox"].append(await kbox_pod(cluster, watch, f"serial-{n}", serial["bound"]))
                serial["calls"] = {k: list(v) for k, v in calls.items()}
                await delete_pods(cluster)
                await remove_raw(docker)
                for values in calls.values():
                    values.clear()
                batched: dict[str, Any] = {"kbox": [], "api": [], "cli": [], "pod": [], "bound": []}
                for round_ in range(DOCKER_PODS // BATCH):  # interleaved rounds, ten at a time
                    names = [f"{round_}-{i}" for i in range(BATCH)]
                    batched["api"] += await asyncio.gather(
                        *(raw_api(docker, f"kbox-bench-api-{n}") for n in names)
                    )
                    batched["cli"] += await asyncio.gather(*(raw_cli(f"kbox-bench-cli-{n}") for n in names))
                    batched["pod"] += await asyncio.gather(
                        *(raw_pod(docker, f"kbox-bench-pod-{n}", network) for n in names)
                    )
                    batched["kbox"] += await asyncio.gather(
                        *(kbox_pod(cluster, watch, f"batch-{n}", batched["bound"]) for n in names)
                    )
                batched["calls"] = {k: list(v) for k, v in calls.items()}
                await delete_pods(cluster)
            finally:
                await watch.stop()
                await remove_raw(docker)
        figures["load"].append(os.getloadavg()[0])
        figures["serial"] = serial
        figures["batched"] = batched
        left = await docker.containers.list(all=True, filters={"label": [f"{RAW_LABEL}=1"]})
        figures["left"] = len(left)
        return figures
    finally:
        await docker.close()


# -- fake -----------------------------------------------------------------------------------------


class GcPauses:
    """Time the garbage collector stops the loop, per generation (through ``gc.callbacks``)."""

    def __init__(self) -> None:
        self.total = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self.longest = 0.0
        self._began = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        took = time.perf_counter() - self._began
        self.total[info["generation"]] += took
        self.count[info["generation"]] += 1
        self.longest = max(self.longest, took)


async def fake_half(profile: Path | None = None) -> dict[str, Any]:
    before = memory()
    load = [os.getloadavg()[0]]
    # As `kbox serve` sets the collector: the process is the cluster.
    gctune.tune()
    freezer = aiotasks.create_guarded_task(gctune.freeze_periodically(), name="bench/gc-freeze")
    try:
        with GcPauses() as pauses:
            figures = await _fake_run(profile, pauses)
    finally:
        await aiotasks.stop([freezer], title="bench")
    return {**figures, "before": before, "load": [*load, os.getloadavg()[0]]}


async def _fake_run(profile: Path | None, pauses: GcPauses) -> dict[str, Any]:
    async with Cluster(
        runtime="fake",
        nodes=FAKE_NODES,
        relist_interval=1.0,
        lease_interval=10.0,
        node_status_interval=60.0,
        ready_timeout=300,
    ) as cluster:
        started_cluster = memory()
        watch = ReadyWatch(cluster, "default", "bench=fake")
        await watch.start()
        per_client = FAKE_PODS // FAKE_CLIENTS
        created_at: list[float] = []

        async def client(index: int) -> None:
            for n in range(per_client):
                body = pod(f"p-{index}-{n}", "app:1", None, {"bench": "fake"})
                await cluster.client.create(PODS, body, namespace="default")
            created_at.append(time.perf_counter())

        async def progress() -> None:
            while True:
                await asyncio.sleep(5)
                print(
                    f"  fake: {time.perf_counter() - started:5.1f} s, {len(created_at)}/{FAKE_CLIENTS} clients done,"
                    f" {len(watch.ready_at):,} Ready, {watch.events:,} events ({watch.restarts} watch restarts),"
                    f" RSS {memory()['VmRSS']:.0f} MiB, GC pauses {sum(pauses.total):.1f} s",
                    file=sys.stderr,
                    flush=True,
                )

        profiler = cProfile.Profile() if profile is not None else None
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        cpu_started = time.process_time()
        reporter = asyncio.create_task(progress(), name="bench/progress")
        try:
            await asyncio.gather(*(client(i) for i in range(FAKE_CLIENTS)))
            created = time.perf_counter() - started
            await watch.all_ready(FAKE_PODS, timeout=max(600, FAKE_PODS // 50))
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        finally:
            reporter.cancel()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
        latencies = sorted(watch.ready_at.values())
        after = memory()
        await watch.stop()
        return {
            "elapsed": elapsed,
            "cpu": cpu,
            "created": created,
            "half": latencies[len(latencies) // 2] - started,
            "rss_cluster": started_cluster["VmRSS"],
            "rss_after": after["VmRSS"],
            "rss_peak": after["VmHWM"],
            "events": watch.events,
            "gc_total": list(pauses.total),
            "gc_count": list(pauses.count),
            "gc_longest": pauses.longest,
        }


# -- report ---------------------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 0.5) * 1000:.0f} ms, p99 {percentile(values, 0.99) * 1000:.0f} ms"


def docker_rows(figures: dict[str, Any]) -> list[str]:
    rows = []
    for key, title in (("serial", "one after another"), ("batched", f"{BATCH} at a time")):
        runs = figures[key]
        k50 = percentile(runs["kbox"], 0.5)
        cli50 = percentile(runs["cli"], 0.5)
        api50 = percentile(runs["api"], 0.5)
        pod50 = percentile(runs["pod"], 0.5)
        bound = percentile(runs["bound"], 0.5) * 1000
        calls = ", ".join(
            f"{name} {percentile(values, 0.5) * 1000:.0f} ms x{len(values)}"
            for name, values in runs["calls"].items()
            if values
        )
        in_runtime = sum(sum(values) for values in runs["calls"].values()) / len(runs["kbox"])
        rows += [
            f"| kbox pod created → Ready, {DOCKER_PODS} pods {title} | {_ms(runs['kbox'])} (created → bound"
            f" p50 {bound:.0f} ms; runtime calls p50: {calls}; per pod {in_runtime * 1000:.0f} ms in runtime"
            " calls on average) | | |",
            f"| raw `docker run -d` (CLI), {DOCKER_PODS} {title} | {_ms(runs['cli'])} | reference | |",
            f"| raw create + start via the Docker API (aiodocker), {DOCKER_PODS} {title} |"
            f" {_ms(runs['api'])} | reference | |",
            f"| raw pod via the Docker API: sandbox on the cluster's network, then busybox in its network namespace, {DOCKER_PODS}"
            f" {title} | {_ms(runs['pod'])} | reference | |",
            f"| kbox p50 ÷ `docker run` p50, {title} | {k50 / cli50:.2f}x | ≤ {DOCKER_TARGET}x |"
            f" {'yes' if k50 / cli50 <= DOCKER_TARGET else '**no**'} |",
            f"| kbox p50 ÷ Docker API p50, {title} | {k50 / api50:.2f}x | | |",
            f"| kbox p50 ÷ raw pod (two containers) p50, {title} | {k50 / pod50:.2f}x | | |",
        ]
    return rows


def fake_rows(figures: dict[str, Any]) -> list[str]:
    elapsed = figures["elapsed"]
    met = "yes" if elapsed <= FAKE_TARGET_S else "**no**"
    return [
        f"| fake runtime: {FAKE_PODS:,} pods on {FAKE_NODES} nodes, first create → all Ready |"
        f" {elapsed:.1f} s ({FAKE_PODS / elapsed:,.0f} pods/s; half Ready at {figures['half']:.1f} s;"
        f" creates by {FAKE_CLIENTS} clients done at {figures['created']:.1f} s;"
        f" {figures['cpu']:.1f} s of CPU time, the machine's load aside) | ≤ {FAKE_TARGET_S:.0f} s | {met} |",
        f"| fake runtime: process RSS, cluster of {FAKE_NODES} nodes idle → with {FAKE_PODS:,} pods Ready |"
        f" {figures['rss_cluster']:.0f} MiB → {figures['rss_after']:.0f} MiB (peak {figures['rss_peak']:.0f} MiB;"
        f" {figures['before']['VmRSS']:.0f} MiB before the cluster) | | |",
        f"| fake runtime: garbage-collector pauses in that run (collector set as `kbox serve` sets it) |"
        f" {sum(figures['gc_total']):.1f} s in all; {figures['gc_count'][2]} full collections,"
        f" {figures['gc_total'][2]:.1f} s; longest pause {figures['gc_longest'] * 1000:.0f} ms | | |",
    ]


def section(docker: dict[str, Any] | None, fake: dict[str, Any] | None) -> str:
    parts = [
        f"{SECTION}\n\n",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}",
    ]
    if docker is not None:
        parts.append(f", Docker {docker['docker']}")
    parts.append(
        '. Docker: one in-process cluster (`kbox.testing.Cluster(runtime="docker")`, one kubelet), pods of'
        f" the FROM-scratch busybox image running `{' '.join(COMMAND)}`; a pod's latency runs from just"
        " before its create call to a watch (opened beforehand, same process, monotonic clock) delivering it"
        " with Ready True, so a pod pays its sandbox container and its app container. The references start"
        " the same image and command raw in the same run, interleaved with the pods at the same concurrency:"
        " the docker CLI (`docker run -d`, until it exits; the client process start counts), the Docker"
        " API via aiodocker (create + start, what kbox's runtime calls), and a raw pod through the API (kbox's"
        " sandbox image on the cluster's bridge network, then busybox joining its network namespace: the"
        " two containers kbox makes, without kbox). Runtime calls are timed by wrapping the cluster's"
        " runtime object. One warm-up of each not counted;"
        " every container removed afterwards."
        f" Fake: one in-process cluster of {FAKE_NODES} kubelets on the simulated runtime (kubelet relist 1 s),"
        f" {FAKE_CLIENTS} concurrent in-process clients creating bare pods, one watch counting Ready.\n\n"
    )
    rows = ["| figure | measured | target | met |", "| --- | --- | --- | --- |"]
    if docker is not None:
        rows += docker_rows(docker)
    if fake is not None:
        rows += fake_rows(fake)
    loads = [
        f"{name} half {f['load'][0]:.1f} → {f['load'][1]:.1f}"
        for name, f in (("Docker", docker), ("fake", fake))
        if f
    ]
    rows.append(
        "| machine load average (1 min) at the start → end of each half (other work shares these 2 cores) |"
        f" {'; '.join(loads)} | | |"
    )
    return "".join(parts) + "\n".join(rows) + "\n"


async def main(only: str | None, profile: Path | None) -> str:
    docker = await docker_half() if only in (None, "docker") else None
    fake = await fake_half(profile) if only in (None, "fake") else None
    return section(docker, fake)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", type=Path, help="update this BENCHMARKS.md")
    parser.add_argument("--only", choices=["docker", "fake"], help="run one half")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the fake half here")
    parser.add_argument("--pods", type=int, default=FAKE_PODS, help="pods of the fake half")
    parser.add_argument("--nodes", type=int, default=FAKE_NODES, help="nodes of the fake half")
    args = parser.parse_args()
    FAKE_PODS, FAKE_NODES = args.pods, args.nodes
    text = asyncio.run(main(args.only, args.profile))
    print(text)
    if args.write:
        write_section(args.write, text + "\n", heading="## Kubelet (")
