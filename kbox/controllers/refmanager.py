"""Claiming objects by controller reference (client-go's ``ControllerRefManager`` in shape), shared by
the ReplicaSet, Deployment, DaemonSet, StatefulSet and Job controllers.

An owner (a ReplicaSet, say) *claims* the objects of a kind (its pods) in its namespace:

- one whose controller reference names the owner's uid is its own while its labels match the owner's
  selector (or the owner is being deleted: the garbage collector needs the reference); when they stopped
  matching it is *released*, its reference to the owner removed;
- an orphan (no controller reference) that matches, is not being deleted and that the caller accepts is
  *adopted*, a controller reference added, but only after a fresh GET proved the owner still exists with
  the uid the cache showed and is not being deleted (a stale cache must never adopt for a ghost);
- an object some other controller owns is never touched.

Both writes are merge patches of ``metadata.ownerReferences`` carrying the resourceVersion the cache saw
as a precondition, so they never overwrite a change they did not see; a conflict or a vanished object
is skipped (its next event brings the owner's key back), as upstream does.

:func:`owner_keys` is the other half: which owners an event about such an object concerns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kbox.api import selectors
from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.interface import Client, Obj, Resource, StatusError
from kbox.controllers.meta import controller_ref

Selector = selectors.LabelSelector
SelectorOf = Callable[[Obj], Selector | None]


def owner_keys(
    obj: Obj,
    *,
    kind: str,
    group: str,
    owners: informers.SharedInformer,
    selector_of: SelectorOf,
    orphans: bool = True,
) -> list[str]:
    """The keys of the owners an event about ``obj`` concerns: its controller's, when that is of
    ``kind`` in API ``group`` (none when another kind controls it); for an orphan that is not being
    deleted (and ``orphans``), every owner in its namespace whose selector matches it, as any of them
    may adopt it."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace", "")
    ref = controller_ref(obj)
    if ref is not None:
        if ref.get("kind") == kind and str(ref.get("apiVersion", "")).startswith(f"{group}/"):
            return [f"{namespace}/{ref.get('name', '')}"]
        return []
    if not orphans or metadata.get("deletionTimestamp"):
        return []
    labels = metadata.get("labels") or {}
    return [
        cache.key_of(owner)
        for owner in owners.indexer.by_index(cache.NAMESPACE, namespace)
        if (selector := selector_of(owner)) is not None and selector.matches(labels)
    ]


async def claim(
    client: Client,
    resource: Resource,
    candidates: Iterable[Obj],
    *,
    owner: Obj,
    owner_resource: Resource,
    owner_ref: Obj,
    selector: Selector,
    adoptable: Callable[[Obj], bool] | None = None,
    adopt_changes: Callable[[Obj], Obj] | None = None,
) -> list[Obj]:
    """The objects of ``resource`` among ``candidates`` (the cached ones in the owner's namespace, or
    those an index picked) that ``owner`` controls after releasing its own that stopped matching
    ``selector`` and adopting matching orphans (with ``owner_ref``) that ``adoptable`` accepts; see the
    module docstring. ``adopt_changes(obj)`` adds metadata to an adoption's patch (the Job controller's
    tracking finalizer). Owned objects come first, as cached, then the adopted ones, as written."""
    uid = owner["metadata"]["uid"]
    deleting = bool(owner["metadata"].get("deletionTimestamp"))
    owned: list[Obj] = []
    orphans: list[Obj] = []
    for obj in candidates:
        ref = controller_ref(obj)
        labels = obj["metadata"].get("labels") or {}
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if deleting or selector.matches(labels):
                owned.append(obj)
            else:
                await release(client, resource, obj, owner)
        elif (
            not deleting
            and selector.matches(labels)
            and not obj["metadata"].get("deletionTimestamp")
            and (adoptable is None or adoptable(obj))
        ):
            orphans.append(obj)
    if orphans and await can_adopt(client, owner_resource, owner):
        for obj in orphans:
            changes = adopt_changes(obj) if adopt_changes is not None else None
            adopted = await adopt(client, resource, obj, owner_ref, changes=changes)
            if adopted is not None:
                owned.append(adopted)
    return owned


async def can_adopt(client: Client, owner_resource: Resource, owner: Obj) -> bool:
    """A fresh GET: the owner exists with the uid the cache showed and is not being deleted
    (client-go's ``RecheckDeletionTimestamp``)."""
    metadata = owner["metadata"]
    try:
        fresh = await client.get(owner_resource, metadata["name"], namespace=metadata.get("namespace"))
    except StatusError as exc:
        if exc.code == 404:
            return False
        raise
    fresh_meta = fresh["metadata"]
    return bool(fresh_meta.get("uid") == metadata["uid"] and not fresh_meta.get("deletionTimestamp"))


async def adopt(
    client: Client, resource: Resource, obj: Obj, owner_ref: Obj, *, changes: Obj | None = None
) -> Obj | None:
    """Make ``owner_ref`` the controller of ``obj`` (replacing any reference to the same uid); the
    object as written, ``None`` when it is gone or changed since the cache saw it."""
    refs = [*refs_without(obj, owner_ref["uid"]), owner_ref]
    return await patch_owner_refs(client, resource, obj, refs, changes=changes)


async def release(client: Client, resource: Resource, obj: Obj, owner: Obj) -> Obj | None:
    """Remove ``owner``'s references from ``obj``; ``None`` when it is gone or changed meanwhile."""
    return await patch_owner_refs(client, resource, obj, refs_without(obj, owner["metadata"]["uid"]))


def refs_without(obj: Obj, uid: str) -> list[Obj]:
    """``obj``'s owner references, copied, without those to ``uid``."""
    return [dict(r) for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]


async def patch_owner_refs(
    client: Client, resource: Resource, obj: Obj, refs: list[Obj], *, changes: Obj | None = None
) -> Obj | None:
    """Set ``obj``'s owner references to ``refs`` (none: the field removed) and any other metadata
    ``changes``, conditional on the resourceVersion the cache saw; ``None`` on a 404 or 409."""
    metadata = obj["metadata"]
    patch = {
        "metadata": {
            **(changes or {}),
            "ownerReferences": refs or None,
            "resourceVersion": metadata.get("resourceVersion"),
        }
    }
    try:
        result: Obj = await client.patch(
            resource, metadata["name"], patch, namespace=metadata.get("namespace")
        )
    except StatusError as exc:
        if exc.code in (404, 409):
            return None
        raise
    return result
