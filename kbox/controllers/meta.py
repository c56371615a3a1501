"""Object-metadata helpers every controller needs: owner references, timestamps, resource versions."""

from __future__ import annotations

import datetime
import math
from typing import Any

from kbox.api.objects import timestamp
from kbox.client.interface import Client, Resource, StatusError

Obj = dict[str, Any]

__all__ = ["controller_ref", "epoch", "timestamp", "version_number"]


def controller_ref(obj: Obj) -> Obj | None:
    """The owner reference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            result: Obj = ref
            return result
    return None


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
