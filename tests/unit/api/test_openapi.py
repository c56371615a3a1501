"""The OpenAPI documents (``kbox.api.openapi``), checked as data and then by the real kubectl.

Part (a) checks the documents themselves: every served kind has a PATCH operation tagged with its GVK
that lists ``fieldValidation`` (what makes kubectl validate server-side), every ``$ref`` resolves inside
``components.schemas`` and none of the package's ``#/$defs`` refs is left, the package's JSON Schema
quirks are gone (nullable type lists, ``enum`` on ``apiVersion``/``kind``), hashes are the SHA-512 of
the bytes, and adding or removing a resource (a CRD) invalidates only its group version.

Part (b) serves only what kubectl needs for these commands from a tiny aiohttp server on 127.0.0.1
(``/version`` reporting v1.32 so the gcloud dispatcher at /usr/bin/kubectl runs kubectl 1.32, legacy
discovery for Pod and Deployment, the OpenAPI routes, and a recorder for the writes), then runs:
``explain pods.spec.containers`` and ``explain deployment.spec.strategy`` (schemas walked through
``allOf``/``$ref``), ``create`` (kubectl must send ``fieldValidation=Strict`` without touching
``/openapi/v2``, i.e. it found our PATCH operations), ``create --dry-run=client --validate=strict``
with an unknown field (accepted: validation is left to the server), and client-side ``apply`` over an
existing Deployment (a strategic merge patch built from the v3 schemas' patch metadata, again without
``/openapi/v2``). These tests are skipped when kubectl is absent, but fail under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kbox.api.openapi import V2_PROTOBUF_CONTENT_TYPE, OpenAPI, closure, component
from kbox.api.resource import ResourceDef, SubresourceDef
from kbox.api.schemas import definitions

NO_STRATEGY: Any = None  # ResourceDef only stores the strategy; these tests never call it.

POD = ResourceDef(
    "", "v1", "Pod", "pods", True, NO_STRATEGY,
    short_names=("po",), categories=("all",),
    subresources=(
        SubresourceDef("status", "Pod", ("get", "patch", "update")),
        SubresourceDef("log", "Pod", ("get",)),
        SubresourceDef("exec", "PodExecOptions", ("create", "get")),
        SubresourceDef("binding", "Binding", ("create",)),
        SubresourceDef("eviction", "Eviction", ("create",), group="policy", version="v1"),
    ),
)  # fmt: skip
NODE = ResourceDef("", "v1", "Node", "nodes", False, NO_STRATEGY, short_names=("no",))
DEPLOYMENT = ResourceDef(
    "apps", "v1", "Deployment", "deployments", True, NO_STRATEGY,
    short_names=("deploy",), categories=("all",),
    subresources=(
        SubresourceDef("status", "Deployment", ("get", "patch", "update")),
        SubresourceDef("scale", "Scale", ("get", "patch", "update"), group="autoscaling", version="v1"),
    ),
)  # fmt: skip
REVIEW = ResourceDef(
    "authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
    NO_STRATEGY, verbs=("create",), stored=False,
)  # fmt: skip
CRONTAB = ResourceDef("stable.example.com", "v1", "CronTab", "crontabs", True, NO_STRATEGY)
RESOURCES = (POD, NODE, DEPLOYMENT, REVIEW)


def _walk_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _walk_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_refs(item)


def _walk_schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema object in a schema tree (not field names, not extension values)."""
    if not isinstance(node, dict):
        return
    yield node
    for key, value in node.items():
        if key == "properties":
            for sub in value.values():
                yield from _walk_schemas(sub)
        elif key in ("items", "additionalProperties", "not"):
            yield from _walk_schemas(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            for sub in value:
                yield from _walk_schemas(sub)


# --- (a) the documents ---------------------------------------------------------------------------------


def test_every_patchable_kind_has_a_patch_with_field_validation() -> None:
    api = OpenAPI([*RESOURCES, CRONTAB])
    for resource in [*RESOURCES, CRONTAB]:
        doc = api.document(f"apis/{resource.group_version}" if resource.group else "api/v1")
        assert doc is not None
        gvk = {"group": resource.group, "version": resource.version, "kind": resource.kind}
        patches = [
            item["patch"]
            for item in doc["paths"].values()
            if "patch" in item and item["patch"]["x-kubernetes-group-version-kind"] == gvk
        ]
        if "patch" not in resource.verbs:
            assert patches == [], resource.kind  # create-only kinds: kubectl falls back to the empty v2
            continue
        assert patches, resource.kind
        for op in patches:
            assert "fieldValidation" in {p["name"] for p in op["parameters"]}
            content = op["requestBody"]["content"]
            # Built-in kinds offer strategic merge patch (client-side apply uses the schemas), CRDs do not.
            assert ("application/strategic-merge-patch+json" in content) == (resource is not CRONTAB)
        # The kind's schema is found by GVK, as kubectl explain and apply look it up.
        tagged = [
            name
            for name, schema in doc["components"]["schemas"].items()
            if gvk in schema.get("x-kubernetes-group-version-kind", ())
        ]
        assert len(tagged) == 1, (resource.kind, tagged)


def test_paths_follow_the_url_layout() -> None:
    doc = OpenAPI(RESOURCES).document("api/v1")
    assert doc is not None
    paths = doc["paths"]
    assert set(paths["/api/v1/namespaces/{namespace}/pods"]) == {"parameters", "get", "post", "delete"}
    assert set(paths["/api/v1/namespaces/{namespace}/pods/{name}"]) == {
        "parameters", "get", "put", "patch", "delete"
    }  # fmt: skip
    assert "get" in paths["/api/v1/pods"]  # every namespace
    assert "patch" in paths["/api/v1/nodes/{name}"]
    assert "/api/v1/namespaces/{namespace}/nodes" not in paths
    assert paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["get"]["x-kubernetes-action"] == "connect"
    eviction = paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
    assert eviction["x-kubernetes-group-version-kind"] == {
        "group": "policy",
        "version": "v1",
        "kind": "Eviction",
    }
    assert "io.k8s.api.policy.v1.Eviction" in doc["components"]["schemas"]
    pod_patch = paths["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert pod_patch["operationId"] == "patchCoreV1NamespacedPod"
    apps = OpenAPI(RESOURCES).document("/apis/apps/v1")
    assert apps is not None
    scale = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    assert "io.k8s.api.autoscaling.v1.Scale" in apps["components"]["schemas"]


def test_refs_resolve_and_json_schema_quirks_are_gone() -> None:
    api = OpenAPI([*RESOURCES, CRONTAB])
    for path in api.paths():
        data = api.v3_document(path)
        assert data is not None
        assert b"#/$defs" not in data
        doc = msgspec.json.decode(data)
        assert doc["openapi"].startswith("3.0")
        components = doc["components"]["schemas"]
        for ref in _walk_refs(doc):
            assert ref.startswith("#/components/schemas/"), ref
            assert ref.removeprefix("#/components/schemas/") in components, (path, ref)
        for schema in (s for top in components.values() for s in _walk_schemas(top)):
            assert not isinstance(schema.get("type"), list), schema
            assert "$schema" not in schema
            assert "$id" not in schema
            if "$ref" in schema:  # OpenAPI 3.0 ignores siblings of $ref: they go in an allOf wrapper
                assert list(schema) == ["$ref"], schema
    core = api.document("api/v1")
    assert core is not None
    pod = core["components"]["schemas"]["io.k8s.api.core.v1.Pod"]
    assert pod["type"] == "object"
    assert "enum" not in pod["properties"]["kind"]
    assert "enum" not in pod["properties"]["apiVersion"]
    assert pod["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}]
    assert pod["properties"]["spec"]["description"]
    containers = core["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in core["components"]["schemas"]
    int_or_string = core["components"]["schemas"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["format"] == "int-or-string"
    assert int_or_string["oneOf"] == [{"type": "integer"}, {"type": "string"}]


def test_every_package_definition_converts_cleanly() -> None:
    """All 600-odd definitions, not only the served ones: a CRD or a new group must not hit a gap."""
    names = closure(definitions())
    assert set(names) == set(definitions())
    for name in names:
        for ref in _walk_refs(component(name)):
            assert ref.removeprefix("#/components/schemas/") in definitions(), (name, ref)
    # JSONSchemaProps has fields named "$ref" and "$schema": field names, kept as they are.
    props = component("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps")[
        "properties"
    ]
    assert props["$ref"] == {"type": "string"}
    assert "$schema" in props


def test_unknown_kinds_get_a_permissive_schema() -> None:
    doc = OpenAPI([CRONTAB]).document("apis/stable.example.com/v1")
    assert doc is not None
    schema = doc["components"]["schemas"]["com.example.stable.v1.CronTab"]
    assert schema["type"] == "object"
    assert schema["x-kubernetes-preserve-unknown-fields"] is True
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "version": "v1", "kind": "CronTab"}
    ]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    assert "com.example.stable.v1.CronTabList" in doc["components"]["schemas"]
    # A CRD's own structural schema, when the resource carries one, is used instead.
    structural = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"cron": {"type": "string"}}}},
    }
    typed = ResourceDef(
        "stable.example.com", "v1", "CronTab", "crontabs", True, NO_STRATEGY,
        extra={"openapi_v3_schema": structural},
    )  # fmt: skip
    doc = OpenAPI([typed]).document("apis/stable.example.com/v1")
    assert doc is not None
    schema = doc["components"]["schemas"]["com.example.stable.v1.CronTab"]
    assert schema["properties"]["spec"]["properties"]["cron"] == {"type": "string"}
    assert "metadata" in schema["properties"]
    assert "properties" not in structural or "metadata" not in structural["properties"]  # not mutated


