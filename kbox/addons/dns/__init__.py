"""The cluster DNS addon (CoreDNS-like): see :mod:`kbox.addons.dns.server`."""

from kbox.addons.dns.server import DnsServer, DnsSettings
from kbox.addons.dns.service import ensure_kube_dns_service

__all__ = ["DnsServer", "DnsSettings", "ensure_kube_dns_service"]
