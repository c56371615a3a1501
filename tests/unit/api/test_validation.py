"""Name, label, annotation and ObjectMeta validation, with kube-apiserver's exact messages (v1.32).

Expected texts are the ones apimachinery's ``pkg/util/validation`` and ``pkg/api/validation``
produce, so ``kubectl`` shows the same errors against kbox as against a real cluster.
"""

from __future__ import annotations

from typing import Any

import pytest

from kbox.api import validation as v
from kbox.api.errors import FieldError

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
    "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def texts(errs: list[FieldError]) -> list[str]:
    return [f"{e.field}: {e.message()}" for e in errs]


# --- DNS names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "abc", "a-b", "0", "123-abc", "example.com", "a.b.c", "x" * 253, ".".join(["a" * 63] * 3)]
)
def test_valid_subdomains(name: str) -> None:
    assert v.is_dns1123_subdomain(name) == []


@pytest.mark.parametrize("name", ["", "A", "a_b", "-a", "a-", ".a", "a.", "a..b", "a b", "é", "a/b"])
def test_invalid_subdomains(name: str) -> None:
    assert v.is_dns1123_subdomain(name) == [SUBDOMAIN_MSG]


def test_subdomain_too_long_counts_and_reports_length() -> None:
    assert v.is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    assert v.is_dns1123_subdomain("-" * 254) == ["must be no more than 253 characters", SUBDOMAIN_MSG]


@pytest.mark.parametrize("name", ["a", "my-name", "123-abc", "a" * 63])
def test_valid_labels(name: str) -> None:
    assert v.is_dns1123_label(name) == []


@pytest.mark.parametrize("name", ["", "My-Name", "a_b", "-a", "a-"])
def test_invalid_labels(name: str) -> None:
    assert v.is_dns1123_label(name) == [LABEL_MSG]


def test_label_with_dots_says_so() -> None:
    assert v.is_dns1123_label("a.b") == ["must not contain dots"]
    assert v.is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]


def test_length_is_counted_in_bytes_as_go_does() -> None:
    assert v.is_dns1123_label("é" * 32)[0] == "must be no more than 63 characters"


@pytest.mark.parametrize(("name", "ok"), [("my-svc", True), ("a1", True), ("1a", False), ("a-", False)])
def test_dns1035(name: str, ok: bool) -> None:
    assert v.is_dns1035_label(name) == ([] if ok else [DNS1035_MSG])


# --- qualified names and label values ----------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "app",
        "App_1",
        "a.b-c",
        "example.com/MyName",
        "kubernetes.io/cluster-service",
        "a" * 63,
        "k8s.io/" + "a" * 63,
    ],
)
def test_valid_qualified_names(key: str) -> None:
    assert v.is_qualified_name(key) == []


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("", ["name part must be non-empty", NAME_PART_MSG]),
        ("-a", [NAME_PART_MSG]),
        ("a" * 64, ["name part must be no more than 63 characters"]),
        ("/a", ["prefix part must be non-empty"]),
        ("Example.com/a", ["prefix part " + SUBDOMAIN_MSG]),
        ("example.com/", ["name part must be non-empty", NAME_PART_MSG]),
    ],
)
def test_invalid_qualified_names(key: str, expected: list[str]) -> None:
    assert v.is_qualified_name(key) == expected


def test_qualified_name_with_two_slashes() -> None:
    assert v.is_qualified_name("a/b/c") == [
        "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
        "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
        "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
        "and '/' (e.g. 'example.com/MyName')"
    ]


@pytest.mark.parametrize("value", ["", "a", "MyValue", "my_value", "12345", "a.b-c_d", "x" * 63])
def test_valid_label_values(value: str) -> None:
    assert v.is_valid_label_value(value) == []


@pytest.mark.parametrize("value", ["-a", "a-", "a b", "a/b", "é"])
def test_invalid_label_values(value: str) -> None:
    assert v.is_valid_label_value(value) == [VALUE_MSG]


def test_label_value_too_long() -> None:
    assert v.is_valid_label_value("x" * 64) == ["must be no more than 63 characters"]


def test_validate_labels_reports_at_the_map_path() -> None:
    errs = v.validate_labels({"ok": "fine", "-bad": "x", "k": "-v"}, "metadata.labels")
    assert texts(errs) == [
        f'metadata.labels: Invalid value: "-bad": {NAME_PART_MSG}',
        f'metadata.labels: Invalid value: "-v": {VALUE_MSG}',
    ]
    assert v.validate_labels(None, "metadata.labels") == []


