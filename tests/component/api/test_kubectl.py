"""The real kubectl (v1.32, /usr/bin/kubectl) against kbox's apiserver: version, discovery, server-side
printing, create/get/describe/apply (client- and server-side)/label/annotate/scale/patch/delete, watch,
protobuf bodies (create namespace, configmap, auth can-i), explain, and the errors kubectl prints.

One server for the module keeps it fast; each test uses its own namespace or names.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.apiserver import Kubectl, Served, served

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: web}}
spec:
  containers:
  - name: main
    image: busybox:1.36
    ports: [{{containerPort: 80}}]
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: nginx
        image: {image}
        env: [{{name: A, value: "1"}}]
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture
def kubectl(server: Served, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "cache"
    cache.mkdir()
    return Kubectl(server.kubeconfig, cache)


async def test_version_and_discovery(kubectl: Kubectl) -> None:
    out = await kubectl.ok("version")
    assert "Server Version: v1.32.4" in out
    resources = await kubectl.ok("api-resources")
    for line in ("pods ", "deployments ", "namespaces ", "configmaps "):
        assert line in resources
    assert "po " in resources and "deploy " in resources


async def test_default_namespaces_and_kubernetes_service(kubectl: Kubectl) -> None:
    out = await kubectl.ok("get", "namespaces")
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]
    names = {line.split()[0] for line in out.splitlines()[1:]}
    assert names == {"default", "kube-system", "kube-public", "kube-node-lease"}
    svc = await kubectl.ok("get", "svc", "kubernetes", "-o", "json")
    assert json.loads(svc)["spec"]["clusterIP"] == "10.96.0.1"


async def test_create_get_describe_delete_pod(kubectl: Kubectl) -> None:
    out = await kubectl.ok("create", "-f", "-", stdin=POD.format(name="p1"))
    assert out.strip() == "pod/p1 created"
    table = await kubectl.ok("get", "pods")
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row.split()[:4] == ["p1", "0/1", "Pending", "0"]
    wide = await kubectl.ok("get", "pods", "-o", "wide")
    assert "NOMINATED NODE" in wide
    pod = json.loads(await kubectl.ok("get", "pod", "p1", "-o", "json"))
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"
    assert pod["status"]["phase"] == "Pending"
    assert pod["metadata"]["uid"] and pod["metadata"]["resourceVersion"]
    described = await kubectl.ok("describe", "pod", "p1")
    assert "busybox:1.36" in described
    err = await kubectl.fails("create", "-f", "-", stdin=POD.format(name="p1"))
    assert 'Error from server (AlreadyExists): error when creating "STDIN": pods "p1" already exists' in err
    assert (await kubectl.ok("delete", "pod", "p1")).strip() == 'pod "p1" deleted'
    err = await kubectl.fails("get", "pod", "p1")
    assert 'Error from server (NotFound): pods "p1" not found' in err


async def test_invalid_object_is_422_with_causes(kubectl: Kubectl) -> None:
    bad = POD.format(name="Bad_Name")
    err = await kubectl.fails("create", "-f", "-", "--validate=false", stdin=bad)
    assert 'The Pod "Bad_Name" is invalid' in err
    assert 'metadata.name: Invalid value: "Bad_Name"' in err


async def test_apply_client_side_three_times(kubectl: Kubectl) -> None:
    manifest = DEPLOYMENT.format(replicas=2, image="nginx:1.27")
    assert (await kubectl.ok("apply", "-f", "-", stdin=manifest)).strip() == "deployment.apps/web created"
    changed = DEPLOYMENT.format(replicas=3, image="nginx:1.28")
    assert (await kubectl.ok("apply", "-f", "-", stdin=changed)).strip() == "deployment.apps/web configured"
    assert (await kubectl.ok("apply", "-f", "-", stdin=changed)).strip() == "deployment.apps/web unchanged"
    deployment = json.loads(await kubectl.ok("get", "deploy", "web", "-o", "json"))
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert deployment["metadata"]["generation"] == 2
    table = await kubectl.ok("get", "deployments")
    assert table.splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]


async def test_apply_server_side(kubectl: Kubectl) -> None:
    manifest = DEPLOYMENT.format(replicas=1, image="nginx:1.27")
    out = await kubectl.ok("apply", "--server-side", "-f", "-", stdin=manifest)
    assert out.strip() == "deployment.apps/web serverside-applied"
    again = DEPLOYMENT.format(replicas=4, image="nginx:1.27")
    await kubectl.ok("apply", "--server-side", "-f", "-", stdin=again)
    deployment = json.loads(await kubectl.ok("get", "deploy", "web", "-o", "json", "--show-managed-fields"))
    assert deployment["spec"]["replicas"] == 4
    managers = {m["manager"] for m in deployment["metadata"].get("managedFields", [])}
    assert "kubectl" in managers


async def test_label_annotate_scale_patch(kubectl: Kubectl) -> None:
    await kubectl.ok("apply", "-f", "-", stdin=DEPLOYMENT.format(replicas=1, image="nginx:1.27"))
    await kubectl.ok("label", "deployment", "web", "tier=frontend")
    await kubectl.ok("annotate", "deployment", "web", "note=hello")
    out = await kubectl.ok("scale", "deployment", "web", "--replicas=5")
    assert out.strip() == "deployment.apps/web scaled"
    await kubectl.ok("patch", "deployment", "web", "-p", '{"spec":{"minReadySeconds":3}}')
    await kubectl.ok(
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":2}]',
    )
    deployment = json.loads(await kubectl.ok("get", "deploy", "web", "-o", "json"))
    assert deployment["metadata"]["labels"]["tier"] == "frontend"
    assert deployment["metadata"]["annotations"]["note"] == "hello"
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["minReadySeconds"] == 3
    labelled = await kubectl.ok("get", "deploy", "-l", "tier=frontend", "-o", "name")
    assert labelled.strip() == "deployment.apps/web"
    assert (await kubectl.ok("get", "deploy", "-l", "tier!=frontend", "-o", "name")).strip() == ""
    err = await kubectl.fails("scale", "deployment", "web", "--replicas=3", "--current-replicas=7")
    assert "Expected replicas to be 7, was 2" in err
    # With the right current count, kubectl reads the Scale and PUTs it back with its resourceVersion.
    await kubectl.ok("scale", "deployment", "web", "--replicas=3", "--current-replicas=2")
    assert json.loads(await kubectl.ok("get", "deploy", "web", "-o", "json"))["spec"]["replicas"] == 3


async def test_protobuf_creates_and_auth_can_i(kubectl: Kubectl) -> None:
    assert (await kubectl.ok("create", "namespace", "team-a")).strip() == "namespace/team-a created"
    out = await kubectl.ok("create", "configmap", "settings", "-n", "team-a", "--from-literal=a=b")
    assert out.strip() == "configmap/settings created"
    cm = json.loads(await kubectl.ok("get", "cm", "settings", "-n", "team-a", "-o", "json"))
    assert cm["data"] == {"a": "b"}
    assert (await kubectl.ok("auth", "can-i", "create", "pods")).strip() == "yes"
    err = await kubectl.fails("create", "configmap", "c", "-n", "nowhere", "--from-literal=a=b")
    assert 'namespaces "nowhere" not found' in err


async def test_explain(kubectl: Kubectl) -> None:
    out = await kubectl.ok("explain", "pods.spec.containers")
    assert "image" in out


async def test_get_watch_prints_changes(kubectl: Kubectl, server: Served) -> None:
    watcher = asyncio.ensure_future(kubectl("get", "configmaps", "-w", "--request-timeout=3s", timeout=20))
    await asyncio.sleep(1.0)
    await kubectl.ok("create", "configmap", "watched", "--from-literal=x=1")
    result = await watcher
    assert "watched" in result.out


async def test_unauthenticated_is_401(server: Served, tmp_path: Path) -> None:
    import ssl

    import aiohttp

    context = ssl.create_default_context(cafile=str(server.ca_file))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async with session.get(f"{server.url}/api/v1/namespaces") as response:
            assert response.status == 401
            body = await response.json()
            assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
        async with session.get(f"{server.url}/version") as response:
            assert response.status == 200


async def test_metrics_count_requests(kubectl: Kubectl) -> None:
    await kubectl.ok("get", "configmaps")
    await kubectl.ok("create", "configmap", "m", "--from-literal=a=b")
    out = await kubectl.ok("get", "--raw", "/metrics")
    assert (
        'apiserver_request_total{code="201",group="",resource="configmaps",subresource="",verb="create"} 1.0'
        in out
    )
    assert 'apiserver_request_duration_seconds_bucket{group="",le="0.001",resource="configmaps"' in out
    assert "kbox_store_revision " in out


async def test_server_side_field_validation(kubectl: Kubectl) -> None:
    typo = POD.format(name="typo").replace("image: busybox:1.36", "image: busybox:1.36\n    imagee: oops")
    err = await kubectl.fails("create", "-f", "-", stdin=typo)
    assert 'strict decoding error: unknown field "spec.containers[0].imagee"' in err
    result = await kubectl("create", "-f", "-", "--validate=warn", stdin=typo)
    assert result.code == 0, result.err
    assert 'Warning: unknown field "spec.containers[0].imagee"' in result.err
    stored = json.loads(await kubectl.ok("get", "pod", "typo", "-o", "json"))
    # Accepted, but the unknown field is dropped, as decoding into kube-apiserver's types drops it.
    assert "imagee" not in stored["spec"]["containers"][0]
