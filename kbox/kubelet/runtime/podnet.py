"""Pod networking wired by kbox itself, the way a CNI bridge plugin does it, when kbox may (root).

Why: on Docker a pod is two container starts in a row (the sandbox, then the app container joining
its namespaces), and joining Docker's user-defined network is most of the difference between them:
measured on this machine, a sandbox starts in about 290 ms on the cluster network against 205 ms with
no network at all. So the sandbox starts with ``NetworkMode: none`` and kbox gives its namespace an
interface on the same cluster bridge in about 15 ms: a veth pair whose host end joins ``br-<id>`` and
whose other end becomes the pod's ``eth0``, an address from the cluster network's subnet and a default
route through its gateway. To everything else the pod looks as before: the host and other pods reach
its IP on the bridge, its traffic to ClusterIPs goes to the gateway (kube-proxy), Docker's masquerade
rule for the subnet takes it outside. The veth goes away with the namespace when the sandbox stops.

Addresses come from the upper half of the subnet: Docker's own allocator hands out the lowest free
address first, to containers that join the network the ordinary way (a pod whose DNS is the runtime's
own setup keeps using that path when the host has only loopback nameservers: only the network's
embedded resolver reaches those), so the two ranges do not meet unless Docker hands out half the
subnet. Each sandbox carries its address as a
label, so a restarted kbox finds the addresses in use (and the pod IPs) from Docker. One allocator per
network in the process: every node's kubelet shares the cluster's runtime, and runtimes made anew for
the same cluster (adoption) share it too.

Netlink is blocking and entering a namespace is per thread, so the wiring runs on worker threads of
its own (owned by the runtime, stopped when it closes), which always return to their own namespace.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import ipaddress
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

_log = logging.getLogger(__name__)

LABEL_POD_IP = "io.kbox.pod-ip"
HOST_PREFIX = "kbx"  # host ends of pod veths: kbx<12 hex digits of the sandbox id> (15 characters)


class WiringError(Exception):
    """The pod's network could not be wired (reported as the sandbox's failure)."""


def can_wire() -> bool:
    """Whether this process may create interfaces and enter namespaces (root, or CAP_NET_ADMIN and
    CAP_SYS_ADMIN); without it pods join Docker's network the ordinary way."""
    if os.environ.get("KBOX_POD_NETWORK", "").lower() == "docker":
        return False
    return os.geteuid() == 0


def host_servers_reachable(resolv_conf: str = "/etc/resolv.conf") -> bool:
    """Whether the host's resolv.conf names a nameserver a pod can reach (not loopback). A pod that
    uses the runtime's own DNS setup and starts with no Docker network gets the host's servers from
    Docker, minus loopback ones; with none left only the Docker network's embedded resolver (which
    forwards from the host) serves it, so such pods then join the network the ordinary way."""
    try:
        with open(resolv_conf) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) > 1 and fields[0] == "nameserver":
            try:
                if not ipaddress.ip_address(fields[1].split("%", 1)[0]).is_loopback:
                    return True
            except ValueError:
                continue
    return False


@dataclass
class Subnet:
    """The cluster network as the wiring needs it."""

    bridge: str
    network: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address


@dataclass
class Allocator:
    """Addresses of the upper half of one cluster network's subnet, in use or free."""

    subnet: Subnet
    used: set[str] = field(default_factory=set)
    _next: int = 0

    def __post_init__(self) -> None:
        hosts = self.subnet.network.num_addresses
        self._first = int(self.subnet.network.network_address) + hosts // 2
        self._last = int(self.subnet.network.broadcast_address) - 1
        self._next = self._first

    def take(self) -> str:
        """A free address (round robin, so a released address is not reused at once)."""
        span = self._last - self._first + 1
        for _ in range(span):
            candidate = self._next
            self._next = self._first if candidate >= self._last else candidate + 1
            ip = str(ipaddress.IPv4Address(candidate))
            if ip not in self.used and ipaddress.IPv4Address(candidate) != self.subnet.gateway:
                self.used.add(ip)
                return ip
        raise WiringError(f"no free pod address left in {self.subnet.network} (upper half)")

    def release(self, ip: str) -> None:
        self.used.discard(ip)

    def reserve(self, ips: Iterable[str]) -> None:
        self.used.update(ip for ip in ips if ip)


