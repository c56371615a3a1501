"""Garbage-collector settings for a process that is a kbox cluster (``kbox serve``), not for embedders.

The store keeps every object and its recent history in memory: hundreds of thousands of long-lived
container objects that a full collection would walk again and again (tens of milliseconds each at
100,000 pods, which showed up as API write latency p99 in the benchmark). kbox raises the young
generation's threshold and freezes what survived, so the collector only looks at new objects: after
every full collection (what survived one is long-lived by definition; while 100,000 pods were being
created, full collections of the growing unfrozen heap took up to 5 s each) and every minute. None of
kbox's long-lived structures form reference cycles, so frozen objects are still freed by reference
counting when they go.
"""

from __future__ import annotations

import asyncio
import gc

FREEZE_INTERVAL = 60.0


def tune() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    if _freeze_after_full_collection not in gc.callbacks:
        gc.callbacks.append(_freeze_after_full_collection)


def _freeze_after_full_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


async def freeze_periodically(interval: float = FREEZE_INTERVAL) -> None:
    """Every ``interval`` seconds, move what survived into the permanent generation."""
    while True:
        await asyncio.sleep(interval)
        gc.freeze()
