"""The retained window of past events, in revision order.

It serves three needs: a watch that starts at an older revision replays from it, a paginated list
reconstructs the state as of its first page's revision from it, and compaction decides what the database
may forget from it. It is trimmed by count on every append and by age by the compactor.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Callable

from kbox.store.interface import Event, KeyValue


class History:
    """Events with revision greater than :attr:`compact_revision`, oldest first."""

    def __init__(self, *, max_events: int, compact_revision: int = 0) -> None:
        self.max_events = max_events
        self.compact_revision = compact_revision
        # A list with a moving start is cheaper to trim and to bisect than a deque.
        self._events: list[Event] = []
        self._start = 0
        # (last revision of a commit, loop time of that commit): the age of history, one entry per batch.
        self._times: collections.deque[tuple[int, float]] = collections.deque()

    def __len__(self) -> int:
        return len(self._events) - self._start

    @property
    def oldest_revision(self) -> int:
        """Revision of the oldest retained event, or 0 if none."""
        return self._events[self._start].revision if len(self) else 0

    def append(self, events: list[Event], *, now: float) -> None:
        """Add one committed batch and trim to ``max_events``."""
        if not events:
            return
        self._events.extend(events)
        self._times.append((events[-1].revision, now))
        excess = len(self) - self.max_events
        if excess > 0:
            self._drop(excess)

    def trim_older_than(self, cutoff: float) -> None:
        """Forget batches committed before loop time ``cutoff``."""
        revision = 0
        while self._times and self._times[0][1] < cutoff:
            revision = self._times.popleft()[0]
        if revision:
            self.trim_to(revision)

    def trim_to(self, revision: int) -> None:
        """Forget events at or below ``revision``."""
        if revision <= self.compact_revision:
            return
        index = bisect.bisect_right(self._events, revision, lo=self._start, key=_revision_of)
        self._drop(index - self._start)
        self.compact_revision = max(self.compact_revision, revision)

    def since(self, revision: int, keep: Callable[[str], bool] | None = None) -> list[Event]:
        """Events after ``revision`` (which must be at or above :attr:`compact_revision`), filtered by key."""
        index = bisect.bisect_right(self._events, revision, lo=self._start, key=_revision_of)
        tail = self._events[index:]
        if keep is None:
            return tail
        return [event for event in tail if keep(event.key)]

    def state_at(self, revision: int, keep: Callable[[str], bool]) -> dict[str, KeyValue | None]:
        """For keys changed after ``revision``: their value as of ``revision`` (``None`` = absent then).

        The first event after ``revision`` for a key carries the value it replaced, which is the value
        at ``revision``; keys with no later event are as they are now.
        """
        state: dict[str, KeyValue | None] = {}
        index = bisect.bisect_right(self._events, revision, lo=self._start, key=_revision_of)
        for event in self._events[index:]:
            key = event.key
            if key in state or not keep(key):
                continue
            if event.prev_value is None:
                state[key] = None
            else:
                state[key] = KeyValue(key, event.prev_value, event.create_revision, event.prev_revision)
        return state

    def _drop(self, count: int) -> None:
        if count <= 0:
            return
        self._start += count
        self.compact_revision = max(self.compact_revision, self._events[self._start - 1].revision)
        if self._start > 4096 and self._start * 2 > len(self._events):
            del self._events[: self._start]
            self._start = 0
        while self._times and self._times[0][0] <= self.compact_revision:
            self._times.popleft()


def _revision_of(event: Event) -> int:
    return event.revision
