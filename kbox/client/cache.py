"""The informer's cache: objects of one resource keyed ``ns/name`` (``name`` when cluster-scoped), with
named secondary indexes, in the shape of client-go's ``tools/cache`` ``Indexer``.

An index is a function from an object to the list of values it is filed under (``namespace``, built in;
``spec.nodeName`` for the scheduler and kubelet; owner UIDs for the garbage collector and the ReplicaSet
controller), so ``by_index("spec.nodeName", "node-1")`` answers without scanning every pod. Indexes are
kept up to date on every write by recomputing the function on the old and the new object.

**Objects are stored as given and handed out as they are: they are shared and read-only.** The same dict
is seen by every component that reads the cache, and with the in-process client it is also the object
of the watch event every other watcher received. A caller that wants to change an object copies it first
(``copy.deepcopy``) and writes the copy through the client; the cache changes only when the watch reports
the write. Index functions must not mutate either, and must not raise.

Only the reflector writes (``replace`` after a list; ``add``, ``update``, ``delete`` for watch events).
Everything runs on the event loop, so there are no locks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from kbox.client.interface import Obj

IndexFunc = Callable[[Obj], list[str]]

NAMESPACE = "namespace"
"""The built-in index: objects by ``metadata.namespace`` (cluster-scoped objects are not filed)."""
NODE_NAME = "spec.nodeName"
"""Pods by the node they are bound to; add it with ``add_index(NODE_NAME, by_node_name)``."""
OWNER_UID = "metadata.ownerReferences.uid"
"""Objects by the UIDs of their owners; add it with ``add_index(OWNER_UID, by_owner_uid)``."""


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """A delete the informer did not see happen: the object vanished across a re-list (after a 410 Gone
    or a broken watch). ``obj`` is the last state the cache knew, which may be stale (client-go's
    ``DeletedFinalStateUnknown``). Delete handlers get either this or the deleted object itself."""

    key: str
    obj: Obj


def key_of(obj: Obj | DeletedFinalStateUnknown) -> str:
    """``namespace/name``, or ``name`` for a cluster-scoped object (or a tombstone's key)."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    name: str = metadata.get("name", "")
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str | None, str]:
    """``(namespace, name)`` from a cache key; the namespace is ``None`` for a cluster-scoped key."""
    namespace, sep, name = key.partition("/")
    return (namespace, name) if sep else (None, key)


def deleted_object(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    """The object a delete notification is about, unwrapping a tombstone."""
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def by_namespace(obj: Obj) -> list[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [namespace] if namespace else []


def by_node_name(obj: Obj) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


def by_owner_uid(obj: Obj) -> list[str]:
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [owner["uid"] for owner in owners if owner.get("uid")]


def resource_version_of(obj: Obj) -> str:
    version: str = (obj.get("metadata") or {}).get("resourceVersion", "")
    return version


# ``Indexer.list`` shadows the builtin inside the class body; these aliases keep annotations readable.
_Objs = list[Obj]
_Keys = list[str]


@dataclass(slots=True)
class Changes:
    """What a :meth:`Indexer.replace` changed, for the reflector to announce."""

    added: list[Obj]
    updated: list[tuple[Obj, Obj]]
    """``(old, new)`` for keys whose resourceVersion changed."""
    deleted: list[DeletedFinalStateUnknown]


class Indexer:
    """Objects by key, plus named indexes from value to keys. See the module docstring."""

    def __init__(self, *, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {NAMESPACE: by_namespace}
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE: {}}
        self.resource_version = ""
        """The revision the cache is known to be current at: set by ``replace``, advanced by the reflector
        with each watch event and bookmark."""
        for name, fn in (indexers or {}).items():
            self.add_index(name, fn)

    # -- indexes -----------------------------------------------------------------------------

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Maintain index ``name`` from now on, built at once over the objects already cached.

        Adding the same function again under the same name is a no-op (several components sharing an
        informer may each ask for ``spec.nodeName``); another function under a taken name is an error.
        """
        existing = self._indexers.get(name)
        if existing is not None:
            if existing is fn:
                return
            raise ValueError(f"index {name!r} already exists with another function")
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        self._indices[name] = index
        for key, obj in self._items.items():
            for value in fn(obj):
                index.setdefault(value, set()).add(key)

    @property
    def indexes(self) -> _Keys:
        return list(self._indexers)

    # -- reads -------------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        """The cached object at ``key`` (shared, read-only), or ``None``."""
        return self._items.get(key)

    def list(self) -> _Objs:
        """Every cached object (shared, read-only), in no particular order."""
        return list(self._items.values())

    def keys(self) -> _Keys:
        return list(self._items)

    def by_index(self, index: str, value: str) -> _Objs:
        """The objects filed under ``value`` in ``index``; ``KeyError`` for an unknown index."""
        keys = self._indices[index].get(value)
        if not keys:
            return []
        items = self._items
        return [items[key] for key in keys]

    def index_keys(self, index: str, value: str) -> _Keys:
        """The keys filed under ``value`` in ``index``."""
        return list(self._indices[index].get(value, ()))

    def index_values(self, index: str) -> _Keys:
        """Every value ``index`` currently files objects under."""
        return list(self._indices[index])

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    # -- writes (the reflector's) ------------------------------------------------------------

    def add(self, obj: Obj) -> Obj | None:
        """Store ``obj`` under its key (replacing any object there); return the one it replaced."""
        key = key_of(obj)
        old = self._items.get(key)
        self._items[key] = obj
        self._reindex(key, old, obj)
        return old

    def update(self, obj: Obj) -> Obj | None:
        """The same as :meth:`add`: the cache does not care whether the key was there before."""
        return self.add(obj)

    def delete(self, obj_or_key: Obj | str) -> Obj | None:
        """Remove the object at the key (of ``obj``); return what was there, or ``None``."""
        key = obj_or_key if isinstance(obj_or_key, str) else key_of(obj_or_key)
        old = self._items.pop(key, None)
        if old is not None:
            self._reindex(key, old, None)
        return old

    def replace(self, objects: Iterable[Obj], resource_version: str) -> Changes:
        """Make the cache hold exactly ``objects`` (a fresh list) as of ``resource_version``.

        Returns what changed: new keys, keys whose resourceVersion differs, and keys that vanished (as
        tombstones carrying the last known object). Unchanged objects keep their old dict.
        """
        old_items = self._items
        items: dict[str, Obj] = {}
        added: list[Obj] = []
        updated: list[tuple[Obj, Obj]] = []
        for obj in objects:
            key = key_of(obj)
            old = old_items.get(key)
            if old is None:
                added.append(obj)
            elif resource_version_of(old) != resource_version_of(obj) or not resource_version_of(obj):
                updated.append((old, obj))
            else:
                obj = old
            items[key] = obj
        deleted = [DeletedFinalStateUnknown(key, old) for key, old in old_items.items() if key not in items]
        self._items = items
        self._rebuild()
        self.resource_version = resource_version
        return Changes(added, updated, deleted)

    # -- internals ---------------------------------------------------------------------------

    def _reindex(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            before = fn(old) if old is not None else []
            after = fn(new) if new is not None else []
            if before == after:
                continue
            for value in before:
                if value not in after:
                    keys = index.get(value)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del index[value]
            for value in after:
                index.setdefault(value, set()).add(key)

    def _rebuild(self) -> None:
        for name, fn in self._indexers.items():
            index: dict[str, set[str]] = {}
            for key, obj in self._items.items():
                for value in fn(obj):
                    index.setdefault(value, set()).add(key)
            self._indices[name] = index
