"""A pod's DNS configuration and hosts file, as Kubernetes' kubelet forms them.

Per ``spec.dnsPolicy``:

* ``ClusterFirst`` (the default): the cluster's DNS servers (``cluster_dns``), the search path
  ``<ns>.svc.<domain> svc.<domain> <domain>`` followed by the host's search domains, and
  ``options ndots:5``. A host-network pod with ClusterFirst gets ``Default`` instead; a kubelet with no
  cluster DNS configured falls back to ``Default`` too, with a Warning event (``MissingClusterDNS``).
* ``ClusterFirstWithHostNet``: as ClusterFirst, for host-network pods as well.
* ``Default``: the host's resolver configuration. Containers cannot reach the host's loopback
  nameservers, so those are dropped; when the pod adds nothing through ``dnsConfig`` the runtime's own
  equivalent is used as is (Docker's embedded resolver on the cluster network forwards to the host's,
  and a host-network container gets the host's file).
* ``None``: only ``spec.dnsConfig``.

``spec.dnsConfig`` is merged into every policy: its nameservers and searches are appended (duplicates
dropped), its options override same-named ones. The result is cut to Kubernetes' limits (3
nameservers; 32 search domains, 2048 characters) with a Warning event (``DNSConfigForming``).

The kubelet writes the result per pod as ``<state>/pods/<uid>/etc/resolv.conf`` and bind-mounts it
at /etc/resolv.conf in each of the pod's containers. Likewise a kubelet-managed /etc/hosts for pods on
the pod network: localhost lines, the pod's IP with its hostname (and FQDN when it has a subdomain),
then ``spec.hostAliases``.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
DEFAULT_OPTIONS = ("ndots:5",)


@dataclass(frozen=True)
class DnsConfig:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def render(self) -> str:
        """The resolv.conf text."""
        lines = [f"nameserver {n}" for n in self.nameservers]
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class PodDns:
    """What the kubelet does for one pod's DNS."""

    config: DnsConfig
    runtime_default: bool = False  # the runtime's own resolver setup is equivalent: write no file
    warnings: tuple[tuple[str, str], ...] = field(default=())  # (reason, message) events to record


def parse_resolv_conf(text: str) -> DnsConfig:
    """nameserver, search (or domain) and options lines; the last search/domain line wins."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = [s for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return DnsConfig(tuple(nameservers), tuple(searches), tuple(options))


def read_host_config(path: str | Path) -> DnsConfig:
    """The host's resolver configuration (empty if the file cannot be read)."""
    try:
        return parse_resolv_conf(Path(path).read_text())
    except OSError:
        return DnsConfig()


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _merge_options(existing: tuple[str, ...], extra: list[Obj]) -> tuple[str, ...]:
    """``name`` or ``name:value`` options; a pod's option replaces the same-named one."""
    merged: dict[str, str] = {}
    for text in existing:
        merged[text.partition(":")[0]] = text
    for option in extra:
        name = str(option.get("name") or "")
        if not name:
            continue
        value = option.get("value")
        merged[name] = f"{name}:{value}" if value not in (None, "") else name
    return tuple(merged.values())


def pod_dns(pod: Obj, *, cluster_dns: list[str], cluster_domain: str, host: DnsConfig) -> PodDns:
    """The DNS configuration of ``pod`` on a kubelet with these settings and host resolver."""
    spec = pod.get("spec") or {}
    metadata = pod.get("metadata") or {}
    namespace = metadata.get("namespace") or "default"
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_network = bool(spec.get("hostNetwork"))
    warnings: list[tuple[str, str]] = []

    kind = "host"
    if policy == "None":
        kind = "none"
    elif policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_network):
        kind = "cluster"
    if kind == "cluster" and not cluster_dns:
        where = f"{metadata.get('name', '')}_{namespace}({metadata.get('uid', '')})"
        warnings.append(
            (
                "MissingClusterDNS",
                f'pod: "{where}". kubelet does not have ClusterDNS IP configured and cannot create Pod '
                f'using "{policy}" policy. Falling back to "Default" policy.',
            )
        )
        kind = "host"

    if kind == "cluster":
        searches = list(host.searches)
        if cluster_domain:
            searches = [
                f"{namespace}.svc.{cluster_domain}",
                f"svc.{cluster_domain}",
                cluster_domain,
                *searches,
            ]
        config = DnsConfig(tuple(cluster_dns), _unique(searches), DEFAULT_OPTIONS)
    elif kind == "host":
        servers = host.nameservers if host_network else tuple(n for n in host.nameservers if not _loopback(n))
        config = DnsConfig(servers, host.searches, host.options)
    else:
        config = DnsConfig()

    extra = spec.get("dnsConfig") or {}
    if extra:
        config = DnsConfig(
            _unique([*config.nameservers, *(str(n) for n in extra.get("nameservers") or [])]),
            _unique([*config.searches, *(str(s) for s in extra.get("searches") or [])]),
            _merge_options(config.options, list(extra.get("options") or [])),
        )
    config = _fit_limits(config, warnings)
    runtime_default = kind == "host" and not extra
    return PodDns(config, runtime_default, tuple(warnings))


def _fit_limits(config: DnsConfig, warnings: list[tuple[str, str]]) -> DnsConfig:
    nameservers, searches = config.nameservers, config.searches
    if len(nameservers) > MAX_NAMESERVERS:
        nameservers = nameservers[:MAX_NAMESERVERS]
        warnings.append(
            (
                "DNSConfigForming",
                "Nameserver limits were exceeded, some nameservers have been omitted, the applied "
                f"nameserver line is: {' '.join(nameservers)}",
            )
        )
    kept: list[str] = []
    chars = 0
    for search in searches:
        if len(kept) == MAX_SEARCHES or chars + len(search) + (1 if kept else 0) > MAX_SEARCH_CHARS:
            break
        chars += len(search) + (1 if kept else 0)
        kept.append(search)
    if len(kept) < len(searches):
        searches = tuple(kept)
        warnings.append(
            (
                "DNSConfigForming",
                "Search Line limits were exceeded, some search paths have been omitted, the applied "
                f"search line is: {' '.join(searches)}",
            )
        )
    return DnsConfig(nameservers, searches, config.options)


def hosts_file(pod: Obj, *, pod_ip: str, hostname: str, cluster_domain: str) -> str:
    """The kubelet-managed /etc/hosts of a pod on the pod network."""
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    if pod_ip:
        subdomain = spec.get("subdomain")
        if subdomain and cluster_domain:
            lines.append(f"{pod_ip}\t{hostname}.{subdomain}.{namespace}.svc.{cluster_domain}\t{hostname}")
        else:
            lines.append(f"{pod_ip}\t{hostname}")
    aliases = spec.get("hostAliases") or []
    if aliases:
        lines.append("")
        lines.append("# Entries added by HostAliases.")
        for alias in aliases:
            names = [str(n) for n in alias.get("hostnames") or []]
            if alias.get("ip") and names:
                lines.append(f"{alias['ip']}\t" + "\t".join(names))
    return "\n".join(lines) + "\n"


def etc_dir(pod_dir: Path) -> Path:
    return pod_dir / "etc"


def write_atomic(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` (new file renamed over the old, mode 0644) unless it already holds
    it; returns whether it wrote. A bind mount of the file keeps showing the old inode, so containers
    created before a change keep the old content (the content only changes with the pod IP, when all
    containers are recreated anyway)."""
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return True
