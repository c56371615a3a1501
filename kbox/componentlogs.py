"""Each component's own log lines, kept in memory for ``kubectl logs -n kube-system <mirror pod>``.

The supervisor runs every component with the context variable :data:`current` set to the component's
name; asyncio copies the context into every task a component starts, so each log record can be
attributed to the component that wrote it without naming loggers by component. Records written
outside any component (threads, start-up code) are attributed by logger name instead.

:class:`LogBuffers` is a logging handler holding a bounded buffer of lines per component, each line
tagged with the run it came from, so ``previous`` (the last crashed run) works as it does for a
container. The same lines also go to the process's log file through the ordinary handlers; the
formatter there shows ``[component]``.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

current: contextvars.ContextVar[str] = contextvars.ContextVar("kbox_component", default="")
"""The name of the component the running code belongs to ("" outside any)."""

# Logger-name prefixes → component, for records written outside a component's context.
_BY_LOGGER = (
    ("kbox.store", "etcd"),
    ("kbox.api", "kube-apiserver"),
    ("kbox.controllers", "kube-controller-manager"),
    ("kbox.scheduler", "kube-scheduler"),
    ("kbox.kubelet", "kubelet"),
    ("kbox.proxy", "kube-proxy"),
    ("kbox.addons.dns", "coredns"),
)

FORMAT = "%(asctime)s %(levelname)s [%(component)s] %(name)s: %(message)s"


def component_of(record: logging.LogRecord) -> str:
    name = current.get()
    if name:
        return name
    for prefix, component in _BY_LOGGER:
        if record.name == prefix or record.name.startswith(prefix + "."):
            return component
    return "kbox"


class ComponentFilter(logging.Filter):
    """Adds ``record.component`` for formatters (``[%(component)s]``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "component"):
            record.component = component_of(record)
        return True


@dataclass(frozen=True, slots=True)
class Line:
    seq: int
    time: float
    run: int
    text: str


class LogBuffers(logging.Handler):
    """Bounded per-component line buffers; thread-safe ``emit``, asyncio readers."""

    def __init__(self, *, lines: int = 5000, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.capacity = lines
        self._buffers: dict[str, collections.deque[Line]] = {}
        self._runs: dict[str, int] = {}
        self._seq = 0
        self._guard = threading.Lock()
        self.addFilter(ComponentFilter())
        self.setFormatter(logging.Formatter("%(levelname).1s %(name)s: %(message)s"))

    def new_run(self, component: str, run: int) -> None:
        """Lines from now on belong to run ``run`` (the component's restart count)."""
        with self._guard:
            self._runs[component] = run

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:
            self.handleError(record)
            return
        component = getattr(record, "component", "") or component_of(record)
        with self._guard:
            self._seq += 1
            buffer = self._buffers.get(component)
            if buffer is None:
                buffer = self._buffers[component] = collections.deque(maxlen=self.capacity)
            buffer.append(Line(self._seq, record.created, self._runs.get(component, 0), text))

    def lines(self, component: str, *, run: int | None = None, after: int = 0) -> list[Line]:
        with self._guard:
            buffer = self._buffers.get(component, ())
            return [ln for ln in buffer if ln.seq > after and (run is None or ln.run == run)]

    async def read(
        self,
        component: str,
        *,
        run: int | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
        limit_bytes: int | None = None,
        poll: float = 0.2,
    ) -> AsyncIterator[bytes]:
        """Lines of ``component`` (of one run when ``run`` is given) as bytes, as ``pods/log`` serves them."""
        selected = self.lines(component, run=run)
        if since is not None:
            selected = [ln for ln in selected if ln.time >= since]
        if tail_lines is not None:
            selected = selected[-tail_lines:] if tail_lines > 0 else []
        budget = limit_bytes
        last = self._seq
        while True:
            for line in selected:
                last = max(last, line.seq)
                data = _render(line, timestamps)
                if budget is not None:
                    if budget <= 0:
                        return
                    data = data[:budget]
                    budget -= len(data)
                yield data
            if not follow:
                return
            await asyncio.sleep(poll)
            selected = self.lines(component, run=run, after=last)


def _render(line: Line, timestamps: bool) -> bytes:
    text = line.text + "\n"
    if timestamps:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(line.time))
        text = f"{stamp}.{int(line.time % 1 * 1e9):09d}Z {text}"
    return text.encode()


def configure(*, level: int = logging.INFO, stream_format: str = FORMAT) -> LogBuffers:
    """Process-wide logging for ``kbox serve``: lines to stderr (the log file when detached) with their
    component, and into the in-memory buffers the mirror pods serve."""
    root = logging.getLogger()
    root.setLevel(level)
    stream = logging.StreamHandler()
    stream.addFilter(ComponentFilter())
    stream.setFormatter(logging.Formatter(stream_format))
    root.addHandler(stream)
    buffers = LogBuffers(level=level)
    root.addHandler(buffers)
    return buffers
