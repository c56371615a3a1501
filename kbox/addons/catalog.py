"""Every addon kbox has, and how each is built for a cluster.

An addon is listed here only when it really runs: ``kbox addons list`` and ``kbox start --addons``
offer exactly these names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbox import supervisor
from kbox.addons.manager import Addon
from kbox.client.interface import Client

if TYPE_CHECKING:
    from kbox.cluster import Cluster


def addon_names() -> list[str]:
    """Names of the addons kbox can run, for option checking before a cluster exists."""
    return sorted(_DESCRIPTIONS)


_DESCRIPTIONS: dict[str, str] = {
    "dns": "Cluster DNS (CoreDNS-like) on the kube-dns Service, 10.96.0.10: Services and pods by name",
    "dashboard": "Web UI on 127.0.0.1 (kbox dashboard): workloads, logs, shells, YAML, live",
}
_COMPONENTS: dict[str, list[str]] = {"dns": ["coredns"], "dashboard": ["kubernetes-dashboard"]}


def description(name: str) -> str:
    return _DESCRIPTIONS.get(name, "")


def components_of(name: str) -> list[str]:
    """Names of the addon's components (its pods in kube-system are named after them)."""
    return list(_COMPONENTS.get(name, []))


def addons_for(cluster: Cluster) -> dict[str, Addon]:
    """The addons bound to ``cluster`` (their components use its clients and settings)."""
    settings = cluster.settings

    def dns_components() -> list[supervisor.Component]:
        from kbox.addons.dns import DnsServer, DnsSettings

        dns = DnsSettings(domain=settings.cluster_domain, listen=settings.dns_ip, cluster=settings.name)
        return [DnsServer(cluster.client("coredns"), dns)]

    async def dns_setup(client: Client) -> None:
        from kbox.addons.dns import ensure_kube_dns_service

        await ensure_kube_dns_service(client, cluster_ip=settings.dns_ip)

    def dashboard_components() -> list[supervisor.Component]:
        from kbox.addons.dashboard import DashboardServer, DashboardSettings

        board = DashboardSettings(
            api_url=lambda: cluster.url, ca_file=str(cluster.tls.ca_cert), cluster=settings.name
        )
        return [DashboardServer(cluster.client("kubernetes-dashboard"), board)]

    return {
        "dashboard": Addon("dashboard", _DESCRIPTIONS["dashboard"], False, dashboard_components),
        # On by default where Services work (kube-proxy gives the host the kube-dns address).
        "dns": Addon("dns", _DESCRIPTIONS["dns"], settings.kube_proxy, dns_components, dns_setup),
    }
