"""Object-metadata helpers every controller needs: owner references, selectors, timestamps, resource
versions, exact deletes and status patches."""

from __future__ import annotations

import datetime
import math
from typing import Any

from kbox.api import selectors
from kbox.api.objects import timestamp
from kbox.client.interface import MERGE_PATCH, Client, Resource, StatusError

Obj = dict[str, Any]

__all__ = [
    "SelectorCache",
    "controller_ref",
    "epoch",
    "owner_reference",
    "patch_status",
    "selector_of",
    "status_diff",
    "timestamp",
    "version_number",
]


def controller_ref(obj: Obj) -> Obj | None:
    """The owner reference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            result: Obj = ref
            return result
    return None


def owner_reference(owner: Obj, *, api_version: str, kind: str, controller: bool = True) -> Obj:
    """A reference to ``owner`` (of ``api_version``/``kind``) that blocks its foreground deletion, as
    every workload controller sets on what it makes or adopts."""
    metadata = owner["metadata"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def version_number(text: str) -> int:
    """A resourceVersion as a number, to compare what a cache has seen with a write (0 if not one)."""
    try:
        return int(text)
    except ValueError:
        return 0


def epoch(text: str | None) -> float | None:
    """An RFC 3339 timestamp as epoch seconds (``None`` when missing or malformed)."""
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def delete_exact(client: Client, resource: Resource, obj: Obj, **options: Any) -> bool:
    """Delete ``obj`` itself (a uid precondition, so never a namesake created since the cache saw it);
    False when it is gone already or was replaced meanwhile, which a level-triggered sync may ignore."""
    metadata = obj["metadata"]
    try:
        await client.delete(
            resource,
            metadata["name"],
            namespace=metadata.get("namespace"),
            preconditions={"uid": metadata["uid"]},
            **options,
        )
    except StatusError as exc:
        if exc.code in (404, 409):
            return False
        raise
    return True


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """An int-or-percentage (``2``, ``"25%"``) against ``total``, as Kubernetes scales maxSurge,
    maxUnavailable and minAvailable (intstr.GetScaledValueFromIntOrPercent)."""
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        exact = int(text[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def selector_of(obj: Obj) -> selectors.LabelSelector | None:
    """``spec.selector`` of a workload, parsed; ``None`` when it is invalid, empty (it would select every
    pod) or selects nothing, which a controller then ignores rather than act on (upstream refuses to
    sync such an object too)."""
    try:
        parsed = selectors.from_label_selector((obj.get("spec") or {}).get("selector"))
    except StatusError:
        return None
    if parsed.empty or parsed.matches_nothing:
        return None
    return parsed


class SelectorCache:
    """:func:`selector_of` remembered per object uid while the raw selector stays the same (selectors
    of workloads are immutable, and the key functions parse them once per pod event otherwise)."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[Any, selectors.LabelSelector | None]] = {}

    def __call__(self, obj: Obj) -> selectors.LabelSelector | None:
        uid = obj["metadata"].get("uid", "")
        raw = (obj.get("spec") or {}).get("selector")
        cached = self._parsed.get(uid)
        if cached is not None and cached[0] == raw:
            return cached[1]
        parsed = selector_of(obj)
        self._parsed[uid] = (raw, parsed)
        return parsed


def status_diff(current: Obj, new: Obj, *, keep: tuple[str, ...] = ()) -> Obj:
    """A merge patch turning status ``current`` into ``new`` at the top level: changed fields, and
    ``None`` (remove) for fields ``new`` lacks, except those in ``keep``."""
    patch: Obj = {k: v for k, v in new.items() if current.get(k) != v}
    patch.update({k: None for k in current if k not in new and k not in keep})
    return patch


async def patch_status(client: Client, resource: Resource, obj: Obj, patch: Obj) -> Obj | None:
    """Merge ``patch`` into ``obj``'s status through the status subresource; the object as written, or
    ``None`` when it is gone (its deletion event comes, and a level-triggered sync has nothing to do)."""
    metadata = obj["metadata"]
    try:
        result: Obj = await client.patch(
            resource, metadata["name"], {"status": patch}, namespace=metadata.get("namespace"),
            patch_type=MERGE_PATCH, subresource="status",
        )  # fmt: skip
    except StatusError as exc:
        if exc.code != 404:
            raise
        return None
    return result
