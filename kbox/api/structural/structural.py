"""Why a schema is not structural, and the other schema rules a v1 CRD must follow.

apiextensions.k8s.io/v1 only accepts *structural* schemas (``schema/validation.go``,
``schema/complete.go``): every field specifies its type (or is int-or-string or preserves unknown
fields), ``allOf``/``anyOf``/``oneOf``/``not`` only repeat constraints on fields specified outside them
(no ``type``, ``default``, ``description``, ``nullable`` or ``x-kubernetes-*`` inside), the root is an
object without ``additionalProperties``, and ``metadata`` may only constrain ``name`` and
``generateName``. The CRD validation adds its own rules for schemas (``apis/apiextensions/validation``):
unsupported keywords, ``uniqueItems``, ``properties`` together with ``additionalProperties``, the
list and map types, and list-map keys that must be required or defaulted.

Errors are worded and sorted as kube-apiserver reports them (paths like
``spec.versions[0].schema.openAPIV3Schema.properties[spec].type``).
"""

from __future__ import annotations

from typing import Any

from kbox.api.errors import FieldError, forbidden, invalid, required
from kbox.api.structural import defaults, regex
from kbox.api.structural.gofmt import GoValue
from kbox.api.structural.node import TYPES, Node

ROOT, ITEM, FIELD = "root", "item", "field"

_TYPE_REQUIRED = {
    ROOT: "must not be empty at the root",
    ITEM: "must not be empty for specified array items",
    FIELD: "must not be empty for specified object fields",
}


def _key(path: str, name: str) -> str:
    return f"{path}.properties[{name}]"


def _is_int_or_string_any_of(any_of: list[Node]) -> bool:
    """The ``anyOf: [{type: integer}, {type: string}]`` that int-or-string schemas carry."""
    if len(any_of) != 2:
        return False
    return [n.raw for n in any_of] == [{"type": "integer"}, {"type": "string"}]


