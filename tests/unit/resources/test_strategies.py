"""The per-kind strategies through the generic store (in-memory store, no HTTP): defaults, validation
with Kubernetes' field paths, generation counting spec changes only, status kept apart from spec,
Service address allocation, Secret stringData, pod update rules, namespace termination, and graceful
deletion of scheduled pods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kbox.api import admission
from kbox.api.catalog import Catalog
from kbox.api.errors import StatusError
from kbox.api.registry import DeleteOptions, GenericStore
from kbox.resources import registry
from kbox.store.memory import MemoryStore

Obj = dict[str, Any]


@pytest.fixture
async def catalog() -> AsyncIterator[Catalog]:
    store = MemoryStore()
    await store.start()
    catalog = Catalog(store, registry.builtin())
    namespaces = catalog.lookup("", "v1", "namespaces")
    assert namespaces is not None
    await namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    yield catalog
    await store.close()


def generic(catalog: Catalog, group: str, plural: str) -> GenericStore:
    found = catalog.lookup(group, "v1", plural)
    assert found is not None
    return found


def deployment(name: str = "web", replicas: int = 2) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }


def replace_with(obj: Obj):  # type: ignore[no-untyped-def]
    return lambda current: obj


async def test_pod_defaults_and_status(catalog: Catalog) -> None:
    pods = generic(catalog, "", "pods")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]},
        "status": {"phase": "Running"},
    }
    created = await pods.create("default", pod)
    spec = created["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["serviceAccountName"] == "default"
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert spec["containers"][0]["ports"][0]["protocol"] == "TCP"
    assert created["status"] == {
        "phase": "Pending",
        "qosClass": "BestEffort",
    }  # status from the client is reset
    assert "generation" not in created["metadata"]


async def test_pod_validation_paths(catalog: Catalog) -> None:
    pods = generic(catalog, "", "pods")
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "restartPolicy": "Sometimes",
            "containers": [{"name": "Bad", "image": ""}, {"name": "Bad", "image": "x"}],
        },
    }
    with pytest.raises(StatusError) as invalid:
        await pods.create("default", bad)
    fields = {c["field"] for c in invalid.value.details["causes"]}
    assert {
        "spec.restartPolicy",
        "spec.containers[0].name",
        "spec.containers[0].image",
        "spec.containers[1].name",
    } <= fields
    assert invalid.value.code == 422


async def test_pod_spec_is_mostly_immutable(catalog: Catalog) -> None:
    pods = generic(catalog, "", "pods")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "a"}]},
    }
    created = await pods.create("default", pod)
    created["spec"]["containers"][0]["image"] = "b"  # allowed
    updated, _ = await pods.update("default", "p", replace_with(created))
    assert updated["spec"]["containers"][0]["image"] == "b"
    updated["spec"]["restartPolicy"] = "Never"
    with pytest.raises(StatusError) as forbidden:
        await pods.update("default", "p", replace_with(updated))
    assert "pod updates may not change fields" in forbidden.value.message


async def test_generation_counts_spec_changes_only(catalog: Catalog) -> None:
    deployments = generic(catalog, "apps", "deployments")
    created = await deployments.create("default", deployment())
    assert created["metadata"]["generation"] == 1
    assert created["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": "25%", "maxSurge": "25%"}
    created["metadata"]["labels"] = {"x": "y"}
    relabelled, _ = await deployments.update("default", "web", replace_with(created))
    assert relabelled["metadata"]["generation"] == 1
    relabelled["spec"]["replicas"] = 5
    scaled, _ = await deployments.update("default", "web", replace_with(relabelled))
    assert scaled["metadata"]["generation"] == 2
    # The main resource keeps the status; the status subresource keeps the spec.
    scaled["status"] = {"replicas": 5}
    kept, _ = await deployments.update("default", "web", replace_with(scaled))
    assert kept.get("status", {}) == {}
    kept["status"] = {"replicas": 5, "observedGeneration": 2}
    kept["spec"]["replicas"] = 99
    status, _ = await deployments.update("default", "web", replace_with(kept), subresource="status")
    assert status["status"]["replicas"] == 5
    assert status["spec"]["replicas"] == 5
    assert status["metadata"]["generation"] == 2


async def test_deployment_selector_must_match_and_is_immutable(catalog: Catalog) -> None:
    deployments = generic(catalog, "apps", "deployments")
    bad = deployment()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(StatusError) as mismatch:
        await deployments.create("default", bad)
    assert "`selector` does not match template `labels`" in mismatch.value.message
    created = await deployments.create("default", deployment())
    created["spec"]["selector"] = {"matchLabels": {"app": "web", "extra": "x"}}
    created["spec"]["template"]["metadata"]["labels"]["extra"] = "x"
    with pytest.raises(StatusError) as immutable:
        await deployments.update("default", "web", replace_with(created))
    assert "field is immutable" in immutable.value.message


async def test_service_allocation(catalog: Catalog) -> None:
    services = generic(catalog, "", "services")

    def service(name: str, **spec: Any) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], **spec},
        }

    first = service("a", type="NodePort")
    await admission.admit_create(catalog, services, "default", first)
    created = await services.create("default", first)
    assert created["spec"]["clusterIP"].startswith("10.")
    node_port = created["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    assert created["spec"]["ports"][0]["targetPort"] == 80
    taken = service("b", type="NodePort", clusterIP=created["spec"]["clusterIP"])
    with pytest.raises(StatusError) as ip_taken:
        await admission.admit_create(catalog, services, "default", taken)
    assert "provided IP is already allocated" in ip_taken.value.message
    port_taken = service("c", type="NodePort")
    port_taken["spec"]["ports"][0]["nodePort"] = node_port
    with pytest.raises(StatusError) as port_error:
        await admission.admit_create(catalog, services, "default", port_taken)
    assert "provided port is already allocated" in port_error.value.message
    outside = service("d", clusterIP="192.168.1.1")
    with pytest.raises(StatusError):
        await admission.admit_create(catalog, services, "default", outside)


async def test_secret_string_data(catalog: Catalog) -> None:
    secrets = generic(catalog, "", "secrets")
    created = await secrets.create(
        "default", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    )
    assert created["data"] == {"k": "dg=="}
    assert created["type"] == "Opaque"
    assert "stringData" not in created
    with pytest.raises(StatusError) as bad:
        await secrets.create(
            "default", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "data": {"k": "!!"}}
        )
    assert "illegal base64 data" in bad.value.message


async def test_namespace_terminates_then_finalizes(catalog: Catalog) -> None:
    namespaces = generic(catalog, "", "namespaces")
    created = await namespaces.create(
        None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    )
    assert created["spec"]["finalizers"] == ["kubernetes"]
    assert created["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team"
    terminating, gone = await namespaces.delete(None, "team")
    assert not gone
    assert terminating["status"]["phase"] == "Terminating"
    configmaps = generic(catalog, "", "configmaps")
    with pytest.raises(StatusError) as refused:
        await admission.admit_create(catalog, configmaps, "team", {"metadata": {"name": "c"}})
    assert refused.value.code == 403


async def test_scheduled_pod_deletes_gracefully(catalog: Catalog) -> None:
    pods = generic(catalog, "", "pods")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "finalizers": ["example.com/hold"]},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "a"}]},
    }
    await pods.create("default", pod)
    obj, gone = await pods.delete("default", "p")
    assert not gone and obj["metadata"]["deletionGracePeriodSeconds"] == 30
    obj, gone = await pods.delete("default", "p", DeleteOptions(grace_period_seconds=0))
    assert not gone  # the finalizer still holds it
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 0
    obj["metadata"]["finalizers"] = []
    await pods.update("default", "p", replace_with(obj))
    with pytest.raises(StatusError) as missing:
        await pods.get("default", "p")
    assert missing.value.code == 404
