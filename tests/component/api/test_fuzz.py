"""Fuzzing the apiserver with hypothesis: random methods, paths, query strings, content types and bodies
(malformed JSON and YAML, wrong kinds and versions, mismatched names and namespaces, huge selectors,
unknown parameters). Every answer must be a well-formed response below 500 — a ``Status`` for errors —
and the server must keep serving afterwards.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.apiserver import Served, served

PATHS = st.sampled_from(
    [
        "/api/v1/namespaces/default/pods",
        "/api/v1/namespaces/default/pods/p",
        "/api/v1/namespaces/default/pods/p/status",
        "/api/v1/namespaces/default/pods/p/binding",
        "/api/v1/namespaces/default/configmaps",
        "/api/v1/namespaces/default/configmaps/c",
        "/api/v1/namespaces/nowhere/configmaps",
        "/api/v1/namespaces",
        "/api/v1/namespaces/default",
        "/api/v1/namespaces/default/finalize",
        "/api/v1/nodes",
        "/api/v1/nodes/n1",
        "/api/v1/configmaps",
        "/apis/apps/v1/namespaces/default/deployments",
        "/apis/apps/v1/namespaces/default/deployments/d/scale",
        "/apis/apps/v1/namespaces/default/deployments/d",
        "/apis/batch/v1/namespaces/default/jobs",
        "/apis/nope/v1/things",
        "/api/v2/pods",
        "/api/v1/namespaces/default/pods/p/unknown/extra",
        "/api",
        "/apis",
        "/apis/apps",
        "/version",
        "/openapi/v3",
        "/healthz",
    ]
)
KINDS = st.sampled_from(["Pod", "ConfigMap", "Deployment", "Namespace", "Scale", "Bogus", ""])
VERSIONS = st.sampled_from(["v1", "apps/v1", "batch/v1", "v2", ""])
NAMES = st.sampled_from(["p", "c", "d", "n1", "Bad_Name", "", "a" * 300, "x/y", "..", None])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.binary(max_size=200)), draw(
            st.sampled_from(["application/json", "application/yaml", ""])
        )
    if choice == 1:
        return b"{not json", "application/json"
    if choice == 2:
        return b"a: [unclosed", "application/yaml"
    if choice == 3:
        return draw(st.binary(max_size=64)), "application/vnd.kubernetes.protobuf"
    obj: dict[str, object] = {
        "apiVersion": draw(VERSIONS),
        "kind": draw(KINDS),
        "metadata": {"name": draw(NAMES), "namespace": draw(st.sampled_from(["default", "other", None]))},
    }
    if draw(st.booleans()):
        obj["spec"] = draw(json_values)
    if draw(st.booleans()):
        obj["data"] = draw(json_values)
    content_type = draw(
        st.sampled_from(
            [
                "application/json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
                "application/json-patch+json",
                "application/apply-patch+yaml",
                "text/plain",
            ]
        )
    )
    return json.dumps(obj).encode(), content_type


QUERIES = st.dictionaries(
    st.sampled_from(
        [
            "labelSelector",
            "fieldSelector",
            "limit",
            "continue",
            "resourceVersion",
            "watch",
            "timeoutSeconds",
            "dryRun",
            "fieldManager",
            "gracePeriodSeconds",
            "propagationPolicy",
            "bogus",
            "resourceVersionMatch",
        ]
    ),
    st.one_of(
        st.text(max_size=30), st.sampled_from(["1", "0", "-1", "a in (", "x" * 20000, "All", "true", "Exact"])
    ),
    max_size=3,
)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


async def test_no_input_breaks_the_server(server: Served) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    timeout = aiohttp.ClientTimeout(total=5)
    failures: list[str] = []

    context = ssl.create_default_context(cafile=str(server.ca_file))
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector) as session:

        @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
            path=PATHS,
            query=QUERIES,
            body=bodies(),
        )
        def explore(method: str, path: str, query: dict[str, str], body: tuple[bytes, str]) -> None:
            data, content_type = body
            if query.get("watch") in ("1", "true"):
                query["timeoutSeconds"] = "1"
            future = asyncio.run_coroutine_threadsafe(
                _request(session, method, server.url + path, query, data, content_type), loop
            )
            status, text, kind = future.result(timeout=10)
            if status >= 500 or (
                status >= 400 and kind.startswith("application/json") and '"Status"' not in text
            ):
                failures.append(
                    f"{method} {path} {query} {content_type} {data[:80]!r} -> {status} {text[:200]}"
                )

        loop = asyncio.get_running_loop()
        await asyncio.to_thread(explore)
        assert not failures, "\n".join(failures[:10])
        async with session.get(server.url + "/api/v1/namespaces") as response:
            assert response.status == 200


async def _request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    query: dict[str, str],
    data: bytes,
    content_type: str,
) -> tuple[int, str, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    async with session.request(method, url, params=query, data=data or None, headers=headers) as response:
        text = await response.text(errors="replace")
        return response.status, text, response.headers.get("Content-Type", "")
