"""The store contract: what kbox's apiserver needs from etcd, and nothing more.

Keys are strings such as ``/registry/pods/default/web-1``; values are opaque bytes (the apiserver stores
JSON). One global integer revision counts every write; it is what Kubernetes shows as
``metadata.resourceVersion``. The apiserver only ever talks to this interface, so a backend on a real
distributed KV (etcd) can replace the SQLite one without touching it.

Contract, shared by every backend (one test suite runs against all of them):

- A write returns only after it is durable in the backend (``Durable before acknowledged``).
- Watch events arrive in revision order, each exactly once, starting right after the revision asked for.
- A watch or a list page that needs history older than the retained window raises :class:`Expired`;
  the apiserver turns that into ``410 Gone`` and clients re-list.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

_T = TypeVar("_T")

Value = bytes | Callable[[int], bytes]
"""A value to write: bytes, or a function of the revision the write gets (so an object can carry its own
resourceVersion inside its bytes and readers never re-encode it)."""


class EventType(enum.StrEnum):
    """The kinds of watch event, spelled as the Kubernetes watch API spells them."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One live key: its value and the revisions that created and last modified it."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class Event:
    """One change, shared by every watcher that sees it.

    An event is created once per write and handed to all watchers by reference; :meth:`encoded` memoizes
    any serialization of it (the apiserver's watch frame, per media type), so N watchers cost one
    encoding, as kube-apiserver's caching object does. For DELETED, ``value`` is the last value the key
    had. ``prev_value`` is the value before this change (``None`` for ADDED and for bookmarks).
    """

    __slots__ = (
        "_encoded",
        "create_revision",
        "key",
        "prev_revision",
        "prev_value",
        "revision",
        "type",
        "value",
    )

    def __init__(
        self,
        type: EventType,
        key: str,
        value: bytes,
        revision: int,
        *,
        create_revision: int = 0,
        prev_value: bytes | None = None,
        prev_revision: int = 0,
    ) -> None:
        self.type = type
        self.key = key
        self.value = value
        self.revision = revision
        self.create_revision = create_revision
        self.prev_value = prev_value
        self.prev_revision = prev_revision
        self._encoded: dict[str, Any] | None = None

    def encoded(self, form: str, encode: Callable[[Event], _T]) -> _T:
        """Return ``encode(self)``, computed on first use for this ``form`` and shared afterwards.

        Forms are the serialisations (watch frame per media type) and views (the decoded object) that
        consumers derive from an event; what is cached must be treated as read-only.
        """
        cache = self._encoded
        if cache is None:
            cache = self._encoded = {}
        try:
            data: _T = cache[form]
        except KeyError:
            data = cache[form] = encode(self)
        return data

    def __repr__(self) -> str:
        return f"Event({self.type}, {self.key!r}, rev={self.revision})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.type, self.key, self.value, self.revision, self.prev_value) == (
            other.type,
            other.key,
            other.value,
            other.revision,
            other.prev_value,
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ListResult:
    """One page of a list: items in key order, the revision the page is consistent at, and the token
    for the next page (``None`` when this is the last page)."""

    items: list[KeyValue]
    revision: int
    continue_token: str | None = None


class Watch(abc.ABC):
    """An open watch: an async iterator of events, closed by :meth:`close` or by the store.

    Iteration ends normally when the watch is closed by its owner or the store shuts down; it raises
    :class:`Expired` when the watcher fell too far behind (its bounded queue overflowed) and must re-list.
    """

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[Event]: ...

    @abc.abstractmethod
    async def __anext__(self) -> Event: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Stop delivering events; a pending ``__anext__`` ends the iteration."""


Router = Callable[[Event], Iterable[str]]
"""The values an event concerns for one kind of routed watch (for instance the node names of the pod
before and after the change); the same function object for every watcher it routes."""
Route = tuple[Router, str]


class Store(abc.ABC):
    """An etcd-like revisioned key-value store with watch. See the module docstring for the contract."""

    @property
    @abc.abstractmethod
    def revision(self) -> int:
        """The revision of the newest acknowledged write (0 for an empty store)."""

    @property
    @abc.abstractmethod
    def compact_revision(self) -> int:
        """History at or below this revision is gone: watches and list pages must start after it."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the backend, load state and start background tasks (commit, compaction, bookmarks)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish acknowledged work, end every watch and release the backend."""

    def problem(self) -> str | None:
        """Why the store is not healthy right now, or ``None`` (the ``etcd`` health check)."""
        return None

    def fatal(self) -> bool:
        """Whether the store can no longer work at all (its ``problem`` will not clear by itself)."""
        return False

    @abc.abstractmethod
    async def get(self, key: str) -> KeyValue | None:
        """The live value of ``key``, or ``None``."""

    @abc.abstractmethod
    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        continue_token: str | None = None,
        revision: int = 0,
    ) -> ListResult:
        """Keys under ``prefix`` in key order.

        ``limit`` (0 = all) caps the page; the returned token continues at the same revision, so later
        pages are consistent with the first even under concurrent writes. ``revision`` (0 = newest) asks
        for the state as of an older revision still inside the retained history.
        """

    @abc.abstractmethod
    async def create(self, key: str, value: Value) -> KeyValue:
        """Create ``key``; raises :class:`KeyExists` if it is live."""

    @abc.abstractmethod
    async def update(self, key: str, value: Value, *, expected_revision: int | None = None) -> KeyValue:
        """Replace ``key``'s value. With ``expected_revision``, only if its mod revision still equals it
        (compare-and-swap), else :class:`Conflict`. Raises :class:`KeyNotFound` if the key is not live."""

    @abc.abstractmethod
    async def delete(self, key: str, *, expected_revision: int | None = None) -> KeyValue:
        """Delete ``key`` and return its last value with ``mod_revision`` set to the deletion revision."""

    @abc.abstractmethod
    def watch(
        self,
        prefix: str,
        *,
        after_revision: int | None = None,
        bookmarks: bool = False,
        queue_size: int | None = None,
        accept: Callable[[Event], bool] | None = None,
        route: Route | None = None,
    ) -> Watch:
        """Watch keys under ``prefix`` for changes after ``after_revision`` (``None``: from now).

        Raises :class:`Expired` at once if ``after_revision`` is older than the retained history. With
        ``bookmarks``, quiet watchers get periodic BOOKMARK events carrying the current revision.
        ``accept``: only events it returns True for are buffered (decided as the event is published, so
        a watch of a few keys under a busy prefix neither wakes for nor overflows with the others).
        ``route``: ``(router, value)``: the watch only ever wants events whose ``router(event)`` values
        include ``value`` (a pod watch pinned to ``spec.nodeName=n``), so the store asks the router once
        per event for all such watchers and looks them up, instead of asking every watcher's ``accept``.
        """

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Drop history at or below ``revision`` (never current state)."""


__all__ = [
    "Event",
    "EventType",
    "KeyValue",
    "ListResult",
    "Route",
    "Router",
    "Store",
    "Value",
    "Watch",
]
