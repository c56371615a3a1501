"""The objects every cluster has from its first start, and their upkeep on each start: the kubernetes
Service's Endpoints and EndpointSlice follow the apiserver's address (kube-proxy relays 10.96.0.1:443 to
the slice, so pods reach the apiserver only through it)."""

from __future__ import annotations

from kbox.api.bootstrap import ensure_defaults
from kbox.api.catalog import Catalog
from kbox.resources import registry
from kbox.store.memory import MemoryStore


async def test_kubernetes_service_endpoints_follow_the_apiserver() -> None:
    store = MemoryStore()
    await store.start()
    try:
        catalog = Catalog(store, registry.builtin())
        slices = catalog.lookup("discovery.k8s.io", "v1", "endpointslices")
        endpoints = catalog.lookup("", "v1", "endpoints")
        assert slices is not None and endpoints is not None
        await ensure_defaults(catalog, host="127.0.0.1", port=6443)
        first = await slices.get("default", "kubernetes")
        assert first["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
        assert first["addressType"] == "IPv4"
        assert first["endpoints"] == [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]
        assert first["ports"] == [{"name": "https", "port": 6443, "protocol": "TCP"}]
        await ensure_defaults(catalog, host="127.0.0.1", port=6443)  # nothing changed: no write
        assert (await slices.get("default", "kubernetes"))["metadata"]["resourceVersion"] == first[
            "metadata"
        ]["resourceVersion"]
        await ensure_defaults(catalog, host="127.0.0.1", port=40001)  # a restart on another port
        assert (await slices.get("default", "kubernetes"))["ports"][0]["port"] == 40001
        subsets = (await endpoints.get("default", "kubernetes"))["subsets"]
        assert subsets[0]["ports"][0]["port"] == 40001
    finally:
        await store.close()
