"""Whether the container runtime answers: the node's side of a Docker outage.

The kubelet must survive its runtime going away (the Docker daemon stopped, restarted, its socket
gone) without failing pods or crash-looping kbox, as Kubernetes' kubelet does: the Node's Ready
condition turns False with reason ``KubeletNotReady`` and the message ``container runtime is down:
<error>``, pod workers pause instead of recording failures, and once the runtime answers again the
condition returns to True and every pod re-syncs, adopting the containers that kept running.

Any runtime call may notice the outage (a :class:`ContainerRuntimeError` whose ``unavailable`` is
set); the first one to do so flips the state and logs one line, the others only confirm it. While
the runtime is down, the relist loop probes it with an exponential back-off (``retry_delay``) and
declares the recovery. ``on_change`` is called, synchronously and without blocking, on each flip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kbox.kubelet.runtime.interface import ContainerRuntimeError

_log = logging.getLogger(__name__)

RETRY_BASE = 0.5
RETRY_MAX = 30.0


class RuntimeHealth:
    def __init__(
        self,
        node: str,
        *,
        on_change: Callable[[], None],
        retry_base: float = RETRY_BASE,
        retry_max: float = RETRY_MAX,
    ) -> None:
        self.node = node
        self.ok = True
        self.error = ""
        self._on_change = on_change
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._retry = retry_base
        self._down_since = 0.0

    @property
    def message(self) -> str:
        """The Ready condition's message while the runtime is down."""
        return f"container runtime is down: {self.error}"

    def failed(self, error: ContainerRuntimeError | str) -> None:
        """The runtime did not answer (first report flips the state; repeats are silent)."""
        if not self.ok:
            return
        self.ok = False
        self.error = str(error)
        self._retry = self._retry_base
        self._down_since = time.monotonic()
        _log.error("node %s: %s; pods are paused until it answers again", self.node, self.message)
        self._on_change()

    def recovered(self) -> None:
        """The runtime answered again."""
        if self.ok:
            return
        self.ok = True
        self.error = ""
        _log.warning(
            "node %s: the container runtime answers again after %.0fs; re-syncing pods",
            self.node,
            time.monotonic() - self._down_since,
        )
        self._on_change()

    def retry_delay(self) -> float:
        """The wait before the next probe of a runtime that is down: doubling up to ``retry_max``."""
        delay = self._retry
        self._retry = min(self._retry * 2, self._retry_max)
        return delay
