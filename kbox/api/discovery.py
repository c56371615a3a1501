"""Discovery documents, generated from the catalog: legacy (``/api``, ``/apis``, one resource list per
group version) and aggregated (``apidiscovery.k8s.io/v2``, one round trip), chosen by the Accept header.

kubectl learns every resource name, short name, scope, verb and category from here (``kubectl get po``,
``kubectl get all``, ``kubectl api-resources``); a resource without a response kind is dropped by it.
"""

from __future__ import annotations

from typing import Any

from kbox.api.catalog import Catalog
from kbox.api.resource import ResourceDef

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str | None) -> bool:
    if not accept:
        return False
    for clause in accept.split(","):
        params = dict(piece.strip().partition("=")[::2] for piece in clause.split(";")[1:] if "=" in piece)
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList":
            return params.get("v") == "v2"
    return False


def api_versions(server_address: str) -> dict[str, Any]:
    """``GET /api`` (legacy)."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _groups(catalog: Catalog) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for group, version in catalog.group_versions():
        if group:
            groups.setdefault(group, [])
            if version not in groups[group]:
                groups[group].append(version)
    return groups


def api_group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def api_group_list(catalog: Catalog) -> dict[str, Any]:
    """``GET /apis`` (legacy)."""
    groups = [api_group(name, versions) for name, versions in _groups(catalog).items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(catalog: Catalog, name: str) -> dict[str, Any] | None:
    """``GET /apis/<group>``."""
    versions = _groups(catalog).get(name)
    return api_group(name, versions) if versions else None


def resource_list(catalog: Catalog, group_name: str, version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` or ``GET /apis/<group>/<version>`` (legacy)."""
    resources: list[dict[str, Any]] = []
    for resource in catalog.resources():
        if (resource.group, resource.version) != (group_name, version):
            continue
        entry: dict[str, Any] = {
            "name": resource.plural,
            "singularName": resource.singular_name,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": list(resource.verbs),
        }
        if resource.short_names:
            entry["shortNames"] = list(resource.short_names)
        if resource.categories:
            entry["categories"] = list(resource.categories)
        resources.append(entry)
        for sub in resource.subresources:
            sub_entry: dict[str, Any] = {
                "name": f"{resource.plural}/{sub.name}",
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": sub.kind,
                "verbs": list(sub.verbs),
            }
            if sub.group is not None:
                sub_entry["group"] = sub.group
                sub_entry["version"] = sub.version
            resources.append(sub_entry)
    if not resources:
        return None
    group_version = f"{group_name}/{version}" if group_name else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _aggregated_resource(resource: ResourceDef) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource.plural,
        "responseKind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
        "scope": "Namespaced" if resource.namespaced else "Cluster",
        "singularResource": resource.singular_name,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    if resource.subresources:
        entry["subresources"] = [
            {
                "subresource": sub.name,
                "responseKind": {
                    "group": resource.group if sub.group is None else sub.group,
                    "version": resource.version if sub.version is None else sub.version,
                    "kind": sub.kind,
                },
                "verbs": list(sub.verbs),
            }
            for sub in resource.subresources
        ]
    return entry


def aggregated(catalog: Catalog, *, core: bool) -> dict[str, Any]:
    """``GET /api`` (core) or ``GET /apis`` (named groups) in the aggregated format."""
    by_group: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for resource in catalog.resources():
        if (resource.group == "") != core:
            continue
        versions = by_group.setdefault(resource.group, {})
        versions.setdefault(resource.version, []).append(_aggregated_resource(resource))
    items = [
        {
            "metadata": {"name": name},
            "versions": [
                {"version": version, "resources": resources, "freshness": "Current"}
                for version, resources in versions.items()
            ],
        }
        for name, versions in by_group.items()
    ]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