def test_root_hashes_and_invalidation() -> None:
    api = OpenAPI(RESOURCES)
    root = api.v3_root()
    assert set(root["paths"]) == {"api/v1", "apis/apps/v1", "apis/authorization.k8s.io/v1"}
    for path, entry in root["paths"].items():
        data = api.v3_document(path)
        assert data is not None
        digest = hashlib.sha512(data).hexdigest().upper()
        assert entry["serverRelativeURL"] == f"/openapi/v3/{path}?hash={digest}"
    # Stable: a second server with the same resources serves the same bytes.
    assert OpenAPI(RESOURCES).v3_root() == root
    core_bytes = api.v3_document("api/v1")

    api.add(CRONTAB)
    grown = api.v3_root()
    assert "apis/stable.example.com/v1" in grown["paths"]
    assert grown["paths"]["api/v1"] == root["paths"]["api/v1"]
    assert api.v3_document("api/v1") is core_bytes  # untouched group versions stay cached

    api.remove(NODE)
    shrunk = api.v3_root()
    assert shrunk["paths"]["api/v1"] != root["paths"]["api/v1"]
    core = api.document("api/v1")
    assert core is not None
    assert "/api/v1/nodes/{name}" not in core["paths"]
    api.remove(CRONTAB)
    assert "apis/stable.example.com/v1" not in api.v3_root()["paths"]
    assert api.v3_document("apis/stable.example.com/v1") is None
    assert api.v3_document("apis/nope/v1") is None


