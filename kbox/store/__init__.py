"""The revisioned key-value store with watch that replaces etcd (see ``interface.py``).

``open_store(settings)`` picks the backend: SQLite when ``settings.path`` is set, memory otherwise.
"""

from __future__ import annotations

from kbox.config import StoreSettings
from kbox.store.interface import Store


def open_store(settings: StoreSettings) -> Store:
    """A new, not yet started store for ``settings``."""
    if settings.path is None:
        from kbox.store.memory import MemoryStore

        return MemoryStore(settings)
    from kbox.store.sqlite import SqliteStore

    return SqliteStore(settings)
