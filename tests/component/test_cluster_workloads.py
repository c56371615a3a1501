"""The whole cluster at work in process (kbox.testing.Cluster, fake runtime): the real scheduler and
controllers together. A Deployment of 3 replicas on 3 nodes becomes 3 Ready pods, one per node; its
Service gets their addresses as Endpoints; scaling and deletion propagate through the garbage
collector."""

from __future__ import annotations

from typing import Any

from kbox.client import interface
from kbox.testing import Cluster
from tests.support.wait import eventually

Obj = dict[str, Any]


def web(replicas: int) -> list[Obj]:
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "app", "ports": [{"containerPort": 80}]}]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
    ]


def available(replicas: int) -> Any:
    def check(obj: Obj) -> bool:
        status = obj.get("status") or {}
        return status.get("availableReplicas") == replicas and status.get("updatedReplicas") == replicas

    return check


async def test_deployment_spreads_and_serves() -> None:
    async with Cluster(nodes=3) as cluster:
        await cluster.apply(web(3))
        await cluster.wait_for("Deployment", "web", predicate=available(3), timeout=30)
        pods = (await cluster.client.list(interface.PODS, namespace="default", label_selector="app=web"))[
            "items"
        ]
        assert len(pods) == 3
        assert len({p["spec"]["nodeName"] for p in pods}) == 3  # one per node
        assert all(p["status"]["phase"] == "Running" for p in pods)

        def three_addresses(endpoints: Obj) -> bool:
            subsets = endpoints.get("subsets") or []
            return sum(len(s.get("addresses") or []) for s in subsets) == 3

        endpoints = await cluster.wait_for("Endpoints", "web", predicate=three_addresses, timeout=30)
        assert endpoints is not None
        ips = {a["ip"] for s in endpoints["subsets"] for a in s["addresses"]}
        assert ips == {p["status"]["podIP"] for p in pods}

        await cluster.apply(web(1)[0])
        await cluster.wait_for("Deployment", "web", predicate=available(1), timeout=30)
        await cluster.delete("Deployment", "web", wait=True)

        async def no_pods() -> bool:
            left = await cluster.client.list(interface.PODS, namespace="default", label_selector="app=web")
            return not left["items"]

        await eventually(no_pods, message="the garbage collector removes the ReplicaSet's pods")
