"""The supervisor: restarts with back-off, CrashLoopBackOff while waiting, core failures, injected
crashes, health polling and removal. Real components are tested through kbox start
(tests/component/test_control_plane_pods.py); these use small stand-ins with fast timings."""

from __future__ import annotations

import asyncio

import pytest

from kbox import componentlogs, supervisor
from tests.support.wait import eventually


class Flaky:
    """Crashes its first ``crashes`` runs after ``after`` seconds, then runs until cancelled."""

    def __init__(self, name: str, *, crashes: int = 0, after: float = 0.0) -> None:
        self.name = name
        self.crashes = crashes
        self.after = after
        self.runs = 0
        self.cleanups = 0
        self.ok = True

    async def run(self) -> None:
        self.runs += 1
        try:
            await asyncio.sleep(self.after)
            if self.runs <= self.crashes:
                raise ValueError(f"run {self.runs} failed")
            await asyncio.Event().wait()
        finally:
            self.cleanups += 1

    def healthy(self) -> bool:
        return self.ok


def make(**options: float) -> supervisor.Supervisor:
    return supervisor.Supervisor(
        backoff_initial=options.get("backoff_initial", 0.01),
        backoff_max=options.get("backoff_max", 0.05),
        health_interval=options.get("health_interval", 0.01),
    )


async def test_a_crashing_component_is_restarted_and_counted() -> None:
    sup = make()
    flaky = Flaky("worker", crashes=3)
    sup.add(flaky)
    await sup.start()
    try:
        state = sup.state("worker")
        assert state is not None
        await eventually(lambda: state.restarts == 3 and state.running and state.healthy)
        assert flaky.runs == 4 and flaky.cleanups == 3  # every crashed run cleaned up
        assert state.last is not None and state.last.exit_code == 1
        assert state.last.message == "ValueError: run 3 failed"
        assert state.last.finished_at >= state.last.started_at
    finally:
        await sup.stop()
    assert flaky.cleanups == 4 and not state.running


async def test_crash_loop_back_off_is_shown_while_waiting() -> None:
    sup = make(backoff_initial=0.5, backoff_max=0.5)
    sup.add(Flaky("looping", crashes=100))
    await sup.start()
    try:
        state = sup.state("looping")
        assert state is not None
        await eventually(lambda: state.waiting_reason == "CrashLoopBackOff")
        assert not state.running and not state.healthy
        assert "back-off 0.5s" in state.waiting_message
    finally:
        await sup.stop()


async def test_a_core_failure_ends_wait_and_is_not_restarted() -> None:
    sup = make()
    core = Flaky("store", crashes=1, after=0.05)
    sup.add(core, core=True)
    sup.add(Flaky("other"))
    await sup.start()
    try:
        failed = await asyncio.wait_for(sup.wait(), 5)
        assert failed.name == "store" and failed.last is not None
        assert core.runs == 1
    finally:
        await sup.stop()


async def test_injected_crash_restarts_only_that_component() -> None:
    sup = make()
    a, b = Flaky("a"), Flaky("b")
    sup.add(a)
    sup.add(b)
    await sup.start()
    try:
        await sup.wait_ready()
        assert sup.inject_crash("a")
        state = sup.state("a")
        assert state is not None
        await eventually(lambda: state.restarts == 1 and state.running)
        assert state.last is not None and "InjectedCrash" in state.last.message
        assert b.runs == 1
        assert not sup.inject_crash("missing")
    finally:
        await sup.stop()


async def test_health_changes_wake_waiters_and_removal_stops() -> None:
    sup = make()
    comp = Flaky("c")
    sup.add(comp)
    await sup.start()
    try:
        await asyncio.wait_for(sup.wait_ready(), 5)
        seen = sup.generation
        comp.ok = False
        await asyncio.wait_for(sup.changed(seen), 5)
        await eventually(lambda: not sup.ready())
        late = Flaky("late")
        sup.add(late)  # added while running: starts at once
        await eventually(lambda: late.runs == 1)
        await sup.remove("late")
        assert late.cleanups == 1 and sup.state("late") is None
    finally:
        await sup.stop()


async def test_log_lines_are_attributed_to_the_running_component() -> None:
    buffers = componentlogs.LogBuffers()
    logger = componentlogs.logging.getLogger("tests.supervisor")
    logger.addHandler(buffers)
    logger.setLevel("INFO")

    class Talker(Flaky):
        async def run(self) -> None:
            logger.info("hello from run %d", self.runs + 1)
            await asyncio.create_task(self._child())  # tasks it starts inherit the component
            await super().run()

        async def _child(self) -> None:
            logger.info("from a child task")

    sup = supervisor.Supervisor(backoff_initial=0.01, on_start=buffers.new_run)
    talker = Talker("talker", crashes=1, after=0.01)
    sup.add(talker)
    await sup.start()
    try:
        state = sup.state("talker")
        assert state is not None
        await eventually(lambda: state.restarts == 1 and state.running)
        await eventually(lambda: len(buffers.lines("talker", run=1)) >= 2)
        first = [ln.text for ln in buffers.lines("talker", run=0)]
        assert any("hello from run 1" in t for t in first) and any("from a child task" in t for t in first)
        chunks = [c async for c in buffers.read("talker", run=1, tail_lines=1, timestamps=True)]
        assert len(chunks) == 1 and chunks[0].endswith(b"from a child task\n") and chunks[0][:2] == b"20"
    finally:
        await sup.stop()
        logger.removeHandler(buffers)


@pytest.mark.parametrize("name", ["kbox.store.log", "kbox.scheduler.scheduler", "elsewhere"])
def test_records_outside_components_go_by_logger_name(name: str) -> None:
    record = componentlogs.logging.LogRecord(name, 20, __file__, 1, "m", None, None)
    expected = {"kbox.store.log": "etcd", "kbox.scheduler.scheduler": "kube-scheduler"}.get(name, "kbox")
    assert componentlogs.component_of(record) == expected