def test_empty_v2() -> None:
    body, content_type = OpenAPI(RESOURCES).v2()
    assert body == b""
    assert (
        content_type
        == V2_PROTOBUF_CONTENT_TYPE
        == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    )


async def test_routes_cache_headers() -> None:
    api = OpenAPI(RESOURCES)
    app = web.Application()
    app.add_routes(api.routes())
    async with TestClient(TestServer(app)) as client:
        response = await client.get(
            "/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"}
        )
        assert response.status == 200
        assert response.headers["Content-Type"] == V2_PROTOBUF_CONTENT_TYPE
        assert await response.read() == b""
        response = await client.get("/openapi/v3")
        assert response.status == 200
        url = (await response.json())["paths"]["apis/apps/v1"]["serverRelativeURL"]
        response = await client.get(url)
        assert response.status == 200
        assert response.headers["Cache-Control"] == "public, immutable"
        assert await response.read() == api.v3_document("apis/apps/v1")
        etag = response.headers["ETag"]
        response = await client.get("/openapi/v3/apis/apps/v1", headers={"If-None-Match": etag})
        assert response.status == 304
        # A stale hash (the document changed since the client read the root) redirects to the current one.
        response = await client.get("/openapi/v3/apis/apps/v1?hash=STALE", allow_redirects=False)
        assert response.status == 301
        assert response.headers["Location"] == url
        response = await client.get("/openapi/v3/apis/nope/v1")
        assert response.status == 404


# --- (b) the real kubectl --------------------------------------------------------------------------------

KUBECTL = "/usr/bin/kubectl"


@pytest.fixture
def kubectl() -> str:
    if not shutil.which(KUBECTL):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{KUBECTL} is required under CI=true")
        pytest.skip(f"{KUBECTL} not installed")
    return KUBECTL


