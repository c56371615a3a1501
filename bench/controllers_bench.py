"""Controllers benchmark: a Deployment of 1,000 replicas on simulated nodes, created and rolled.

In one in-process cluster (``kbox.testing.Cluster``: in-memory store, real scheduler, ReplicaSet and
Deployment controllers, and kubelets on the fake runtime), it measures the time from creating a
Deployment of 1,000 replicas to all of them available, then the time for a rolling update (a new
image) to finish with every replica updated and available. Target (issue 6): the 1,000-replica
Deployment Available within 15 s. Prints a Markdown section; ``--write`` puts it into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_bench import write_section

from kbox.testing import Cluster

REPLICAS = 1_000
NODES = 12  # 110 pods per node at most, as a real node
SECTION = "## Controllers (`bench/controllers_bench.py`)"


def deployment(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "big"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


def complete(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation", 0)
    return (
        status.get("observedGeneration", 0) >= generation
        and status.get("updatedReplicas") == REPLICAS
        and status.get("availableReplicas") == REPLICAS
        and status.get("replicas") == REPLICAS
    )


async def main() -> dict[str, float]:
    async with Cluster(runtime="fake", nodes=NODES, relist_interval=0.5) as cluster:
        started = time.perf_counter()
        await cluster.apply(deployment("app:1"))
        await cluster.wait_for("Deployment", "big", predicate=complete, timeout=300)
        created = time.perf_counter() - started
        started = time.perf_counter()
        await cluster.apply(deployment("app:2"))
        await cluster.wait_for("Deployment", "big", predicate=complete, timeout=600)
        rolled = time.perf_counter() - started
    return {"created": created, "rolled": rolled}


def section(figures: dict[str, float]) -> str:
    return (
        f"{SECTION}\n\n"
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}. One process: in-memory store, the real scheduler and"
        f" controllers, {NODES} kubelets on the fake runtime (containers run at once).\n\n"
        "| figure | measured | target | met |\n| --- | --- | --- | --- |\n"
        f"| Deployment of {REPLICAS:,} replicas, created to all available | {figures['created']:.1f} s |"
        f" < 15 s | {'yes' if figures['created'] < 15 else '**no**'} |\n"
        f"| rolling update of it (new image, 25% surge/unavailable) to all updated and available |"
        f" {figures['rolled']:.1f} s | | |\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="update this BENCHMARKS.md")
    args = parser.parse_args()
    text = section(asyncio.run(main()))
    print(text)
    if args.write:
        write_section(args.write, text, heading="## Controllers (")
