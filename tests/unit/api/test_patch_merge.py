"""JSON merge patch (RFC 7386) as ``application/merge-patch+json`` applies it.

Covers the RFC's rules (null deletes, objects merge recursively, everything else replaces, including
lists), that neither input is modified, and the 400 answers kube-apiserver's patch handler gives for
a body that is not a JSON object (``k8s.io/apiserver`` ``pkg/endpoints/handlers/patch.go``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.api.patch import merge_patch


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}
            },
        },
    }


def test_maps_merge_recursively_and_scalars_replace() -> None:
    result = merge_patch.apply(
        deployment(), {"metadata": {"labels": {"tier": "back", "new": "x"}}, "spec": {"replicas": 3}}
    )
    assert result["metadata"]["labels"] == {"app": "web", "tier": "back", "new": "x"}
    assert result["spec"]["replicas"] == 3
    assert result["metadata"]["name"] == "web"


def test_null_deletes_a_key_and_a_missing_key_is_fine() -> None:
    result = merge_patch.apply(deployment(), {"metadata": {"labels": {"tier": None, "absent": None}}})
    assert result["metadata"]["labels"] == {"app": "web"}


def test_lists_are_replaced_whole() -> None:
    result = merge_patch.apply(
        deployment(), {"spec": {"template": {"spec": {"containers": [{"name": "b"}]}}}}
    )
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "b"}]


def test_an_object_replaces_a_scalar_and_drops_its_own_nulls() -> None:
    result = merge_patch.apply({"a": "text"}, {"a": {"b": 1, "c": None}})
    assert result == {"a": {"b": 1}}


def test_a_scalar_replaces_an_object() -> None:
    assert merge_patch.apply({"a": {"b": 1}}, {"a": 2}) == {"a": 2}


def test_empty_patch_changes_nothing() -> None:
    assert merge_patch.apply(deployment(), {}) == deployment()


def test_inputs_are_not_modified_and_the_result_shares_nothing() -> None:
    original = deployment()
    patch = {
        "metadata": {"labels": {"tier": None}},
        "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}},
    }
    before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)
    result = merge_patch.apply(original, patch)
    assert original == before and patch == patch_before
    result["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    result["metadata"]["name"] = "changed"
    assert original == before and patch == patch_before


@pytest.mark.parametrize(
    ("patch", "kind"),
    [([{"op": "add"}], "array"), ("text", "string"), (3, "number"), (True, "bool")],
)
def test_a_patch_that_is_not_an_object_is_400(patch: object, kind: str) -> None:
    with pytest.raises(StatusError) as info:
        merge_patch.apply(deployment(), patch)
    assert (info.value.code, info.value.reason) == (400, "BadRequest")
    assert info.value.message == (
        f"error decoding patch: json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
    )


def test_a_null_patch_is_400_invalid_json_patch() -> None:
    with pytest.raises(StatusError) as info:
        merge_patch.apply(deployment(), None)
    assert (info.value.code, info.value.reason, info.value.message) == (
        400,
        "BadRequest",
        "Invalid JSON Patch",
    )


def test_clone_is_a_deep_copy() -> None:
    data = {"a": [{"b": [1, 2]}], "c": None}
    copied = merge_patch.clone(data)
    copied["a"][0]["b"].append(3)
    assert data == {"a": [{"b": [1, 2]}], "c": None}
