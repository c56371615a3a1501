"""The client contract every component programs against.

Resources are named as on the wire, by group, version and plural (``Resource("apps", "v1",
"deployments")``); objects are plain dicts in camelCase. Failures raise ``StatusError`` carrying the
Kubernetes ``Status`` (code, reason, message), the same for the in-process and the HTTP client, so a
component moves between them unchanged.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from kbox.api.errors import StatusError

Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Resource:
    """A resource type as the URL names it."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
SERVICES = Resource("", "v1", "services")
ENDPOINTS = Resource("", "v1", "endpoints")
CONFIGMAPS = Resource("", "v1", "configmaps")
EVENTS = Resource("", "v1", "events")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
REPLICASETS = Resource("apps", "v1", "replicasets")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts")
PVS = Resource("", "v1", "persistentvolumes", namespaced=False)
PVCS = Resource("", "v1", "persistentvolumeclaims")
DAEMONSETS = Resource("apps", "v1", "daemonsets")
STATEFULSETS = Resource("apps", "v1", "statefulsets")
CONTROLLERREVISIONS = Resource("apps", "v1", "controllerrevisions")
JOBS = Resource("batch", "v1", "jobs")
CRONJOBS = Resource("batch", "v1", "cronjobs")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
PODDISRUPTIONBUDGETS = Resource("policy", "v1", "poddisruptionbudgets")
STORAGE_CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False)
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)


class WatchEvent(NamedTuple):
    """``type`` is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR; ``object`` must be treated as read-only."""

    type: str
    object: Obj


class Client(abc.ABC):
    """get/list/create/update/patch/delete/watch on any resource."""

    @abc.abstractmethod
    async def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> Obj: ...

    @abc.abstractmethod
    async def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str = "",
    ) -> Obj:
        """A ``<Kind>List`` object with ``metadata.resourceVersion`` (and ``continue`` when paged)."""

    @abc.abstractmethod
    async def create(self, resource: Resource, obj: Obj, *, namespace: str | None = None) -> Obj: ...

    @abc.abstractmethod
    async def update(
        self, resource: Resource, obj: Obj, *, namespace: str | None = None, subresource: str | None = None
    ) -> Obj:
        """Replace the object named in ``obj``; a resourceVersion in it is a precondition (409 if stale)."""

    @abc.abstractmethod
    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: str = MERGE_PATCH,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
    ) -> Obj: ...

    @abc.abstractmethod
    async def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> Obj: ...

    @abc.abstractmethod
    def watch(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str = "",
        bookmarks: bool = False,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Events after ``resource_version`` (current objects first for "" or "0"); a too old version
        raises ``StatusError`` with code 410, and the caller re-lists."""

    @abc.abstractmethod
    async def bind(self, pod: str, node: str, *, namespace: str) -> None:
        """``pods/<pod>/binding``: assign a pod to a node once (the scheduler's write)."""

    async def request_token(self, service_account: str, spec: Obj, *, namespace: str) -> Obj:
        """``serviceaccounts/<name>/token``: a TokenRequest with ``spec``; the answer's
        ``status.token`` is the signed token (the kubelet's projected serviceAccountToken). Clients
        that cannot (test doubles) refuse, as a server without the subresource would."""
        raise StatusError("the server could not find the requested resource", 404, "NotFound")

    async def close(self) -> None:  # noqa: B027 - a no-op by default on purpose
        """Release connections (nothing to do in process)."""


__all__ = ["Client", "Obj", "Resource", "StatusError", "WatchEvent"]
