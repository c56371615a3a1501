"""Scheduler benchmark: pods bound per second with 1,000 nodes and 10,000 pending pods.

The control plane runs in this process on the durable SQLite store (synchronous=FULL, WAL), as in
``kbox start``; the 1,000 nodes are Node objects created through the in-process client (Ready, 8 cpu,
32 GiB, 110 pods; no kubelets), the 10,000 pods are created pending (each requests 100m cpu and 128 MiB,
in 10 ReplicaSet-owned groups, as controllers make them) before the scheduler starts. The clock runs from
the scheduler's informers being synced to the last binding acknowledged; the binds go through the
pods/binding subresource like any scheduler's. Each binding is followed by a Scheduled event, as upstream
records; the events are written but not counted.

Run by ``make bench``; prints a Markdown section and, with ``--write``, puts it into BENCHMARKS.md.
``--profile`` prints where the time of the scheduling phase goes (cProfile, slower; figures not written).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import platform
import pstats
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from kbox.api.app import ApiSettings
from kbox.api.controlplane import ControlPlane
from kbox.client.interface import NODES, PODS
from kbox.client.local import LocalClient
from kbox.config import StoreSettings
from kbox.scheduler.scheduler import Scheduler

NODES_COUNT = 1000
PODS_COUNT = 10_000
GROUPS = 10
TARGET = 1000.0
NAMESPACE = "default"


def node(name: str) -> dict[str, Any]:
    resources = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
        "spec": {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def pod(name: str, group: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": f"bench-{group}", "pod-template-hash": "5d8f7c9b6d"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"bench-{group}",
                    "uid": f"00000000-0000-0000-0000-{group:012d}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "busybox",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }
            ]
        },
    }


async def create_all(
    client: LocalClient, objects: list[dict[str, Any]], resource: Any, workers: int = 100
) -> None:
    queue = list(reversed(objects))

    async def worker() -> None:
        while queue:
            obj = queue.pop()
            await client.create(resource, obj, namespace=NAMESPACE if resource.namespaced else None)

    await asyncio.gather(*(worker() for _ in range(workers)))


async def run(directory: Path, *, profile: bool = False) -> dict[str, float]:
    plane = ControlPlane(StoreSettings(path=directory / "bench.db"), ApiSettings(host="127.0.0.1", port=0))
    await plane.start()
    try:
        client = LocalClient(plane.catalog)
        started = time.perf_counter()
        await create_all(client, [node(f"node-{i:04d}") for i in range(NODES_COUNT)], NODES)
        await create_all(client, [pod(f"pod-{i:05d}", i % GROUPS) for i in range(PODS_COUNT)], PODS)
        setup = time.perf_counter() - started
        gc.collect()
        scheduler = Scheduler(client)
        sync_started = time.perf_counter()
        await scheduler.start()
        began = time.perf_counter()
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        while scheduler.bound < PODS_COUNT:
            await asyncio.sleep(0.01)
            if time.perf_counter() - began > 120:
                raise RuntimeError(f"only {scheduler.bound} pods bound in 120 s")
        elapsed = time.perf_counter() - began
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        placed = sorted(len(info.pods) for info in scheduler.state.infos.values())
        await scheduler.stop()
        listing = await client.list(PODS, namespace=NAMESPACE, field_selector="spec.nodeName=")
        return {
            "setup_s": setup,
            "sync_s": began - sync_started,
            "elapsed_s": elapsed,
            "pods_per_s": PODS_COUNT / elapsed,
            "decide_us": scheduler.decide_seconds / PODS_COUNT * 1e6,
            "min_per_node": placed[0],
            "max_per_node": placed[-1],
            "unbound": len(listing["items"]),
        }
    finally:
        await plane.stop()


async def main(profile: bool = False) -> str:
    with tempfile.TemporaryDirectory(dir=os.environ.get("KBOX_BENCH_DIR")) as name:
        result = await run(Path(name), profile=profile)
    rows = [
        "| figure | measured | target |",
        "| --- | --- | --- |",
        f"| pods bound/s, {NODES_COUNT:,} nodes, {PODS_COUNT:,} pending pods | {result['pods_per_s']:,.0f}"
        f" ({PODS_COUNT:,} in {result['elapsed_s']:.2f} s) | ≥ {TARGET:,.0f} |",
        f"| pods per node after the run | {result['min_per_node']} to {result['max_per_node']} | even spread |",
        f"| decision time per pod (filter + score, 420 of 1,000 nodes) | {result['decide_us']:.0f} µs"
        f" ({result['decide_us'] * PODS_COUNT / 1e6 / result['elapsed_s']:.0%} of the run; the rest is"
        " binding, events and watch) | |",
        f"| pods left unbound | {result['unbound']} | 0 |",
        f"| informer sync (1,000 nodes + 10,000 pods) | {result['sync_s']:.2f} s | |",
    ]
    header = (
        "## Scheduler (`bench/scheduler_bench.py`)\n\n"
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; the control plane and the"
        " scheduler in one process over the durable SQLite store, nodes as Node objects (no kubelets), every"
        " binding through pods/binding plus a Scheduled event per pod. The clock runs from informers synced"
        " to the last binding acknowledged.\n\n"
    )
    return header + "\n".join(rows) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace the scheduler section of BENCHMARKS.md (or append it), keeping other sections."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\nFigures from `make bench`.\n\n"
    start = text.find("## Scheduler (")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="update this BENCHMARKS.md")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the scheduling phase")
    args = parser.parse_args()
    section = asyncio.run(main(profile=args.profile))
    print(section)
    if args.write and not args.profile:
        write_section(args.write, section)
