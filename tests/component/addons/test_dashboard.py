"""The dashboard's server side, over real HTTP against an embedded cluster (fake runtime) whose
dashboard addon is switched on through the API, as ``kbox addons enable dashboard`` does.

Covered: the URL record; nothing readable without a session; one-time tickets and pasted-token login
(checked against the apiserver); the cross-site guards; the /k8s proxy (reads, writes, streamed logs);
YAML out and in (create, update, the apiserver's own errors: invalid, conflict, unknown kind, bad YAML);
live lists over the watch WebSocket (SYNC, then events; refusals as ERROR); exec refusals arriving as
a channel-3 Status. The browser itself is tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import yaml

from kbox.addons.dashboard import NAMESPACE, RECORD
from kbox.addons.manager import CONFIGMAP
from kbox.client.interface import CONFIGMAPS
from kbox.testing.cluster import Cluster, SyncCluster
from tests.support.wait import eventually, until

CSRF = {"X-Kbox-Dashboard": "1"}

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME}
spec:
  replicas: 1
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      containers: [{name: main, image: busybox}]
"""


@pytest.fixture(scope="module")
def c() -> Iterator[SyncCluster]:
    with Cluster(runtime="fake") as cluster:
        cluster.run(
            cluster.client.patch(
                CONFIGMAPS, CONFIGMAP, {"data": {"dashboard": "true"}}, namespace="kube-system"
            )
        )
        yield cluster


@pytest.fixture(scope="module")
def url(c: SyncCluster) -> str:
    def recorded() -> str | None:
        try:
            record = c.get("ConfigMap", RECORD, namespace=NAMESPACE)
        except Exception:
            return None
        return str((record.get("data") or {}).get("url") or "") or None

    found: str = until(recorded, timeout=20)
    return found.rstrip("/")


