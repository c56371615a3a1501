"""The Kubernetes v1.32 object schemas, from the maintained ``kubernetes-validate`` package.

One source of truth for three consumers: the OpenAPI documents kbox serves (so ``kubectl apply``
validates server-side and ``kubectl explain`` answers), strategic merge patch (its merge keys and
strategies are the ``x-kubernetes-patch-*`` extensions of these schemas), and validation of types.
Loaded lazily, once, because the file is about 1.3 MB of JSON.
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any

import msgspec

KUBERNETES_VERSION = "v1.32.0"
_REF_PREFIX = "#/$defs/"


@functools.cache
def definitions() -> dict[str, Any]:
    """All definitions by name, e.g. ``io.k8s.api.core.v1.Pod`` (JSON Schema flavour: ``$ref`` is
    ``#/$defs/<name>`` and optional fields allow ``null``)."""
    folder = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    path = folder / f"{KUBERNETES_VERSION}-local" / "_definitions.json"
    data: dict[str, Any] = msgspec.json.decode(path.read_bytes())
    defs: dict[str, Any] = data["$defs"]
    return defs


@functools.cache
def _by_gvk() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            index.setdefault((gvk.get("group", ""), gvk["version"], gvk["kind"]), name)
    return index


def name_for(group: str, version: str, kind: str) -> str | None:
    """The definition name of a kind: ``("apps", "v1", "Deployment")`` → ``io.k8s.api.apps.v1.Deployment``."""
    return _by_gvk().get((group, version, kind))


def schema_for(group: str, version: str, kind: str) -> dict[str, Any] | None:
    """The schema of a kind, or ``None`` if the package does not know it (e.g. a CRD)."""
    name = name_for(group, version, kind)
    return definitions()[name] if name else None


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a ``$ref`` (also one wrapped in ``allOf``) to the definition it names."""
    ref = schema.get("$ref")
    if ref is None and len(schema.get("allOf", ())) == 1:
        ref = schema["allOf"][0].get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
        resolved: dict[str, Any] = definitions()[ref[len(_REF_PREFIX) :]]
        return resolved
    return schema
