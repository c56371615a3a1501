"""ControllerRevisions: the template history of DaemonSets and StatefulSets (pkg/controller/history in
shape), shared by both controllers.

A ControllerRevision is an immutable snapshot: ``data`` holds what the parent's spec looked like (for both
kinds a strategic merge patch ``{"spec": {"template": {..., "$patch": "replace"}}}``, which is what
``kubectl rollout history`` shows and ``kubectl rollout undo`` patches back onto the parent), ``revision``
orders the snapshots. A revision belongs to its parent through a controller owner reference and carries
the parent's template labels, so listing revisions by the parent's selector finds them (kubectl does so).

The name is ``<parent>-<hash>``; the hash is a stable function of what is snapshotted plus the parent's
``status.collisionCount``. When a different snapshot already owns the name (a hash collision), the
count is bumped and the next hash tried; the caller records the count in its status so the names stay
stable afterwards. Reusing an old template does not create a new revision: the old one gets the next
revision number (that is how ``rollout undo`` shows as a new revision).

Everything here is a pure function or one write through the client; the controllers decide when.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from kbox.client.interface import CONTROLLERREVISIONS, Client, Obj, StatusError
from kbox.controllers import meta
from kbox.controllers.meta import controller_ref, epoch

REVISION_HASH_LABEL = "controller-revision-hash"
"""On pods of DaemonSets and StatefulSets: which revision made them (DaemonSet revisions carry it too)."""
HISTORY_HASH_LABEL = "controller.kubernetes.io/hash"
"""On StatefulSet revisions: the hash of their data (pkg/controller/history's label)."""

MAX_NAME_LENGTH = 253
MAX_COLLISIONS = 100
"""Name collisions tried by one :func:`create_revision` before giving up (each needs a distinct hash)."""

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


class RevisionCollision(Exception):
    """Every name tried was taken by another snapshot."""


# -- hashing and naming ------------------------------------------------------------------------------


def hash_of(value: Any, collision_count: int = 0) -> str:
    """A short, stable, DNS-safe hash of a JSON value (key order does not matter): FNV-1a 32 over its
    sorted JSON and the collision count, the decimal digits spelled in a vowel-free alphabet, as
    Kubernetes spells its template hashes (so no hash reads as a word)."""
    data = msgspec.json.encode(value, order="sorted")
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    digest = _FNV_OFFSET
    for byte in data:
        digest = ((digest ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return "".join(_SAFE_ALPHABET[int(ch) % len(_SAFE_ALPHABET)] for ch in str(digest))


def hash_template(template: Obj, collision_count: int = 0) -> str:
    """The hash of a pod template, without any ``controller-revision-hash`` label it already carries."""
    clean = copy.deepcopy(template)
    labels = (clean.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(REVISION_HASH_LABEL, None)
    return hash_of(clean, collision_count)


def revision_name(parent_name: str, hash_text: str) -> str:
    """``<parent>-<hash>``, the parent's part cut so the name fits in 253 characters."""
    prefix = parent_name[: MAX_NAME_LENGTH - len(hash_text) - 1]
    return f"{prefix}-{hash_text}"


def template_patch(parent: Obj) -> Obj:
    """What a revision of ``parent`` stores: its pod template as a strategic merge patch that replaces
    the whole template (kubectl's ``rollout undo`` applies ``data`` as such a patch). Keys are sorted at
    every level, as Go's encoder writes a map, so the served bytes are those kubectl computes from the
    parent when it checks whether a revision is the current one ("skipped rollback")."""
    template = dict((parent.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    result: Obj = _sorted_keys({"spec": {"template": template}})
    return result


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def template_of(revision: Obj) -> Obj:
    """The pod template a revision made by :func:`template_patch` holds (``$patch`` removed)."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    result: Obj = template
    return result


# -- building ----------------------------------------------------------------------------------------


def owner_reference(parent: Obj, kind: str) -> Obj:
    return meta.owner_reference(parent, api_version="apps/v1", kind=kind)


def new_revision(
    parent: Obj,
    *,
    kind: str,
    data: Obj,
    number: int,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    """A ControllerRevision body for ``parent`` (of ``kind``) without a name: :func:`create_revision`
    names it. ``labels`` default to the parent's template labels, so its selector finds the revision."""
    if labels is None:
        labels = ((parent.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
    metadata: Obj = {
        "namespace": parent["metadata"]["namespace"],
        "labels": dict(labels),
        "ownerReferences": [owner_reference(parent, kind)],
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": metadata,
        "data": copy.deepcopy(data),
        "revision": number,
    }


async def create_revision(
    client: Client,
    parent: Obj,
    revision: Obj,
    *,
    collision_count: int = 0,
    hash_fn: Callable[[int], str] | None = None,
    hash_label: str = REVISION_HASH_LABEL,
) -> tuple[Obj, int]:
    """Create ``revision`` (from :func:`new_revision`) named ``<parent>-<hash>``, the hash given by
    ``hash_fn(collision_count)`` (default: :func:`hash_of` the data) and set as the ``hash_label``
    label. An existing revision of that name with the same data and owner is returned as is; another
    one is a collision: the count goes up and the next name is tried. Returns the revision and the
    collision count that named it, which the caller keeps in its status when it grew."""
    namespace = parent["metadata"]["namespace"]
    count = collision_count
    for _ in range(MAX_COLLISIONS):
        hash_text = hash_fn(count) if hash_fn is not None else hash_of(revision.get("data"), count)
        body = copy.deepcopy(revision)
        body["metadata"]["name"] = revision_name(parent["metadata"]["name"], hash_text)
        body["metadata"].setdefault("labels", {})[hash_label] = hash_text
        try:
            created: Obj = await client.create(CONTROLLERREVISIONS, body, namespace=namespace)
            return created, count
        except StatusError as exc:
            if exc.code != 409:
                raise
        existing = await client.get(CONTROLLERREVISIONS, body["metadata"]["name"], namespace=namespace)
        if is_controlled_by(existing, parent) and existing.get("data") == body["data"]:
            return existing, count
        count += 1
    raise RevisionCollision(f"no free ControllerRevision name for {parent['metadata']['name']}")


async def renumber(client: Client, revision: Obj, number: int) -> Obj:
    """Give an existing revision a new ``revision`` number (an old template reused becomes the newest)."""
    if revision.get("revision") == number:
        return revision
    metadata = revision["metadata"]
    patch = {"revision": number, "metadata": {"resourceVersion": metadata.get("resourceVersion")}}
    result: Obj = await client.patch(
        CONTROLLERREVISIONS, metadata["name"], patch, namespace=metadata["namespace"]
    )
    return result


async def delete_revision(client: Client, revision: Obj) -> None:
    """Delete exactly this revision (uid precondition); gone already is fine."""
    metadata = revision["metadata"]
    try:
        await client.delete(
            CONTROLLERREVISIONS,
            metadata["name"],
            namespace=metadata["namespace"],
            preconditions={"uid": metadata["uid"]},
        )
    except StatusError as exc:
        if exc.code not in (404, 409):
            raise


# -- reading -----------------------------------------------------------------------------------------


def is_controlled_by(obj: Obj, parent: Obj) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == parent["metadata"].get("uid")


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """Oldest first: by revision number, then creation time, then name (history.SortControllerRevisions)."""
    return sorted(
        revisions,
        key=lambda r: (
            int(r.get("revision") or 0),
            epoch(r["metadata"].get("creationTimestamp")) or 0.0,
            r["metadata"].get("name", ""),
        ),
    )


def max_revision(revisions: Iterable[Obj]) -> int:
    return max((int(r.get("revision") or 0) for r in revisions), default=0)


def find_equal(revisions: Iterable[Obj], data: Obj) -> list[Obj]:
    """The revisions whose ``data`` equals ``data``, oldest first."""
    return sort_revisions(r for r in revisions if r.get("data") == data)


def is_live(revision: Obj, live: set[str]) -> bool:
    """Whether the revision's name or one of its hash labels is in ``live``."""
    labels = revision["metadata"].get("labels") or {}
    return bool(
        revision["metadata"]["name"] in live
        or labels.get(REVISION_HASH_LABEL) in live
        or labels.get(HISTORY_HASH_LABEL) in live
    )


def revisions_to_delete(
    revisions: Iterable[Obj], *, limit: int, live: set[str], count_live: bool = False
) -> list[Obj]:
    """The oldest revisions that no live pod or current/update revision uses (``live`` holds names or
    hashes, see :func:`is_live`), as many as exceed ``limit``. The surplus is counted over the revisions
    that are not live (the StatefulSet controller's rule), or with ``count_live`` over all of them (the
    DaemonSet controller's rule: it passes only the old revisions)."""
    ordered = sort_revisions(revisions)
    candidates = [r for r in ordered if not is_live(r, live)]
    surplus = (len(ordered) if count_live else len(candidates)) - max(limit, 0)
    return candidates[:surplus] if surplus > 0 else []


async def truncate(
    client: Client, revisions: Iterable[Obj], *, limit: int, live: set[str], count_live: bool = False
) -> int:
    """Delete what :func:`revisions_to_delete` names; returns how many."""
    doomed = revisions_to_delete(revisions, limit=limit, live=live, count_live=count_live)
    for revision in doomed:
        await delete_revision(client, revision)
    return len(doomed)
