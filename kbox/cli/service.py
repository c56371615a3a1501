"""``kbox service NAME [-n NS] [--url]``: a URL that reaches a Service from this host (``minikube service``).

Which address reaches a Service from the host, in order of preference:

1. a NodePort (NodePort and LoadBalancer Services): kube-proxy listens on 127.0.0.1 at every NodePort,
   with or without root, so ``http://127.0.0.1:<nodePort>`` always works;
2. the ClusterIP itself, when kube-proxy put it on the host (it does when it runs as root): checked by
   connecting to it, because the API cannot say whether this host has the address.

Headless and ExternalName Services have no such address; a Service reachable by neither way gets one
line saying why and what to do. One URL per port, ``https`` for ports named ``https`` (or ``appProtocol:
https``, or port 443), ``http`` otherwise. Without ``--url`` the URLs are printed as a table and the
first one is opened in a browser when this session has a display.
"""

from __future__ import annotations

import asyncio
import os
import webbrowser
from dataclasses import dataclass
from typing import Any

import click

from kbox.api.errors import StatusError
from kbox.cli.kube import session
from kbox.client.interface import SERVICES

CONNECT_TIMEOUT = 0.5


@dataclass(frozen=True)
class ServiceUrl:
    port_name: str
    target_port: str
    url: str


def scheme(port: dict[str, Any]) -> str:
    name = str(port.get("name") or "").lower()
    app = str(port.get("appProtocol") or "").lower()
    return "https" if "https" in (name, app) or port.get("port") == 443 else "http"


def node_port_urls(service: dict[str, Any], host: str = "127.0.0.1") -> list[ServiceUrl]:
    """URLs through NodePorts, one per port that has one."""
    return [
        ServiceUrl(
            str(p.get("name") or ""),
            str(p.get("targetPort", p.get("port"))),
            f"{scheme(p)}://{host}:{p['nodePort']}",
        )
        for p in (service.get("spec") or {}).get("ports") or []
        if isinstance(p.get("nodePort"), int) and (p.get("protocol") or "TCP") == "TCP"
    ]


def cluster_ip_urls(service: dict[str, Any]) -> list[ServiceUrl]:
    spec = service.get("spec") or {}
    ip = spec.get("clusterIP")
    return [
        ServiceUrl(
            str(p.get("name") or ""),
            str(p.get("targetPort", p.get("port"))),
            f"{scheme(p)}://{ip}:{p['port']}",
        )
        for p in spec.get("ports") or []
        if isinstance(p.get("port"), int) and (p.get("protocol") or "TCP") == "TCP"
    ]


async def reachable(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def service_urls(service: dict[str, Any]) -> list[ServiceUrl]:
    """The URLs that reach ``service`` from this host; a ClickException saying why when there are none."""
    spec = service.get("spec") or {}
    metadata = service.get("metadata") or {}
    where = f"{metadata.get('namespace')}/{metadata.get('name')}"
    if spec.get("type") == "ExternalName":
        raise click.ClickException(
            f"service {where} is an ExternalName for {spec.get('externalName')}: use that name directly"
        )
    if spec.get("clusterIP") in (None, "", "None"):
        raise click.ClickException(
            f"service {where} is headless (clusterIP: None): it has no address to open"
        )
    urls = node_port_urls(service)
    if urls:
        return urls
    urls = cluster_ip_urls(service)
    if not urls:
        raise click.ClickException(f"service {where} has no TCP port")
    first = (spec.get("ports") or [{}])[0]
    if await reachable(str(spec["clusterIP"]), int(first.get("port") or 0)):
        return urls
    raise click.ClickException(
        f"service {where} has no NodePort and its ClusterIP {spec['clusterIP']} is not reachable from this "
        "host (kube-proxy adds ClusterIPs only when kbox runs as root): make it type NodePort, or use "
        "`kbox port-forward`"
    )


@click.command("service")
@click.argument("name")
@click.option("--url", "url_only", is_flag=True, help="Print the URLs only, one per line; open nothing.")
@click.option(
    "--namespace", "-n", default=None, metavar="NS", help="The Service's namespace (default: the context's)."
)
@session.profile_option
def service(name: str, url_only: bool, namespace: str | None, profile: str | None) -> None:
    """Print (and open) URLs that reach a Service from this host, as `minikube service` does."""
    namespace_used, urls = session.run(_urls(name, namespace, profile))
    if url_only:
        for entry in urls:
            click.echo(entry.url)
        return
    rows = [("NAMESPACE", "NAME", "TARGET PORT", "URL")] + [
        (namespace_used, name, f"{u.port_name}/{u.target_port}" if u.port_name else u.target_port, u.url)
        for u in urls
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        click.echo(f"Opening service {namespace_used}/{name} in the default browser...")
        webbrowser.open(urls[0].url)


async def _urls(name: str, namespace: str | None, profile: str | None) -> tuple[str, list[ServiceUrl]]:
    async with session.connect(profile) as api:
        ns = namespace or api.namespace
        try:
            obj = await api.client.get(SERVICES, name, namespace=ns)
        except StatusError as e:
            if e.code == 404:
                raise click.ClickException(f'service "{name}" was not found in namespace "{ns}"') from None
            raise
        return ns, await service_urls(obj)
