"""The in-memory store: the log store with no persister.

For the embedded test fixture and simulations, where start-up time matters and durability does not.
A write is applied as soon as it is accepted; everything else (revisions, history, watch, pagination,
compaction) is the same code as the durable store, and the same test suite runs against both.
"""

from __future__ import annotations

from kbox.config import StoreSettings
from kbox.store.log import LogStore


class MemoryStore(LogStore):
    """A :class:`kbox.store.interface.Store` that lives and dies with the process."""

    def __init__(self, settings: StoreSettings | None = None) -> None:
        super().__init__(settings or StoreSettings(), None)
