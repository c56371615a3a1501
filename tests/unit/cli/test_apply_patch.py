"""The three-way patch of ``kbox apply`` (``kbox.cli.kube.threeway``) and its last-applied annotation.

Patches are computed with merge keys read from the OpenAPI v3 document kbox's apiserver serves for
``apps/v1`` / ``v1`` (the same source ``kbox apply`` reads over HTTP), and then applied with the
apiserver's own strategic merge and JSON merge patch engines, so each test checks the object a user ends
up with, not only the patch's shape. Left out here: the HTTP round trip (tests/component/cli/test_apply.py).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kbox.api import openapi
from kbox.api.patch import merge_patch, strategic
from kbox.cli.kube import threeway
from kbox.resources import registry


def schema_for(doc_path: str, kind: str) -> threeway.PatchSchema:
    doc = openapi.OpenAPI(registry.builtin()).document(doc_path)
    assert doc is not None
    components = doc["components"]["schemas"]
    for schema in components.values():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            if gvk["kind"] == kind:
                return threeway.PatchSchema(schema, components)
    raise AssertionError(f"{kind} not in {doc_path}")


@pytest.fixture(scope="module")
def deployment_schema() -> threeway.PatchSchema:
    return schema_for("apis/apps/v1", "Deployment")


def deployment(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
            **spec,
        },
    }


def live_from(manifest: dict[str, Any], **extra_spec: Any) -> dict[str, Any]:
    """What the server holds after creating ``manifest``: defaults added, status and metadata filled."""
    live = copy.deepcopy(manifest)
    live["metadata"].update({"uid": "u1", "resourceVersion": "7", "generation": 1})
    live["spec"].setdefault("replicas", 1)
    live["spec"].setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}})
    for container in live["spec"]["template"]["spec"]["containers"]:
        container.setdefault("imagePullPolicy", "Always")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        for port in container.get("ports") or ():
            port.setdefault("protocol", "TCP")
    live["spec"].update(extra_spec)
    live["status"] = {"replicas": 1}
    return live


def apply_smp(live: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return strategic.apply(copy.deepcopy(live), patch, group="apps", version="v1", kind="Deployment")


def test_reapplying_the_same_manifest_is_unchanged_despite_server_defaults(
    deployment_schema: threeway.PatchSchema,
) -> None:
    manifest = deployment([{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}])
    modified = threeway.with_last_applied(manifest)
    live = live_from(modified)
    original = threeway.last_applied(live)
    assert original == {**manifest, "metadata": {**manifest["metadata"], "annotations": {}}}
    assert threeway.three_way(original, modified, live, deployment_schema) == {}
    assert threeway.three_way(original, modified, live, None) == {}  # merge patch: lists compared as covered


def test_a_field_removed_from_the_manifest_is_deleted_and_others_fields_are_kept(
    deployment_schema: threeway.PatchSchema,
) -> None:
    first = deployment(
        [
            {
                "name": "web",
                "image": "nginx",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            }
        ],
        minReadySeconds=5,
    )
    live = live_from(threeway.with_last_applied(first))
    live["metadata"]["labels"] = {"team": "set-by-someone-else"}
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "envoy"})  # injected

    second = deployment([{"name": "web", "image": "nginx:2", "env": [{"name": "A", "value": "1"}]}])
    modified = threeway.with_last_applied(second)
    patch = threeway.three_way(threeway.last_applied(live), modified, live, deployment_schema)
    assert patch["spec"]["minReadySeconds"] is None
    result = apply_smp(live, patch)

    assert "minReadySeconds" not in result["spec"]
    assert result["metadata"]["labels"] == {"team": "set-by-someone-else"}
    containers = {c["name"]: c for c in result["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"web", "sidecar"}  # the injected container survives a keyed merge
    assert containers["web"]["image"] == "nginx:2"
    assert containers["web"]["env"] == [{"name": "A", "value": "1"}]
    assert containers["web"]["imagePullPolicy"] == "Always"  # a default nobody applied is left alone
    assert json.loads(result["metadata"]["annotations"][threeway.LAST_APPLIED]) == json.loads(
        modified["metadata"]["annotations"][threeway.LAST_APPLIED]
    )


def test_a_container_removed_from_the_manifest_is_deleted_by_merge_key(
    deployment_schema: threeway.PatchSchema,
) -> None:
    first = deployment([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    live = live_from(threeway.with_last_applied(first))
    second = threeway.with_last_applied(deployment([{"name": "b", "image": "y"}]))
    patch = threeway.three_way(threeway.last_applied(live), second, live, deployment_schema)
    containers = patch["spec"]["template"]["spec"]["containers"]
    assert {"name": "a", "$patch": "delete"} in containers
    assert patch["spec"]["template"]["spec"]["$setElementOrder/containers"] == [{"name": "b"}]
    result = apply_smp(live, patch)
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["b"]


def test_switching_strategy_type_drops_the_other_union_member(
    deployment_schema: threeway.PatchSchema,
) -> None:
    manifest = deployment([{"name": "web", "image": "nginx"}])
    live = live_from(threeway.with_last_applied(manifest))
    assert "rollingUpdate" in live["spec"]["strategy"]  # a server default, never applied
    recreate = threeway.with_last_applied(
        deployment([{"name": "web", "image": "nginx"}], strategy={"type": "Recreate"})
    )
    patch = threeway.three_way(threeway.last_applied(live), recreate, live, deployment_schema)
    assert patch["spec"]["strategy"]["$retainKeys"] == ["type"]
    assert apply_smp(live, patch)["spec"]["strategy"] == {"type": "Recreate"}


def test_atomic_lists_are_sent_whole_when_changed_or_shrunk(deployment_schema: threeway.PatchSchema) -> None:
    first = deployment([{"name": "web", "image": "nginx", "args": ["a", "b"]}])
    live = live_from(threeway.with_last_applied(first))
    shorter = threeway.with_last_applied(deployment([{"name": "web", "image": "nginx", "args": ["a"]}]))
    patch = threeway.three_way(threeway.last_applied(live), shorter, live, deployment_schema)
    assert patch["spec"]["template"]["spec"]["containers"] == [{"name": "web", "args": ["a"]}]
    assert apply_smp(live, patch)["spec"]["template"]["spec"]["containers"][0]["args"] == ["a"]


def test_without_a_schema_the_patch_is_a_json_merge_patch() -> None:
    """Custom resources: no directives; lists replaced whole; removed keys null."""
    first = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"size": 1, "colour": "red", "items": [{"n": 1}, {"n": 2}]},
    }
    live = copy.deepcopy(threeway.with_last_applied(first))
    live["spec"]["addedByController"] = True
    second = copy.deepcopy(first)
    del second["spec"]["colour"]
    second["spec"]["items"] = [{"n": 1}]
    modified = threeway.with_last_applied(second)
    patch = threeway.three_way(threeway.last_applied(live), modified, live, None)
    assert patch["spec"] == {"colour": None, "items": [{"n": 1}]}
    assert not any(key.startswith("$") for key in json.dumps(patch).split('"'))
    result = merge_patch.apply(copy.deepcopy(live), patch)
    assert result["spec"] == {"size": 1, "items": [{"n": 1}], "addedByController": True}


def test_an_object_never_applied_gets_no_deletions(deployment_schema: threeway.PatchSchema) -> None:
    created = deployment([{"name": "web", "image": "nginx"}], minReadySeconds=3)
    live = live_from(created)  # created with kubectl create: no annotation
    assert threeway.last_applied(live) is None
    modified = threeway.with_last_applied(deployment([{"name": "web", "image": "nginx"}]))
    patch = threeway.three_way(None, modified, live, deployment_schema)
    assert "minReadySeconds" not in patch.get("spec", {})
    assert threeway.LAST_APPLIED in patch["metadata"]["annotations"]


def test_the_annotation_is_encoded_as_kubectl_encodes_it() -> None:
    manifest = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "c", "annotations": {"note": "<a & b>"}},
        "data": {"é": "ü"},
    }
    text = threeway.with_last_applied(manifest)["metadata"]["annotations"][threeway.LAST_APPLIED]
    # Go's encoding/json: sorted keys, no spaces, HTML characters escaped, UTF-8 kept, newline at the end.
    assert text == (
        '{"apiVersion":"v1","data":{"é":"ü"},"kind":"ConfigMap","metadata":{"annotations":'
        '{"note":"\\u003ca \\u0026 b\\u003e"},"name":"c"}}\n'
    )
    assert threeway.last_applied({"metadata": {"annotations": {threeway.LAST_APPLIED: "not json"}}}) is None


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ([{"a": 1, "d": 0}], [{"a": 1}], True),
        ([{"a": 1}, {"a": 2}], [{"a": 1}], False),
        ({"a": None}, {"a": None}, True),
        ({"a": 1}, {"a": None}, False),
        (True, 1, False),
    ],
)
def test_covers(outer: Any, inner: Any, expected: bool) -> None:
    assert threeway.covers(outer, inner) is expected


def test_null_in_the_manifest_deletes_once_then_is_unchanged(deployment_schema: threeway.PatchSchema) -> None:
    """Generated YAML says ``creationTimestamp: null``; the server sets it anyway."""
    manifest = deployment([{"name": "web", "image": "nginx"}])
    manifest["metadata"]["creationTimestamp"] = None
    modified = threeway.with_last_applied(manifest)
    live = live_from(modified)
    live["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    assert threeway.three_way(threeway.last_applied(live), modified, live, deployment_schema) == {}
    # A field newly set to null in the manifest is removed.
    before = threeway.with_last_applied(deployment([{"name": "web", "image": "nginx"}], minReadySeconds=4))
    live = live_from(before)
    after = deployment([{"name": "web", "image": "nginx"}], minReadySeconds=None)
    patch = threeway.three_way(
        threeway.last_applied(live), threeway.with_last_applied(after), live, deployment_schema
    )
    assert patch["spec"] == {"minReadySeconds": None}
