"""Settings of a kbox cluster, one small dataclass per area, every field documented.

Only the store's settings exist so far; the apiserver, kubelet and the rest add theirs here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Synchronous = Literal["normal", "full", "extra"]


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """How the store keeps data and history."""

    path: Path | None = None
    """SQLite database file; ``None`` keeps everything in memory (fixtures, simulations)."""

    synchronous: Synchronous = "full"
    """SQLite ``synchronous`` in WAL mode. ``full`` (default) fsyncs the WAL on every commit: an acknowledged
    write survives SIGKILL and power loss. ``normal`` survives SIGKILL but may lose the last commits on
    power loss. ``extra`` also fsyncs the directory after a checkpoint. Group commit amortises the fsync."""

    history_max_events: int = 50_000
    """At most this many past events are kept for watch resume and consistent list pages."""

    history_seconds: float = 300.0
    """Events older than this are compacted (Kubernetes compacts etcd every five minutes)."""

    compact_interval: float = 30.0
    """How often the compactor trims history and deletes superseded rows from the database."""

    bookmark_interval: float = 5.0
    """How often watchers that asked for bookmarks get one, when their revision fell behind."""

    watch_queue_size: int = 1024
    """Events buffered per watcher; a watcher that falls further behind is closed with ``Expired``."""

    max_batch: int = 4096
    """Most writes grouped into one transaction by group commit."""