def test_validate_labels_rejects_non_string_values() -> None:
    assert [e.type for e in v.validate_labels({"a": 1}, "metadata.labels")] == ["FieldValueInvalid"]  # type: ignore[dict-item]


def test_annotations_keys_are_case_insensitive_and_size_limited() -> None:
    assert (
        v.validate_annotations({"Example.com/Key": "anything at all: {json}"}, "metadata.annotations") == []
    )
    errs = v.validate_annotations({"-x": ""}, "metadata.annotations")
    assert texts(errs) == [f'metadata.annotations: Invalid value: "-x": {NAME_PART_MSG}']
    big = {"a": "x" * (256 * 1024)}
    assert texts(v.validate_annotations(big, "metadata.annotations")) == [
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    ]
    assert v.validate_annotations({"a": "x" * (256 * 1024 - 1)}, "metadata.annotations") == []


CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("key.name", []),
        ("KEY_NAME", []),
        (".dotfile", []),
        ("", [CONFIG_KEY_MSG]),
        ("a/b", [CONFIG_KEY_MSG]),
        (".", ["must not be '.'"]),
        ("..", ["must not be '..'"]),
        ("..data", ["must not start with '..'"]),
        ("k" * 254, ["must be no more than 253 characters"]),
    ],
)
def test_config_map_keys(key: str, expected: list[str]) -> None:
    assert v.is_config_map_key(key) == expected


# --- path segments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ok", []),
        (".", ["may not be '.'"]),
        ("..", ["may not be '..'"]),
        ("a/b", ["may not contain '/'"]),
        ("a%b", ["may not contain '%'"]),
        ("a/%", ["may not contain '/'", "may not contain '%'"]),
        ("...", []),
    ],
)
def test_path_segment_name(name: str, expected: list[str]) -> None:
    assert v.path_segment_name(name) == expected


def test_name_parameter_error() -> None:
    assert v.name_parameter_error("") == "Name parameter required."
    assert v.name_parameter_error("a/b") == "Name parameter invalid: \"a/b\": may not contain '/'"
    assert v.name_parameter_error("ok") is None


# --- ObjectMeta --------------------------------------------------------------------------------------


def test_object_meta_valid() -> None:
    meta = {
        "name": "web",
        "namespace": "default",
        "labels": {"app": "web"},
        "annotations": {"kubernetes.io/description": "x"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u1"}],
        "finalizers": ["example.com/cleanup"],
    }
    assert v.validate_object_meta(meta, namespaced=True) == []


def test_object_meta_name_required() -> None:
    errs = v.validate_object_meta({"namespace": "default"}, namespaced=True)
    assert texts(errs) == ["metadata.name: Required value: name or generateName is required"]
    assert errs[0].type == "FieldValueRequired"


def test_object_meta_name_checked_with_the_rule() -> None:
    errs = v.validate_object_meta({"name": "Web"}, namespaced=False)
    assert texts(errs) == [f'metadata.name: Invalid value: "Web": {SUBDOMAIN_MSG}']
    errs = v.validate_object_meta({"name": "a.b"}, namespaced=False, name_rule=v.is_dns1123_label)
    assert texts(errs) == ['metadata.name: Invalid value: "a.b": must not contain dots']
    errs = v.validate_object_meta({"name": ".."}, namespaced=False, name_rule=v.path_segment_name)
    assert texts(errs) == ["metadata.name: Invalid value: \"..\": may not be '..'"]


def test_generate_name_may_end_with_a_dash() -> None:
    assert v.validate_object_meta({"generateName": "web-", "name": "web-x7k2p"}, namespaced=False) == []
    errs = v.validate_object_meta({"generateName": "Web-", "name": "web-x7k2p"}, namespaced=False)
    assert texts(errs) == [f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN_MSG}']
    meta = {"generateName": ".", "name": ".abcde"}
    assert v.validate_object_meta(meta, namespaced=False, name_rule=v.path_segment_name) == []


def test_namespace_required_forbidden_and_checked() -> None:
    assert texts(v.validate_object_meta({"name": "a"}, namespaced=True)) == [
        "metadata.namespace: Required value"
    ]
    assert texts(v.validate_object_meta({"name": "a", "namespace": "x"}, namespaced=False)) == [
        "metadata.namespace: Forbidden: not allowed on this type"
    ]
    assert texts(v.validate_object_meta({"name": "a", "namespace": "a.b"}, namespaced=True)) == [
        'metadata.namespace: Invalid value: "a.b": must not contain dots'
    ]


def test_object_meta_custom_path_and_generation() -> None:
    errs = v.validate_object_meta(
        {"name": "a", "generation": -1}, namespaced=False, path="spec.template.metadata"
    )
    assert texts(errs) == [
        "spec.template.metadata.generation: Invalid value: -1: must be greater than or equal to 0"
    ]


def test_owner_references_basics() -> None:
    errs = v.validate_object_meta({"name": "a", "ownerReferences": [{}]}, namespaced=False)
    assert texts(errs) == [
        'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
        'metadata.ownerReferences.kind: Invalid value: "": kind must not be empty',
        'metadata.ownerReferences.name: Invalid value: "": name must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty',
    ]


def test_owner_reference_event_and_two_controllers() -> None:
    event = {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"}
    errs = v.validate_owner_references([event], "metadata.ownerReferences")
    assert [e.detail for e in errs] == ["/v1, Kind=Event is disallowed from being an owner"]
    refs = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": True},
    ]
    errs = v.validate_owner_references(refs, "metadata.ownerReferences")
    assert [e.detail for e in errs] == [
        'Only one reference can have Controller set to true. Found "true" in references for ReplicaSet/a and '
        "ReplicaSet/b"
    ]


def test_finalizers() -> None:
    errs = v.validate_finalizers(["-x"], "metadata.finalizers")
    assert texts(errs) == [f'metadata.finalizers: Invalid value: "-x": {NAME_PART_MSG}']
    errs = v.validate_finalizers(["orphan", "foregroundDeletion"], "metadata.finalizers")
    assert [e.detail for e in errs] == ["finalizer orphan and foregroundDeletion cannot be both set"]


# --- ObjectMeta on update ----------------------------------------------------------------------------

OLD: dict[str, Any] = {
    "name": "a",
    "namespace": "default",
    "uid": "u1",
    "creationTimestamp": "2024-01-01T00:00:00Z",
    "resourceVersion": "5",
    "generation": 2,
}


def test_update_unchanged_is_valid() -> None:
    assert v.validate_object_meta_update(dict(OLD), OLD) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [("name", "b"), ("namespace", "other"), ("uid", "u2"), ("creationTimestamp", "2025-01-01T00:00:00Z")],
)
def test_update_immutable_fields(key: str, value: str) -> None:
    errs = v.validate_object_meta_update({**OLD, key: value}, OLD)
    assert texts(errs) == [f'metadata.{key}: Invalid value: "{value}": field is immutable']


