"""The garbage collector: delete objects whose owners are gone, and carry out the foreground and orphan
propagation policies a delete asked for (pkg/controller/garbagecollector in shape).

**The graph is the informers' caches.** The collector keeps one shared informer on every type it is
given (stored, listable, deletable: see :func:`served_kinds`; Events are left out, as upstream leaves
them out) with two indexes: objects by their owners' UIDs (``cache.OWNER_UID``, the owner → dependents
edges) and by their own UID. An owner reference names its owner by apiVersion, kind, name and UID; the
kind maps to a type through the table given at construction (group and kind; the version is ignored, as
any served version names the same objects). References to kinds not in the table are left alone.

**Keys are objects of any type**, ``<plural>.<group>|<ns>/<name>``. An event enqueues the object itself
when it has owners or is being deleted, its dependents when it is deleted, and its owners that are being
deleted in the foreground when it goes away or its references change (they may be waiting for it).
``sync(key)`` then looks at the object as the cache has it now:

* **Deleting with the ``orphan`` finalizer:** remove the reference to it from every dependent, then the
  finalizer; the object goes (if nothing else holds it) and its dependents stay.
* **Deleting with the ``foregroundDeletion`` finalizer:** enqueue the dependents not yet deleting (their
  own sync deletes them, seeing this owner *waiting*); once no dependent with ``blockOwnerDeletion``
  on its reference to this owner remains (terminating ones count: they still exist), remove the finalizer.
* **Not deleting, with owner references:** classify each owner as *solid* (exists with that UID),
  *dangling* (404, or the name now has another UID: confirmed by a live GET, never on the cache's word
  alone, and remembered, since a UID never comes back) or *waiting* (solid but deleting in the
  foreground). With a solid owner left, the references to dangling and waiting owners are removed (an
  object with several owners only loses the missing ones). Without one, the object is deleted with a UID
  precondition: in the foreground if an owner is waiting and it has dependents of its own (so the chain
  blocks: a Deployment waits for its ReplicaSets, which wait for their pods), else as its own
  finalizers say, else in the background.

Everything is read from the current state, so a collector stopped at any point and started again (or a
restarted process) converges: the informers' initial lists enqueue every object with owners, and every
deleting owner with its finalizer still set.

Known limit (shared with upstream): a dependent the caches have not seen yet when its owner is orphaned
or finishes its foreground deletion is handled later as an object with a dangling owner, so it is
deleted rather than orphaned.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.interface import MERGE_PATCH, Client, Obj, Resource, StatusError
from kbox.controllers import base, meta

if TYPE_CHECKING:
    from kbox.api.resource import ResourceDef

_log = logging.getLogger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
UID = "metadata.uid"
"""The collector's second index: objects by their own UID."""
IGNORED = frozenset({("", "events"), ("events.k8s.io", "events")})
"""(group, plural) of the types never collected: upstream's default ``ignoredResources``."""
ABSENT_CACHE_SIZE = 10_000

SOLID, DANGLING, WAITING = "solid", "dangling", "waiting"


@dataclass(frozen=True)
class ResourceKind:
    """A served resource type and the kind its objects (and owner references to them) carry."""

    resource: Resource
    kind: str


def served_kinds(definitions: Iterable[ResourceDef]) -> list[ResourceKind]:
    """From the apiserver's declarations (``catalog.resources()``, at composition time): every stored type
    that can be listed, watched and deleted, cluster-scoped ones included (they own things too)."""
    needed = {"list", "watch", "delete"}
    return [
        ResourceKind(Resource(d.group, d.version, d.plural, d.namespaced), d.kind)
        for d in definitions
        if d.stored and needed <= set(d.verbs)
    ]


