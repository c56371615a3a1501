"""kube-proxy, userspace style: listeners on Service addresses that relay to ready endpoints.

Per Service port (TCP or UDP) the proxy keeps one :class:`~kbox.proxy.balancer.Balancer` with the port's
ready endpoints, read from the Service's EndpointSlices (``kubernetes.io/service-name``), or from its
Endpoints when it has no slice at all (hand-written Endpoints of a selectorless Service, which
Kubernetes' mirroring controller would have turned into a slice), and listeners that share it:

- on ``ClusterIP:port``, when ClusterIPs are handled: the proxy adds the ClusterIP as a /32 to the
  cluster's Docker bridge (:mod:`kbox.proxy.addresses`; needs root) and listens on it, so pods (through
  their gateway, the host) and the host itself reach it. Tests and special setups map ClusterIPs to
  other local addresses instead (:attr:`ProxySettings.cluster_ip_bind`);
- on every node address (127.0.0.1 and the node's own address by default) at ``nodePort`` for NodePort
  and LoadBalancer Services;
- LoadBalancer Services also get ``status.loadBalancer.ingress`` set (through ``services/status``) to
  their ClusterIP, which the host reaches directly: what ``minikube tunnel`` gives, without a command.

Headless Services (``clusterIP: None``) and ExternalName Services get no proxy (DNS alone serves them).
Services labelled ``service.kubernetes.io/service-proxy-name`` are left to the proxy named there, as
kube-proxy does; kbox still gives their ClusterIP to the host, so that proxy (the in-process DNS server
on 10.96.0.10, say) can listen on it.

The loop is a :class:`~kbox.controllers.base.Controller`: Service and EndpointSlice events enqueue the
Service's key; ``sync`` makes listeners, balancers, addresses and LoadBalancer status match the cache.
Changes take effect as soon as the watch delivers them (a few milliseconds). Endpoint changes swap the
balancer's list in place, so relayed connections are never cut and listeners never rebind. Listeners of
deleted Services close and their addresses go; when the component stops, every listener closes and every
address it added is removed, so a restart (a new ``run``) starts from the API's state again.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.interface import ENDPOINTS, ENDPOINTSLICES, SERVICES, Client, Obj, StatusError
from kbox.controllers import base
from kbox.proxy import addresses, splice
from kbox.proxy.balancer import DEFAULT_AFFINITY_TIMEOUT, Balancer, Endpoint
from kbox.proxy.relay import TcpListener, UdpListener
from kbox.proxy.splice import SpliceListener
from kbox.util import aiotasks

_log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
BY_SERVICE = "kube-proxy.service"
Listener = TcpListener | SpliceListener | UdpListener
ListenerKey = tuple[str, str, int]  # (protocol, address, port)


@dataclass
class ProxySettings:
    """How kube-proxy reaches the network. The defaults fit ``kbox start`` with the Docker runtime."""

    cluster: str = "kbox"
    """Names the Docker network ``kbox-<cluster>`` whose bridge gets the ClusterIPs."""
    interface: str = ""
    """Put ClusterIPs on this interface instead of the cluster's Docker bridge (``lo`` works too)."""
    manage_addresses: bool = True
    """Add ClusterIPs to the interface (needs root). Off, or without the permission, ClusterIPs are not
    proxied (unless :attr:`cluster_ip_bind` maps them) and NodePorts still are."""
    cluster_ip_bind: Callable[[str], str] | None = None
    """Listen for a ClusterIP on the address this returns instead (tests use 127.0.0.x)."""
    node_addresses: tuple[str, ...] = ("127.0.0.1",)
    """Where NodePort listeners are opened: loopback and the node's address (its InternalIP)."""
    service_cidr: str = "10.96.0.0/12"
    """Addresses in this range left on the bridge by an earlier run, for no Service, are removed."""
    udp_idle_timeout: float = 30.0
    tcp_relay: str = "auto"
    """``splice``: bytes move in the kernel (Linux, :mod:`kbox.proxy.splice`); ``stream``: asyncio
    transports (:mod:`kbox.proxy.relay`); ``auto``: splice where the OS has it."""
    retry_interval: float = 2.0
    """How soon a listener that could not be opened (port taken) is tried again; also how often the
    bridge is checked for addresses that went missing (the network re-created)."""


@dataclass
class _ServiceState:
    """What the proxy runs for one Service."""

    cluster_ip: str = ""
    address: str = ""  # the ClusterIP added to the interface, if any
    balancers: dict[str, Balancer] = field(default_factory=dict)  # "<port name>/<protocol>"
    listeners: dict[ListenerKey, Listener] = field(default_factory=dict)