_allocators: dict[str, Allocator] = {}


def allocator(network: str) -> Allocator | None:
    return _allocators.get(network)


def register(network: str, subnet: Subnet, in_use: Iterable[str]) -> Allocator:
    """The allocator of ``network`` (made once per process; ``in_use`` as Docker's labels show).
    Registering again only adds addresses in use, so runtimes of one cluster may race to it."""
    found = _allocators.get(network)
    if found is None or found.subnet != subnet:
        found = _allocators[network] = Allocator(subnet)
    found.reserve(in_use)
    return found


def forget(network: str) -> None:
    """The network was removed (``kbox delete``): a new one may have another subnet."""
    _allocators.pop(network, None)


def subnet_of(network_info: dict[str, object]) -> Subnet | None:
    """The wiring view of a Docker network inspection; None unless it is a bridge with one IPv4
    subnet and gateway."""
    if network_info.get("Driver") != "bridge":
        return None
    ipam = network_info.get("IPAM")
    configs = ipam.get("Config") if isinstance(ipam, dict) else None
    options = network_info.get("Options")
    for config in configs or []:
        try:
            net = ipaddress.ip_network(config.get("Subnet", ""))
            gateway = ipaddress.ip_address(config.get("Gateway", ""))
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network) and isinstance(gateway, ipaddress.IPv4Address):
            custom = options.get("com.docker.network.bridge.name") if isinstance(options, dict) else None
            bridge = str(custom or f"br-{str(network_info.get('Id', ''))[:12]}")
            return Subnet(bridge=bridge, network=net, gateway=gateway)
    return None


def worker() -> concurrent.futures.ThreadPoolExecutor:
    """The threads :func:`wire` runs on: the runtime owns them and shuts them down with itself."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="kbox-podnet")


async def wire(
    pid: int, sandbox_id: str, ip: str, subnet: Subnet, executor: concurrent.futures.Executor
) -> None:
    """Give the network namespace of process ``pid`` an ``eth0`` with ``ip`` on the cluster bridge."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(executor, _wire, pid, sandbox_id, ip, subnet)


def host_end(sandbox_id: str) -> str:
    """The name of the host end of a sandbox's veth."""
    return f"{HOST_PREFIX}{sandbox_id[:12]}"


def host_ends() -> set[str]:
    """The host's pod veth ends now (blocking: netlink)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        names = (str(link.get_attr("IFLA_IFNAME") or "") for link in ipr.get_links())
        return {name for name in names if name.startswith(HOST_PREFIX)}


def _wire(pid: int, sandbox_id: str, ip: str, subnet: Subnet) -> None:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netns import setns

    host = host_end(sandbox_id)
    peer = f"kbp{sandbox_id[:12]}"
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    except OSError as e:
        raise WiringError(f"the sandbox's network namespace is gone (pid {pid}): {e.strerror}") from None
    try:
        with IPRoute() as ipr:
            bridges = ipr.link_lookup(ifname=subnet.bridge)
            if not bridges:
                raise WiringError(f"no bridge {subnet.bridge} for the cluster network")
            try:
                ipr.link("add", ifname=host, kind="veth", peer=peer)
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise
                ipr.link("del", ifname=host)  # left over by an attempt that failed half way
                ipr.link("add", ifname=host, kind="veth", peer=peer)
            try:
                host_index = ipr.link_lookup(ifname=host)[0]
                ipr.link("set", index=host_index, master=bridges[0], state="up")
                ipr.link("set", index=ipr.link_lookup(ifname=peer)[0], net_ns_fd=target)
            except Exception:
                ipr.link("del", ifname=host)
                raise
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            setns(target, flags=0)
            try:
                with IPRoute() as ipr:
                    index = ipr.link_lookup(ifname=peer)[0]
                    ipr.link("set", index=index, ifname="eth0")
                    ipr.addr("add", index=index, address=ip, prefixlen=subnet.network.prefixlen)
                    ipr.link("set", index=index, state="up")
                    ipr.route("add", dst="default", gateway=str(subnet.gateway))
            finally:
                setns(own, flags=0)
        finally:
            os.close(own)
    except NetlinkError as e:
        message = os.strerror(e.code)
        raise WiringError(f"wiring the pod network of sandbox {sandbox_id[:12]}: {message}") from None
    finally:
        os.close(target)
