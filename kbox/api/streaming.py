"""Streaming pod subresources: ``log``, ``exec``, ``attach`` and ``portforward``, served to kubectl and
client libraries on top of the pod's node's ``NodeConnection``.

Placeholder until the client protocols land: every request answers a clear Status.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kbox.api import errors
from kbox.api.nodeconnection import NodeConnection


async def handle(
    request: web.Request, *, pod: dict[str, Any], subresource: str, connection: NodeConnection
) -> web.StreamResponse:
    raise errors.StatusError(f"pods/{subresource} is not served yet", 501, "NotImplemented")
