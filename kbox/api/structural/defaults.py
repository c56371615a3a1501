"""Checking a schema's ``default`` values when the CRD is written (``defaulting.ValidateDefaults``).

A v1 CRD is refused when a default would not survive its own schema: it holds fields the schema
prunes (``must not have unknown fields``), it fails the schema's validation (reported at the
``default`` with the validator's wording, whose field name is empty: `` in body must be of type
integer: "abc"``), or it breaks one of the node's CEL rules. Defaults are checked for ``properties``
and ``items`` nodes, as upstream walks them; defaults inside an embedded resource's ``metadata`` are
not checked here.
"""

from __future__ import annotations

import copy
from typing import Any

from kbox.api.errors import FieldError, invalid
from kbox.api.structural import cel, pruning, validate
from kbox.api.structural.gofmt import GoValue
from kbox.api.structural.node import Node


def _default_errors(node: Node, raw_default: Any, path: str) -> list[FieldError]:
    where = f"{path}.default"
    errs: list[FieldError] = []
    pruned = copy.deepcopy(raw_default)
    pruning.prune_value(pruned, node)
    if pruned != raw_default:
        errs.append(invalid(where, GoValue(raw_default), "must not have unknown fields"))
    found = validate.to_field_errors(validate.validate_node(node, raw_default, ""), base=where)
    if found:
        return errs + found
    if node.validations:
        errs.extend(cel.validate(raw_default, node, where))
    return errs


def validate_defaults(root: Node, path: str) -> list[FieldError]:
    """Every bad ``default`` in the schema, properties in schema order."""
    errs: list[FieldError] = []

    def walk(node: Node, where: str, inside_meta: bool) -> None:
        if "default" in node.raw and not inside_meta:
            errs.extend(_default_errors(node, node.raw["default"], where))
        if node.items is not None:
            walk(node.items, f"{where}.items", inside_meta)
        for name, child in node.properties.items():
            meta = inside_meta or ((node.embedded or node is root) and name in pruning.META_FIELDS)
            walk(child, f"{where}.properties[{name}]", meta)

    walk(root, path, False)
    return errs
