"""What a cluster has from its first start: the default namespaces, and the ``kubernetes`` Service with
its Endpoints in ``default`` pointing at the apiserver (client libraries and in-cluster code expect it).

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


async def _create_missing(generic: Any, namespace: str | None, obj: dict[str, Any]) -> None:
    try:
        await generic.create(namespace, obj)
    except errors.StatusError as exc:
        if exc.code != 409:
            raise
