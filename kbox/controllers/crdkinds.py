"""Custom resource kinds join the garbage collector and the namespace controller at run time.

Both are built with the types served when the controller-manager starts (:func:`served_kinds`). A CRD
established later serves a type they must also cover: the collector must see its objects' owner
references (and objects owning others), and deleting a namespace must delete its custom objects. This
controller watches CRDs and, for each established one, hands its type (group, a served version,
plural, scope, kind: from ``status.acceptedNames``) to both; when the CRD is gone, the type leaves them
again (the collector then treats references to that kind as dangling: all its objects went with it).

Upstream's garbage collector and namespace controller find the same through periodic discovery; here
the CRD watch makes it immediate.
"""

from __future__ import annotations

import logging
from typing import Any

from kbox.client import informer as informers
from kbox.client.interface import CRDS, Obj, Resource
from kbox.controllers import base
from kbox.controllers.garbagecollector import GarbageCollector, ResourceKind
from kbox.controllers.namespace import NamespaceController

_log = logging.getLogger(__name__)


def _established(crd: Obj) -> bool:
    for condition in (crd.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Established":
            return condition.get("status") == "True"
    return False


def kind_of(crd: Obj) -> ResourceKind | None:
    """The type an established CRD serves, or ``None``."""
    if not _established(crd):
        return None
    spec = crd.get("spec") or {}
    names = (crd.get("status") or {}).get("acceptedNames") or {}
    if not names.get("plural") or not names.get("kind"):
        return None
    served = [v for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("served")]
    if not served:
        return None
    storage = [v for v in served if v.get("storage")]
    version = (storage or served)[0]
    resource = Resource(
        str(spec.get("group")),
        str(version.get("name")),
        str(names["plural"]),
        spec.get("scope") == "Namespaced",
    )
    return ResourceKind(resource, str(names["kind"]))


class CustomKindsController(base.Controller):
    """Established CRDs → their types in the garbage collector and the namespace controller."""

    name = "crd-kinds"

    def __init__(
        self,
        factory: informers.InformerFactory,
        *,
        garbage_collector: GarbageCollector,
        namespaces: NamespaceController,
        **options: Any,
    ) -> None:
        super().__init__(factory, **options)
        self.garbage_collector = garbage_collector
        self.namespaces = namespaces
        self.crds = self.informer(CRDS)
        self._kinds: dict[str, ResourceKind] = {}

    async def sync(self, key: str) -> None:
        crd = self.crds.indexer.get(key)
        wanted = kind_of(crd) if crd is not None else None
        current = self._kinds.get(key)
        if wanted == current:
            return
        if current is not None and (wanted is None or _moved(current, wanted)):
            await self._forget(key, current)
        if wanted is not None:
            self._kinds[key] = wanted
            self.garbage_collector.add_kind(wanted)
            resources = self.namespaces.resources
            if wanted.resource.namespaced and not any(_same(r, wanted.resource) for r in resources):
                resources.append(wanted.resource)

    async def _forget(self, key: str, kind: ResourceKind) -> None:
        del self._kinds[key]
        await self.garbage_collector.remove_kind(kind.resource)
        self.namespaces.resources[:] = [r for r in self.namespaces.resources if not _same(r, kind.resource)]


def _same(a: Resource, b: Resource) -> bool:
    return (a.group, a.plural) == (b.group, b.plural)


def _moved(a: ResourceKind, b: ResourceKind) -> bool:
    """A different type (not only another version of the same one)."""
    return (
        not _same(a.resource, b.resource)
        or a.kind != b.kind
        or a.resource.namespaced != b.resource.namespaced
    )