def by_uid(obj: Obj) -> list[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [uid] if uid else []


@dataclass(frozen=True)
class _Type:
    resource: Resource
    kind: str
    informer: informers.SharedInformer
    prefix: str

    def key(self, obj: Obj) -> str:
        return f"{self.prefix}|{cache.key_of(obj)}"


class GarbageCollector(base.Controller):
    """Owner references → deletions; see the module docstring."""

    name = "garbagecollector"

    def __init__(
        self,
        factory: informers.InformerFactory,
        kinds: Iterable[ResourceKind],
        client: Client | None = None,
        *,
        ignored: Iterable[tuple[str, str]] = IGNORED,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self._skip = set(ignored)
        self._types: dict[str, _Type] = {}
        self._by_group_kind: dict[tuple[str, str], _Type] = {}
        self._registrations: dict[str, informers.Registration] = {}
        self._live = False  # run() has registered its handlers
        self._gone_kinds: set[tuple[str, str]] = set()
        """(group, kind) of types no longer served (a deleted CRD's): their objects are all gone."""
        for rk in kinds:
            self._add_type(rk, declare=True)
        self._absent: collections.OrderedDict[str, None] = collections.OrderedDict()
        """UIDs of owners a live read proved gone (a UID is never reused), most recent last."""

    def _add_type(self, rk: ResourceKind, *, declare: bool) -> _Type | None:
        resource = rk.resource
        if (resource.group, resource.plural) in self._skip:
            return None
        prefix = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
        if prefix in self._types:
            return None  # another version of a type already watched
        # Types known when built are declared (run() waits for them); later ones join a running collector.
        shared = self.informer(resource, enqueue=False) if declare else self.factory.informer(resource)
        shared.add_index(cache.OWNER_UID, cache.by_owner_uid)
        shared.add_index(UID, by_uid)
        t = _Type(resource, rk.kind, shared, prefix)
        self._types[prefix] = t
        self._by_group_kind[(resource.group, rk.kind)] = t
        self._gone_kinds.discard((resource.group, rk.kind))
        return t

    def add_kind(self, rk: ResourceKind) -> None:
        """Collect a type served since the collector was built (a CRD's kind); no-op if known."""
        t = self._add_type(rk, declare=False)
        if t is None:
            return
        _log.info("%s: watching %s", self.name, t.prefix)
        if self._live:
            self._registrations[t.prefix] = t.informer.add_handler(*self._graph_handlers(t))
            self.factory.start()

    async def remove_kind(self, resource: Resource) -> None:
        """Stop collecting a type that is no longer served; references to it now count as dangling."""
        prefix = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
        t = self._types.pop(prefix, None)
        if t is None:
            return
        self._by_group_kind.pop((t.resource.group, t.kind), None)
        self._gone_kinds.add((t.resource.group, t.kind))
        registration = self._registrations.pop(prefix, None)
        if registration is not None:
            registration.remove()
        self._watched = [w for w in self._watched if w[0] is not t.informer]
        await self.factory.discard(t.informer)
        _log.info("%s: stopped watching %s", self.name, prefix)

    @property
    def kinds(self) -> list[tuple[str, str]]:
        """(group, plural) of every collected type."""
        return [(t.resource.group, t.resource.plural) for t in self._types.values()]

    # -- events ------------------------------------------------------------------------------

    async def run(self, *, workers: int = 1, ready: asyncio.Event | None = None) -> None:
        if self.queue.shutting_down:
            self.queue = self._new_queue()  # before the handlers replay the caches into it
        self._registrations = {
            prefix: t.informer.add_handler(*self._graph_handlers(t)) for prefix, t in self._types.items()
        }
        self._live = True
        try:
            await super().run(workers=workers, ready=ready)
        finally:
            self._live = False
            for registration in self._registrations.values():
                registration.remove()
            self._registrations = {}

    def _graph_handlers(self, t: _Type) -> tuple[informers.OnAdd, informers.OnUpdate, informers.OnDelete]:
        def on_add(obj: Obj) -> None:
            metadata = obj["metadata"]
            if metadata.get("ownerReferences") or metadata.get("deletionTimestamp"):
                self.queue.add(t.key(obj))

        def on_update(old: Obj, new: Obj) -> None:
            om, nm = old["metadata"], new["metadata"]
            refs_changed = om.get("ownerReferences") != nm.get("ownerReferences")
            resync = cache.resource_version_of(old) == cache.resource_version_of(new)
            if (nm.get("ownerReferences") or nm.get("deletionTimestamp")) and (
                refs_changed
                or resync
                or om.get("deletionTimestamp") != nm.get("deletionTimestamp")
                or om.get("finalizers") != nm.get("finalizers")
            ):
                self.queue.add(t.key(new))
            if refs_changed:
                self._enqueue_waiting_owners(old)
                self._enqueue_waiting_owners(new)

        def on_delete(item: Obj | cache.DeletedFinalStateUnknown) -> None:
            obj = cache.deleted_object(item)
            uid = obj["metadata"].get("uid")
            if uid:
                for key in self._dependent_keys(uid):
                    self.queue.add(key)
            self._enqueue_waiting_owners(obj)

        return on_add, on_update, on_delete

    def _enqueue_waiting_owners(self, obj: Obj) -> None:
        metadata = obj["metadata"]
        for ref in metadata.get("ownerReferences") or []:
            found = self._cached_owner(metadata.get("namespace"), ref)
            if found is not None and found[1]["metadata"].get("deletionTimestamp"):
                self.queue.add(found[0].key(found[1]))

    # -- the graph ---------------------------------------------------------------------------

    def _owner_type(self, ref: Obj) -> _Type | None:
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        return self._by_group_kind.get((group, str(ref.get("kind", ""))))

    def _owner_key(self, t: _Type, namespace: str | None, ref: Obj) -> str | None:
        """The owner's cache key, or ``None`` when a cluster-scoped object names a namespaced owner
        (an invalid reference, left alone)."""
        if not t.resource.namespaced:
            return str(ref.get("name", ""))
        if not namespace:
            return None
        return f"{namespace}/{ref.get('name', '')}"

    def _cached_owner(self, namespace: str | None, ref: Obj) -> tuple[_Type, Obj] | None:
        t = self._owner_type(ref)
        if t is None:
            return None
        key = self._owner_key(t, namespace, ref)
        owner = t.informer.indexer.get(key) if key is not None else None
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return t, owner

    def _dependents(self, uid: str) -> list[tuple[_Type, Obj]]:
        return [
            (t, obj)
            for t in self._types.values()
            for obj in t.informer.indexer.by_index(cache.OWNER_UID, uid)
        ]

    def _dependent_keys(self, uid: str) -> list[str]:
        return [
            f"{t.prefix}|{key}"
            for t in self._types.values()
            for key in t.informer.indexer.index_keys(cache.OWNER_UID, uid)
        ]

    def dependents(self, owner: Obj) -> list[Obj]:
        """The cached objects that name ``owner`` (by UID) in their owner references."""
        return [obj for _, obj in self._dependents(owner["metadata"].get("uid", ""))]

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        prefix, _, cache_key = key.partition("|")
        t = self._types.get(prefix)
        if t is None:
            return
        obj = t.informer.indexer.get(cache_key)
        if obj is None:
            return
        metadata = obj["metadata"]
        if metadata.get("deletionTimestamp"):
            finalizers = metadata.get("finalizers") or []
            if ORPHAN in finalizers:
                await self._orphan_dependents(t, obj)
            elif FOREGROUND in finalizers:
                await self._delete_dependents(t, obj)
            return
        if metadata.get("ownerReferences"):
            await self._collect(t, obj)

    async def _orphan_dependents(self, t: _Type, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        dependents = self._dependents(uid)
        results = await asyncio.gather(
            *(self._remove_refs(dt, dep, {uid}) for dt, dep in dependents), return_exceptions=True
        )
        _raise_first(results)
        if dependents:
            _log.info("%s: orphaned %d dependents of %s", self.name, len(dependents), t.key(owner))
        await self._remove_finalizer(t, owner, ORPHAN)

    async def _delete_dependents(self, t: _Type, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        blocking = 0
        for dt, dep in self._dependents(uid):
            if _blocks(dep, uid):
                blocking += 1
            if not dep["metadata"].get("deletionTimestamp"):
                self.queue.add(dt.key(dep))
        if blocking:
            _log.debug("%s: %s waits for %d blocking dependents", self.name, t.key(owner), blocking)
            return
        await self._remove_finalizer(t, owner, FOREGROUND)

    async def _collect(self, t: _Type, obj: Obj) -> None:
        metadata = obj["metadata"]
        states: dict[str, list[str]] = {SOLID: [], DANGLING: [], WAITING: []}
        for ref in metadata.get("ownerReferences") or []:
            states[await self._owner_state(metadata.get("namespace"), ref)].append(ref.get("uid", ""))
        if states[SOLID]:
            gone = set(states[DANGLING] + states[WAITING])
            if gone:
                await self._remove_refs(t, obj, gone)
            return
        finalizers = metadata.get("finalizers") or []
        if states[WAITING] and self._dependent_keys(metadata.get("uid", "")):
            policy = "Foreground"
        elif ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        _log.info("%s: deleting %s (%s), its owners are gone or deleting", self.name, t.key(obj), policy)
        await meta.delete_exact(self.client, t.resource, obj, propagation_policy=policy)

    async def _owner_state(self, namespace: str | None, ref: Obj) -> str:
        uid = str(ref.get("uid", ""))
        t = self._owner_type(ref)
        if t is None:
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            if (group, str(ref.get("kind", ""))) in self._gone_kinds:
                return DANGLING  # its type went away (a deleted CRD) and every object with it
            return SOLID  # a kind this collector does not know: never a reason to delete
        if uid in self._absent:
            return DANGLING
        key = self._owner_key(t, namespace, ref)
        if key is None:
            return SOLID
        owner = t.informer.indexer.get(key)
        if owner is None or owner["metadata"].get("uid") != uid:
            # The cache may lag the apiserver: only a live read proves the owner gone.
            try:
                owner = await self.client.get(t.resource, str(ref.get("name", "")), namespace=namespace)
            except StatusError as exc:
                if exc.code != 404:
                    raise
                owner = None
            if owner is None or owner["metadata"].get("uid") != uid:
                self._remember_absent(uid)
                return DANGLING
        owner_meta = owner["metadata"]
        if owner_meta.get("deletionTimestamp") and FOREGROUND in (owner_meta.get("finalizers") or []):
            return WAITING
        return SOLID

    def _remember_absent(self, uid: str) -> None:
        self._absent[uid] = None
        self._absent.move_to_end(uid)
        while len(self._absent) > ABSENT_CACHE_SIZE:
            self._absent.popitem(last=False)

    # -- writes ------------------------------------------------------------------------------

    async def _remove_refs(self, t: _Type, obj: Obj, uids: set[str]) -> None:
        """Drop the owner references to ``uids`` from ``obj`` (a merge patch guarded by its
        resourceVersion; on a conflict, read it again and retry)."""

        def change(current: Obj) -> Obj | None:
            refs = current["metadata"].get("ownerReferences") or []
            keep = [ref for ref in refs if ref.get("uid") not in uids]
            if len(keep) == len(refs):
                return None
            return {"ownerReferences": keep or None}

        await self._patch_metadata(t, obj, change)

    async def _remove_finalizer(self, t: _Type, obj: Obj, finalizer: str) -> None:
        def change(current: Obj) -> Obj | None:
            finalizers = current["metadata"].get("finalizers") or []
            if finalizer not in finalizers:
                return None
            return {"finalizers": [f for f in finalizers if f != finalizer] or None}

        await self._patch_metadata(t, obj, change)

    async def _patch_metadata(self, t: _Type, obj: Obj, change: Any) -> None:
        metadata = obj["metadata"]
        name, namespace, uid = metadata["name"], metadata.get("namespace"), metadata.get("uid")
        current = obj
        for _ in range(3):
            patch = change(current)
            if patch is None:
                return
            patch["resourceVersion"] = current["metadata"].get("resourceVersion")
            try:
                await self.client.patch(
                    t.resource, name, {"metadata": patch}, namespace=namespace, patch_type=MERGE_PATCH
                )
                return
            except StatusError as exc:
                if exc.code == 404:
                    return
                if exc.code != 409:
                    raise
            try:
                current = await self.client.get(t.resource, name, namespace=namespace)
            except StatusError as exc:
                if exc.code == 404:
                    return
                raise
            if current["metadata"].get("uid") != uid:
                return
        raise StatusError(f"{t.key(obj)} kept changing", 409, "Conflict")


def _blocks(dependent: Obj, owner_uid: str) -> bool:
    return any(
        ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion")
        for ref in dependent["metadata"].get("ownerReferences") or []
    )


def _raise_first(results: list[Any]) -> None:
    for result in results:
        if isinstance(result, BaseException):
            raise result
