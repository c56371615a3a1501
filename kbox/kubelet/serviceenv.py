"""Service environment variables: ``KUBERNETES_SERVICE_HOST``, ``<NAME>_SERVICE_PORT``, ``<NAME>_PORT_...``
in every container, as the kubelet sets them (pkg/kubelet/envvars in shape).

Client libraries find the apiserver from inside a pod through ``KUBERNETES_SERVICE_HOST`` and
``KUBERNETES_SERVICE_PORT`` (the ``kubernetes`` Service in ``default``), so those are set in every
container; with ``enableServiceLinks`` (the default) the Services of the pod's own namespace are added
too, in the Docker-links form as well. Only Services with a ClusterIP count (not headless ones). A
container's own ``env``/``envFrom`` wins over these, and ``$(VAR)`` may refer to them.

The kubelet reads Services from a shared informer, started on the first container start: a node that
starts nothing watches nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kbox.client import cache, interface

if TYPE_CHECKING:
    from kbox.kubelet.kubelet import Kubelet

Obj = dict[str, Any]
MASTER_NAMESPACE = "default"
MASTER_SERVICES = ("kubernetes",)


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _has_cluster_ip(service: Obj) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def chosen(services: list[Obj], *, namespace: str, enable_links: bool) -> list[Obj]:
    """The Services a pod in ``namespace`` gets variables for, by name (the namespace's own win)."""
    by_name: dict[str, Obj] = {}
    for service in services:
        if not _has_cluster_ip(service):
            continue
        metadata = service.get("metadata") or {}
        name, where = metadata.get("name", ""), metadata.get("namespace", "")
        if where == namespace and enable_links:
            by_name[name] = service
        elif where == MASTER_NAMESPACE and name in MASTER_SERVICES:
            by_name.setdefault(name, service)
    return [by_name[name] for name in sorted(by_name)]


def variables(services: list[Obj]) -> list[tuple[str, str]]:
    """The variables of ``services`` (already chosen), in the kubelet's order per Service."""
    result: list[tuple[str, str]] = []
    for service in services:
        spec = service.get("spec") or {}
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        if not ports:
            continue
        prefix = _env_name(service["metadata"]["name"])
        ip = str(spec["clusterIP"])
        host = f"[{ip}]" if ":" in ip else ip
        result.append((f"{prefix}_SERVICE_HOST", ip))
        result.append((f"{prefix}_SERVICE_PORT", str(ports[0].get("port", ""))))
        for port in ports:
            if port.get("name"):
                result.append((f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}", str(port.get("port", ""))))
        first = ports[0]
        result.append(
            (f"{prefix}_PORT", f"{str(first.get('protocol') or 'TCP').lower()}://{host}:{first.get('port')}")
        )
        for port in ports:
            protocol = str(port.get("protocol") or "TCP")
            number = port.get("port")
            link = f"{prefix}_PORT_{number}_{protocol.upper()}"
            result.append((link, f"{protocol.lower()}://{host}:{number}"))
            result.append((f"{link}_PROTO", protocol.lower()))
            result.append((f"{link}_PORT", str(number)))
            result.append((f"{link}_ADDR", ip))
    return result


async def for_pod(kubelet: Kubelet, pod: Obj) -> list[tuple[str, str]]:
    """The service variables of ``pod``'s containers, from the kubelet's Service informer."""
    informer = kubelet.informers.informer(interface.SERVICES)
    kubelet.informers.start()
    await informer.wait_synced()
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    enable_links = (pod.get("spec") or {}).get("enableServiceLinks") is not False
    services = informer.indexer.by_index(cache.NAMESPACE, MASTER_NAMESPACE)
    if namespace != MASTER_NAMESPACE:
        services = services + informer.indexer.by_index(cache.NAMESPACE, namespace)
    return variables(chosen(services, namespace=namespace, enable_links=enable_links))
