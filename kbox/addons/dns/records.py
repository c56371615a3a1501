"""The cluster zone's answers, as the Kubernetes DNS specification defines them (CoreDNS's
``kubernetes`` plugin in shape), computed from the informers' caches at query time.

Names under the cluster domain (``cluster.local``):

- ``<svc>.<ns>.svc.<zone>``: A (or AAAA) to the ClusterIP; for a headless Service, one record per ready
  endpoint address; for ExternalName, a CNAME to ``spec.externalName``.
- ``<hostname>.<svc>.<ns>.svc.<zone>``: an endpoint of a headless Service by its ``hostname`` (the pod's
  ``spec.hostname`` when its ``spec.subdomain`` names the Service: StatefulSet pods), or by its address
  with dashes (``10-0-0-7``) when it has none.
- ``_<port>._<proto>.<svc>.<ns>.svc.<zone>``: SRV for each named port: to the Service name (ClusterIP) or
  to each endpoint's name (headless), with the matching A records as additional data.
- ``<a-b-c-d>.<ns>.pod.<zone>``: A to a.b.c.d (CoreDNS's ``pods insecure``, kubeadm's default).
- ``<zone>``, ``svc.<zone>``, ``pod.<zone>``, and ``<ns>.svc.<zone>`` of a namespace with Services exist
  without records: NODATA, like every name that exists but has no record of the asked type.
- Reverse lookups (``in-addr.arpa``, ``ip6.arpa``) of ClusterIPs and headless endpoint addresses give
  PTR records to those names; other addresses are not the cluster's and go upstream.
- Anything else under the zone is NXDOMAIN. Both negative answers carry the zone's SOA, whose minimum
  (the negative TTL) is as short as the positive TTL, :data:`TTL` seconds: the cluster changes fast.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from kbox.client.interface import Obj

TTL = 5
ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)


@dataclass
class Answer:
    """What the zone says about one question."""

    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    external_target: dns.name.Name | None = None
    """An ExternalName CNAME target outside the zone, to be resolved upstream (for A/AAAA)."""


class ClusterZone:
    """Answers questions about ``domain`` from Services and EndpointSlices.

    ``service(ns, name)`` returns the cached Service or ``None``; ``slices(ns, name)`` the Service's
    EndpointSlices; ``namespace_has_services(ns)`` whether ``<ns>.svc.<zone>`` exists."""

    def __init__(
        self,
        domain: str,
        *,
        service: Callable[[str, str], Obj | None],
        slices: Callable[[str, str], Iterable[Obj]],
        namespace_has_services: Callable[[str], bool],
        all_services: Callable[[], Iterable[Obj]] = tuple,
    ) -> None:
        self.origin = dns.name.from_text(domain)
        self._service = service
        self._slices = slices
        self._has_services = namespace_has_services
        self._all_services = all_services
        self._svc = dns.name.Name(("svc",)).concatenate(self.origin)
        self._pod = dns.name.Name(("pod",)).concatenate(self.origin)
        self._soa = dns.rrset.from_text(
            self.origin,
            TTL,
            dns.rdataclass.IN,
            dns.rdatatype.SOA,
            f"ns.dns.{domain}. hostmaster.{domain}. 1 7200 1800 86400 {TTL}",
        )
        self._ns = dns.rrset.from_text(
            self.origin, TTL, dns.rdataclass.IN, dns.rdatatype.NS, f"ns.dns.{domain}."
        )

    def covers(self, name: dns.name.Name) -> bool:
        return name.is_subdomain(self.origin)

    def reverse(self, name: dns.name.Name) -> Answer | None:
        """PTR for a ClusterIP or a headless endpoint's address (``7.0.96.10.in-addr.arpa``), as CoreDNS
        answers them; ``None`` when the address is not the cluster's (the caller forwards it)."""
        try:
            ip = str(dns.reversename.to_address(name))
        except (dns.exception.DNSException, ValueError):
            return None
        targets: list[str] = []
        for service in self._all_services():
            spec = service.get("spec") or {}
            metadata = service.get("metadata") or {}
            service_name = f"{metadata.get('name')}.{metadata.get('namespace')}.svc.{self.origin}"
            if ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]):
                targets.append(service_name)
            elif spec.get("clusterIP") == "None":
                endpoints = self._endpoints(metadata.get("namespace", ""), metadata.get("name", ""))
                for host, endpoint_ip in endpoints:
                    if endpoint_ip == ip:
                        targets.append(f"{host}.{service_name}")
        if not targets:
            return None
        ptr = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.PTR)
        for target in sorted(set(targets)):
            ptr.add(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.PTR, target), TTL)
        return Answer(answer=[ptr])

    def resolve(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        """The answer for ``name`` (already known to be in the zone) and ``rdtype``."""
        labels = tuple(
            label.decode("ascii", "replace").lower() for label in name.relativize(self.origin).labels
        )
        found = self._lookup(name, labels, rdtype)
        if found is None:
            return Answer(rcode=dns.rcode.NXDOMAIN, authority=[self._soa])
        if not found.answer:
            found.authority = [self._soa]
        return found

    # -- the name tree -----------------------------------------------------------------------

    def _lookup(
        self, name: dns.name.Name, labels: tuple[str, ...], rdtype: dns.rdatatype.RdataType
    ) -> Answer | None:
        if not labels:  # the apex
            if rdtype == dns.rdatatype.SOA:
                return Answer(answer=[self._soa])
            if rdtype == dns.rdatatype.NS:
                return Answer(answer=[self._ns])
            return Answer()
        if labels[-1] == "svc":
            return self._services(name, labels[:-1], rdtype)
        if labels[-1] == "pod":
            return self._pods(name, labels[:-1], rdtype)
        return None

    def _pods(
        self, name: dns.name.Name, labels: tuple[str, ...], rdtype: dns.rdatatype.RdataType
    ) -> Answer | None:
        if not labels:
            return Answer()
        if len(labels) != 2:
            return None
        address = _dashed_address(labels[0])
        if address is None:
            return None
        return self._addresses(name, [address], rdtype)

    def _services(
        self, name: dns.name.Name, labels: tuple[str, ...], rdtype: dns.rdatatype.RdataType
    ) -> Answer | None:
        if not labels:
            return Answer()
        namespace = labels[-1]
        if len(labels) == 1:
            return Answer() if self._has_services(namespace) else None
        service = self._service(namespace, labels[-2])
        if service is None:
            return None
        rest = labels[:-2]
        service_name = dns.name.Name(tuple(name.labels[len(rest) :]))
        spec = service.get("spec") or {}
        if not rest:
            return self._service_answer(service_name, service, rdtype)
        if len(rest) == 1:  # an endpoint of a headless Service
            if spec.get("clusterIP") not in ("None", None, ""):
                return None
            wanted = rest[0]
            for host, ip in self._endpoints(namespace, labels[-2]):
                if host == wanted:
                    return self._addresses(name, [ip], rdtype)
            return None
        if len(rest) == 2 and rest[0].startswith("_") and rest[1].startswith("_"):
            return self._srv(name, service_name, service, rest[0][1:], rest[1][1:], rdtype)
        return None

    def _service_answer(self, name: dns.name.Name, service: Obj, rdtype: dns.rdatatype.RdataType) -> Answer:
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName":
            target = dns.name.from_text(str(spec.get("externalName") or "").rstrip(".") + ".")
            cname = dns.rrset.from_text(name, TTL, dns.rdataclass.IN, dns.rdatatype.CNAME, target.to_text())
            answer = Answer(answer=[cname])
            if rdtype in ADDRESS_TYPES:
                if self.covers(target):
                    chased = self.resolve(target, rdtype)
                    answer.answer.extend(chased.answer)
                else:
                    answer.external_target = target
            return answer
        cluster_ip = spec.get("clusterIP") or ""
        if cluster_ip and cluster_ip != "None":
            return self._addresses(name, list(spec.get("clusterIPs") or [cluster_ip]), rdtype)
        namespace = service["metadata"].get("namespace", "")
        ips = [ip for _, ip in self._endpoints(namespace, service["metadata"]["name"])]
        return self._addresses(name, ips, rdtype)

    def _srv(
        self,
        name: dns.name.Name,
        service_name: dns.name.Name,
        service: Obj,
        port_name: str,
        protocol: str,
        rdtype: dns.rdatatype.RdataType,
    ) -> Answer | None:
        spec = service.get("spec") or {}
        port = next(
            (
                p
                for p in spec.get("ports") or []
                if (p.get("name") or "").lower() == port_name
                and (p.get("protocol") or "TCP").lower() == protocol
            ),
            None,
        )
        if port is None:
            return None
        if rdtype not in (dns.rdatatype.SRV, dns.rdatatype.ANY):
            return Answer()
        cluster_ip = spec.get("clusterIP") or ""
        if cluster_ip and cluster_ip != "None":
            srv = dns.rrset.from_text(
                name, TTL, dns.rdataclass.IN, dns.rdatatype.SRV, f"0 100 {port['port']} {service_name}"
            )
            extra = self._addresses(
                service_name, list(spec.get("clusterIPs") or [cluster_ip]), dns.rdatatype.A
            )
            return Answer(answer=[srv], additional=extra.answer)
        namespace = service["metadata"].get("namespace", "")
        endpoints = self._endpoints(
            namespace, service["metadata"]["name"], port_name=port_name, protocol=protocol
        )
        if not endpoints:
            return Answer()
        weight = max(1, 100 // len(endpoints))
        srv = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.SRV)
        additional: list[dns.rrset.RRset] = []
        for host, ip, number in endpoints:
            target = dns.name.Name((host.encode(), *service_name.labels))
            srv.add(
                dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SRV, f"0 {weight} {number} {target}"),
                TTL,
            )
            additional.extend(self._addresses(target, [ip], dns.rdatatype.A).answer)
        return Answer(answer=[srv], additional=additional)

    def _endpoints(
        self, namespace: str, service: str, *, port_name: str | None = None, protocol: str = "tcp"
    ) -> list[tuple[str, ...]]:
        """Ready endpoints as (hostname, ip), or (hostname, ip, port) when ``port_name`` is given."""
        seen: dict[str, tuple[str, ...]] = {}
        for slice_ in self._slices(namespace, service):
            number = None
            if port_name is not None:
                number = next(
                    (
                        p.get("port")
                        for p in slice_.get("ports") or []
                        if (p.get("name") or "").lower() == port_name
                        and (p.get("protocol") or "TCP").lower() == protocol
                    ),
                    None,
                )
                if number is None:
                    continue
            for endpoint in slice_.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for ip in (endpoint.get("addresses") or [])[:1]:
                    host = str(endpoint.get("hostname") or ip.replace(".", "-").replace(":", "-")).lower()
                    seen[ip] = (host, ip) if number is None else (host, ip, str(number))
        return sorted(seen.values())

    def _addresses(self, name: dns.name.Name, ips: list[str], rdtype: dns.rdatatype.RdataType) -> Answer:
        """A/AAAA records of ``ips`` that match ``rdtype``; an empty answer (NODATA) otherwise."""
        if rdtype not in (*ADDRESS_TYPES, dns.rdatatype.ANY):
            return Answer()
        rrsets: dict[int, dns.rrset.RRset] = {}
        for ip in ips:
            try:
                version = ipaddress.ip_address(ip).version
            except ValueError:
                continue
            kind = dns.rdatatype.A if version == 4 else dns.rdatatype.AAAA
            if rdtype not in (kind, dns.rdatatype.ANY):
                continue
            rrset = rrsets.get(kind)
            if rrset is None:
                rrset = rrsets[kind] = dns.rrset.RRset(name, dns.rdataclass.IN, kind)
            rrset.add(dns.rdata.from_text(dns.rdataclass.IN, kind, ip), TTL)
        return Answer(answer=list(rrsets.values()))


def _dashed_address(label: str) -> str | None:
    """``10-0-0-7`` → ``10.0.0.7`` (IPv6: ``fd00--7`` → ``fd00::7``); ``None`` if it is no address."""
    for candidate in (label.replace("-", "."), label.replace("-", ":")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None
