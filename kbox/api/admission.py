"""Admission: checks that depend on other objects, run after decoding and before the store.

NamespaceLifecycle, as kube-apiserver enables it by default: an object cannot be created in a namespace
that does not exist (404) or that is being deleted (403). Service address allocation runs here too,
since it reads other Services.
"""

from __future__ import annotations

from typing import Any

from kbox.api import errors
from kbox.api.catalog import Catalog
from kbox.api.registry import GenericStore


async def admit_create(
    catalog: Catalog, generic: GenericStore, namespace: str | None, obj: dict[str, Any] | None
) -> None:
    """Refuse creates into a missing or terminating namespace; allocate a new Service's addresses."""
    await _namespace_lifecycle(catalog, generic, namespace, obj)
    if obj is not None and generic.resource.group == "" and generic.resource.plural == "services":
        await catalog.service_allocator.allocate(generic, obj)


async def _namespace_lifecycle(
    catalog: Catalog, generic: GenericStore, namespace: str | None, obj: dict[str, Any] | None
) -> None:
    resource = generic.resource
    if not resource.namespaced or namespace is None:
        return
    namespaces = catalog.lookup("", "v1", "namespaces")
    if namespaces is None:
        return
    try:
        ns = await namespaces.get(None, namespace)
    except errors.StatusError as exc:
        if exc.code == 404:
            raise errors.not_found("", "namespaces", namespace) from None
        raise
    if ns.get("metadata", {}).get("deletionTimestamp") or ns.get("status", {}).get("phase") == "Terminating":
        name = (obj or {}).get("metadata", {}).get("name", "")
        raise errors.StatusError(
            f'{resource.qualified_name} "{name}" is forbidden: unable to create new content in namespace '
            f"{namespace} because it is being terminated",
            403,
            "Forbidden",
            {
                "name": name,
                "group": resource.group,
                "kind": resource.plural,
                "causes": [
                    {
                        "reason": "NamespaceTerminating",
                        "message": f"namespace {namespace} is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            },
        )
