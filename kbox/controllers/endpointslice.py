"""The EndpointSlice controller: for every Service with a selector, EndpointSlices listing the pods it
selects (pkg/controller/endpointslice in shape, without topology hints).

Slices of a Service carry ``kubernetes.io/service-name: <svc>`` and ``endpointslice.kubernetes.io/managed-by:
endpointslice-controller.k8s.io`` (only such slices are ever touched), the Service's other labels, a
controller reference to the Service, ``addressType: IPv4`` and are named by ``generateName: <svc>-``.

Each sync of ``ns/name`` reads the Service, its pods and its slices from the caches:

- **No Service** (or slices owned by an earlier Service of the same name): the slices are deleted. The
  garbage collector would remove them through the owner reference too; doing it here does not depend on it.
- **No selector**, or ``type: ExternalName``: left alone (selectorless Services get hand-made slices).
- Otherwise each selected pod with an IP that can still run becomes an endpoint with ``addresses``,
  ``conditions`` (``serving``: the Ready condition; ``terminating``: a deletion timestamp; ``ready``:
  serving and not terminating, or always with ``publishNotReadyAddresses``), ``nodeName``, ``targetRef``
  and, for a headless Service named by the pod's subdomain, ``hostname``. Terminating pods stay listed
  (as terminating), unlike in Endpoints. Ports are resolved per pod as for Endpoints
  (:mod:`kbox.controllers.endpoints`); pods with the same port set share slices of at most
  ``max_endpoints_per_slice`` endpoints, so the common case is one slice per Service. A Service with no
  endpoints keeps one empty slice, as upstream's placeholder.
- Existing slices are **updated in place** (matched by port set first, then any leftover), missing ones
  created, surplus ones deleted; a slice is written only when its content differs.

Slices this controller created but its cache does not show yet are remembered, so a sync that runs
before the watch delivered them does not create them twice (their arrival queues the Service again).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.interface import ENDPOINTSLICES, PODS, SERVICES, Client, Obj, StatusError
from kbox.controllers import base, endpoints, meta

_log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
BY_SERVICE = "endpointslice.service"
"""Index of this controller's slices by the ``ns/name`` of their Service."""
_RESERVED_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, endpoints.HEADLESS_LABEL)


