"""Runs each cluster component as a task, restarts the ones that fail, and keeps the record of it.

A component is an object with a ``name``, a ``run()`` coroutine that works until cancelled, and a cheap
``healthy()`` check. The supervisor runs ``run()`` in a task named after the component; when it raises
(or returns, which a component must not do), the traceback is logged, the crash recorded (exit code,
reason, message, times, as a container's ``lastState``) and ``run()`` is called again after a back-off
that doubles from ``backoff_initial`` up to ``backoff_max`` and resets after ``reset_after`` seconds of
healthy running: the CrashLoopBackOff of a kubelet, applied to the control plane's own parts. The
process stays up. A *core* component (the store, the apiserver) is not restarted: everything else
depends on it, so its failure ends the supervisor's ``wait()`` and the cluster stops, as a kubelet-less
control plane would.

Every state change bumps ``generation`` and wakes ``changed()`` waiters, so the mirror pods (kbox.mirrorpods)
write a status only when there is something new. ``inject_crash(name)`` makes the named component's
``run()`` raise at once; it exists for tests of exactly this machinery.

Each component runs with the ``componentlogs.current`` context variable set to its name, so every log
line it (and every task it starts) writes is attributed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kbox import componentlogs
from kbox.util import aiotasks

_log = logging.getLogger(__name__)


class Component(Protocol):
    """A part of the cluster that runs until cancelled and can say whether it is healthy."""

    name: str

    async def run(self) -> None:
        """Work until cancelled; release everything in ``finally``. Raising is a crash: ``run`` is
        called again after a back-off, so it must be re-entrant."""

    def healthy(self) -> bool:
        """A cheap readiness check."""


class InjectedCrash(RuntimeError):
    """Raised inside a component by :meth:`Supervisor.inject_crash`."""


@dataclass
class Termination:
    """How one run of a component ended (a container's ``state.terminated``)."""

    exit_code: int
    reason: str
    message: str
    started_at: float
    finished_at: float


@dataclass
class ComponentState:
    """What the supervisor knows about one component (wall-clock times)."""

    name: str
    core: bool
    restarts: int = 0
    running: bool = False
    started_at: float | None = None
    waiting_reason: str | None = None  # "CrashLoopBackOff" while waiting to restart
    waiting_message: str = ""
    last: Termination | None = None
    healthy: bool = False
    first_started_at: float | None = None


@dataclass
class _Entry:
    component: Component
    state: ComponentState
    task: asyncio.Task[None] | None = None
    fault: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    """``add`` components, ``start``, then ``wait`` until a core component fails; ``stop`` in reverse."""

    def __init__(
        self,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        reset_after: float = 60.0,
        health_interval: float = 2.0,
        clock: Callable[[], float] = time.time,
        on_start: Callable[[str, int], None] | None = None,
    ) -> None:
        """``on_start(name, restarts)`` is called as each run of a component begins (log buffers
        tag lines with the run)."""
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.reset_after = reset_after
        self.health_interval = health_interval
        self.clock = clock
        self.on_start = on_start
        self.generation = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._entries: dict[str, _Entry] = {}
        self._started = False
        self._fatal: asyncio.Future[ComponentState] | None = None
        self._health_task: asyncio.Task[None] | None = None

    # -- membership ------------------------------------------------------------------------------

    def states(self) -> list[ComponentState]:
        return [entry.state for entry in self._entries.values()]

    def state(self, name: str) -> ComponentState | None:
        entry = self._entries.get(name)
        return entry.state if entry else None

    def component(self, name: str) -> Component | None:
        entry = self._entries.get(name)
        return entry.component if entry else None

    def add(self, component: Component, *, core: bool = False) -> ComponentState:
        """Register ``component``; it starts at once when the supervisor is already running."""
        if component.name in self._entries:
            raise ValueError(f"component {component.name!r} is already supervised")
        entry = _Entry(component, ComponentState(component.name, core))
        self._entries[component.name] = entry
        if self._started:
            self._launch(entry)
        self._touch()
        return entry.state

    async def remove(self, name: str, *, grace: float = 10.0) -> None:
        """Stop ``name`` and forget it (an addon being disabled)."""
        entry = self._entries.pop(name, None)
        if entry is None:
            return
        if entry.task is not None:
            await aiotasks.stop([entry.task], title=f"component {name}", grace=grace)
        self._touch()

    # -- running ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._started = True
        self._fatal = asyncio.get_running_loop().create_future()
        for entry in self._entries.values():
            self._launch(entry)
        self._health_task = aiotasks.create_guarded_task(self._watch_health(), name="supervisor/health")

    async def wait(self) -> ComponentState:
        """Until a core component fails; returns its state."""
        assert self._fatal is not None, "start() first"
        return await asyncio.shield(self._fatal)

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop components in reverse order of addition, each given ``grace`` seconds."""
        self._started = False
        if self._health_task is not None:
            await aiotasks.stop([self._health_task], title="supervisor")
            self._health_task = None
        for entry in reversed(list(self._entries.values())):
            if entry.task is not None:
                await aiotasks.stop([entry.task], title=f"component {entry.state.name}", grace=grace)
                entry.task = None
            entry.state.running = False
            entry.state.healthy = False
        self._touch()

    def inject_crash(self, name: str) -> bool:
        """Make ``name``'s current run raise :class:`InjectedCrash` (tests of restarts)."""
        entry = self._entries.get(name)
        if entry is None or not entry.state.running:
            return False
        entry.fault.set()
        return True

    def _launch(self, entry: _Entry) -> None:
        token = componentlogs.current.set(entry.state.name)
        try:
            entry.task = aiotasks.create_guarded_task(
                self._keep_running(entry), name=f"component/{entry.state.name}"
            )
        finally:
            componentlogs.current.reset(token)

    async def _keep_running(self, entry: _Entry) -> None:
        state = entry.state
        backoff = 0.0
        while True:
            entry.fault.clear()
            started = self.clock()
            state.running, state.started_at = True, started
            state.first_started_at = state.first_started_at or started
            state.waiting_reason, state.waiting_message = None, ""
            if self.on_start is not None:
                self.on_start(state.name, state.restarts)
            self._touch()
            try:
                message = await self._run_once(entry)
                exit_code, reason = 0, "Completed"
                _log.warning("component %s returned; it should run until stopped", state.name)
            except asyncio.CancelledError:
                state.running = state.healthy = False
                raise
            except Exception as exc:
                _log.error("component %s crashed", state.name, exc_info=exc)
                exit_code, reason, message = 1, "Error", f"{type(exc).__name__}: {exc}"
            finished = self.clock()
            state.running, state.healthy = False, False
            state.last = Termination(exit_code, reason, message, started, finished)
            if state.core:
                self._touch()
                if self._fatal is not None and not self._fatal.done():
                    self._fatal.set_result(state)
                return
            if finished - started >= self.reset_after:
                backoff = 0.0
            delay = backoff
            backoff = min(self.backoff_max, max(self.backoff_initial, backoff * 2))
            if delay > 0:
                state.waiting_reason = "CrashLoopBackOff"
                state.waiting_message = f"back-off {delay:g}s restarting failed component {state.name}"
                self._touch()
                await asyncio.sleep(delay)
            state.restarts += 1

    async def _run_once(self, entry: _Entry) -> str:
        """One ``run()``, raced against an injected fault."""
        run = asyncio.ensure_future(entry.component.run())
        fault = asyncio.ensure_future(entry.fault.wait())
        try:
            done, _ = await asyncio.wait({run, fault}, return_when=asyncio.FIRST_COMPLETED)
            if run in done:
                run.result()
                return ""
            raise InjectedCrash(f"crash injected into {entry.state.name} by a test hook")
        finally:
            for task in (run, fault):
                if not task.done():
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run
            with contextlib.suppress(asyncio.CancelledError):
                await fault

    async def _watch_health(self) -> None:
        """Poll ``healthy()`` of running components; a change is a state change. While some running
        component is not healthy yet, poll often, so a starting cluster turns Ready promptly."""
        while True:
            settling = False
            for entry in list(self._entries.values()):
                state = entry.state
                try:
                    healthy = state.running and bool(entry.component.healthy())
                except Exception:
                    _log.exception("health check of %s failed", state.name)
                    healthy = False
                if healthy != state.healthy:
                    state.healthy = healthy
                    self._touch()
                young = state.started_at is not None and self.clock() - state.started_at < 30
                settling = settling or (state.running and not healthy and young)
            await asyncio.sleep(min(0.01, self.health_interval) if settling else self.health_interval)

    def _touch(self) -> None:
        self.generation += 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def changed(self, since: int) -> int:
        """Wait until ``generation`` differs from ``since``; return the new generation."""
        if self.generation == since:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return self.generation

    def ready(self) -> bool:
        """Every component running and healthy."""
        return all(e.state.running and e.state.healthy for e in self._entries.values())

    async def wait_ready(self) -> None:
        """Until :meth:`ready` (callers bound it with ``asyncio.timeout``)."""
        seen = self.generation
        while not self.ready():
            seen = await self.changed(seen)


def summary(states: list[ComponentState]) -> dict[str, Any]:
    """A JSON-friendly view (``kbox status`` and logs)."""
    return {
        s.name: {"running": s.running, "healthy": s.healthy, "restarts": s.restarts, "core": s.core}
        for s in states
    }