def _api_resource(resource: ResourceDef) -> list[dict[str, Any]]:
    entries = [
        {
            "name": resource.plural,
            "singularName": resource.singular_name,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": list(resource.verbs),
            "shortNames": list(resource.short_names),
            "categories": list(resource.categories),
        }
    ]
    for sub in resource.subresources:
        entry: dict[str, Any] = {
            "name": f"{resource.plural}/{sub.name}",
            "singularName": "",
            "namespaced": resource.namespaced,
            "kind": sub.kind,
            "verbs": list(sub.verbs),
        }
        if sub.group is not None:
            entry.update(group=sub.group, version=sub.version)
        entries.append(entry)
    return entries


@dataclass
class Stub:
    """What the stub server saw, and the objects it answers GETs with."""

    url: str
    requests: list[str] = field(default_factory=list)
    writes: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)


@pytest.fixture
async def stub(kubectl: str) -> AsyncIterator[Stub]:
    openapi = OpenAPI([POD, DEPLOYMENT])
    state = Stub(url="")

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        state.requests.append(f"{request.method} {request.path_qs}")
        response: web.StreamResponse = await handler(request)
        return response

    async def version(request: web.Request) -> web.Response:
        return web.json_response({
            "major": "1", "minor": "32", "gitVersion": "v1.32.4", "gitCommit": "0" * 40,
            "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23",
            "compiler": "gc", "platform": "linux/amd64",
        })  # fmt: skip

    async def api_versions(request: web.Request) -> web.Response:
        host = request.host
        return web.json_response({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
        })  # fmt: skip

    async def api_groups(request: web.Request) -> web.Response:
        gv = {"groupVersion": "apps/v1", "version": "v1"}
        return web.json_response({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{"name": "apps", "versions": [gv], "preferredVersion": gv}],
        })  # fmt: skip

    def resource_list(resource: ResourceDef) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": resource.group_version,
                "resources": _api_resource(resource),
            })  # fmt: skip

        return handler

    async def write(request: web.Request) -> web.Response:
        body = await request.read()
        state.writes.append({
            "method": request.method, "path": request.path, "query": dict(request.query),
            "content_type": request.content_type, "body": json.loads(body),
        })  # fmt: skip
        if request.method == "POST":
            return web.json_response(json.loads(body), status=201)
        current = state.objects.get(request.path)
        return web.json_response(current)

    async def read(request: web.Request) -> web.Response:
        obj = state.objects.get(request.path)
        if obj is None:
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": "not found", "reason": "NotFound", "code": 404}  # fmt: skip
            return web.json_response(status, status=404)
        return web.json_response(obj)

    app = web.Application(middlewares=[record])
    app.add_routes([
        web.get("/version", version),
        web.get("/api", api_versions),
        web.get("/apis", api_groups),
        web.get("/api/v1", resource_list(POD)),
        web.get("/apis/apps/v1", resource_list(DEPLOYMENT)),
        *openapi.routes(),
        web.post("/api/v1/namespaces/{namespace}/pods", write),
        web.post("/apis/apps/v1/namespaces/{namespace}/deployments", write),
        web.patch("/apis/apps/v1/namespaces/{namespace}/deployments/{name}", write),
        web.get("/apis/apps/v1/namespaces/{namespace}/deployments/{name}", read),
        web.get("/api/v1/namespaces/{namespace}/pods/{name}", read),
    ])  # fmt: skip
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    state.url = f"http://127.0.0.1:{server.port}"
    try:
        yield state
    finally:
        await server.close()


async def _kubectl(
    kubectl: str, stub: Stub, tmp_path: Path, *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    kubeconfig = tmp_path / "kubeconfig"
    if not kubeconfig.exists():
        kubeconfig.write_text(
            json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "kbox",
                "clusters": [{"name": "kbox", "cluster": {"server": stub.url}}],
                "users": [{"name": "kbox", "user": {}}],
                "contexts": [{"name": "kbox", "context": {"cluster": "kbox", "user": "kbox", "namespace": "default"}}],
            })
        )  # fmt: skip
    env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}
    proc = await asyncio.create_subprocess_exec(
        kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=30)
    return proc.returncode or 0, out.decode(), err.decode()


POD_YAML = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: nginx:1.27
"""

DEPLOYMENT_YAML = """\
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
      - name: web
        image: {image}
      - name: sidecar
        image: busybox
