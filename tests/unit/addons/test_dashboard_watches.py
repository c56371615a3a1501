"""The dashboard's live-list loop (kbox.addons.dashboard.watches) against a scripted apiserver: list →
SYNC, watch events passed on, bookmarks swallowed, a 410 in the stream → list again (a new SYNC) from
the new resourceVersion, a refusal → one ERROR and the subscription ends; malformed requests answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from kbox.addons.dashboard import watches
from kbox.addons.dashboard.upstream import UpstreamError


class Response:
    def __init__(self, status: int, lines: list[dict[str, Any]] | None = None, body: bytes = b"") -> None:
        self.status = status
        self._lines = [json.dumps(line).encode() + b"\n" for line in lines or []]
        self._body = body

    @property
    def content(self) -> AsyncIterator[bytes]:
        async def lines() -> AsyncIterator[bytes]:
            for line in self._lines:
                yield line

        return lines()

    async def read(self) -> bytes:
        return self._body

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class ScriptedUpstream:
    """Lists and watch responses handed out in order; records the watch queries."""

    def __init__(self, lists: list[dict[str, Any]], watches: list[Response]) -> None:
        self.lists = lists
        self.watches = watches
        self.queries: list[dict[str, str]] = []

    async def call(self, token: str, method: str, path: str, *, params: Any = None) -> Any:
        assert token == "tok"
        return self.lists.pop(0)

    def request(self, token: str, method: str, path: str, *, params: Any = None) -> Response:
        self.queries.append(dict(params))
        if not self.watches:
            return Response(403, body=b'{"kind":"Status","code":403,"message":"done"}')
        return self.watches.pop(0)


class Socket:
    closed = False

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(json.loads(data))


def pod(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": name, "resourceVersion": version}}


async def test_list_watch_relist_on_gone_and_end_on_refusal() -> None:
    upstream = ScriptedUpstream(
        lists=[
            {"metadata": {"resourceVersion": "10"}, "items": [pod("a", "9")]},
            {"metadata": {"resourceVersion": "20"}, "items": [pod("a", "9"), pod("b", "15")]},
        ],
        watches=[
            Response(
                200,
                [
                    {"type": "ADDED", "object": pod("b", "11")},
                    {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
                    {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}},
                ],
            ),
            Response(200, [{"type": "DELETED", "object": pod("a", "21")}]),
        ],
    )
    ws = Socket()
    subs = watches.Subscriptions(ws, upstream, "tok")  # type: ignore[arg-type]
    await subs.handle({"op": "watch", "id": "1", "path": "/api/v1/pods", "labelSelector": "app=x"})
    task = subs.tasks["1"]
    await asyncio.wait_for(task, 5)

    kinds = [(m["type"], m.get("object", {}).get("metadata", {}).get("name")) for m in ws.sent]
    assert kinds == [("SYNC", None), ("ADDED", "b"), ("SYNC", None), ("DELETED", "a"), ("ERROR", None)]
    assert [i["metadata"]["name"] for i in ws.sent[2]["items"]] == ["a", "b"]
    assert ws.sent[-1]["status"]["message"] == "done"
    # Watches resume from the list's version, then from the last event's; the selector goes along.
    assert [q["resourceVersion"] for q in upstream.queries] == ["10", "20", "21"]
    assert all(q["labelSelector"] == "app=x" and q["watch"] == "true" for q in upstream.queries)
    assert subs.tasks == {}


async def test_a_refused_list_is_one_error() -> None:
    class Refusing(ScriptedUpstream):
        async def call(self, token: str, method: str, path: str, *, params: Any = None) -> Any:
            raise UpstreamError(404, {"kind": "Status", "code": 404, "message": "not found"})

    ws = Socket()
    subs = watches.Subscriptions(ws, Refusing([], []), "tok")  # type: ignore[arg-type]
    await subs.handle({"op": "watch", "id": "x", "path": "/apis/nope/v1/things"})
    await asyncio.wait_for(subs.tasks["x"], 5)
    assert ws.sent == [
        {"id": "x", "type": "ERROR", "status": {"kind": "Status", "code": 404, "message": "not found"}}
    ]


async def test_malformed_requests_are_answered_not_fatal() -> None:
    ws = Socket()
    subs = watches.Subscriptions(ws, ScriptedUpstream([], []), "tok")  # type: ignore[arg-type]
    await subs.handle(["not", "a", "dict"])
    await subs.handle({"op": "watch", "id": "p", "path": "/healthz"})
    await subs.handle({"op": "stop", "id": "never-started"})
    assert [(m["id"], m["type"], m["status"]["code"]) for m in ws.sent] == [
        ("", "ERROR", 400),
        ("p", "ERROR", 400),
    ]
    await subs.close()
