"""Strategies: the per-kind hooks of the generic registry, with no-op defaults.

The shape of kube-apiserver's ``RESTCreateStrategy``/``RESTUpdateStrategy``: ``prepare_*`` may mutate
(clear status on create, keep the old status on update, fill defaults), ``validate*`` never mutates and
returns field errors. The order they run in is fixed by ``kbox/api/pipeline.py``. Most kinds need a
few lines (ConfigMap needs nothing); spec and status are two strategies, the status one derived from
the main one.
"""

from __future__ import annotations

from typing import Any

from kbox.api import validation
from kbox.api.errors import FieldError

Obj = dict[str, Any]


class Strategy:
    """Defaults for a kind with no spec/status split, no defaults and no extra validation."""

    #: Whether the kind's status is only written through the ``status`` subresource: create clears it
    #: (``reset_status_on_create``) and an update of the main resource keeps the old one.
    status_subresource: bool = False
    reset_status_on_create: bool = True
    #: Whether ``metadata.generation`` counts spec changes (kinds with a spec do; ConfigMaps don't).
    tracks_generation: bool = False
    #: Fields outside metadata that are not "spec": a change to them does not bump the generation.
    non_spec_fields: tuple[str, ...] = ("apiVersion", "kind", "metadata", "status")

    def name_errors(self, name: str) -> list[str]:
        """Why ``name`` is not a valid object name (Kubernetes' default: a DNS-1123 subdomain)."""
        return validation.is_dns1123_subdomain(name)

    def prepare_for_create(self, obj: Obj) -> None:
        """Normalise a new object before validation (may mutate)."""
        if self.status_subresource and self.reset_status_on_create:
            obj.pop("status", None)
        self.default(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Normalise an updated object before validation (may mutate ``new``)."""
        if self.status_subresource:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        self.default(new)

    def default(self, obj: Obj) -> None:
        """Fill defaulted fields (runs on create and update, like the defaulting of decoded objects)."""

    def validate(self, obj: Obj) -> list[FieldError]:
        """Kind-specific validation of a new object (metadata is validated by the pipeline)."""
        return []

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        """Kind-specific validation of an update; by default the same as for a new object."""
        return self.validate(new)

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        """Whether anything other than metadata and status changed (what bumps the generation)."""
        skip = self.non_spec_fields
        keys = (set(new) | set(old)) - set(skip)
        return any(new.get(k) != old.get(k) for k in keys)

    def canonicalize(self, obj: Obj) -> None:
        """Last touch before storing (may mutate)."""

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Seconds a deleted object keeps existing (with deletionTimestamp set) before it is removed;
        0 (the default) removes it at once unless finalizers hold it."""
        return 0

    def deletion_waits(self, obj: Obj) -> bool:
        """Whether more than metadata.finalizers holds a deleted object (namespaces: spec.finalizers)."""
        return False

    def prepare_for_delete(self, obj: Obj) -> None:
        """Changes made when an object starts terminating (may mutate)."""


class StatusStrategy(Strategy):
    """Updates through ``<resource>/status``: only the status changes, everything else stays as it was."""

    def __init__(self, main: Strategy) -> None:
        self.main = main
        self.status_subresource = main.status_subresource
        self.tracks_generation = False

    def name_errors(self, name: str) -> list[str]:
        return self.main.name_errors(name)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        status = new.get("status")
        metadata = new.get("metadata", {})
        new.clear()
        new.update({k: v for k, v in old.items() if k != "status"})
        # Metadata other than labels/annotations/ownership is the pipeline's business; keep the old.
        new["metadata"] = dict(old.get("metadata", {}))
        new["metadata"]["resourceVersion"] = metadata.get("resourceVersion")
        if status is not None:
            new["status"] = status

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return self.validate_status(new, old)

    def validate_status(self, new: Obj, old: Obj) -> list[FieldError]:
        """Kind-specific status validation (none by default)."""
        return []
