"""Recording Events about objects, with Kubernetes' aggregation of repeats.

The same event (same object, field path, type, reason and message) recorded again within the
window does not create a new Event: the existing one gets ``count`` + 1 and a new
``lastTimestamp``, as client-go's event correlator does, so a crash loop does not flood the store.
Recording never blocks the caller and never raises: failures are only logged.
"""

from __future__ import annotations

import collections
import logging
import time
import uuid
from typing import Any

from kbox.api import objects
from kbox.api.errors import StatusError
from kbox.client import interface
from kbox.client.interface import Client
from kbox.util import aiotasks

_log = logging.getLogger(__name__)
Obj = dict[str, Any]

WINDOW = 600.0  # seconds a repeat is folded into the previous Event
CACHE = 4096  # distinct recent events remembered
_Seen = tuple[str, str, int, float]


class EventRecorder:
    def __init__(self, client: Client, *, component: str, host: str = "") -> None:
        self.client = client
        self.component = component
        self.host = host
        # key -> (event name, namespace, count, first seen (monotonic)); oldest first
        self._recent: collections.OrderedDict[tuple[str, ...], tuple[str, str, int, float]] = (
            collections.OrderedDict()
        )

    def record(self, obj: Obj, kind: str, reason: str, message: str, *, field_path: str = "") -> None:
        metadata = obj["metadata"]
        namespace = metadata.get("namespace") or "default"
        key = (metadata.get("uid", ""), field_path, kind, reason, message)
        now_text = objects.timestamp()
        seen = self._recent.get(key)
        if seen is not None and time.monotonic() - seen[3] < WINDOW:
            name, event_namespace, count, first = seen
            self._recent[key] = (name, event_namespace, count + 1, first)
            self._recent.move_to_end(key)
            patch = {"count": count + 1, "lastTimestamp": now_text}
            self._send(self.client.patch(interface.EVENTS, name, patch, namespace=event_namespace), reason)
            return
        name = f"{metadata['name']}.{uuid.uuid4().hex[:16]}"
        involved: Obj = {
            "apiVersion": obj.get("apiVersion", "v1"),
            "kind": obj.get("kind", ""),
            "name": metadata["name"],
            "uid": metadata.get("uid", ""),
        }
        if metadata.get("namespace"):
            involved["namespace"] = metadata["namespace"]
        if field_path:
            involved["fieldPath"] = field_path
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
            "firstTimestamp": now_text,
            "lastTimestamp": now_text,
            "count": 1,
        }
        self._recent[key] = (name, namespace, 1, time.monotonic())
        while len(self._recent) > CACHE:
            self._recent.popitem(last=False)
        self._send(self.client.create(interface.EVENTS, body, namespace=namespace), reason)

    def _send(self, call: Any, reason: str) -> None:
        async def send() -> None:
            try:
                await call
            except StatusError as exc:
                _log.debug("event %s not recorded: %s", reason, exc)

        aiotasks.create_guarded_task(send(), name=f"{self.component}/event", logger=_log)
