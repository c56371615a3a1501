"""ClusterIP and NodePort allocation for Services.

Like kube-apiserver's allocators, the source of truth is the Services themselves: the used set is read
from the store when an allocation is needed, plus the addresses handed out to creates still in flight
(kept until the store shows them), so two concurrent creates never get the same address.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from kbox.api import errors
from kbox.api.registry import GenericStore

Obj = dict[str, Any]


class ServiceAllocator:
    """Hands out ClusterIPs from ``cidr`` and NodePorts from ``node_ports`` (inclusive range)."""

    def __init__(self, *, cidr: str = "10.96.0.0/12", node_ports: tuple[int, int] = (30000, 32767)) -> None:
        self.network = ipaddress.ip_network(cidr)
        self.node_ports = node_ports
        self._in_flight_ips: set[str] = set()
        self._in_flight_ports: set[int] = set()

    async def allocate(self, services: GenericStore, obj: Obj) -> None:
        """Fill ``spec.clusterIP(s)`` and missing ``nodePort``s of a new Service, or refuse taken ones."""
        spec = obj.get("spec")
        if not isinstance(spec, dict) or spec.get("type") == "ExternalName":
            return
        page = await services.list(None)
        stored_ips = {s.get("spec", {}).get("clusterIP") for s in page.items}
        stored_ports = {
            p.get("nodePort")
            for s in page.items
            for p in s.get("spec", {}).get("ports") or []
            if isinstance(p, dict)
        }
        # In-flight addresses are forgotten once their Service is stored.
        self._in_flight_ips -= stored_ips
        self._in_flight_ports -= stored_ports
        used_ips = stored_ips | self._in_flight_ips
        used_ports = stored_ports | self._in_flight_ports
        name = obj.get("metadata", {}).get("name", "")
        wanted = spec.get("clusterIP")
        if wanted and wanted != "None":
            try:
                address = ipaddress.ip_address(wanted)
            except ValueError:
                raise self._invalid(
                    name, "spec.clusterIPs[0]", wanted, "must be a valid IP address"
                ) from None
            if address not in self.network:
                raise self._invalid(
                    name,
                    "spec.clusterIPs[0]",
                    wanted,
                    f"failed to allocate IP {wanted}: the provided IP ({wanted}) is not in the valid range. "
                    f"The range of valid IPs is {self.network}",
                )
            if wanted in used_ips:
                raise self._invalid(
                    name,
                    "spec.clusterIPs[0]",
                    wanted,
                    f"failed to allocate IP {wanted}: provided IP is already allocated",
                )
        elif not wanted:
            wanted = self._free_ip(used_ips)
        spec["clusterIP"] = wanted
        spec["clusterIPs"] = [wanted]
        if wanted != "None":
            self._in_flight_ips.add(wanted)
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            low, high = self.node_ports
            for index, port in enumerate(spec.get("ports") or []):
                if not isinstance(port, dict):
                    continue
                given = port.get("nodePort")
                if given:
                    if not isinstance(given, int) or not low <= given <= high:
                        raise self._invalid(
                            name,
                            f"spec.ports[{index}].nodePort",
                            given,
                            "provided port is not in the valid range. "
                            f"The range of valid ports is {low}-{high}",
                        )
                    if given in used_ports:
                        raise self._invalid(
                            name, f"spec.ports[{index}].nodePort", given, "provided port is already allocated"
                        )
                else:
                    given = self._free_port(used_ports)
                    port["nodePort"] = given
                used_ports.add(given)
                self._in_flight_ports.add(given)

    def _free_ip(self, used: set[Any]) -> str:
        size = self.network.num_addresses
        if size - 2 - len(used) <= 0:
            raise errors.StatusError(
                "Internal error occurred: failed to allocate a serviceIP: range is full", 500, "InternalError"
            )
        base = int(self.network.network_address)
        # Random probing (then a scan) keeps allocation O(1) for ordinary fill levels.
        for _ in range(64):
            candidate = str(ipaddress.ip_address(base + random.randint(2, size - 2)))
            if candidate not in used:
                return candidate
        for offset in range(2, size - 1):
            candidate = str(ipaddress.ip_address(base + offset))
            if candidate not in used:
                return candidate
        raise errors.StatusError(
            "Internal error occurred: failed to allocate a serviceIP: range is full", 500, "InternalError"
        )

    def _free_port(self, used: set[Any]) -> int:
        low, high = self.node_ports
        free = [p for p in range(low, high + 1) if p not in used]
        if not free:
            raise errors.StatusError(
                "Internal error occurred: failed to allocate a nodePort: range is full", 500, "InternalError"
            )
        return random.choice(free)

    def reserve_first(self) -> str:
        """The first usable address of the range: the ``kubernetes`` Service's ClusterIP (10.96.0.1)."""
        return str(ipaddress.ip_address(int(self.network.network_address) + 1))

    def _invalid(self, name: str, field: str, value: Any, detail: str) -> errors.StatusError:
        return errors.invalid_object("", "Service", name, [errors.invalid(field, value, detail)])
