"""The ``kube-dns`` Service in kube-system that represents the DNS addon, as on kubeadm clusters.

Pods find the DNS server by this Service's ClusterIP (10.96.0.10 by default, the kubelet's
``clusterDNS``), and tools look for it by name and by the ``k8s-app=kube-dns`` label. kbox's DNS server
listens on that address itself, so the Service carries ``service.kubernetes.io/service-proxy-name``:
kube-proxy then leaves its ports alone (and only puts the address on the cluster bridge).
"""

from __future__ import annotations

import copy
import logging

from kbox.client.interface import SERVICES, Client, Obj, StatusError

_log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
NAME = "kube-dns"
PROXY_NAME = "kbox-dns"


def kube_dns_service(cluster_ip: str = "10.96.0.10") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
                "service.kubernetes.io/service-proxy-name": PROXY_NAME,
            },
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        },
        "spec": {
            "selector": {"k8s-app": "kube-dns"},
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
            ],
        },
    }


async def ensure_kube_dns_service(client: Client, *, cluster_ip: str = "10.96.0.10") -> Obj:
    """Create ``kube-system/kube-dns`` if missing, or put its labels and ports back; returns it.

    A ClusterIP cannot change, so a Service that has another one (made by hand before the addon) is
    deleted and created again with ``cluster_ip``."""
    want = kube_dns_service(cluster_ip)
    try:
        current = await client.get(SERVICES, NAME, namespace=NAMESPACE)
    except StatusError as e:
        if e.code != 404:
            raise
        return await _create(client, want)
    spec = current.get("spec") or {}
    if spec.get("clusterIP") != cluster_ip:
        _log.warning("kube-dns has ClusterIP %s, not %s: re-creating it", spec.get("clusterIP"), cluster_ip)
        await client.delete(SERVICES, NAME, namespace=NAMESPACE)
        return await _create(client, want)
    labels = (current.get("metadata") or {}).get("labels") or {}
    if all(labels.get(k) == v for k, v in want["metadata"]["labels"].items()) and _ports(spec) == _ports(
        want["spec"]
    ):
        return current
    updated = copy.deepcopy(current)
    updated["metadata"].setdefault("labels", {}).update(want["metadata"]["labels"])
    updated["spec"]["ports"] = want["spec"]["ports"]
    updated["spec"]["selector"] = want["spec"]["selector"]
    return await client.update(SERVICES, updated, namespace=NAMESPACE)


async def _create(client: Client, want: Obj) -> Obj:
    try:
        return await client.create(SERVICES, want, namespace=NAMESPACE)
    except StatusError as e:
        if e.code != 409:
            raise
        return await client.get(SERVICES, NAME, namespace=NAMESPACE)


def _ports(spec: Obj) -> list[tuple[object, object, object]]:
    return sorted((p.get("name"), p.get("port"), p.get("protocol")) for p in spec.get("ports") or [])
