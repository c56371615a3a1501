"""Test a project against a whole kbox cluster started inside its test process.

``async with Cluster() as c`` (an :class:`AsyncCluster`) or ``with Cluster() as c`` (a
:class:`SyncCluster`, on a loop of its own); the pytest plugin (``kbox.testing.plugin``, registered
through the ``pytest11`` entry point) gives the ``kbox_cluster`` and ``kbox_namespace`` fixtures. See
``kbox/testing/cluster.py`` for what a cluster offers.

The names load on first use: pytest imports the plugin (this package) in every run of a project that
has kbox installed, and the cluster's imports (the whole of kbox) are only paid by runs that use it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kbox.testing.cluster import (
        TEST_TIMERS,
        AioBridge,
        AsyncCluster,
        Cluster,
        DockerUnavailable,
        Node,
        SyncCluster,
        SyncNode,
        WaitFailed,
        WaitTimeout,
    )

__all__ = [
    "TEST_TIMERS",
    "AioBridge",
    "AsyncCluster",
    "Cluster",
    "DockerUnavailable",
    "Node",
    "SyncCluster",
    "SyncNode",
    "WaitFailed",
    "WaitTimeout",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("kbox.testing.cluster"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
