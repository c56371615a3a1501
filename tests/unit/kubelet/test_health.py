"""RuntimeHealth: the first failure flips the state and logs one line, repeats are silent, probes back
off exponentially up to the cap, and a recovery flips back and restarts the back-off."""

from __future__ import annotations

import logging

import pytest

from kbox.kubelet.health import RuntimeHealth
from kbox.kubelet.runtime.interface import REASON_UNAVAILABLE, ContainerRuntimeError


def test_outage_and_recovery(caplog: pytest.LogCaptureFixture) -> None:
    changes: list[bool] = []
    health = RuntimeHealth("node-1", on_change=lambda: changes.append(health.ok), retry_base=0.5, retry_max=4)
    error = ContainerRuntimeError("listing containers: Docker is not available", reason=REASON_UNAVAILABLE)
    assert error.unavailable and not ContainerRuntimeError("x").unavailable
    caplog.set_level(logging.INFO, logger="kbox.kubelet.health")
    for _ in range(5):
        health.failed(error)
    assert not health.ok and changes == [False]
    assert health.message == "container runtime is down: listing containers: Docker is not available"
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert [health.retry_delay() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]

    health.recovered()
    health.recovered()
    assert changes == [False, True] and health.error == ""
    health.failed("again")
    assert health.retry_delay() == 0.5  # a new outage starts the back-off over
