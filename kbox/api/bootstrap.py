"""What a cluster has from its first start: the default namespaces, and the ``kubernetes`` Service with
its Endpoints and EndpointSlice in ``default`` pointing at the apiserver (client libraries and in-cluster
code expect it; kube-proxy relays 10.96.0.1:443 to the slice's address).

Idempotent: run on every start, it creates what is missing and corrects the Endpoints' address/port.
"""

from __future__ import annotations

from typing import Any

from kbox.api import errors
from kbox.api.catalog import Catalog

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def ensure_defaults(catalog: Catalog, *, host: str, port: int) -> None:
    namespaces = catalog.lookup("", "v1", "namespaces")
    services = catalog.lookup("", "v1", "services")
    endpoints = catalog.lookup("", "v1", "endpoints")
    if namespaces is None or services is None or endpoints is None:
        raise RuntimeError("the catalog lacks namespaces, services or endpoints")
    for name in DEFAULT_NAMESPACES:
        await _create_missing(
            namespaces, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": catalog.service_allocator.reserve_first(),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None",
        },
    }
    await _create_missing(services, "default", service)
    await _ensure_endpoint_slice(catalog, host=host, port=port)
    subsets = [{"addresses": [{"ip": host}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    try:
        current = await endpoints.get("default", "kubernetes")
    except errors.StatusError as exc:
        if exc.code != 404:
            raise
        await endpoints.create(
            "default",
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {
                    "name": "kubernetes",
                    "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
                },
                "subsets": subsets,
            },
        )
        return
    if current.get("subsets") != subsets:

        def point(obj: dict[str, Any] | None) -> dict[str, Any]:
            assert obj is not None
            obj["metadata"].pop("resourceVersion", None)
            obj["subsets"] = subsets
            return obj

        await endpoints.update("default", "kubernetes", point)


async def _ensure_endpoint_slice(catalog: Catalog, *, host: str, port: int) -> None:
    """The ``kubernetes`` EndpointSlice, as kube-apiserver's endpoint reconciler keeps it: kube-proxy
    reads slices, so pods reach the apiserver through 10.96.0.1:443 only with it."""
    slices = catalog.lookup("discovery.k8s.io", "v1", "endpointslices")
    if slices is None:
        return
    wanted: dict[str, Any] = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
    try:
        current = await slices.get("default", "kubernetes")
    except errors.StatusError as exc:
        if exc.code != 404:
            raise
        await _create_missing(slices, "default", wanted)
        return
    if (current.get("endpoints"), current.get("ports")) != (wanted["endpoints"], wanted["ports"]):

        def point(obj: dict[str, Any] | None) -> dict[str, Any]:
            assert obj is not None
            obj["metadata"].pop("resourceVersion", None)
            obj["endpoints"], obj["ports"] = wanted["endpoints"], wanted["ports"]
            return obj

        await slices.update("default", "kubernetes", point)


async def _create_missing(generic: Any, namespace: str | None, obj: dict[str, Any]) -> None:
    try:
        await generic.create(namespace, obj)
    except errors.StatusError as exc:
        if exc.code != 409:
            raise
