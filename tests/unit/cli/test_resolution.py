"""Resource names as kubectl reads them, resolved only from a discovery list: plural, singular,
short name and kind in any case, ``resource.group``, ``resource.version.group``, ``Kind.group``,
the preferred version first, core before other groups, and a CRD like any other type."""

from __future__ import annotations

import pytest

from kbox.cli.kube.session import ResourceInfo, resolve_name

RESOURCES = [
    ResourceInfo("", "v1", "pods", "pod", "Pod", True, ("po",), ("get", "list")),
    ResourceInfo("", "v1", "events", "event", "Event", True, ("ev",), ("get", "list")),
    ResourceInfo("apps", "v1", "deployments", "deployment", "Deployment", True, ("deploy",), ("list",)),
    ResourceInfo("events.k8s.io", "v1", "events", "event", "Event", True, ("ev",), ("list",)),
    ResourceInfo("coordination.k8s.io", "v1", "leases", "lease", "Lease", True, (), ("list",)),
    ResourceInfo("example.com", "v1", "widgets", "widget", "Widget", False, ("wd",), ("list",)),
    ResourceInfo(
        "example.com", "v1beta1", "widgets", "widget", "Widget", False, ("wd",), ("list",), preferred=False
    ),
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("po", ("", "v1", "pods")),
        ("pod", ("", "v1", "pods")),
        ("pods", ("", "v1", "pods")),
        ("Pod", ("", "v1", "pods")),
        ("PODS", ("", "v1", "pods")),
        ("pods.v1", ("", "v1", "pods")),
        ("deploy", ("apps", "v1", "deployments")),
        ("deployments.apps", ("apps", "v1", "deployments")),
        ("deployments.v1.apps", ("apps", "v1", "deployments")),
        ("Deployment.apps", ("apps", "v1", "deployments")),
        ("ev", ("", "v1", "events")),
        ("events.events.k8s.io", ("events.k8s.io", "v1", "events")),
        ("leases.coordination.k8s.io", ("coordination.k8s.io", "v1", "leases")),
        ("wd", ("example.com", "v1", "widgets")),
        ("widgets.v1beta1.example.com", ("example.com", "v1beta1", "widgets")),
    ],
)
def test_resolves(name: str, expected: tuple[str, str, str]) -> None:
    found = resolve_name(RESOURCES, name)
    assert found is not None
    assert (found.group, found.version, found.plural) == expected


@pytest.mark.parametrize("name", ["nope", "deployments.nope", "pods.v2", "deployments.v2.apps", ""])
def test_unknown(name: str) -> None:
    assert resolve_name(RESOURCES, name) is None


def test_resource_paths_and_names() -> None:
    deploy = RESOURCES[2]
    assert deploy.path("ns", "web", "scale") == "/apis/apps/v1/namespaces/ns/deployments/web/scale"
    assert RESOURCES[5].path("ignored-for-cluster-scope") == "/apis/example.com/v1/widgets"
    assert RESOURCES[0].path(None) == "/api/v1/pods"
    assert deploy.resource.api_version == deploy.api_version == "apps/v1"
    assert (deploy.kind_name, RESOURCES[0].kind_name) == ("deployment.apps", "pod")
