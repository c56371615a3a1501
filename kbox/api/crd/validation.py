"""Validation of a CustomResourceDefinition's spec, worded as kube-apiextensions-apiserver words it
(``pkg/apis/apiextensions/validation``): the name is ``<plural>.<group>``, the group a domain with a
dot, names DNS-1035 labels (kinds may have mixed case), exactly one storage version, a schema per
version, valid subresource paths and printer columns, a known conversion strategy; on update the group
and plural never change, and scope and kind not once the CRD is established.

Schemas are checked by the structural-schema engine (:mod:`.schema`): as in apiextensions.k8s.io/v1, a
schema that is not structural (or breaks the schema rules: defaults that do not validate, list-map
keys that are not required ...) is refused with the engine's field errors.
"""

from __future__ import annotations

from typing import Any

from kbox.api import errors, validation
from kbox.api.crd import approval
from kbox.api.crd import schema as schemas
from kbox.api.errors import FieldError

Obj = dict[str, Any]

SCOPES = ["Cluster", "Namespaced"]
COLUMN_TYPES = ["boolean", "date", "integer", "number", "string"]
COLUMN_FORMATS = ["byte", "date", "date-time", "double", "float", "int32", "int64", "password"]
CONVERSIONS = ["None", "Webhook"]


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def validate(crd: Obj, old: Obj | None = None) -> list[FieldError]:
    """Every problem of a CRD (``old``: the stored one, on an update)."""
    spec = _dict(crd.get("spec"))
    problems: list[FieldError] = []
    name = str(_dict(crd.get("metadata")).get("name") or "")
    names = _dict(spec.get("names"))
    wanted = f"{names.get('plural', '')}.{spec.get('group', '')}"
    if name and name != wanted:
        problems.append(errors.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    problems += _group(spec.get("group"))
    scope = spec.get("scope")
    if not scope:
        problems.append(errors.required("spec.scope"))
    elif scope not in SCOPES:
        problems.append(errors.not_supported("spec.scope", scope, SCOPES))
    problems += approval.validate(crd, old)
    problems += _versions(spec)
    problems += _names(names, "spec.names", required=True)
    problems += _conversion(spec.get("conversion"))
    if spec.get("preserveUnknownFields") is True:
        problems.append(
            errors.invalid(
                "spec.preserveUnknownFields",
                True,
                "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in "
                "spec.versions[*].schema instead",
            )
        )
    return problems


def validate_update(new: Obj, old: Obj, *, established: bool) -> list[FieldError]:
    problems = validate(new, old)
    spec, old_spec = _dict(new.get("spec")), _dict(old.get("spec"))
    names, old_names = _dict(spec.get("names")), _dict(old_spec.get("names"))
    if established:
        problems += validation.validate_immutable(spec.get("scope"), old_spec.get("scope"), "spec.scope")
        problems += validation.validate_immutable(names.get("kind"), old_names.get("kind"), "spec.names.kind")
    problems += validation.validate_immutable(spec.get("group"), old_spec.get("group"), "spec.group")
    problems += validation.validate_immutable(
        names.get("plural"), old_names.get("plural"), "spec.names.plural"
    )
    return problems


def _group(group: Any) -> list[FieldError]:
    if not group:
        return [errors.required("spec.group")]
    text = str(group)
    found = validation.is_dns1123_subdomain(text)
    if found:
        return [errors.invalid("spec.group", text, ",".join(found))]
    if "." not in text:
        return [errors.invalid("spec.group", text, "should be a domain with at least one dot")]
    return []


def _versions(spec: Obj) -> list[FieldError]:
    versions = _list(spec.get("versions"))
    problems: list[FieldError] = []
    seen: set[str] = set()
    unique = True
    storage = 0
    for index, version in enumerate(versions):
        path = f"spec.versions[{index}]"
        if not isinstance(version, dict):
            problems.append(errors.invalid(path, version, "must be an object"))
            continue
        vname = str(version.get("name") or "")
        if vname in seen:
            unique = False
        seen.add(vname)
        found = validation.is_dns1035_label(vname)
        if found:
            problems.append(errors.invalid(f"{path}.name", vname, ",".join(found)))
        if version.get("storage") is True:
            storage += 1
        problems += _version_schema(version, path)
        problems += _subresources(_dict(version.get("subresources")), f"{path}.subresources")
        for column_index, column in enumerate(_list(version.get("additionalPrinterColumns"))):
            problems += _column(_dict(column), f"{path}.additionalPrinterColumns[{column_index}]")
        problems += _selectable_fields(_list(version.get("selectableFields")), f"{path}.selectableFields")
    if not unique:
        problems.append(errors.invalid("spec.versions", versions, "must contain unique version names"))
    if storage != 1:
        problems.append(
            errors.invalid(
                "spec.versions", versions, "must have exactly one version marked as storage version"
            )
        )
    return problems


def _version_schema(version: Obj, path: str) -> list[FieldError]:
    schema_path = f"{path}.schema.openAPIV3Schema"
    given = _dict(version.get("schema")).get("openAPIV3Schema")
    if not isinstance(given, dict):
        return [errors.required(schema_path)]
    try:
        loaded = schemas.load(version)
    except ValueError as exc:
        return [errors.invalid(schema_path, "", str(exc))]
    return list(loaded.schema_errors(schema_path))


def _simple_path(value: str, path: str) -> list[FieldError]:
    if not value:
        return [errors.invalid(path, value, "must not be empty")]
    if not value.startswith("."):
        return [errors.invalid(path, value, "must be a simple json path starting with .")]
    return []


def _subresources(subresources: Obj, path: str) -> list[FieldError]:
    scale = subresources.get("scale")
    if scale is None:
        return []
    scale = _dict(scale)
    problems: list[FieldError] = []
    for key, under in (("specReplicasPath", ".spec."), ("statusReplicasPath", ".status.")):
        value = scale.get(key)
        field_path = f"{path}.scale.{key}"
        if not value:
            problems.append(errors.required(field_path))
            continue
        found = _simple_path(str(value), field_path)
        if found:
            problems += found
        elif not str(value).startswith(under):
            problems.append(errors.invalid(field_path, value, f"should be a json path under {under[:-1]}"))
    selector = scale.get("labelSelectorPath")
    if selector:
        field_path = f"{path}.scale.labelSelectorPath"
        found = _simple_path(str(selector), field_path)
        if found:
            problems += found
        elif not str(selector).startswith((".spec.", ".status.")):
            problems.append(
                errors.invalid(field_path, selector, "should be a json path under either .spec or .status")
            )
    return problems


MAX_SELECTABLE_FIELDS = 8


def _selectable_fields(fields: list[Any], path: str) -> list[FieldError]:
    problems: list[FieldError] = []
    if len(fields) > MAX_SELECTABLE_FIELDS:
        problems.append(
            FieldError(
                "FieldValueTooMany",
                path,
                f"must have at most {MAX_SELECTABLE_FIELDS} items",
                len(fields),
                True,
            )
        )
    seen: set[str] = set()
    for index, entry in enumerate(fields):
        json_path = str(_dict(entry).get("jsonPath") or "")
        field_path = f"{path}[{index}].jsonPath"
        if not json_path:
            problems.append(errors.required(field_path))
            continue
        problems += _simple_path(json_path, field_path)
        if json_path in seen:
            problems.append(errors.duplicate(field_path, json_path))
        seen.add(json_path)
        if json_path.startswith(".metadata"):
            problems.append(errors.invalid(field_path, json_path, "must not start with 'metadata'"))
    return problems


def _column(column: Obj, path: str) -> list[FieldError]:
    problems: list[FieldError] = []
    if not column.get("name"):
        problems.append(errors.required(f"{path}.name"))
    kind = column.get("type")
    listed = ",".join(COLUMN_TYPES)
    if not kind:
        problems.append(errors.required(f"{path}.type", f"must be one of {listed}"))
    elif kind not in COLUMN_TYPES:
        problems.append(errors.invalid(f"{path}.type", kind, f"must be one of {listed}"))
    fmt = column.get("format")
    if fmt and fmt not in COLUMN_FORMATS:
        problems.append(errors.invalid(f"{path}.format", fmt, f"must be one of {','.join(COLUMN_FORMATS)}"))
    json_path = column.get("jsonPath")
    if not json_path:
        problems.append(errors.required(f"{path}.JSONPath"))
    else:
        problems += _simple_path(str(json_path), f"{path}.JSONPath")
    return problems


def _label_errors(value: Any, path: str, *, lower: bool = False) -> list[FieldError]:
    if not value:
        return []
    text = str(value)
    found = validation.is_dns1035_label(text.lower() if lower else text)
    if not found:
        return []
    detail = ",".join(found)
    if lower:
        detail = "may have mixed case, but should otherwise match: " + detail
    return [errors.invalid(path, text, detail)]


def _names(names: Obj, path: str, *, required: bool) -> list[FieldError]:
    problems: list[FieldError] = []
    if required:
        for key in ("plural", "singular", "kind", "listKind"):
            if not names.get(key):
                problems.append(errors.required(f"{path}.{key}"))
    problems += _label_errors(names.get("plural"), f"{path}.plural")
    problems += _label_errors(names.get("singular"), f"{path}.singular")
    problems += _label_errors(names.get("kind"), f"{path}.kind", lower=True)
    problems += _label_errors(names.get("listKind"), f"{path}.listKind", lower=True)
    for index, short in enumerate(_list(names.get("shortNames"))):
        problems += _label_errors(short, f"{path}.shortNames[{index}]")
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        problems.append(
            errors.invalid(f"{path}.listKind", names.get("listKind"), "kind and listKind may not be the same")
        )
    for index, category in enumerate(_list(names.get("categories"))):
        problems += _label_errors(category, f"{path}.categories[{index}]")
    return problems


def _conversion(conversion: Any) -> list[FieldError]:
    if conversion is None:
        return []
    conversion = _dict(conversion)
    strategy = conversion.get("strategy")
    if not strategy:
        return [errors.required("spec.conversion.strategy")]
    if strategy not in CONVERSIONS:
        return [errors.not_supported("spec.conversion.strategy", strategy, CONVERSIONS)]
    if strategy == "Webhook":
        webhook = _dict(conversion.get("webhook"))
        if not webhook.get("clientConfig"):
            return [
                errors.required(
                    "spec.conversion.webhook.clientConfig", "required when strategy is set to Webhook"
                )
            ]
        return []
    if conversion.get("webhook") is not None:
        return [
            errors.forbidden(
                "spec.conversion.webhook", "should not be set when strategy is not set to Webhook"
            )
        ]
    return []


def validate_status_names(status: Obj) -> list[FieldError]:
    return _names(_dict(status.get("acceptedNames")), "status.acceptedNames", required=False)