def _invariants(node: Node, level: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if node.type == "array" and node.items is None:
        errs.append(required(f"{path}.items", "must be specified"))
    if node.items is not None:
        errs.extend(_invariants(node.items, ITEM, f"{path}.items"))
    for name, child in node.properties.items():
        errs.extend(_invariants(child, FIELD, _key(path, name)))
    if node.additional is not None or node.additional_bool is not None:
        if level == ROOT:
            errs.append(forbidden(f"{path}.additionalProperties", "must not be used at the root"))
        if node.additional is not None:
            errs.extend(_invariants(node.additional, FIELD, f"{path}.additionalProperties"))
    if node.int_or_string and node.preserve_unknown:
        detail = "must be false if x-kubernetes-int-or-string is true"
        errs.append(invalid(f"{path}.x-kubernetes-preserve-unknown-fields", GoValue(True), detail))
    if node.int_or_string and node.embedded:
        detail = "must be false if x-kubernetes-int-or-string is true"
        errs.append(invalid(f"{path}.x-kubernetes-embedded-resource", GoValue(True), detail))
    skip_any_of = _is_int_or_string_any_of(node.any_of)
    skip_first_all_of = bool(node.all_of) and _is_int_or_string_any_of(node.all_of[0].any_of)
    errs.extend(_value_validation(node, skip_any_of, skip_first_all_of, path))
    check_metadata = level == ROOT or node.embedded
    if node.embedded and node.type != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        if not node.type:
            errs.append(required(f"{path}.type", detail))
        else:
            errs.append(invalid(f"{path}.type", node.type, detail))
    elif not node.type and not node.int_or_string and not node.preserve_unknown:
        errs.append(required(f"{path}.type", _TYPE_REQUIRED[level]))
    if node.embedded and (node.additional is not None or node.additional_bool is not None):
        detail = "must not be used if x-kubernetes-embedded-resource is set"
        errs.append(forbidden(f"{path}.additionalProperties", detail))
    if level == ROOT and node.type and node.type != "object":
        errs.append(invalid(f"{path}.type", node.type, "must be object at the root"))
    for meta_field in ("kind", "apiVersion"):
        meta_node = node.properties.get(meta_field)
        if meta_node is not None and check_metadata and meta_node.type != "string":
            errs.append(invalid(f"{_key(path, meta_field)}.type", meta_node.type, "must be string"))
    metadata = node.properties.get("metadata")
    if metadata is not None:
        errs.extend(_metadata_invariants(metadata, check_metadata, level, _key(path, "metadata")))
    if node.embedded and not node.preserve_unknown and not node.properties:
        detail = (
            "must not be empty if x-kubernetes-embedded-resource is true without "
            "x-kubernetes-preserve-unknown-fields"
        )
        errs.append(required(f"{path}.properties", detail))
    return errs


_METADATA_ALLOWED = frozenset({"type", "properties"})


def _metadata_invariants(node: Node, check_metadata: bool, level: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if check_metadata and node.type != "object":
        errs.append(invalid(f"{path}.type", node.type, "must be object"))
    if level == ROOT:
        names = set(node.properties)
        only_names = names <= {"name", "generateName"}
        extra = {k for k in node.raw if k not in _METADATA_ALLOWED and k != "default"}
        if not only_names or extra:
            detail = (
                "must not specify anything other than name and generateName, "
                "but metadata is implicitly specified"
            )
            errs.append(forbidden(path, detail))
    return errs


def _value_validation(node: Node, skip_any_of: bool, skip_first_all_of: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not skip_any_of:
        for i, sub in enumerate(node.any_of):
            errs.extend(_nested(sub, False, f"{path}.anyOf[{i}]"))
    for i, sub in enumerate(node.all_of):
        errs.extend(_nested(sub, skip_first_all_of and i == 0, f"{path}.allOf[{i}]"))
    for i, sub in enumerate(node.one_of):
        errs.extend(_nested(sub, False, f"{path}.oneOf[{i}]"))
    if node.not_ is not None:
        errs.extend(_nested(node.not_, False, f"{path}.not"))
    if node.pattern:
        problem = regex.check(node.pattern)
        if problem is not None:
            detail = f"must be a valid regular expression, but isn't: {problem}"
            errs.append(invalid(f"{path}.pattern", node.pattern, detail))
    return errs


def _nested(node: Node, skip_any_of: bool, path: str) -> list[FieldError]:
    """A value validation inside allOf/anyOf/oneOf/not: constraints only."""
    errs = _value_validation(node, skip_any_of, False, path)
    if node.items is not None:
        errs.extend(_nested(node.items, False, f"{path}.items"))
    for name, child in node.properties.items():
        errs.extend(_nested(child, False, _key(path, name)))
    raw = node.raw
    if node.type:
        errs.append(forbidden(f"{path}.type", "must be empty to be structural"))
    if "additionalProperties" in raw:
        errs.append(forbidden(f"{path}.additionalProperties", "must be undefined to be structural"))
    if node.has_default:
        errs.append(forbidden(f"{path}.default", "must be undefined to be structural"))
    if node.title:
        errs.append(forbidden(f"{path}.title", "must be empty to be structural"))
    if node.description:
        errs.append(forbidden(f"{path}.description", "must be empty to be structural"))
    if node.nullable:
        errs.append(forbidden(f"{path}.nullable", "must be false to be structural"))
    if node.preserve_unknown:
        errs.append(
            forbidden(f"{path}.x-kubernetes-preserve-unknown-fields", "must be false to be structural")
        )
    if node.embedded:
        errs.append(forbidden(f"{path}.x-kubernetes-embedded-resource", "must be false to be structural"))
    if node.int_or_string:
        errs.append(forbidden(f"{path}.x-kubernetes-int-or-string", "must be false to be structural"))
    if node.list_map_keys:
        errs.append(forbidden(f"{path}.x-kubernetes-list-map-keys", "must be empty to be structural"))
    if node.list_type is not None:
        errs.append(forbidden(f"{path}.x-kubernetes-list-type", "must be undefined to be structural"))
    if node.map_type is not None:
        errs.append(forbidden(f"{path}.x-kubernetes-map-type", "must be undefined to be structural"))
    if node.validations:
        errs.append(forbidden(f"{path}.x-kubernetes-validations", "must be empty to be structural"))
    if "metadata" in node.properties:
        errs.append(forbidden(_key(path, "metadata"), "must not be specified in a nested context"))
    return errs


def _completeness(node: Node, spath: str) -> list[FieldError]:
    return _value_completeness(node, node, spath, spath)


def _value_completeness(v: Node, s: Node | None, spath: str, vpath: str) -> list[FieldError]:
    if s is None:
        return [required(spath, f"because it is defined in {vpath}")]
    errs: list[FieldError] = []
    if v.not_ is not None:
        errs.extend(_nested_completeness(v.not_, s, spath, f"{vpath}.not"))
    for key, subs in (("allOf", v.all_of), ("anyOf", v.any_of), ("oneOf", v.one_of)):
        for i, sub in enumerate(subs):
            errs.extend(_nested_completeness(sub, s, spath, f"{vpath}.{key}[{i}]"))
    return errs


def _nested_completeness(v: Node, s: Node | None, spath: str, vpath: str) -> list[FieldError]:
    if s is None:
        return [required(spath, f"because it is defined in {vpath}")]
    errs = _value_completeness(v, s, spath, vpath)
    if v.items is not None:
        errs.extend(_nested_completeness(v.items, s.items, f"{spath}.items", f"{vpath}.items"))
    for name, child in v.properties.items():
        s_child = s.properties.get(name)
        if s_child is None:
            detail = f"because it is defined in {_key(vpath, name)}"
            errs.append(required(_key(spath, name), detail))
        else:
            errs.extend(_nested_completeness(child, s_child, _key(spath, name), _key(vpath, name)))
    return errs


def structural_errors(root: Node, path: str) -> list[FieldError]:
    """``ValidateStructural``: sorted by their full text, as upstream sorts them."""
    errs = _invariants(root, ROOT, path) + _completeness(root, path)
    return sorted(errs, key=lambda e: f"{e.field}: {e.message()}")


# --- the CRD validation's own schema rules -----------------------------------------------------------

_UNSUPPORTED = (
    ("id", "id is not supported"),
    ("additionalItems", "additionalItems is not supported"),
    ("patternProperties", "patternProperties is not supported"),
    ("definitions", "definitions is not supported"),
    ("dependencies", "dependencies is not supported"),
    ("$ref", "$ref is not supported"),
)


def _raw_problems(raw: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key, detail in _UNSUPPORTED:
        if raw.get(key):
            errs.append(forbidden(f"{path}.{key}", detail))
    return errs


def _list_and_map(node: Node, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if node.preserve_unknown_set and not node.preserve_unknown:
        errs.append(
            invalid(
                f"{path}.x-kubernetes-preserve-unknown-fields", GoValue(False), "must be true or undefined"
            )
        )
    if node.map_type is not None:
        if node.type != "object":
            detail = "must be object if x-kubernetes-map-type is specified"
            errs.append(
                required(f"{path}.type", detail)
                if not node.type
                else invalid(f"{path}.type", node.type, detail)
            )
        if node.map_type not in ("atomic", "granular"):
            errs.append(
                _not_supported(f"{path}.x-kubernetes-map-type", node.map_type, ["atomic", "granular"])
            )
    if node.list_type is not None:
        if node.type != "array":
            detail = "must be array if x-kubernetes-list-type is specified"
            errs.append(
                required(f"{path}.type", detail)
                if not node.type
                else invalid(f"{path}.type", node.type, detail)
            )
        elif node.list_type == "set" and node.items is not None:
            item = node.items
            if item.type in ("object", "array") and item.list_type not in (None, "atomic"):
                errs.append(
                    invalid(
                        f"{path}.items.x-kubernetes-list-type",
                        item.list_type,
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    )
                )
            if item.type == "object" and item.map_type not in (None, "atomic"):
                errs.append(
                    invalid(
                        f"{path}.items.x-kubernetes-map-type",
                        item.map_type,
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    )
                )
        if node.list_type not in ("atomic", "set", "map"):
            errs.append(
                _not_supported(f"{path}.x-kubernetes-list-type", node.list_type, ["atomic", "set", "map"])
            )
    if node.list_map_keys and node.list_type != "map":
        detail = "must be map if x-kubernetes-list-map-keys is non-empty"
        if node.list_type is None:
            errs.append(required(f"{path}.x-kubernetes-list-type", detail))
        else:
            errs.append(invalid(f"{path}.x-kubernetes-list-type", node.list_type, detail))
    if node.list_type == "map":
        errs.extend(_map_list(node, path))
    if node.list_type in ("set", "map") and node.items is not None and node.items.nullable:
        errs.append(
            forbidden(
                f"{path}.items.nullable",
                f"cannot be nullable when x-kubernetes-list-type is {node.list_type}",
            )
        )
    return errs


def _map_list(node: Node, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not node.list_map_keys:
        errs.append(
            required(
                f"{path}.x-kubernetes-list-map-keys", "must not be empty if x-kubernetes-list-type is map"
            )
        )
    item = node.items
    if item is None:
        errs.append(required(f"{path}.items", "must have a schema if x-kubernetes-list-type is map"))
        return errs
    if item.type != "object":
        errs.append(
            invalid(
                f"{path}.items.type",
                item.type,
                "must be object if parent array's x-kubernetes-list-type is map",
            )
        )
        return errs
    keys = node.list_map_keys
    shown = GoValue(keys)
    for key in keys:
        prop = item.properties.get(key)
        if prop is None:
            errs.append(
                invalid(
                    f"{path}.x-kubernetes-list-map-keys",
                    shown,
                    "entries must all be names of item properties",
                )
            )
            break
        if prop.type not in ("string", "integer", "number", "boolean") and not prop.int_or_string:
            detail = "must be a scalar type if parent array's x-kubernetes-list-type is map"
            errs.append(invalid(f"{path}.items.properties[{key}].type", item.type, detail))
    if len(set(keys)) != len(keys):
        errs.append(
            invalid(f"{path}.x-kubernetes-list-map-keys", shown, "must not contain duplicate entries")
        )
    for key in keys:
        prop = item.properties.get(key)
        if prop is None:
            continue
        if key not in item.required and not prop.has_default:
            detail = (
                "this property is in x-kubernetes-list-map-keys, "
                "so it must have a default or be a required property"
            )
            errs.append(required(f"{path}.items.properties[{key}].default", detail))
        if prop.nullable:
            detail = "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"
            errs.append(forbidden(f"{path}.items.properties[{key}].nullable", detail))
    return errs


def _not_supported(path: str, value: str, allowed: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(f'"{a}"' for a in allowed)
    return FieldError("FieldValueNotSupported", path, detail, value, True)


def _schema_rules(node: Node, path: str, *, root: bool) -> list[FieldError]:
    errs = _raw_problems(node.raw, path)
    if node.type and node.type not in TYPES:
        errs.append(_not_supported(f"{path}.type", node.type, sorted(TYPES)))
    if node.unique_items:
        errs.append(
            forbidden(
                f"{path}.uniqueItems",
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    if node.properties and (node.additional is not None or node.additional_bool is False):
        errs.append(
            forbidden(
                f"{path}.additionalProperties", "additionalProperties and properties are mutual exclusive"
            )
        )
    if root and node.nullable:
        errs.append(forbidden(f"{path}.nullable", "nullable cannot be true at the root"))
    errs.extend(_list_and_map(node, path))
    for i, rule in enumerate(node.validations):
        if not rule.get("rule"):
            errs.append(required(f"{path}.x-kubernetes-validations[{i}].rule", "rule is not specified"))
    for name, child in node.properties.items():
        errs.extend(_schema_rules(child, _key(path, name), root=False))
    if node.items is not None:
        errs.extend(_schema_rules(node.items, f"{path}.items", root=False))
    if node.additional is not None:
        errs.extend(_schema_rules(node.additional, f"{path}.additionalProperties", root=False))
    for key, subs in (("allOf", node.all_of), ("anyOf", node.any_of), ("oneOf", node.one_of)):
        for i, sub in enumerate(subs):
            errs.extend(_schema_rules(sub, f"{path}.{key}[{i}]", root=False))
    if node.not_ is not None:
        errs.extend(_schema_rules(node.not_, f"{path}.not", root=False))
    return errs


def schema_errors(root: Node, path: str) -> list[FieldError]:
    """The CRD validation's schema rules, then the structural ones, then (for a structural schema) the
    defaults, as upstream orders them."""
    errs = _schema_rules(root, path, root=True)
    not_structural = structural_errors(root, path)
    if not_structural:
        return errs + not_structural
    return errs + defaults.validate_defaults(root, path)
