"""The Endpoints controller: for every Service with a selector, an Endpoints object of the same name listing
the pods it selects (pkg/controller/endpoint in shape).

Each sync of ``ns/name`` reads the Service, the namespace's pods and the current Endpoints from the caches:

- **No Service**: the Endpoints of that name are deleted (a Service that went away, or Endpoints left over
  from before a restart: every Endpoints object is looked at once when the caches sync, as upstream's
  ``checkLeftoverEndpoints`` does; leader-election records are spared). Endpoints written while the
  controller runs are never deleted for lack of a Service, so a manifest that creates an Endpoints object
  before its selectorless Service is safe.
- **A Service without a selector** (``kubernetes`` in ``default``, or one fed by hand-made Endpoints) is
  left alone entirely.
- Otherwise the selected pods become **subsets**. A pod counts when it has an IP, is not terminating
  (unless ``publishNotReadyAddresses``) and is not finished for good (restartPolicy Never/OnFailure).
  For each Service port the pod's port is resolved from ``targetPort``: a number as it is, a name looked
  up among the pod's container ports with the same protocol (a pod without it gets no address for that
  port). Pods that resolve to the same set of ports share a subset, so pods with different numbers for a
  named port land in separate subsets. A pod whose Ready condition is True (or every pod, with
  ``publishNotReadyAddresses``) goes to ``addresses``, the others to ``notReadyAddresses``. Addresses
  carry ``ip``, ``nodeName``, ``targetRef`` and, for a headless Service whose name is the pod's
  ``subdomain``, the pod's ``hostname``. A headless Service without ports lists its pods without ports.
- The Endpoints carry the Service's labels (plus ``service.kubernetes.io/headless`` for headless ones) and
  are written only when the subsets or labels differ from what is stored. A write also sets the
  ``endpoints.kubernetes.io/last-change-trigger-time`` annotation: the latest change the controller can
  see in its inputs (Service creation, pods' Ready transitions, creations and deletions).

The helpers below (pod readiness, port resolution, the Service → pods mapping) are shared with the
EndpointSlice controller, which builds its slices from the same rules.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from typing import Any

from kbox.api import selectors
from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.interface import ENDPOINTS, PODS, SERVICES, Client, Obj, StatusError
from kbox.controllers import base, meta

_log = logging.getLogger(__name__)

HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


class EndpointsController(base.Controller):
    """Endpoints for Services with selectors; see the module docstring."""

    name = "endpoints"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.services = self.informer(SERVICES)
        self.selectors = ServiceSelectors(self.services)
        self.pods = self.informer(PODS, keys=self.selectors.keys_for_pod)
        self.endpoints = self.informer(ENDPOINTS, keys=self._keys_for_endpoints)

    def _keys_for_endpoints(self, endpoints: Obj) -> list[str]:
        key = cache.key_of(endpoints)
        if key in self.services.indexer:
            return [key]  # changed or deleted by someone else: put it back
        if not self.synced.is_set():
            return [key]  # the first list: maybe left over from a Service deleted while we were down
        return []

    async def sync(self, key: str) -> None:
        namespace, name = cache.split_key(key)
        service = self.services.indexer.get(key)
        current = self.endpoints.indexer.get(key)
        if service is None:
            if current is not None and LEADER_ANNOTATION not in (
                current["metadata"].get("annotations") or {}
            ):
                await self._delete(current)
            return
        selector = self.selectors.get(service)
        if selector is None:
            return
        pods = [
            pod
            for pod in self.pods.indexer.by_index(cache.NAMESPACE, namespace or "")
            if selector.matches(pod["metadata"].get("labels"))
        ]
        subsets = build_subsets(service, pods)
        labels = endpoints_labels(service)
        if (
            current is not None
            and (current.get("subsets") or []) == subsets
            and (current["metadata"].get("labels") or {}) == labels
        ):
            return
        annotations = dict((current or {}).get("metadata", {}).get("annotations") or {})
        annotations[TRIGGER_TIME_ANNOTATION] = format_time(trigger_time(service, pods))
        metadata: Obj = {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations}
        body: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": metadata, "subsets": subsets}
        if current is None:
            await self.client.create(ENDPOINTS, body, namespace=namespace)
            _log.debug("%s: created endpoints %s", self.name, key)
            return
        for field in ("resourceVersion", "uid", "creationTimestamp", "ownerReferences", "finalizers"):
            if field in current["metadata"]:
                metadata[field] = current["metadata"][field]
        try:
            await self.client.update(ENDPOINTS, body, namespace=namespace)
        except StatusError as exc:
            if exc.code == 404:  # deleted meanwhile: its delete event brings the key back
                return
            raise

    async def _delete(self, endpoints: Obj) -> None:
        metadata = endpoints["metadata"]
        await meta.delete_exact(self.client, ENDPOINTS, endpoints)
        _log.debug("%s: deleted endpoints %s/%s", self.name, metadata["namespace"], metadata["name"])


# -- Services and their pods -------------------------------------------------------------------


class ServiceSelectors:
    """The Services of an informer with their parsed selectors, and the Services that select a pod."""

    def __init__(self, services: informers.SharedInformer) -> None:
        self.services = services
        self._parsed: dict[str, tuple[Any, selectors.LabelSelector | None]] = {}

    def get(self, service: Obj) -> selectors.LabelSelector | None:
        """The Service's selector; ``None`` when it has none (nil or empty: left to others)."""
        raw = (service.get("spec") or {}).get("selector")
        if not raw:
            return None
        uid = service["metadata"].get("uid", "")
        cached = self._parsed.get(uid)
        if cached is not None and cached[0] == raw:
            return cached[1]
        parsed = selectors.selector_from_set(raw)
        self._parsed[uid] = (raw, parsed)
        if len(self._parsed) > 2 * len(self.services.indexer) + 64:
            live = {s["metadata"].get("uid", "") for s in self.services.indexer.list()}
            self._parsed = {u: v for u, v in self._parsed.items() if u in live}
        return parsed

    def keys_for_pod(self, pod: Obj) -> list[str]:
        metadata = pod.get("metadata") or {}
        namespace = metadata.get("namespace", "")
        labels = metadata.get("labels") or {}
        return [
            cache.key_of(service)
            for service in self.services.indexer.by_index(cache.NAMESPACE, namespace)
            if (selector := self.get(service)) is not None and selector.matches(labels)
        ]