def by_service(obj: Obj) -> list[str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    service = labels.get(SERVICE_NAME_LABEL)
    if not service or labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return []
    return [f"{obj['metadata'].get('namespace', '')}/{service}"]


class EndpointSliceController(base.Controller):
    """EndpointSlices for Services with selectors; see the module docstring."""

    name = "endpointslice"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        max_endpoints_per_slice: int = 100,
        pending_timeout: float = 30.0,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.max_endpoints_per_slice = max_endpoints_per_slice
        self.pending_timeout = pending_timeout
        self.services = self.informer(SERVICES)
        self.selectors = endpoints.ServiceSelectors(self.services)
        self.pods = self.informer(PODS, keys=self.selectors.keys_for_pod)
        self.slices = self.informer(ENDPOINTSLICES, keys=by_service)
        self.slices.add_index(BY_SERVICE, by_service)
        self._pending: dict[str, tuple[float, dict[str, int]]] = {}
        """Service key → (since, created slice name → revision) not in the cache yet."""

    async def sync(self, key: str) -> None:
        if not self._caught_up(key):
            # The slices' arrival queues the key again; this is only the safety net.
            self.queue.add_after(key, 1.0)
            return
        namespace, _ = cache.split_key(key)
        service = self.services.indexer.get(key)
        existing = list(self.slices.indexer.by_index(BY_SERVICE, key))
        if service is None:
            self._pending.pop(key, None)
            await self._delete_all(existing)
            return
        uid = service["metadata"].get("uid", "")
        stale = [s for s in existing if not _owned_by(s, uid)]
        existing = [s for s in existing if _owned_by(s, uid)]
        await self._delete_all(stale)
        spec = service.get("spec") or {}
        selector = self.selectors.get(service)
        if selector is None or spec.get("type") == "ExternalName":
            return
        pods = [
            pod
            for pod in self.pods.indexer.by_index(cache.NAMESPACE, namespace or "")
            if selector.matches(pod["metadata"].get("labels"))
        ]
        desired = self.desired_slices(service, pods)
        trigger = endpoints.format_time(endpoints.trigger_time(service, pods))
        unmatched = sorted(existing, key=lambda s: s["metadata"]["name"])
        pairs: list[tuple[Obj | None, Obj]] = []
        for want in desired:  # same port set first
            match = next((s for s in unmatched if (s.get("ports") or []) == want["ports"]), None)
            if match is not None:
                unmatched.remove(match)
            pairs.append((match, want))
        for index, (have, want) in enumerate(pairs):  # then reuse any leftover slice
            if have is None and unmatched:
                pairs[index] = (unmatched.pop(0), want)
        for have, want in pairs:
            await self._write(service, have, want, trigger, key)
        await self._delete_all(unmatched)

    def desired_slices(self, service: Obj, pods: list[Obj]) -> list[Obj]:
        """The content (``ports``, ``endpoints``, ``labels``) of each slice the Service should have."""
        publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
        groups: dict[str, tuple[list[Obj], list[Obj]]] = {}
        for pod in pods:
            if not endpoints.should_pod_be_in_endpoints(pod, include_terminating=True):
                continue
            ports = endpoints.pod_ports(service, pod)
            if ports is None:
                continue
            # Slice ports always carry a name ("" when the Service port has none), as
            # kube-controller-manager writes them: kubectl describe service dereferences it.
            ports = [{"name": "", **port} for port in ports]
            groups.setdefault(repr(ports), (ports, []))[1].append(_endpoint(service, pod, publish_not_ready))
        labels = slice_labels(service)
        result = []
        for ports, members in sorted(
            groups.values(), key=lambda g: [(p["port"], p.get("name", "")) for p in g[0]]
        ):
            members.sort(key=_endpoint_order)
            size = self.max_endpoints_per_slice
            for start in range(0, len(members), size):
                result.append({"ports": ports, "endpoints": members[start : start + size], "labels": labels})
        if not result:
            result.append({"ports": [], "endpoints": [], "labels": labels})
        return result

    async def _write(self, service: Obj, have: Obj | None, want: Obj, trigger: str, key: str) -> None:
        metadata = service["metadata"]
        namespace = metadata["namespace"]
        owner = [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "name": metadata["name"],
                "uid": metadata.get("uid", ""),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        if have is not None:
            have_meta = have["metadata"]
            if (
                (have.get("endpoints") or []) == want["endpoints"]
                and (have.get("ports") or []) == want["ports"]
                and (have_meta.get("labels") or {}) == want["labels"]
                and have_meta.get("ownerReferences") == owner
                and have.get("addressType") == "IPv4"
            ):
                return
            new_meta = {
                k: v for k, v in have_meta.items() if k not in ("labels", "ownerReferences", "managedFields")
            }
        else:
            new_meta = {"generateName": _prefix(metadata["name"]), "namespace": namespace}
        new_meta["labels"] = want["labels"]
        new_meta["ownerReferences"] = owner
        new_meta["annotations"] = {
            **(new_meta.get("annotations") or {}),
            endpoints.TRIGGER_TIME_ANNOTATION: trigger,
        }
        body: Obj = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": new_meta,
            "addressType": "IPv4",
            "endpoints": want["endpoints"],
            "ports": want["ports"],
        }
        if have is not None:
            try:
                await self.client.update(ENDPOINTSLICES, body, namespace=namespace)
            except StatusError as exc:
                if exc.code != 404:  # deleted meanwhile: its delete event brings the key back
                    raise
            return
        created = await self.client.create(ENDPOINTSLICES, body, namespace=namespace)
        _, names = self._pending.setdefault(key, (time.monotonic(), {}))
        names[created["metadata"]["name"]] = _revision(cache.resource_version_of(created))
        _log.debug("%s: created endpointslice %s/%s", self.name, namespace, created["metadata"]["name"])

    async def _delete_all(self, slices: list[Obj]) -> None:
        for slice_ in slices:
            await meta.delete_exact(self.client, ENDPOINTSLICES, slice_)

    def _caught_up(self, key: str) -> bool:
        """Every slice this controller created for ``key`` is in the cache (or given up on)."""
        pending = self._pending.get(key)
        if pending is None:
            return True
        since, names = pending
        seen = _revision(self.slices.resource_version)
        namespace, _ = cache.split_key(key)
        for slice_name, revision in list(names.items()):
            if f"{namespace}/{slice_name}" in self.slices.indexer or seen >= revision:
                del names[slice_name]
        if not names or time.monotonic() - since > self.pending_timeout:
            del self._pending[key]
            return True
        return False


def slice_labels(service: Obj) -> dict[str, str]:
    metadata = service["metadata"]
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k not in _RESERVED_LABELS}
    labels[SERVICE_NAME_LABEL] = metadata["name"]
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    if endpoints.is_headless(service):
        labels[endpoints.HEADLESS_LABEL] = ""
    return labels


def _endpoint(service: Obj, pod: Obj, publish_not_ready: bool) -> Obj:
    serving = endpoints.is_pod_ready(pod)
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    endpoint: Obj = {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {
            "ready": publish_not_ready or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
    }
    if endpoints.should_set_hostname(pod, service):
        endpoint["hostname"] = pod["spec"]["hostname"]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        endpoint["nodeName"] = node
    endpoint["targetRef"] = endpoints.target_ref(pod)
    return endpoint


def _endpoint_order(endpoint: Obj) -> tuple[Any, ...]:
    ip = endpoint["addresses"][0]
    try:
        packed = tuple(int(part) for part in ip.split("."))
    except ValueError:
        packed = ()
    return (packed, ip, endpoint["targetRef"]["uid"])


def _owned_by(slice_: Obj, uid: str) -> bool:
    refs = slice_["metadata"].get("ownerReferences") or []
    return not refs or any(ref.get("uid") == uid for ref in refs if ref.get("kind") == "Service")


def _prefix(service_name: str) -> str:
    """``<svc>-``, shortened so the generated name stays a valid 63-character label."""
    return f"{service_name[:57]}-"


def _revision(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0
