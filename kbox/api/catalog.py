"""The catalog of served resource types and their generic stores.

Built from the ``ResourceDef`` declarations of ``kbox/resources``; the handlers, discovery and OpenAPI
look types up here by URL (group, version, plural), by kind, or by short name. CRDs will add and remove
entries at run time, so lookups go through this object rather than module-level tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from kbox.api.allocation import ServiceAllocator
from kbox.api.nodeconnection import NodeConnections
from kbox.api.registry import GenericStore
from kbox.api.resource import ResourceDef
from kbox.api.serviceaccounts import TokenIssuer
from kbox.store.interface import Store


class Follower(Protocol):
    """Something kept in step with the served types (the OpenAPI documents)."""

    def add(self, resource: ResourceDef) -> None: ...
    def remove(self, resource: ResourceDef) -> None: ...


class Catalog:
    """Resource types by URL and by kind, in registration order (the order discovery lists them)."""

    def __init__(self, store: Store, resources: Iterable[ResourceDef] = ()) -> None:
        self.store = store
        self.service_allocator = ServiceAllocator()
        self.node_connections = NodeConnections()
        self.tokens = TokenIssuer()  # the control plane points it at the state dir's pki/
        self.admission_disabled: set[str] = set()  # admission plugins turned off ("ServiceAccount")
        # DefaultTolerationSeconds (kube-apiserver's --default-{not-ready,unreachable}-toleration-seconds)
        self.default_not_ready_toleration_seconds = 300
        self.default_unreachable_toleration_seconds = 300
        self._by_path: dict[tuple[str, str, str], GenericStore] = {}
        self._by_kind: dict[tuple[str, str], ResourceDef] = {}
        self._followers: list[Follower] = []
        for resource in resources:
            self.add(resource)

    def add(self, resource: ResourceDef) -> GenericStore:
        generic = GenericStore(resource, self.store)
        self._by_path[(resource.group, resource.version, resource.plural)] = generic
        self._by_kind.setdefault((resource.group, resource.kind), resource)
        for follower in self._followers:
            follower.add(resource)
        return generic

    def remove(self, resource: ResourceDef) -> None:
        generic = self._by_path.get((resource.group, resource.version, resource.plural))
        if generic is None or generic.resource is not resource:
            return
        del self._by_path[(resource.group, resource.version, resource.plural)]
        if self._by_kind.get((resource.group, resource.kind)) is resource:
            del self._by_kind[(resource.group, resource.kind)]
            for other in self._by_path.values():  # another served version names the kind now
                if (other.resource.group, other.resource.kind) == (resource.group, resource.kind):
                    self._by_kind[(resource.group, resource.kind)] = other.resource
                    break
        for follower in self._followers:
            follower.remove(resource)

    def follow(self, follower: Follower) -> None:
        """Tell ``follower`` of every type added or removed from now on (CRDs come and go at run time)."""
        self._followers.append(follower)

    def unfollow(self, follower: Follower) -> None:
        if follower in self._followers:
            self._followers.remove(follower)

    def lookup(self, group: str, version: str, plural: str) -> GenericStore | None:
        return self._by_path.get((group, version, plural))

    def for_kind(self, group: str, kind: str) -> GenericStore | None:
        resource = self._by_kind.get((group, kind))
        if resource is None:
            return None
        return self._by_path.get((resource.group, resource.version, resource.plural))

    def resources(self) -> Iterator[ResourceDef]:
        for generic in self._by_path.values():
            yield generic.resource

    def group_versions(self) -> list[tuple[str, str]]:
        """Served (group, version) pairs, core first, in registration order."""
        seen: dict[tuple[str, str], None] = {}
        for resource in self.resources():
            seen.setdefault((resource.group, resource.version), None)
        return list(seen)
