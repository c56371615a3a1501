"""``ResourceDef``: everything the apiserver needs to know to serve one resource type.

A resource type is declared, not programmed: ``kbox/resources/<group>.py`` lists ``ResourceDef`` entries
(group, version, kind, plural, scope, short names, strategy), and the generic registry, handlers,
discovery, OpenAPI and table printing all work from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kbox.api.strategy import Strategy

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class SubresourceDef:
    """A subresource served under ``<resource>/<name>/<subresource>``.

    ``kind`` (and ``group``/``version`` when it differs from the parent's, as ``autoscaling/v1`` Scale
    does for ``deployments/scale``) is what discovery reports as its response kind.
    """

    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class ResourceDef:
    """One served resource type."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    strategy: Strategy
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[SubresourceDef, ...] = ()
    status_strategy: Strategy | None = None
    stored: bool = True  # False for virtual resources answered by a handler (e.g. access reviews)
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def group_version(self) -> str:
        """``v1`` for the core group, ``apps/v1`` otherwise (also the objects' ``apiVersion``)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def key_root(self) -> str:
        """Store key prefix of every object of this type: ``/registry/<group>/<plural>/``."""
        return f"/registry/{self.group or 'core'}/{self.plural}/"

    @property
    def qualified_name(self) -> str:
        """``deployments.apps``, or ``pods`` for the core group (as errors and kubectl name it)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def key(self, namespace: str | None, name: str) -> str:
        """Store key of one object."""
        if self.namespaced:
            return f"{self.key_root}{namespace}/{name}"
        return f"{self.key_root}{name}"

    def prefix(self, namespace: str | None) -> str:
        """Store key prefix of a list: one namespace, or every object when ``namespace`` is empty."""
        if self.namespaced and namespace:
            return f"{self.key_root}{namespace}/"
        return self.key_root

    def subresource(self, name: str) -> SubresourceDef | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None