"""


async def test_kubectl_explain(kubectl: str, stub: Stub, tmp_path: Path) -> None:
    code, out, err = await _kubectl(kubectl, stub, tmp_path, "explain", "pods.spec.containers")
    assert code == 0, err
    assert "KIND:       Pod" in out
    assert "FIELD: containers <[]Container>" in out
    for name in ("image", "imagePullPolicy", "ports", "resources", "securityContext"):
        assert f"\n  {name}\t" in out, name
    code, out, err = await _kubectl(kubectl, stub, tmp_path, "explain", "deployment.spec.strategy")
    assert code == 0, err
    assert "GROUP:      apps" in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out
    assert "\n  type\t<string>" in out
    code, out, err = await _kubectl(
        kubectl, stub, tmp_path, "explain", "deploy.spec.strategy.rollingUpdate.maxSurge"
    )
    assert code == 0, err
    assert "FIELD: maxSurge <IntOrString>" in out
    code, out, err = await _kubectl(kubectl, stub, tmp_path, "explain", "pods.spec.containers.resources")
    assert code == 0, err
    assert "limits\t<map[string]Quantity>" in out
    assert any(path.startswith("GET /openapi/v3/apis/apps/v1?hash=") for path in stub.requests)
    assert not any(path.startswith("GET /openapi/v2") for path in stub.requests)


async def test_kubectl_create_validates_on_the_server(kubectl: str, stub: Stub, tmp_path: Path) -> None:
    # --validate=strict (the default) finds the PATCH with fieldValidation: kubectl sends Strict and
    # leaves validation to the server, without asking for the v2 (client-side validation) spec.
    code, out, err = await _kubectl(kubectl, stub, tmp_path, "create", "-f", "-", stdin=POD_YAML)
    assert code == 0, err
    assert out.strip() == "pod/web created"
    [pod] = stub.writes
    assert pod["path"] == "/api/v1/namespaces/default/pods"
    assert pod["query"]["fieldValidation"] == "Strict"
    assert pod["body"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    # An unknown field is therefore not rejected by kubectl itself (the server's Strict check will).
    typo = POD_YAML.replace("    image:", "    imagee:")
    code, out, err = await _kubectl(
        kubectl, stub, tmp_path, "create", "-f", "-", "--dry-run=client", "--validate=strict", "-o", "name",
        stdin=typo,
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == "pod/web"
    assert not any(path.startswith("GET /openapi/v2") for path in stub.requests), stub.requests
    assert any(path.startswith("GET /openapi/v3/api/v1?hash=") for path in stub.requests)
    # A kind: List manifest always takes the client-side (v2) path: the empty v2 lets it through.
    listed = "apiVersion: v1\nkind: List\nitems:\n- " + POD_YAML.replace("\n", "\n  ").rstrip() + "\n"
    code, out, err = await _kubectl(
        kubectl, stub, tmp_path, "create", "-f", "-", "--dry-run=client", "-o", "name", stdin=listed
    )
    assert code == 0, err
    assert out.strip() == "pod/web"
    assert any(path.startswith("GET /openapi/v2") for path in stub.requests)


async def test_kubectl_apply_patches_from_the_v3_schemas(kubectl: str, stub: Stub, tmp_path: Path) -> None:
    code, out, err = await _kubectl(
        kubectl,
        stub,
        tmp_path,
        "apply",
        "-f",
        "-",
        stdin=DEPLOYMENT_YAML.format(replicas=1, image="nginx:1.26"),
    )
    assert code == 0, err
    assert out.strip() == "deployment.apps/web created"
    [created] = stub.writes
    assert created["query"]["fieldValidation"] == "Strict"
    stub.objects["/apis/apps/v1/namespaces/default/deployments/web"] = {
        **created["body"], "metadata": {**created["body"]["metadata"], "namespace": "default", "uid": "u1",
                                        "resourceVersion": "1"},
    }  # fmt: skip
    code, out, err = await _kubectl(
        kubectl,
        stub,
        tmp_path,
        "apply",
        "-f",
        "-",
        stdin=DEPLOYMENT_YAML.format(replicas=3, image="nginx:1.27"),
    )
    assert code == 0, err
    assert "warning" not in err
    patch = stub.writes[-1]
    assert patch["method"] == "PATCH"
    assert patch["content_type"] == "application/strategic-merge-patch+json"
    assert patch["query"]["fieldValidation"] == "Strict"
    spec = patch["body"]["spec"]
    assert spec["replicas"] == 3
    # Merge keys from the schemas' x-kubernetes-patch-merge-key: containers are patched by name.
    pod_spec = spec["template"]["spec"]
    assert pod_spec["containers"] == [{"image": "nginx:1.27", "name": "web"}]
    assert pod_spec["$setElementOrder/containers"] == [{"name": "web"}, {"name": "sidecar"}]
    assert not any(path.startswith("GET /openapi/v2") for path in stub.requests), stub.requests
