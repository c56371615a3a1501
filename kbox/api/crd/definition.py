"""The CustomResourceDefinition type (``apiextensions.k8s.io/v1``, cluster-scoped, short names
``crd``/``crds``, category ``api-extensions``) and its strategies.

As upstream (``pkg/registry/customresourcedefinition``): create clears the status and records the
storage version in ``status.storedVersions``; the spec defaults ``names.singular`` (the lowercased
kind), ``names.listKind`` (``<Kind>List``) and ``conversion.strategy: None``; generation counts spec
changes; ``status`` is written through the status subresource. A delete never removes a CRD at once:
the first one adds the ``customresourcecleanup.apiextensions.k8s.io`` finalizer and the Terminating
condition, and the registrar (:mod:`.registrar`) removes the finalizer once every object is gone.
"""

from __future__ import annotations

from typing import Any

from kbox.api import objects
from kbox.api.crd import schema as schemas
from kbox.api.crd import validation
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef, SubresourceDef
from kbox.api.strategy import StatusStrategy, Strategy

Obj = dict[str, Any]

GROUP = "apiextensions.k8s.io"
VERSION = "v1"
KIND = "CustomResourceDefinition"
PLURAL = "customresourcedefinitions"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"

NAMES_ACCEPTED = "NamesAccepted"
ESTABLISHED = "Established"
TERMINATING = "Terminating"
NON_STRUCTURAL = "NonStructuralSchema"


def spec(crd: Obj) -> Obj:
    value = crd.get("spec")
    return value if isinstance(value, dict) else {}


def condition(crd: Obj, kind: str) -> Obj | None:
    for item in (crd.get("status") or {}).get("conditions") or []:
        if isinstance(item, dict) and item.get("type") == kind:
            return item
    return None


def is_true(crd: Obj, kind: str) -> bool:
    found = condition(crd, kind)
    return found is not None and found.get("status") == "True"


def set_condition(crd: Obj, kind: str, status: str, reason: str, message: str) -> None:
    """Set a condition; its lastTransitionTime moves only when its status changes (upstream's
    ``SetCRDCondition``)."""
    conditions = crd.setdefault("status", {}).setdefault("conditions", [])
    current = condition(crd, kind)
    entry: Obj = {"type": kind, "status": status, "lastTransitionTime": objects.timestamp(), "reason": reason}
    entry["message"] = message
    if current is None:
        conditions.append(entry)
        return
    if current.get("status") == status:
        entry["lastTransitionTime"] = current.get("lastTransitionTime")
    current.clear()
    current.update(entry)


def remove_condition(crd: Obj, kind: str) -> None:
    status = crd.get("status") or {}
    conditions = status.get("conditions") or []
    status["conditions"] = [c for c in conditions if not (isinstance(c, dict) and c.get("type") == kind)]


def storage_version(crd: Obj) -> str | None:
    for version in spec(crd).get("versions") or []:
        if isinstance(version, dict) and version.get("storage") is True:
            return str(version.get("name"))
    return None


def _record_storage_version(crd: Obj) -> None:
    version = storage_version(crd)
    if version is None:
        return
    status = crd.setdefault("status", {})
    stored = status.setdefault("storedVersions", [])
    if isinstance(stored, list) and version not in stored:
        stored.append(version)


class CustomResourceDefinitionStrategy(Strategy):
    status_subresource = True
    tracks_generation = True

    def default(self, obj: Obj) -> None:
        crd_spec = obj.get("spec")
        if not isinstance(crd_spec, dict):
            return
        names = crd_spec.get("names")
        if isinstance(names, dict) and names.get("kind"):
            if not names.get("singular"):
                names["singular"] = str(names["kind"]).lower()
            if not names.get("listKind"):
                names["listKind"] = f"{names['kind']}List"
        if crd_spec.get("conversion") is None:
            crd_spec["conversion"] = {"strategy": "None"}

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": []}
        _record_storage_version(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        _record_storage_version(new)

    def validate(self, obj: Obj) -> list[FieldError]:
        return validation.validate(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return validation.validate_update(new, old, established=is_true(old, ESTABLISHED))

    def warnings(self, obj: Obj) -> list[str]:
        """The ``Warning`` headers of a create or update: what the schemas ask that kbox does not
        enforce (CEL ``x-kubernetes-validations``, patterns beyond Python's regular expressions)."""
        found: list[str] = []
        for version in spec(obj).get("versions") or []:
            if not isinstance(version, dict):
                continue
            try:
                texts = schemas.load(version).warnings()
            except ValueError:
                continue
            found += [t for t in texts if t not in found]
        return found

    def deletion_waits(self, obj: Obj) -> bool:
        # A live CRD's delete always goes through the cleanup finalizer: its objects go first.
        return not (obj.get("metadata") or {}).get("deletionTimestamp")

    def prepare_for_delete(self, obj: Obj) -> None:
        metadata = objects.meta(obj)
        finalizers = list(metadata.get("finalizers") or [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        metadata["finalizers"] = finalizers
        set_condition(
            obj,
            TERMINATING,
            "True",
            "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        )


class CustomResourceDefinitionStatusStrategy(StatusStrategy):
    def validate_status(self, new: Obj, old: Obj) -> list[FieldError]:
        return validation.validate_status_names(new.get("status") or {})


STRATEGY = CustomResourceDefinitionStrategy()

RESOURCE = ResourceDef(
    GROUP,
    VERSION,
    KIND,
    PLURAL,
    False,
    STRATEGY,
    short_names=("crd", "crds"),
    categories=("api-extensions",),
    subresources=(SubresourceDef("status", KIND, ("get", "patch", "update")),),
    status_strategy=CustomResourceDefinitionStatusStrategy(STRATEGY),
)