def test_update_generation_and_resource_version() -> None:
    errs = v.validate_object_meta_update({**OLD, "generation": 1}, OLD)
    assert texts(errs) == ["metadata.generation: Invalid value: 1: must not be decremented"]
    new = {k: val for k, val in OLD.items() if k != "resourceVersion"}
    assert v.validate_object_meta_update(new, OLD) == []
    errs = v.validate_object_meta_update(new, OLD, require_resource_version=True)
    assert texts(errs) == ['metadata.resourceVersion: Invalid value: "": must be specified for an update']


def test_update_no_new_finalizers_while_deleting() -> None:
    old = {**OLD, "deletionTimestamp": "2024-02-01T00:00:00Z", "finalizers": ["a.io/x"]}
    assert v.validate_object_meta_update({**old, "finalizers": []}, old) == []
    errs = v.validate_object_meta_update({**old, "finalizers": ["a.io/x", "b.io/y"]}, old)
    assert texts(errs) == [
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, "
        'found new finalizers []string{"b.io/y"}'
    ]


def test_update_checks_new_labels() -> None:
    errs = v.validate_object_meta_update({**OLD, "labels": {"a": "-"}}, OLD)
    assert texts(errs) == [f'metadata.labels: Invalid value: "-": {VALUE_MSG}']


# --- metav1.LabelSelector ----------------------------------------------------------------------------


def test_label_selector_valid() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert v.validate_label_selector(selector, "spec.selector") == []
    assert v.validate_label_selector(None, "spec.selector") == []


def test_label_selector_errors() -> None:
    selector = {
        "matchLabels": {"-a": "b"},
        "matchExpressions": [
            {"key": "x", "operator": "In", "values": []},
            {"key": "y", "operator": "Exists", "values": ["z"]},
            {"key": "z", "operator": "Near"},
        ],
    }
    assert texts(v.validate_label_selector(selector, "spec.selector")) == [
        f'spec.selector.matchLabels: Invalid value: "-a": {NAME_PART_MSG}',
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or "
        "'NotIn'",
        "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or "
        "'DoesNotExist'",
        'spec.selector.matchExpressions[2].operator: Invalid value: "Near": not a valid selector operator',
    ]
