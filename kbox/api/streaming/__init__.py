"""Streaming pod subresources: ``log``, ``exec``, ``attach`` and ``portforward``, served to kubectl and
client libraries on top of the pod's node's ``NodeConnection``.

- ``log``: chunked ``text/plain`` (``logs``);
- ``exec`` and ``attach``: the WebSocket channel protocol, ``v5.channel.k8s.io`` or ``v4`` (``channels``);
- ``portforward``: SPDY/3.1 tunnelled in WebSocket messages for kubectl, the channel protocol for the
  Python client (``portforward``, ``spdy``).

The pre-WebSocket SPDY/3.1 upgrade (a POST that kubectl tries after a refused WebSocket upgrade, and the
only transport of kubectl before 1.30) is not served: it is answered with the WebSocket attempt's error.
"""

from __future__ import annotations

from aiohttp import web

from kbox.api import errors
from kbox.api.nodeconnection import NodeConnection
from kbox.api.streaming import channels, common, logs, portforward


async def handle(
    request: web.Request, *, pod: common.Pod, subresource: str, connection: NodeConnection
) -> web.StreamResponse:
    if subresource == "log":
        return await logs.serve(request, pod, connection)
    if subresource in ("exec", "attach"):
        return await channels.serve(request, pod, connection, attach=subresource == "attach")
    if subresource == "portforward":
        return await portforward.serve(request, pod, connection)
    raise errors.StatusError("the server could not find the requested resource", 404, "NotFound")
