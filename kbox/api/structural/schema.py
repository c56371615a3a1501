"""One CRD version's schema: compile it once, then prune, default and validate custom objects with it.

kube-apiserver runs a custom object through its version's structural schema in a fixed order, on
create, on update and when reading from storage::

    prune unknown fields  ->  apply defaults  ->  (prune again)  ->  validate

:meth:`Schema.normalize` runs the first three (pruning again after defaulting drops what a default
brought in that its field does not specify, as upstream's decode and defaulting steps together
do); :meth:`Schema.validate` is the last. Validation reports, in kube-apiserver's order: the schema
checks (types, formats, bounds, enum, required ...), embedded resources, then list-set and list-map
uniqueness. ``x-kubernetes-validations`` (CEL) rules are not evaluated: :meth:`Schema.warnings` says
so once per schema, for the caller to pass on as a ``Warning`` header.
"""

from __future__ import annotations

from typing import Any

from kbox.api.errors import FieldError
from kbox.api.structural import listtypes, objectmeta, pruning, regex, structural, validate
from kbox.api.structural.node import Node, parse

CEL_WARNING = "x-kubernetes-validations rules are not enforced by kbox"


class Schema:
    """A compiled ``openAPIV3Schema`` of one CRD version."""

    def __init__(self, root: Node) -> None:
        self.root = root
        pruning.prune_defaults(root)
        self._warnings = _warnings(root)

    @classmethod
    def from_schema(cls, schema: Any) -> Schema:
        """From an ``openAPIV3Schema`` dict; ``ValueError`` when it cannot be read as a schema."""
        return cls(parse(schema))

    @classmethod
    def from_crd_version(cls, version: dict[str, Any]) -> Schema:
        """From a CRD ``spec.versions[]`` entry; ``ValueError`` when it has no usable schema."""
        if not isinstance(version, dict):
            raise ValueError("a CRD version must be an object")
        schema = (
            (version.get("schema") or {}).get("openAPIV3Schema")
            if isinstance(version.get("schema"), dict)
            else None
        )
        if schema is None:
            name = version.get("name", "")
            raise ValueError(
                f"version {name!r} has no schema.openAPIV3Schema (required in apiextensions.k8s.io/v1)"
            )
        return cls.from_schema(schema)

    # --- the schema itself --------------------------------------------------------------------------

    def structural_errors(self, path: str = "openAPIV3Schema") -> list[str]:
        """Why the schema is not structural, one ``<path>: <error>`` line each (empty when it is)."""
        return [f"{e.field}: {e.message()}" for e in structural.structural_errors(self.root, path)]

    def schema_errors(self, path: str = "spec.validation.openAPIV3Schema") -> list[FieldError]:
        """The CRD validation's errors for this schema (its own rules, then the structural ones), as
        field errors at ``path`` — e.g. ``spec.versions[0].schema.openAPIV3Schema`` — for a 422."""
        return structural.schema_errors(self.root, path)

    def warnings(self) -> list[str]:
        """What kbox does not enforce in this schema (CEL rules, patterns Python cannot run)."""
        return list(self._warnings)

    def list_types(self) -> dict[str, Any]:
        """The schema's shape with its list and map types, for server-side apply.

        An OpenAPI dict of the form :mod:`kbox.api.schemas` holds for built-in kinds (``properties``,
        ``items``, ``additionalProperties``, ``x-kubernetes-list-type`` — ``atomic`` when unset, as for
        any CRD —, ``x-kubernetes-list-map-keys``, ``x-kubernetes-map-type``), so
        :mod:`kbox.api.patch.apply` can merge custom objects with it. The root ``metadata`` is not in
        it: the caller adds the ObjectMeta schema, as kube-apiserver does for every kind.
        """
        shape = listtypes.merge_schema(self.root)
        properties = shape.get("properties")
        if isinstance(properties, dict):
            properties.pop("metadata", None)
        return shape

    # --- objects ------------------------------------------------------------------------------------

    def prune(self, obj: dict[str, Any]) -> list[str]:
        """Drop unknown fields in place; returns their paths (``spec.foo``, ``metadata.bar``), sorted,
        for ``fieldValidation=Strict``/``Warn``. ``apiVersion``, ``kind`` and ``metadata`` stay."""
        unknown = pruning.prune(obj, self.root)
        unknown.extend(objectmeta.coerce(obj, self.root))
        return sorted(set(unknown))

    def default(self, obj: dict[str, Any]) -> None:
        """Apply ``default``s in place."""
        pruning.apply_defaults(obj, self.root)

    def normalize(self, obj: dict[str, Any]) -> list[str]:
        """Prune, default, prune again: what kube-apiserver does to every object it decodes. Returns the
        unknown field paths the request itself carried."""
        unknown = self.prune(obj)
        self.default(obj)
        self.prune(obj)
        return unknown

    def validate(self, obj: dict[str, Any]) -> list[FieldError]:
        """Every validation error of a whole object, worded as kube-apiserver words them."""
        result = validate.validate_node(self.root, obj, "")
        errs = validate.to_field_errors(result)
        errs.extend(objectmeta.validate(obj, self.root))
        errs.extend(listtypes.validate(obj, self.root))
        return errs

    def validate_status(self, obj: dict[str, Any]) -> list[FieldError]:
        """The status subresource's validation: only ``status``, against its own schema (paths start
        at ``status``, messages name the field relative to it, as upstream)."""
        status_node = self.root.properties.get("status")
        if status_node is None or "status" not in obj:
            return []
        result = validate.validate_node(status_node, obj["status"], "")
        return validate.to_field_errors(result, base="status")

    def validate_update(self, obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
        """Validation on update: as on create, except that list-set/map duplicates already present in
        the old object do not block the update (upstream ratchets that check)."""
        result = validate.validate_node(self.root, obj, "")
        errs = validate.to_field_errors(result)
        errs.extend(objectmeta.validate(obj, self.root))
        if not listtypes.validate(old, self.root):
            errs.extend(listtypes.validate(obj, self.root))
        return errs


def _warnings(root: Node) -> list[str]:
    """Said once per schema: CEL rules, and patterns whose RE2 syntax kbox cannot evaluate."""
    found_cel = False
    unsupported: list[str] = []
    seen: set[int] = set()

    def walk(node: Node) -> None:
        nonlocal found_cel
        if id(node) in seen:
            return
        seen.add(id(node))
        if node.validations:
            found_cel = True
        if node.pattern:
            try:
                regex.compile_pattern(node.pattern)
            except regex.UnsupportedPattern as exc:
                unsupported.append(f"pattern {node.pattern!r} is not enforced by kbox: {exc}")
            except regex.PatternError:
                pass
        children = [*node.properties.values(), *node.all_of, *node.any_of, *node.one_of]
        children.extend(n for n in (node.items, node.additional, node.not_) if n is not None)
        for child in children:
            walk(child)

    walk(root)
    return ([CEL_WARNING] if found_cel else []) + unsupported
