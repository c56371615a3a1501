"""Per-pod serial workers (the shape of kopf's queueing and the kubelet's pod workers).

Every pod UID gets at most one task at a time that runs ``sync(uid)`` until nothing new happened
meanwhile: updates that arrive while a sync runs coalesce into one more sync afterwards, two syncs of
the same pod never overlap, and different pods proceed concurrently. A worker whose pod is quiet exits
at once, so memory stays flat on big nodes; ``sync`` may ask to be run again after a delay (back-off
expiry, a grace period ending), which is a timer, not a sleeping task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from kbox.util import aiotasks

_log = logging.getLogger(__name__)

Sync = Callable[[str], Awaitable[float | None]]


class PodWorkers:
    def __init__(self, sync: Sync, *, name: str = "kubelet") -> None:
        self._sync = sync
        self._name = name
        self._dirty: set[str] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closed = False

    def update(self, uid: str) -> None:
        """Ask for ``sync(uid)`` soon; coalesces with a pending request."""
        if self._closed:
            return
        self._dirty.add(uid)
        if uid not in self._running:
            task = aiotasks.create_guarded_task(self._work(uid), name=f"{self._name}/pod/{uid}", logger=_log)
            self._running[uid] = task

    def update_after(self, uid: str, delay: float) -> None:
        """Ask for ``sync(uid)`` after ``delay`` seconds (an earlier request wins)."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        timer = self._timers.get(uid)
        if timer is not None:
            if timer.when() <= due:
                return
            timer.cancel()
        self._timers[uid] = loop.call_at(due, self._fire, uid)

    def _fire(self, uid: str) -> None:
        self._timers.pop(uid, None)
        self.update(uid)

    async def _work(self, uid: str) -> None:
        try:
            while uid in self._dirty and not self._closed:
                self._dirty.discard(uid)
                try:
                    again = await self._sync(uid)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    _log.exception("syncing pod %s failed; retrying in 1s", uid)
                    again = 1.0
                if again is not None:
                    self.update_after(uid, again)
        finally:
            # No await between the check above and this removal: an update arriving now starts a new task.
            self._running.pop(uid, None)

    def forget(self, uid: str) -> None:
        timer = self._timers.pop(uid, None)
        if timer is not None:
            timer.cancel()

    @property
    def active(self) -> int:
        return len(self._running)

    async def close(self) -> None:
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await aiotasks.stop(list(self._running.values()), title=f"{self._name} pod workers")
