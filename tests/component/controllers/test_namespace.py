"""The namespace controller with the Deployment, ReplicaSet and garbage collector controllers,
fake-runtime kubelets and a test binder: the real kubectl's ``delete namespace`` returns once a namespace
holding a Deployment (its ReplicaSet and running pods), ConfigMaps, Secrets and Services is emptied and
gone; a namespace whose content is held by a finalizer stays Terminating with upstream's conditions
saying why, and goes once the finalizer is removed; ``namespaces/<name>/finalize`` works through both
clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.client import interface
from kbox.client.http import HttpClient
from kbox.client.local import LocalClient
from kbox.controllers.deployment import DeploymentController
from kbox.controllers.garbagecollector import GarbageCollector, served_kinds
from kbox.controllers.namespace import NamespaceController
from kbox.controllers.replicaset import ReplicaSetController
from tests.component.controllers import Cluster, active_pods, cluster, eventually, is_ready, template
from tests.support.apiserver import Kubectl, served

Obj = dict[str, Any]
SECRETS = interface.Resource("", "v1", "secrets")
CONTENT = (
    interface.DEPLOYMENTS,
    interface.REPLICASETS,
    interface.PODS,
    interface.CONFIGMAPS,
    SECRETS,
    interface.SERVICES,
)


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path) as running:
        kinds = served_kinds(running.server.plane.catalog.resources())
        running.start(ReplicaSetController(running.factory, running.client))
        running.start(DeploymentController(running.factory, running.client))
        running.start(GarbageCollector(running.factory, kinds, running.client))
        running.start(
            NamespaceController(
                running.factory, [k.resource for k in kinds], running.client, poll_interval=0.2
            )
        )
        yield running


async def create_namespace(client: interface.Client, name: str) -> None:
    await client.create(
        interface.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )


async def namespace_gone(client: interface.Client, name: str) -> bool:
    try:
        await client.get(interface.NAMESPACES, name)
    except StatusError as exc:
        if exc.code != 404:
            raise
        return True
    return False


async def populate(c: Cluster, ns: str) -> None:
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template(labels)},
    }
    await c.client.create(interface.DEPLOYMENTS, deployment, namespace=ns)
    for n in range(2):
        await c.client.create(
            interface.CONFIGMAPS,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"config-{n}"},
                "data": {"k": "v"},
            },
            namespace=ns,
        )
        await c.client.create(
            SECRETS,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"secret-{n}"},
                "data": {"k": "dg=="},
            },
            namespace=ns,
        )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": labels, "ports": [{"port": 80}]},
    }
    await c.client.create(interface.SERVICES, service, namespace=ns)

    async def ready() -> bool:
        return len([p for p in await active_pods(c.client, "app=web", ns) if is_ready(p)]) == 2

    await eventually(ready, message="2 pods ready")


async def content(c: Cluster, ns: str) -> dict[str, int]:
    counts = {}
    for resource in CONTENT:
        counts[resource.plural] = len((await c.client.list(resource, namespace=ns))["items"])
    return counts


async def test_kubectl_delete_namespace_returns_once_everything_is_gone(c: Cluster, tmp_path: Path) -> None:
    kubectl = Kubectl(c.server.kubeconfig, tmp_path / "kubectl-cache")
    await create_namespace(c.client, "team")
    await populate(c, "team")
    assert await content(c, "team") == {
        "deployments": 1,
        "replicasets": 1,
        "pods": 2,
        "configmaps": 2,
        "secrets": 2,
        "services": 1,
    }
    out = await kubectl.ok("delete", "namespace", "team", "--timeout=20s")
    assert 'namespace "team" deleted' in out
    assert await namespace_gone(c.client, "team")
    assert set((await content(c, "team")).values()) == {0}
    # The name is free again, and none of the old content came back with it.
    await create_namespace(c.client, "team")
    assert set((await content(c, "team")).values()) == {0}


async def test_held_content_keeps_the_namespace_terminating_with_conditions(c: Cluster) -> None:
    await create_namespace(c.client, "held")
    held = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "held", "finalizers": ["test.kbox.dev/hold"]},
    }
    await c.client.create(interface.CONFIGMAPS, held, namespace="held")
    await c.client.create(
        interface.CONFIGMAPS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "free"}},
        namespace="held",
    )
    await c.client.delete(interface.NAMESPACES, "held")

    async def reported() -> Obj | None:
        ns = await c.client.get(interface.NAMESPACES, "held")
        conditions = {cond["type"]: cond for cond in ns["status"].get("conditions") or []}
        remaining = conditions.get("NamespaceContentRemaining")
        return conditions if remaining and remaining["status"] == "True" else None

    conditions = await eventually(reported, message="NamespaceContentRemaining reported")
    assert conditions["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert conditions["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps. has 1 resource instances"
    )
    assert conditions["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: test.kbox.dev/hold in 1 resource instances"
    )
    assert conditions["NamespaceDeletionContentFailure"]["status"] == "False"
    ns = await c.client.get(interface.NAMESPACES, "held")
    assert ns["status"]["phase"] == "Terminating" and ns["spec"]["finalizers"] == ["kubernetes"]
    assert [
        cm["metadata"]["name"]
        for cm in (await c.client.list(interface.CONFIGMAPS, namespace="held"))["items"]
    ] == ["held"]
    with pytest.raises(StatusError) as refused:
        await c.client.create(
            interface.CONFIGMAPS,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}},
            namespace="held",
        )
    assert refused.value.code == 403
    await c.client.patch(interface.CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, namespace="held")
    await eventually(lambda: namespace_gone(c.client, "held"), message="the namespace gone")


async def test_finalize_subresource_through_both_clients(tmp_path: Path) -> None:
    async with served(tmp_path) as server:
        local = LocalClient(server.plane.catalog)
        http = HttpClient(server.url, token=server.token, ca_file=str(server.ca_file))
        try:
            for name, client in (("by-local", local), ("by-http", http)):
                await create_namespace(client, name)
                await client.delete(interface.NAMESPACES, name)
                ns = await client.get(interface.NAMESPACES, name)
                assert ns["status"]["phase"] == "Terminating"
                body = {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": name},
                    "spec": {"finalizers": []},
                }
                await client.update(interface.NAMESPACES, body, subresource="finalize")
                assert await namespace_gone(client, name), name
        finally:
            await http.close()
