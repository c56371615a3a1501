"""Small helpers for Kubernetes objects as plain dicts: encoding, timestamps, uids, generated names."""

from __future__ import annotations

import datetime
import secrets
import uuid
from typing import Any

import msgspec

Obj = dict[str, Any]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
# What kube-apiserver appends to generateName: five characters from an alphabet without vowels or
# look-alikes, so generated names never spell words.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def decode(data: bytes) -> Any:
    return _decoder.decode(data)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def timestamp(moment: datetime.datetime | None = None) -> str:
    """RFC 3339 with second precision and a ``Z``, as ``metav1.Time`` serialises."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(moment: datetime.datetime | None = None) -> str:
    """RFC 3339 with microseconds, as ``metav1.MicroTime`` serialises."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def meta(obj: Obj) -> Obj:
    """``obj["metadata"]``, created if missing."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = obj["metadata"] = {}
    return metadata


def with_disruption_target(conditions: list[Obj] | None, reason: str, message: str) -> list[Obj]:
    """A pod's conditions with its DisruptionTarget condition set (True, for ``reason``): what the
    eviction API, the taint manager and pod GC record on a pod before it goes, as upstream does."""
    kept = [c for c in conditions or [] if c.get("type") != "DisruptionTarget"]
    kept.append(
        {
            "type": "DisruptionTarget",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": timestamp(),
            "reason": reason,
            "message": message,
        }
    )
    return kept
