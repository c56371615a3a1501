"""One CRD version's schema: compile it once, then prune, default and validate custom objects with it.

kube-apiserver runs a custom object through its version's structural schema in a fixed order, on
create, on update and when reading from storage::

    prune unknown fields  ->  apply defaults  ->  (prune again)  ->  validate

:meth:`Schema.normalize` runs the first three (pruning again after defaulting drops what a default
brought in that its field does not specify, as upstream's decode and defaulting steps together
do); :meth:`Schema.validate` is the last. Validation reports, in kube-apiserver's order: the schema
checks (types, formats, bounds, enum, required ...), embedded resources, then list-set and list-map
uniqueness, then ``x-kubernetes-validations`` (CEL) rules — those kbox can evaluate (see :mod:`.cel`);
:meth:`Schema.warnings` names the others, for the caller to pass on as ``Warning`` headers.
"""

from __future__ import annotations

from typing import Any

from kbox.api.errors import FieldError
from kbox.api.structural import cel, listtypes, objectmeta, pruning, regex, structural, validate
from kbox.api.structural.node import Node, parse


class Schema:
    """A compiled ``openAPIV3Schema`` of one CRD version."""

    def __init__(self, root: Node) -> None:
        self.root = root
        pruning.prune_defaults(root)
        self._has_rules = cel.has_rules(root)
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
        """The CRD validation's errors for this schema (its own rules, the structural ones, then bad
        ``default``s), as field errors at ``path`` — e.g. ``spec.versions[0].schema.openAPIV3Schema`` —
        for a 422 on the CRD."""
        return structural.schema_errors(self.root, path)

    def warnings(self) -> list[str]:
        """What kbox does not enforce in this schema, one line each: CEL rules it cannot evaluate
        (``...x-kubernetes-validations[0]: rule '...' is not enforced by kbox: uses semver()``) and
        patterns Python cannot run (``pattern '...' is not enforced by kbox: ...``)."""
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
        return self._validate(obj, None)

    def validate_update(self, obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
        """Validation on update, ratcheted as kube-apiserver v1.32 does: errors in values that did not
        change (compared with the correlated old value: same field, same map key, same list-map item)
        are dropped, list-set/map duplicates already present in the old object do not block, and CEL
        transition rules (``oldSelf``) run against the correlated old values."""
        return self._validate(obj, old)

    def validate_status(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
        """The status subresource's validation (upstream's status strategy): ``status`` against its own
        schema (paths start at ``status``, messages name fields relative to it), list-set/map
        uniqueness of the whole object (unless the old object already broke it), then the CEL rules of
        the whole object with ``old`` for transition rules."""
        status_node = self.root.properties.get("status")
        errs: list[FieldError] = []
        if status_node is not None and "status" in obj:
            old_status = validate.correlate_key("status", old) if old is not None else validate.NO_OLD
            result = validate.validate_node(status_node, obj["status"], "", old_status)
            errs = validate.to_field_errors(result, base="status")
        if old is None or not listtypes.validate(old, self.root):
            errs.extend(listtypes.validate(obj, self.root))
        if self._has_rules:
            errs.extend(self._cel(obj, self.root, "<nil>", old, old is not None, errs, root=True))
        return errs

    def _validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        result = validate.validate_node(self.root, obj, "", validate.NO_OLD if old is None else old)
        errs = validate.to_field_errors(result)
        errs.extend(objectmeta.validate(obj, self.root))
        if old is None or not listtypes.validate(old, self.root):
            errs.extend(listtypes.validate(obj, self.root))
        if self._has_rules:
            errs.extend(self._cel(obj, self.root, "<nil>", old, old is not None, errs, root=True))
        return errs

    def _cel(
        self,
        value: Any,
        node: Node,
        path: str,
        old: Any,
        updating: bool,
        errs: list[FieldError],
        *,
        root: bool = False,
    ) -> list[FieldError]:
        stop = cel.blocked(errs)
        if stop is not None:
            return [stop]
        if updating:
            return cel.validate(value, node, path, old, root=root)
        return cel.validate(value, node, path, root=root)


def _warnings(root: Node) -> list[str]:
    """Said once per schema: CEL rules kbox cannot evaluate, patterns whose RE2 kbox cannot run."""
    unsupported: list[str] = []
    seen: set[int] = set()

    def walk(node: Node) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
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
    return cel.warnings(root) + unsupported
