"""Errors of the store, one hierarchy; the apiserver maps each to a Kubernetes Status.

KeyExists → 409 AlreadyExists, KeyNotFound → 404 NotFound, Conflict → 409 Conflict, Expired → 410 Gone,
StoreClosed → 503, CorruptStore / SchemaTooNew at start-up → a clear message and exit, never a reset.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every store error."""


class KeyExists(StoreError):
    """A create found the key already live."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key already exists: {key}")
        self.key = key


class KeyNotFound(StoreError):
    """An update or delete found no live key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class Conflict(StoreError):
    """A compare-and-swap saw another revision than the caller expected."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"revision conflict on {key}: expected {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class Expired(StoreError):
    """History needed by a watch, a list page or a slow watcher is no longer retained.

    ``compact_revision`` is the oldest revision still usable as a starting point; clients re-list.
    """

    def __init__(self, message: str, *, compact_revision: int) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


class RevisionTooNew(StoreError):
    """A read asked for a revision the store has not reached (kube-apiserver: "Too large resource
    version", 504 with a retry hint)."""


class InvalidContinue(StoreError):
    """A continue token that this store did not issue or that does not match the prefix."""


class StoreClosed(StoreError):
    """The store is not running (not started yet, closing, or failed)."""


class CorruptStore(StoreError):
    """The database file is damaged, or is not a kbox database at all."""


class SchemaTooNew(StoreError):
    """The database was written by a newer kbox; this one refuses to touch it."""
