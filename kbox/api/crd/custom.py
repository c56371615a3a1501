"""The resource types one CRD serves: a ``ResourceDef`` per served version, with the custom-resource
strategy (``pkg/registry/customresource`` in shape).

- **Strategy**: every change outside ``metadata`` bumps ``metadata.generation`` (with the status
  subresource on, ``status`` is kept from the old object, so only spec-like changes count); objects
  are pruned, defaulted and validated with their version's schema (:mod:`.schema`), and the scale
  replicas fields, when set, must be non-negative int32s. While the CRD is terminating, creates are
  refused (403), as upstream's ``forbidCreateAdmission``.
- **Status strategy** (``<plural>/status``): only ``status`` changes; it is pruned, defaulted and
  validated too.
- **Versions**: every served version is a ``ResourceDef`` over the same store keys; objects are stored
  at the storage version and each version serves them with its own ``apiVersion`` (conversion
  ``None``). ``extra`` carries what the generic parts read: ``storage_api_version`` (the registry's
  apiVersion rewrite), ``printer`` (the Table of ``additionalPrinterColumns``), ``openapi_v3_schema``
  (the OpenAPI documents) and ``scale`` (the replicas paths).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kbox.api import errors
from kbox.api.crd import definition, scale, versions
from kbox.api.crd import schema as schemas
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef, SubresourceDef
from kbox.api.strategy import StatusStrategy, Strategy

Obj = dict[str, Any]

APPLY_TYPE_META: dict[str, Any] = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
}


@dataclass(frozen=True)
class CustomResourceDef(ResourceDef):
    """A custom resource's ``ResourceDef``: its list kind is the CRD's ``names.listKind``."""

    custom_list_kind: str = ""

    @property
    def list_kind(self) -> str:
        return self.custom_list_kind or f"{self.kind}List"


@dataclass
class CrdState:
    """What a CRD's served types consult per request and the registrar changes at run time."""

    name: str
    terminating: bool = False


class CustomResourceStrategy(Strategy):
    tracks_generation = True
    non_spec_fields: tuple[str, ...] = ("apiVersion", "kind", "metadata")

    def __init__(
        self,
        *,
        version: Obj,
        status_subresource: bool,
        scale_paths: Obj | None,
        state: CrdState,
        group: str,
        plural: str,
    ) -> None:
        self.version = version
        self._schema: schemas.VersionSchema | None = None
        self.status_subresource = status_subresource
        if status_subresource:
            # Status writes (the subresource) never bump the generation; without the subresource a
            # status change is a change like any other, as upstream.
            self.non_spec_fields = ("apiVersion", "kind", "metadata", "status")
        self.scale_paths = scale_paths
        self.state = state
        self.group = group
        self.plural = plural

    @property
    def schema(self) -> schemas.VersionSchema:
        """The version's compiled schema, compiled on first use (a restart serves every stored CRD at
        once; compiling them all before the first request would hold the start)."""
        if self._schema is None:
            self._schema = schemas.load(self.version)
        return self._schema

    def prepare_for_create(self, obj: Obj) -> None:
        if self.state.terminating:
            name = str((obj.get("metadata") or {}).get("name") or "")
            raise errors.StatusError(
                f'{self.plural}.{self.group} "{name}" is forbidden: '
                "create not allowed while custom resource definition is terminating",
                403,
                "Forbidden",
                {"name": name, "group": self.group, "kind": self.plural},
            )
        super().prepare_for_create(obj)

    def default(self, obj: Obj) -> None:
        # Decoding in kube-apiserver prunes unknown fields, applies defaults, prunes again.
        self.schema.normalize(obj)

    def validate(self, obj: Obj) -> list[FieldError]:
        problems = list(self.schema.validate(obj))
        if self.scale_paths is not None:
            problems += scale.validate(obj, self.scale_paths)
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = list(self.schema.validate_update(new, old))
        if self.scale_paths is not None:
            problems += scale.validate(new, self.scale_paths)
        return problems

    def unknown_fields(self, obj: Obj) -> list[str]:
        """Paths of the fields pruning would drop (for ``fieldValidation``), without changing ``obj``."""
        return self.schema.prune(copy.deepcopy(obj))

    def apply_schema(self) -> dict[str, Any]:
        """The object's shape for server-side apply: list and map types, with ObjectMeta."""
        shape = copy.deepcopy(self.schema.list_types())
        shape.setdefault("type", "object")
        properties = shape.setdefault("properties", {})
        properties.update(APPLY_TYPE_META)
        return shape