@pytest.fixture
async def anon(url: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http


@pytest.fixture
async def browser(c: SyncCluster, url: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A logged-in session, as ``kbox dashboard``'s link makes one."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{url}/_/tickets", headers={"Authorization": f"Bearer {c.token}"}) as resp:
            assert resp.status == 200, await resp.text()
            path = (await resp.json())["path"]
        async with http.get(url + path) as resp:
            assert resp.status == 200 and str(resp.url).rstrip("/") == url
        yield http


def test_the_url_is_recorded_on_loopback(url: str) -> None:
    assert url.startswith("http://127.0.0.1:")


async def test_nothing_is_readable_without_a_session(anon: aiohttp.ClientSession, url: str) -> None:
    async with anon.get(f"{url}/k8s/api/v1/namespaces/kube-system/pods") as resp:
        assert resp.status == 401
        assert (await resp.json())["kind"] == "Status"
    async with anon.get(f"{url}/_/yaml", params={"path": "/api/v1/namespaces/default"}) as resp:
        assert resp.status == 401
    async with anon.get(f"{url}/", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/login"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await anon.ws_connect(f"{url}/_/watch", origin=url)
    assert refused.value.status == 401
    async with anon.get(f"{url}/login") as resp:
        assert resp.status == 200 and "Bearer token" in await resp.text()
        policy = resp.headers["Content-Security-Policy"]
        assert "script-src 'self';" in policy and f"ws://{url.split('//')[1]} " in policy
        assert resp.headers["X-Frame-Options"] == "DENY"
    # A name rebound to 127.0.0.1 by another site is not this server.
    async with anon.get(f"{url}/login", headers={"Host": "attacker.example"}) as resp:
        assert resp.status == 421


async def test_a_ticket_logs_in_once(c: SyncCluster, anon: aiohttp.ClientSession, url: str) -> None:
    async with anon.post(f"{url}/_/tickets") as resp:
        assert resp.status == 401
    async with anon.post(f"{url}/_/tickets", headers={"Authorization": "Bearer not-the-token"}) as resp:
        assert resp.status == 401
        assert "does not accept" in (await resp.json())["message"]
    async with anon.post(f"{url}/_/tickets", headers={"Authorization": f"Bearer {c.token}"}) as resp:
        ticket_path = (await resp.json())["path"]
    async with anon.get(url + ticket_path, allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/"
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert c.token not in cookie
    async with anon.get(f"{url}/_/whoami") as resp:
        assert (await resp.json())["username"] == "kubernetes-admin"
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other,
        other.get(url + ticket_path, allow_redirects=False) as resp,
    ):
        assert resp.headers["Location"] == "/login?error=expired"


async def test_a_pasted_token_is_checked_against_the_apiserver(
    c: SyncCluster, anon: aiohttp.ClientSession, url: str
) -> None:
    async with anon.post(f"{url}/login", data={"token": "wrong"}, allow_redirects=False) as resp:
        assert resp.headers["Location"] == "/login?error=token"
    async with anon.get(f"{url}/_/whoami") as resp:
        assert resp.status == 401
    async with anon.post(f"{url}/login", data={"token": f"Bearer {c.token}"}, allow_redirects=False) as resp:
        assert resp.headers["Location"] == "/"
    async with anon.get(f"{url}/k8s/api/v1/namespaces/kube-system/configmaps/{RECORD}") as resp:
        assert resp.status == 200
        assert (await resp.json())["data"]["url"].rstrip("/") == url
    async with anon.post(f"{url}/logout", allow_redirects=False) as resp:
        assert resp.headers["Location"] == "/login"
    async with anon.get(f"{url}/_/whoami") as resp:
        assert resp.status == 401


async def test_writes_need_the_header_and_the_same_origin(browser: aiohttp.ClientSession, url: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "guarded"}, "data": {"a": "1"}}
    collection = f"{url}/k8s/api/v1/namespaces/default/configmaps"
    async with browser.post(collection, json=body) as resp:
        assert resp.status == 403
    async with browser.post(collection, json=body, headers={**CSRF, "Origin": "http://evil.example"}) as resp:
        assert resp.status == 403
    async with browser.post(collection, json=body, headers={**CSRF, "Origin": url}) as resp:
        assert resp.status == 201, await resp.text()
    async with browser.post(collection, json=body, headers=CSRF) as resp:
        assert resp.status == 409
        assert (await resp.json())["reason"] == "AlreadyExists"
    async with browser.delete(f"{collection}/guarded", headers=CSRF) as resp:
        assert resp.status == 200
    async with browser.get(f"{url}/k8s/metrics") as resp:
        assert resp.status == 404
    async with browser.get(f"{url}/k8s/api/../metrics") as resp:
        assert resp.status == 404


async def _apply(browser: aiohttp.ClientSession, url: str, text: str) -> tuple[int, Any]:
    async with browser.post(
        f"{url}/_/apply", params={"namespace": "default"}, data=text, headers=CSRF
    ) as resp:
        return resp.status, await resp.json()


async def test_apply_creates_updates_and_words_errors_as_the_apiserver(
    browser: aiohttp.ClientSession, url: str
) -> None:
    text = DEPLOYMENT.replace("NAME", "applied")
    status, body = await _apply(browser, url, text)
    assert status == 200, body
    assert body["items"] == [
        {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "name": "applied",
            "action": "created",
            "namespace": "default",
            "path": "/apis/apps/v1/namespaces/default/deployments/applied",
        }
    ]
    status, body = await _apply(browser, url, text.replace("replicas: 1", "replicas: 2"))
    assert status == 200 and body["items"][0]["action"] == "configured"

    path = "/apis/apps/v1/namespaces/default/deployments/applied"
    async with browser.get(f"{url}/_/yaml", params={"path": path}) as resp:
        assert resp.status == 200
        current = await resp.text()
    assert "managedFields" not in current and "replicas: 2" in current and "resourceVersion:" in current

    # An edit sends only what changed: the controller's status writes since the read do not conflict.
    changed = yaml.safe_load(current)
    changed["spec"]["replicas"] = 3
    changed["metadata"]["labels"] = {"tier": "web"}
    edited = yaml.safe_dump(changed)
    async with browser.post(
        f"{url}/_/edit", json={"path": path, "original": current, "edited": edited}, headers=CSRF
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["action"] == "edited"
    async with browser.get(f"{url}/k8s{path}") as resp:
        now = await resp.json()
    assert now["spec"]["replicas"] == 3 and now["metadata"]["labels"] == {"tier": "web"}
    async with browser.post(
        f"{url}/_/edit", json={"path": path, "original": current, "edited": current}, headers=CSRF
    ) as resp:
        assert (await resp.json())["action"] == "unchanged"
    bad = current.replace("replicas: 2", "replicas: -3")
    async with browser.post(
        f"{url}/_/edit", json={"path": path, "original": current, "edited": bad}, headers=CSRF
    ) as resp:
        assert resp.status == 422 and "spec.replicas" in (await resp.json())["message"]

    # A document that carries a resourceVersion is a PUT: a stale one is the apiserver's Conflict.
    status, body = await _apply(browser, url, current.replace("replicas: 2", "replicas: 4"))
    assert status == 409 and body["error"]["reason"] == "Conflict"

    status, body = await _apply(browser, url, text.replace("replicas: 1", "replicas: -1"))
    assert status == 422 and body["error"]["reason"] == "Invalid"
    assert "spec.replicas" in body["error"]["message"]

    status, body = await _apply(browser, url, "apiVersion: v1\nkind: Nonsense\nmetadata: {name: x}\n")
    assert status == 404 and body["error"]["message"] == 'no matches for kind "Nonsense" in version "v1"'

    status, body = await _apply(browser, url, "kind: [unclosed\n")
    assert status == 400 and body["error"]["message"].startswith("error parsing YAML:")
    assert "\n" not in body["error"]["message"]

    async with browser.get(f"{url}/_/yaml", params={"path": path + "-missing"}) as resp:
        assert resp.status == 404
        assert (await resp.json())["reason"] == "NotFound"


async def test_live_lists_sync_then_follow_changes(browser: aiohttp.ClientSession, url: str) -> None:
    async with browser.ws_connect(f"{url}/_/watch", origin=url) as ws:
        path = "/api/v1/namespaces/default/configmaps"
        await ws.send_json({"op": "watch", "id": "cm", "path": path, "labelSelector": "live=yes"})
        sync = json.loads((await ws.receive(timeout=10)).data)
        assert sync["id"] == "cm" and sync["type"] == "SYNC" and sync["items"] == []

        labelled = {"metadata": {"name": "live", "labels": {"live": "yes"}}, "data": {"k": "v"}}
        other = {"metadata": {"name": "unlabelled"}, "data": {"k": "v"}}
        for body in (other, labelled):
            async with browser.post(f"{url}/k8s{path}", json=body, headers=CSRF) as resp:
                assert resp.status == 201
        event = json.loads((await ws.receive(timeout=10)).data)
        assert event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "live"

        await ws.send_json({"op": "watch", "id": "bad", "path": "/metrics"})
        refused = json.loads((await ws.receive(timeout=10)).data)
        assert refused == {"id": "bad", "type": "ERROR", "status": refused["status"]}
        assert refused["status"]["code"] == 400

        await ws.send_json({"op": "watch", "id": "nf", "path": "/apis/nothing.example/v1/things"})
        missing = json.loads((await ws.receive(timeout=10)).data)
        assert missing["id"] == "nf" and missing["type"] == "ERROR" and missing["status"]["code"] == 404

        async with browser.delete(f"{url}/k8s{path}/live", headers=CSRF) as resp:
            assert resp.status == 200
        gone = json.loads((await ws.receive(timeout=10)).data)
        assert gone["type"] == "DELETED" and gone["object"]["metadata"]["name"] == "live"
    async with browser.delete(f"{url}/k8s{path}/unlabelled", headers=CSRF) as resp:
        assert resp.status == 200


async def test_logs_stream_through_the_proxy(
    c: SyncCluster, browser: aiohttp.ClientSession, url: str
) -> None:
    status, body = await _apply(browser, url, DEPLOYMENT.replace("NAME", "logged"))
    assert status == 200, body

    async def running_pod() -> str | None:
        async with browser.get(
            f"{url}/k8s/api/v1/namespaces/default/pods", params={"labelSelector": "app=logged"}
        ) as resp:
            items = (await resp.json())["items"]
        ready = [p for p in items if (p.get("status") or {}).get("phase") == "Running"]
        return ready[0]["metadata"]["name"] if ready else None

    pod = await eventually(running_pod, timeout=20)
    log_url = f"{url}/k8s/api/v1/namespaces/default/pods/{pod}/log"
    async with browser.get(log_url, params={"container": "main", "follow": "true"}) as resp:
        assert resp.status == 200
        first = await resp.content.readline()
    assert b"fake container main started" in first
    async with browser.get(log_url, params={"container": "nope"}) as resp:
        assert resp.status == 400
        assert "nope" in (await resp.json())["message"]


async def test_exec_refusals_arrive_as_a_status_over_the_socket(
    browser: aiohttp.ClientSession, url: str
) -> None:
    path = "/api/v1/namespaces/default/pods/no-such-pod/exec"
    query = "?command=sh&stdin=true&stdout=true&tty=true"
    async with browser.ws_connect(
        f"{url}/_/exec{path}{query}", origin=url, protocols=("v5.channel.k8s.io",)
    ) as ws:
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.BINARY and msg.data[0] == 3
        status = json.loads(msg.data[1:])
        assert status["code"] == 404 and "no-such-pod" in status["message"]
    async with browser.get(
        f"{url}/_/exec/api/v1/namespaces/default/configmaps/x", headers={"Origin": url}
    ) as r:
        assert r.status == 404
