"""ClusterIPs as host addresses: /32s on the cluster's Docker bridge, added and removed through netlink.

Why the bridge: pods reach everything outside their subnet through their gateway, which is the host's
end of the cluster bridge, so an address the host owns on that bridge is reachable from every pod, and
from the host itself; kube-proxy then simply listens on it. Adding an address needs ``CAP_NET_ADMIN``
(root); :func:`can_manage` says whether this process has it, so the proxier can say so once at start.

The bridge is found through Docker: the network named ``kbox-<cluster>`` (the Docker runtime's; it is
created here, with the same name and labels, when the proxy starts before the first pod). Its Linux
interface is ``br-<first 12 hex digits of the network id>`` unless the network sets
``com.docker.network.bridge.name``. The bridge is looked up again whenever an address is missing, so a
network deleted and created again (``kbox delete``, a runtime purge) gets its addresses back.

Netlink calls are quick but blocking, so they run in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
from typing import Any

import aiodocker

_log = logging.getLogger(__name__)

LABEL_CLUSTER = "io.kbox.cluster"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


class AddressError(Exception):
    """An address could not be added or removed (permission, missing interface)."""


def can_manage() -> bool:
    """Whether this process may add addresses to interfaces (root, or CAP_NET_ADMIN)."""
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 12))  # CAP_NET_ADMIN
    except OSError:
        pass
    return False


def bridge_name(network: dict[str, Any]) -> str:
    """The Linux interface of a Docker bridge network, from ``docker network inspect`` output."""
    options = network.get("Options") or {}
    return str(options.get(BRIDGE_NAME_OPTION) or f"br-{network['Id'][:12]}")


async def find_bridge(cluster: str, *, create: bool = True) -> tuple[str, list[str]]:
    """The cluster bridge's interface name and subnets; the network is created when missing."""
    name = f"kbox-{cluster}"
    docker = aiodocker.Docker()
    try:
        try:
            network = await (await docker.networks.get(name)).show()
        except aiodocker.DockerError as e:
            if e.status != 404 or not create:
                raise
            try:
                await docker.networks.create(
                    {
                        "Name": name,
                        "Driver": "bridge",
                        "CheckDuplicate": True,
                        "Labels": {LABEL_CLUSTER: cluster},
                    }
                )
            except aiodocker.DockerError as e2:
                if e2.status != 409:
                    raise
            network = await (await docker.networks.get(name)).show()
        subnets = [c["Subnet"] for c in (network.get("IPAM") or {}).get("Config") or [] if c.get("Subnet")]
        return bridge_name(network), subnets
    finally:
        await docker.close()


class AddressManager:
    """The /32 (or /128) addresses this proxy added to one interface."""

    def __init__(self, interface: str) -> None:
        self.interface = interface
        self.owned: set[str] = set()

    async def add(self, ip: str) -> None:
        await asyncio.to_thread(_change, "add", self.interface, ip)
        self.owned.add(ip)

    async def remove(self, ip: str) -> None:
        self.owned.discard(ip)
        await asyncio.to_thread(_change, "del", self.interface, ip)

    async def present(self) -> set[str]:
        """Addresses the interface has now (empty when it is gone)."""
        return await asyncio.to_thread(_list, self.interface)

    async def release(self) -> None:
        """Remove every address this manager added."""
        for ip in list(self.owned):
            try:
                await self.remove(ip)
            except AddressError as e:
                _log.warning("could not remove %s from %s: %s", ip, self.interface, e)


def _change(command: str, interface: str, ip: str) -> None:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    prefix = 32 if ipaddress.ip_address(ip).version == 4 else 128
    with IPRoute() as ipr:
        links = ipr.link_lookup(ifname=interface)
        if not links:
            if command == "del":
                return
            raise AddressError(f"no interface {interface}")
        try:
            ipr.addr(command, index=links[0], address=ip, prefixlen=prefix)
        except NetlinkError as e:
            if command == "add" and e.code == errno.EEXIST:
                return
            if command == "del" and e.code in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT):
                return
            raise AddressError(f"{command} {ip}/{prefix} on {interface}: {os.strerror(e.code)}") from None


def _list(interface: str) -> set[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        links = ipr.link_lookup(ifname=interface)
        if not links:
            return set()
        return {str(a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr(index=links[0])}