class CustomResourceStatusStrategy(StatusStrategy):
    main: CustomResourceStrategy

    def __init__(self, main: CustomResourceStrategy) -> None:
        super().__init__(main)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        self.main.default(new)

    def validate_status(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = list(self.main.schema.validate_status(new))
        if self.main.scale_paths is not None:
            problems += scale.validate(new, self.main.scale_paths, spec=False)
        return problems


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def check_schemas(crd: Obj) -> None:
    """Compile the schema of every served version now (``ValueError`` for one that does not compile);
    the compiled schemas are cached for the served types to use."""
    for version in served_versions(crd):
        schemas.load(version)


def served_versions(crd: Obj) -> list[Obj]:
    """The CRD's served version entries, highest priority first (discovery's order)."""
    entries = [
        v for v in definition.spec(crd).get("versions") or [] if isinstance(v, dict) and v.get("served")
    ]
    return sorted(entries, key=lambda v: versions.priority(str(v.get("name"))))


def resources_for(crd: Obj, names: Obj, state: CrdState) -> list[ResourceDef]:
    """The ``ResourceDef`` of each served version, named with the accepted ``names``."""
    spec = definition.spec(crd)
    group = str(spec.get("group"))
    storage = definition.storage_version(crd)
    kind = str(names.get("kind"))
    plural = str(names.get("plural"))
    result: list[ResourceDef] = []
    for version in served_versions(crd):
        subresources = _dict(version.get("subresources"))
        has_status = "status" in subresources and subresources.get("status") is not None
        scale_paths = subresources.get("scale") if isinstance(subresources.get("scale"), dict) else None
        strategy = CustomResourceStrategy(
            version=version,
            status_subresource=has_status,
            scale_paths=scale_paths,
            state=state,
            group=group,
            plural=plural,
        )
        subs: list[SubresourceDef] = []
        if has_status:
            subs.append(SubresourceDef("status", kind, ("get", "patch", "update")))
        if scale_paths is not None:
            subs.append(
                SubresourceDef(
                    "scale", "Scale", ("get", "patch", "update"), group="autoscaling", version="v1"
                )
            )
        extra: dict[str, object] = {
            "storage_api_version": f"{group}/{storage}",
            "printer": schemas.printer(version.get("additionalPrinterColumns")),
            "crd": state.name,
        }
        given = _dict(version.get("schema")).get("openAPIV3Schema")
        if isinstance(given, dict):
            extra["openapi_v3_schema"] = given
        if scale_paths is not None:
            extra["scale"] = scale_paths
        selectable = [
            str(f.get("jsonPath")).lstrip(".")
            for f in version.get("selectableFields") or ()
            if isinstance(f, dict)
        ]
        if selectable:
            extra["selectable_fields"] = tuple(selectable)
        if version.get("deprecated"):
            extra["deprecation_warning"] = _deprecation_warning(crd, version, kind)
        result.append(
            CustomResourceDef(
                group,
                str(version.get("name")),
                kind,
                plural,
                spec.get("scope") == "Namespaced",
                strategy,
                singular=str(names.get("singular") or kind.lower()),
                short_names=tuple(str(s) for s in names.get("shortNames") or ()),
                categories=tuple(str(c) for c in names.get("categories") or ()),
                subresources=tuple(subs),
                status_strategy=CustomResourceStatusStrategy(strategy) if has_status else None,
                extra=extra,
                custom_list_kind=str(names.get("listKind") or f"{kind}List"),
            )
        )
    return result


def _deprecation_warning(crd: Obj, version: Obj, kind: str) -> str:
    """The version's ``deprecationWarning``, or upstream's default text naming the newest served
    non-deprecated version that sorts after it."""
    given = version.get("deprecationWarning")
    if isinstance(given, str) and given:
        return given
    spec = definition.spec(crd)
    group, name = spec.get("group"), str(version.get("name"))
    text = f"{group}/{name} {kind} is deprecated"
    newer = [
        str(v.get("name"))
        for v in served_versions(crd)
        if not v.get("deprecated") and versions.priority(str(v.get("name"))) < versions.priority(name)
    ]
    if newer:
        text += f"; use {group}/{newer[0]} {kind}"
    return text