def is_headless(service: Obj) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def is_pod_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def should_pod_be_in_endpoints(pod: Obj, *, include_terminating: bool) -> bool:
    """Has an IP, is not terminating (unless asked), and can still run (endpointsliceutil's rule)."""
    status = pod.get("status") or {}
    if not status.get("podIP"):
        return False
    if not include_terminating and pod["metadata"].get("deletionTimestamp"):
        return False
    restart = (pod.get("spec") or {}).get("restartPolicy", "Always")
    phase = status.get("phase")
    if restart == "Never":
        return phase not in ("Failed", "Succeeded")
    if restart == "OnFailure":
        return phase != "Succeeded"
    return True


def should_set_hostname(pod: Obj, service: Obj) -> bool:
    spec = pod.get("spec") or {}
    return bool(
        spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"] and is_headless(service)
    )


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port for ``service_port``'s ``targetPort``: a number as is, a name looked up among the
    container ports (regular containers and restartable init containers) with the same protocol."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if not isinstance(target, str) or not target:
        return None
    if target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers: Iterable[Obj] = [
        *(spec.get("containers") or []),
        *(c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"),
    ]
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                number = port.get("containerPort")
                return number if isinstance(number, int) else None
    return None


def endpoint_port(service_port: Obj, number: int) -> Obj:
    """An Endpoints or EndpointSlice port: the Service port's name and protocol, the pod's number."""
    port: Obj = {}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    port["port"] = number
    port["protocol"] = service_port.get("protocol") or "TCP"
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def pod_ports(service: Obj, pod: Obj) -> list[Obj] | None:
    """The pod's ports for the Service, in the Service's order; ``None`` when the pod gets no address
    (no port resolves; a headless Service without ports gives ``[]``)."""
    spec = service.get("spec") or {}
    service_ports = spec.get("ports") or []
    if not service_ports:
        return [] if is_headless(service) else None
    ports = []
    for service_port in service_ports:
        number = find_port(pod, service_port)
        if number is not None:
            ports.append(endpoint_port(service_port, number))
    return ports or None


def target_ref(pod: Obj) -> Obj:
    metadata = pod["metadata"]
    return {
        "kind": "Pod",
        "namespace": metadata.get("namespace", ""),
        "name": metadata["name"],
        "uid": metadata.get("uid", ""),
    }


# -- Endpoints ---------------------------------------------------------------------------------


def build_subsets(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The Endpoints subsets for ``service`` over the pods it selects, in a canonical order."""
    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    groups: dict[str, tuple[list[Obj], list[Obj], list[Obj]]] = {}  # by port set: ports, ready, not ready
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=publish_not_ready):
            continue
        ports = pod_ports(service, pod)
        if ports is None:
            continue
        address: Obj = {"ip": pod["status"]["podIP"]}
        if should_set_hostname(pod, service):
            address["hostname"] = pod["spec"]["hostname"]
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            address["nodeName"] = node
        address["targetRef"] = target_ref(pod)
        group = groups.setdefault(repr(ports), (ports, [], []))
        (group[1] if publish_not_ready or is_pod_ready(pod) else group[2]).append(address)
    subsets = []
    for ports, ready, not_ready in sorted(groups.values(), key=lambda group: _ports_order(group[0])):
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_address_order)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_order)
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    return subsets


def _ports_order(ports: list[Obj]) -> list[tuple[int, str, str]]:
    return [(p["port"], p.get("name", ""), p["protocol"]) for p in ports]


def _address_order(address: Obj) -> tuple[Any, ...]:
    ip = address["ip"]
    try:
        packed = tuple(int(part) for part in ip.split("."))
    except ValueError:
        packed = ()
    return (packed, ip, address["targetRef"]["uid"])


def endpoints_labels(service: Obj) -> dict[str, str]:
    """The Service's labels, plus the headless marker for a headless Service (never otherwise)."""
    labels = {k: v for k, v in (service["metadata"].get("labels") or {}).items() if k != HEADLESS_LABEL}
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    return labels


def trigger_time(service: Obj, pods: Iterable[Obj]) -> datetime.datetime:
    """The latest change visible in the inputs: the Service's creation, and each pod's creation, deletion
    and Ready transition (an approximation of upstream's trigger-time tracker, which remembers events)."""
    times = [service["metadata"].get("creationTimestamp")]
    for pod in pods:
        metadata = pod["metadata"]
        times += [metadata.get("creationTimestamp"), metadata.get("deletionTimestamp")]
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready":
                times.append(condition.get("lastTransitionTime"))
    parsed = [t for t in (parse_time(text) for text in times) if t is not None]
    return max(parsed) if parsed else datetime.datetime.now(datetime.UTC)


def parse_time(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_time(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with ``Z``, as Go's ``time.RFC3339Nano`` prints it (no trailing zeros)."""
    text = moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"
