"""JSON patch (RFC 6902) as ``application/json-patch+json`` applies it, through ``jsonpatch``.

Covers the six operations, that neither input is modified, and kube-apiserver's answers for bad
patches (``k8s.io/apiserver`` ``pkg/endpoints/handlers/patch.go``): a body that does not decode as
operations is 400 BadRequest ``error decoding patch: ...``; any operation that fails to apply (a
``test`` that does not match, a missing path, an unknown operation) is 422 Invalid with the generic
``the server rejected our request due to an error in our request`` and empty details; more than
10,000 operations is 413.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.api.patch import json_patch

REJECTED = "the server rejected our request due to an error in our request"


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "a", "image": "a:1", "args": ["one"]}]},
    }


def test_add_replace_remove_move_copy_and_test() -> None:
    result = json_patch.apply(
        pod(),
        [
            {"op": "test", "path": "/metadata/name", "value": "p"},
            {"op": "replace", "path": "/spec/containers/0/image", "value": "a:2"},
            {"op": "add", "path": "/spec/containers/0/args/-", "value": "two"},
            {"op": "add", "path": "/metadata/labels/tier", "value": "db"},
            {"op": "remove", "path": "/metadata/labels/app"},
            {"op": "copy", "from": "/metadata/labels", "path": "/metadata/annotations"},
            {"op": "move", "from": "/metadata/labels/tier", "path": "/metadata/labels/role"},
        ],
    )
    assert result["spec"]["containers"][0] == {"name": "a", "image": "a:2", "args": ["one", "two"]}
    assert result["metadata"]["labels"] == {"role": "db"}
    assert result["metadata"]["annotations"] == {"tier": "db"}


def test_escaped_pointer_segments() -> None:
    original = {"metadata": {"annotations": {"example.com/a~b": "1"}}}
    result = json_patch.apply(
        original, [{"op": "replace", "path": "/metadata/annotations/example.com~1a~0b", "value": "2"}]
    )
    assert result == {"metadata": {"annotations": {"example.com/a~b": "2"}}}


def test_inputs_are_not_modified() -> None:
    original = pod()
    patch = [{"op": "add", "path": "/spec/containers/0/args/-", "value": "two"}]
    before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)
    result = json_patch.apply(original, patch)
    result["spec"]["containers"][0]["args"].append("three")
    assert original == before and patch == patch_before


def test_empty_patch_changes_nothing() -> None:
    assert json_patch.apply(pod(), []) == pod()


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "test", "path": "/metadata/name", "value": "other"}],
        [{"op": "remove", "path": "/metadata/annotations"}],
        [{"op": "replace", "path": "/spec/nodeName", "value": "n"}],
        [{"op": "add", "path": "/metadata/annotations/a", "value": "x"}],
        [{"op": "add", "path": "/spec/containers/5", "value": {}}],
        [{"op": "bogus", "path": "/metadata"}],
        [{"path": "/metadata"}],
        [{"op": "add", "path": "no-slash", "value": 1}],
        [{"op": "move", "from": "/nothing", "path": "/metadata/x"}],
        [None],
    ],
)
def test_an_operation_that_fails_is_422_with_the_generic_message(patch: list[Any]) -> None:
    with pytest.raises(StatusError) as info:
        json_patch.apply(pod(), patch)
    assert (info.value.code, info.value.reason, info.value.message) == (422, "Invalid", REJECTED)
    assert info.value.status()["message"] == REJECTED


def test_a_failed_test_leaves_the_original_alone() -> None:
    original = pod()
    with pytest.raises(StatusError):
        json_patch.apply(
            original,
            [
                {"op": "replace", "path": "/metadata/name", "value": "q"},
                {"op": "test", "path": "/kind", "value": "Node"},
            ],
        )
    assert original == pod()


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"op": "add", "path": "/a", "value": 1},
            "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
        ),
        (
            "[]",
            "error decoding patch: json: cannot unmarshal string into Go value of type []handlers.jsonPatchOp",
        ),
        (
            None,
            "error decoding patch: json: cannot unmarshal null into Go value of type []handlers.jsonPatchOp",
        ),
        (
            ["add"],
            "error decoding patch: json: cannot unmarshal string into Go value of type handlers.jsonPatchOp",
        ),
        (
            [{"op": 1, "path": "/a"}],
            "error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.op of type string",
        ),
        (
            [{"op": "add", "path": ["a"], "value": 1}],
            "error decoding patch: json: cannot unmarshal array into Go struct field jsonPatchOp.path of type string",
        ),
    ],
)
def test_a_malformed_patch_document_is_400(patch: object, message: str) -> None:
    with pytest.raises(StatusError) as info:
        json_patch.apply(pod(), patch)
    assert (info.value.code, info.value.reason, info.value.message) == (400, "BadRequest", message)


def test_too_many_operations_is_413() -> None:
    patch = [{"op": "test", "path": "/kind", "value": "Pod"}] * 10_001
    with pytest.raises(StatusError) as info:
        json_patch.apply(pod(), patch)
    assert (info.value.code, info.value.reason) == (413, "RequestEntityTooLarge")
    assert info.value.message == "The allowed maximum operations in a JSON patch is 10000, got 10001"


def test_replacing_the_whole_document_with_a_non_object_is_422() -> None:
    with pytest.raises(StatusError) as info:
        json_patch.apply(pod(), [{"op": "replace", "path": "", "value": [1]}])
    assert (info.value.code, info.value.reason) == (422, "Invalid")
    assert info.value.details["causes"][0]["field"] == "patch"
