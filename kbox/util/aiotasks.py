"""Named, guarded background tasks.

Every long-running coroutine in kbox runs in a task with a name (``store/committer``,
``kubelet/node-1/pod/<uid>``) so a task dump reads like a process list, and under a guard that logs a
crash the moment it happens instead of when someone finally awaits the task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

_log = logging.getLogger(__name__)

# Tasks are kept referenced here until they finish: the event loop itself holds only weak references.
_running: set[asyncio.Task[Any]] = set()


def create_guarded_task(
    coro: Coroutine[Any, Any, Any],
    *,
    name: str,
    logger: logging.Logger | None = None,
) -> asyncio.Task[Any]:
    """Start ``coro`` as a task called ``name`` and log at once if it crashes or returns unexpectedly."""
    log = logger or _log

    async def guard() -> Any:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task %s crashed", name)
            raise

    task = asyncio.get_running_loop().create_task(guard(), name=name)
    _running.add(task)
    task.add_done_callback(_running.discard)
    # A task cancelled before its first step never awaited ``coro``; closing it avoids the warning.
    task.add_done_callback(lambda _: coro.close())
    return task


async def stop(tasks: Iterable[asyncio.Task[Any]], *, title: str, grace: float = 5.0) -> None:
    """Cancel ``tasks`` and wait for them; name the ones still stuck after ``grace`` seconds."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    done, stuck = await asyncio.wait(pending, timeout=grace)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            _log.debug("%s: task %s ended with %r", title, task.get_name(), task.exception())
    if stuck:
        _log.warning("%s: tasks still running after %.1fs: %s", title, grace, [t.get_name() for t in stuck])