def by_service_name(obj: Obj) -> list[str]:
    """EndpointSlices by the ``ns/name`` of their Service (any manager: hand-made slices count too)."""
    metadata = obj.get("metadata") or {}
    service = (metadata.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{metadata.get('namespace', '')}/{service}"] if service else []


def proxied(service: Obj) -> bool:
    """Whether kube-proxy opens listeners for this Service."""
    spec = service.get("spec") or {}
    labels = (service.get("metadata") or {}).get("labels") or {}
    return bool(
        spec.get("type") != "ExternalName"
        and spec.get("clusterIP") not in (None, "", "None")
        and not labels.get(SERVICE_PROXY_NAME_LABEL)
    )


def ready_endpoints(slices: Iterable[Obj], port_name: str, protocol: str) -> list[Endpoint]:
    """The ready (address, port) pairs of one Service port, in slice order."""
    result: list[Endpoint] = []
    for slice_ in sorted(slices, key=lambda s: s["metadata"].get("name", "")):
        number = next(
            (
                p.get("port")
                for p in slice_.get("ports") or []
                if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol
            ),
            None,
        )
        if not isinstance(number, int):
            continue
        for endpoint in slice_.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in (endpoint.get("addresses") or [])[:1]:
                result.append(Endpoint(address, number))
    return result


def endpoints_ready(endpoints: Obj | None, port_name: str, protocol: str) -> list[Endpoint]:
    """The ready addresses of an Endpoints object for one port: the fallback for a Service that has no
    EndpointSlices (kbox has no EndpointSlice mirroring controller)."""
    result: list[Endpoint] = []
    for subset in (endpoints or {}).get("subsets") or []:
        number = next(
            (
                p.get("port")
                for p in subset.get("ports") or []
                if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol
            ),
            None,
        )
        if isinstance(number, int):
            result.extend(Endpoint(a["ip"], number) for a in subset.get("addresses") or [] if a.get("ip"))
    return result


def affinity_timeout(service: Obj) -> float | None:
    spec = service.get("spec") or {}
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    return float(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)


class KubeProxy:
    """The kube-proxy component: ``run()`` until cancelled; see the module docstring."""

    name = "kube-proxy"

    def __init__(self, client: Client, settings: ProxySettings | None = None) -> None:
        self.client = client
        self.settings = settings or ProxySettings()
        self.services: dict[str, _ServiceState] = {}
        self.cluster_ips = False
        """Whether ClusterIP listeners are opened (addresses managed, or mapped)."""
        self._addresses: addresses.AddressManager | None = None
        self._controller: _ProxyController | None = None
        self._running = False
        self._warned: set[tuple[str, ListenerKey]] = set()

    def healthy(self) -> bool:
        return self._running and self._controller is not None and self._controller.has_synced

    @property
    def listeners(self) -> dict[ListenerKey, Listener]:
        """Every open listener, by (protocol, address, port)."""
        return {k: v for state in self.services.values() for k, v in state.listeners.items()}

    async def run(self) -> None:
        factory = informers.InformerFactory(self.client)
        controller = _ProxyController(factory, self)
        self._controller = controller
        maintenance: asyncio.Task[None] | None = None
        self._running = True
        try:
            await self._prepare_addresses()
            if self._addresses is not None:
                maintenance = aiotasks.create_guarded_task(
                    self._maintain(controller), name="kube-proxy/addresses", logger=_log
                )
            await controller.run(workers=1)
        finally:
            self._running = False
            if maintenance is not None:
                await aiotasks.stop([maintenance], title="kube-proxy")
            await self._teardown()
            await factory.stop()
            self._controller = None

    # -- addresses ---------------------------------------------------------------------------

    async def _prepare_addresses(self) -> None:
        settings = self.settings
        self._addresses = None
        self.cluster_ips = settings.cluster_ip_bind is not None
        if settings.cluster_ip_bind is not None or not settings.manage_addresses:
            if not self.cluster_ips:
                _log.info("kube-proxy: ClusterIP addresses are not managed; NodePorts only")
            return
        if not addresses.can_manage():
            _log.warning(
                "kube-proxy: not running as root (no CAP_NET_ADMIN), so ClusterIPs cannot be added to the "
                "host and are unreachable; NodePorts and `kbox service` still work"
            )
            return
        interface = settings.interface
        if not interface:
            try:
                interface, _ = await addresses.find_bridge(settings.cluster)
            except Exception as e:
                _log.warning("kube-proxy: cannot find the cluster's Docker bridge (%s); NodePorts only", e)
                return
        self._addresses = addresses.AddressManager(interface)
        self.cluster_ips = True
        _log.info("kube-proxy: ClusterIPs go on %s", interface)

    async def _maintain(self, controller: _ProxyController) -> None:
        """Re-add addresses that went missing (the bridge re-created) and drop stale ones once."""
        cleaned = False
        while True:
            await asyncio.sleep(self.settings.retry_interval)
            manager = self._addresses
            if manager is None or not controller.has_synced:
                continue
            try:
                present = await manager.present()
                if not present and not self.settings.interface:
                    manager.interface, _ = await addresses.find_bridge(self.settings.cluster)
                    present = await manager.present()
                if not cleaned:
                    await self._remove_stale(manager, present)
                    cleaned = True
                wanted = {s.address for s in self.services.values() if s.address}
                if wanted - present:
                    for key, state in self.services.items():
                        if state.address in wanted - present:
                            controller.queue.add(key)
                    for ip in wanted - present:
                        await manager.add(ip)
            except Exception as e:
                _log.warning("kube-proxy: checking ClusterIP addresses failed: %s", e)

    async def _remove_stale(self, manager: addresses.AddressManager, present: set[str]) -> None:
        cidr = ipaddress.ip_network(self.settings.service_cidr)
        for ip in present:
            # Looked up again for each address: syncs run while the removals await.
            wanted = {s.cluster_ip for s in self.services.values()}
            try:
                if ipaddress.ip_address(ip) in cidr and ip not in wanted and not self.settings.interface:
                    _log.info("kube-proxy: removing stale ClusterIP %s from %s", ip, manager.interface)
                    await manager.remove(ip)
            except (ValueError, addresses.AddressError) as e:
                _log.warning("kube-proxy: %s", e)

    def _bind_address(self, cluster_ip: str) -> str:
        bind = self.settings.cluster_ip_bind
        return bind(cluster_ip) if bind is not None else cluster_ip

    # -- syncing one Service -----------------------------------------------------------------

    async def sync(
        self, key: str, service: Obj | None, slices: list[Obj], endpoints: Obj | None = None
    ) -> bool:
        """Make the proxy of ``key`` match ``service``; ``False`` if something must be retried."""
        state = self.services.get(key)
        if service is None:
            if state is not None:
                await self._drop(key, state)
            return True
        spec = service.get("spec") or {}
        cluster_ip = spec.get("clusterIP") or ""
        if state is not None and state.cluster_ip != cluster_ip:
            await self._drop(key, state)  # re-created with another address
            state = None
        if not proxied(service) and not self._wants_address_only(service):
            if state is not None:
                await self._drop(key, state)
            return True
        if state is None:
            state = self.services[key] = _ServiceState(cluster_ip=cluster_ip)
        complete = await self._ensure_address(key, state)
        if not proxied(service):  # address only, for the proxy named in the label
            for listener_key in list(state.listeners):
                state.listeners.pop(listener_key).close()
            return complete
        wanted: dict[ListenerKey, Balancer] = {}
        balancers: dict[str, Balancer] = {}
        timeout = affinity_timeout(service)
        for port in spec.get("ports") or []:
            protocol = port.get("protocol") or "TCP"
            if protocol not in ("TCP", "UDP") or not isinstance(port.get("port"), int):
                continue
            port_name = port.get("name") or ""
            balancer_key = f"{port_name}/{protocol}"
            balancer = state.balancers.get(balancer_key) or Balancer(
                f"{key}:{port_name or port['port']}/{protocol}", affinity_timeout=timeout
            )
            balancer.set_affinity(timeout)
            if slices:
                balancer.set_endpoints(ready_endpoints(slices, port_name, protocol))
            else:
                balancer.set_endpoints(endpoints_ready(endpoints, port_name, protocol))
            balancers[balancer_key] = balancer
            if self.cluster_ips and (state.address or self.settings.cluster_ip_bind is not None):
                wanted[(protocol, self._bind_address(cluster_ip), port["port"])] = balancer
            if spec.get("type") in ("NodePort", "LoadBalancer") and isinstance(port.get("nodePort"), int):
                for address in self.settings.node_addresses:
                    wanted[(protocol, address, port["nodePort"])] = balancer
        state.balancers = balancers
        for listener_key in [k for k in state.listeners if k not in wanted]:
            state.listeners.pop(listener_key).close()
        for listener_key, balancer in wanted.items():
            listener = state.listeners.get(listener_key)
            if listener is not None:
                listener.balancer = balancer
                continue
            opened = await self._open(key, listener_key, balancer)
            if opened is None:
                complete = False
            else:
                state.listeners[listener_key] = opened
        await self._update_load_balancer(key, service, state)
        return complete

    def _wants_address_only(self, service: Obj) -> bool:
        spec = service.get("spec") or {}
        labels = (service.get("metadata") or {}).get("labels") or {}
        return bool(
            labels.get(SERVICE_PROXY_NAME_LABEL)
            and spec.get("type") != "ExternalName"
            and spec.get("clusterIP") not in (None, "", "None")
        )

    async def _ensure_address(self, key: str, state: _ServiceState) -> bool:
        manager = self._addresses
        if manager is None or state.address:
            return True
        try:
            ipaddress.ip_address(state.cluster_ip)
            await manager.add(state.cluster_ip)
        except (ValueError, addresses.AddressError) as e:
            _log.warning("kube-proxy: %s: cannot add ClusterIP %s: %s", key, state.cluster_ip, e)
            return False
        state.address = state.cluster_ip
        return True

    async def _open(self, key: str, listener_key: ListenerKey, balancer: Balancer) -> Listener | None:
        protocol, host, port = listener_key
        name = f"{key}/{protocol}/{host}:{port}"
        listener: Listener
        if protocol == "UDP":
            listener = UdpListener(name, host, port, balancer, idle_timeout=self.settings.udp_idle_timeout)
        elif self.settings.tcp_relay == "splice" or (
            self.settings.tcp_relay == "auto" and splice.available()
        ):
            listener = SpliceListener(name, host, port, balancer)
        else:
            listener = TcpListener(name, host, port, balancer)
        try:
            await listener.start()
        except OSError as e:
            if (key, listener_key) not in self._warned:
                self._warned.add((key, listener_key))
                reason = "already in use" if e.errno == errno.EADDRINUSE else e.strerror or str(e)
                _log.warning(
                    "kube-proxy: %s: cannot listen on %s %s:%d: %s", key, protocol, host, port, reason
                )
            listener.close()
            return None
        self._warned.discard((key, listener_key))
        _log.debug("kube-proxy: %s: listening on %s %s:%d", key, protocol, host, port)
        return listener

    async def _drop(self, key: str, state: _ServiceState) -> None:
        self.services.pop(key, None)
        for listener in state.listeners.values():
            listener.close()
        state.listeners.clear()
        self._warned = {w for w in self._warned if w[0] != key}
        if state.address and self._addresses is not None:
            try:
                await self._addresses.remove(state.address)
            except addresses.AddressError as e:
                _log.warning("kube-proxy: %s: cannot remove ClusterIP %s: %s", key, state.address, e)

    async def _teardown(self) -> None:
        for key, state in list(self.services.items()):
            await self._drop(key, state)
        if self._addresses is not None:
            await self._addresses.release()

    # -- LoadBalancer status -----------------------------------------------------------------

    async def _update_load_balancer(self, key: str, service: Obj, state: _ServiceState) -> None:
        spec = service.get("spec") or {}
        current = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        want: list[dict[str, Any]] = []
        if spec.get("type") == "LoadBalancer" and any(
            k[1] == self._bind_address(state.cluster_ip) for k in state.listeners
        ):
            want = [{"ip": self._bind_address(state.cluster_ip), "ipMode": "VIP"}]
        if current == want or (spec.get("type") != "LoadBalancer" and not current):
            return
        namespace, name = cache.split_key(key)
        patch = {"status": {"loadBalancer": {"ingress": want or None}}}
        try:
            await self.client.patch(SERVICES, name, patch, namespace=namespace, subresource="status")
        except StatusError as e:
            if e.code != 404:
                raise


class _ProxyController(base.Controller):
    """Services and EndpointSlices in, :meth:`KubeProxy.sync` per Service key."""

    name = "kube-proxy"

    def __init__(self, factory: informers.InformerFactory, proxy: KubeProxy) -> None:
        super().__init__(factory)
        self.proxy = proxy
        self.service_informer = self.informer(SERVICES)
        self.slice_informer = self.informer(ENDPOINTSLICES, keys=by_service_name)
        self.slice_informer.add_index(BY_SERVICE, by_service_name)
        self.endpoints_informer = self.informer(ENDPOINTS)

    async def sync(self, key: str) -> None:
        service = self.service_informer.indexer.get(key)
        slices = list(self.slice_informer.indexer.by_index(BY_SERVICE, key))
        endpoints = None if slices else self.endpoints_informer.indexer.get(key)
        if not await self.proxy.sync(key, service, slices, endpoints):
            self.queue.add_after(key, self.proxy.settings.retry_interval)
