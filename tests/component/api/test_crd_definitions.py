"""The pure parts of CRD serving, without a server: kube-aware version order, CRD spec validation
wording, CRD defaults and the status the strategy keeps, the names a CRD serves under, and the Scale of
a custom resource read from its replicas paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kbox.api.crd import approval, custom, definition, scale, validation, versions

Obj = dict[str, Any]

CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object"}},
            }
        ],
    },
}


def test_kube_aware_version_order() -> None:
    given = ["v1alpha1", "foo10", "v1", "v2beta1", "v10", "foo1", "v2", "v11alpha2", "v1beta2", "v12alpha1"]
    assert versions.by_priority(given) == [
        "v10", "v2", "v1", "v2beta1", "v1beta2", "v12alpha1", "v11alpha2", "v1alpha1", "foo1", "foo10",
    ]  # fmt: skip


def _messages(crd: Obj) -> list[str]:
    definition.STRATEGY.default(crd)
    return [f"{p.field}: {p.message()}" for p in validation.validate(crd)]


def test_a_valid_crd_has_no_errors_and_gets_defaults() -> None:
    crd = copy.deepcopy(CRD)
    assert _messages(crd) == []
    assert crd["spec"]["names"]["singular"] == "widget"
    assert crd["spec"]["names"]["listKind"] == "WidgetList"
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    definition.STRATEGY.prepare_for_create(crd)
    assert crd["status"] == {
        "conditions": [],
        "acceptedNames": {"plural": "", "kind": ""},
        "storedVersions": ["v1"],
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["spec"].update(group="example"),
            'spec.group: Invalid value: "example": should be a domain with at least one dot',
        ),
        (
            lambda c: c["spec"].update(scope="Global"),
            'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"',
        ),
        (
            lambda c: c["metadata"].update(name="x.example.com"),
            'metadata.name: Invalid value: "x.example.com": must be spec.names.plural+"."+spec.group',
        ),
        (
            lambda c: c["spec"]["names"].update(plural="Widgets"),
            'spec.names.plural: Invalid value: "Widgets"',
        ),
        (
            lambda c: c["spec"]["names"].update(listKind="Widget"),
            'spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same',
        ),
        (lambda c: c["spec"]["versions"][0].update(storage=False), "spec.versions: Invalid value:"),
        (
            lambda c: c["spec"]["versions"][0].pop("schema"),
            "spec.versions[0].schema.openAPIV3Schema: Required value",
        ),
        (
            lambda c: c["spec"]["versions"][0].update(
                subresources={"scale": {"specReplicasPath": ".status.r", "statusReplicasPath": ".status.r"}}
            ),
            'spec.versions[0].subresources.scale.specReplicasPath: Invalid value: ".status.r": should be a json path under .spec',
        ),
        (
            lambda c: c["spec"]["versions"][0].update(
                additionalPrinterColumns=[{"name": "X", "type": "float", "jsonPath": ".spec.x"}]
            ),
            'spec.versions[0].additionalPrinterColumns[0].type: Invalid value: "float": must be one of boolean,date,integer,number,string',
        ),
        (
            lambda c: c["spec"].update(conversion={"strategy": "Magic"}),
            'spec.conversion.strategy: Unsupported value: "Magic": supported values: "None", "Webhook"',
        ),
    ],
)
def test_invalid_crds(change: Any, expected: str) -> None:
    crd = copy.deepcopy(CRD)
    change(crd)
    found = _messages(crd)
    assert any(m.startswith(expected) for m in found), found


def test_immutable_fields_on_update() -> None:
    old = copy.deepcopy(CRD)
    definition.STRATEGY.default(old)
    new = copy.deepcopy(old)
    new["spec"]["scope"] = "Cluster"
    new["spec"]["names"]["kind"] = "Gadget"
    assert validation.validate_update(new, old, established=False) == []
    fields = {p.field for p in validation.validate_update(new, old, established=True)}
    assert fields == {"spec.scope", "spec.names.kind"}
    renamed = copy.deepcopy(old)
    renamed["spec"]["group"] = "other.com"
    assert "spec.group" in {p.field for p in validation.validate_update(renamed, old, established=False)}


def test_delete_adds_the_cleanup_finalizer_and_terminating() -> None:
    crd = copy.deepcopy(CRD)
    assert definition.STRATEGY.deletion_waits(crd)
    definition.STRATEGY.prepare_for_delete(crd)
    assert crd["metadata"]["finalizers"] == [definition.CLEANUP_FINALIZER]
    terminating = definition.condition(crd, definition.TERMINATING)
    assert terminating is not None and terminating["reason"] == "InstanceDeletionPending"


def test_served_versions_become_resources() -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"] = [
        {**crd["spec"]["versions"][0], "name": "v1", "storage": True},
        {**crd["spec"]["versions"][0], "name": "v2", "storage": False, "subresources": {"status": {}}},
        {**crd["spec"]["versions"][0], "name": "v3", "storage": False, "served": False},
    ]
    names = {
        "plural": "widgets",
        "singular": "widget",
        "kind": "Widget",
        "listKind": "WidgetItems",
        "shortNames": ["wd"],
    }
    resources = custom.resources_for(crd, names, custom.CrdState("widgets.example.com"))
    assert [r.version for r in resources] == ["v2", "v1"]
    v2, v1 = resources
    assert v2.list_kind == "WidgetItems" and v2.short_names == ("wd",) and v2.namespaced
    assert [s.name for s in v2.subresources] == ["status"] and v1.subresources == ()
    assert v1.extra["storage_api_version"] == v2.extra["storage_api_version"] == "example.com/v1"
    assert v1.key_root == v2.key_root == "/registry/example.com/widgets/"


def test_scale_reads_the_replicas_paths() -> None:
    paths = {
        "specReplicasPath": ".spec.size",
        "statusReplicasPath": ".status.ready",
        "labelSelectorPath": ".status.sel",
    }
    obj = {
        "metadata": {"name": "w", "namespace": "d"},
        "spec": {"size": 3},
        "status": {"ready": 2, "sel": "app=w"},
    }
    assert scale.to_scale(obj, paths)["spec"] == {"replicas": 3}
    assert scale.to_scale(obj, paths)["status"] == {"replicas": 2, "selector": "app=w"}
    assert scale.to_scale({"metadata": {"name": "w"}}, paths)["spec"] == {"replicas": 0}
    problems = scale.validate({"spec": {"size": -1}}, paths)
    assert [f"{p.field}: {p.message()}" for p in problems] == [
        ".spec.size: Invalid value: -1: should be a non-negative integer"
    ]


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (None, ("False", "MissingAnnotation")),
        ("https://github.com/kubernetes/enhancements/pull/1111", ("True", "ApprovedAnnotation")),
        ("unapproved, experimental", ("False", "UnapprovedAnnotation")),
        ("maybe", ("False", "InvalidAnnotation")),
    ],
)
def test_api_approval_of_protected_groups(annotation: str | None, expected: tuple[str, str]) -> None:
    crd = copy.deepcopy(CRD)
    crd["metadata"] = {"name": "widgets.example.k8s.io"}
    crd["spec"]["group"] = "example.k8s.io"
    if annotation is not None:
        crd["metadata"]["annotations"] = {approval.ANNOTATION: annotation}
    found = approval.condition(crd)
    assert found is not None and found[:2] == expected
    refused = [p.field for p in validation.validate(crd)]
    assert (approval.ANNOTATION in str(refused)) == (
        expected[1] in ("MissingAnnotation", "InvalidAnnotation")
    )
    assert approval.condition(CRD) is None and approval.validate(CRD, None) == []


def test_x_k8s_io_groups_need_no_approval() -> None:
    assert not approval.protected("cluster.x-k8s.io") and approval.protected("gateway.networking.k8s.io")
