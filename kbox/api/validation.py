"""Name, label, annotation and ObjectMeta rules, worded exactly as kube-apiserver words them.

The ``is_*`` checks return a list of problem descriptions (empty when valid), as apimachinery's
``k8s.io/apimachinery/pkg/util/validation`` does; the ``validate_*`` functions turn them into
:class:`~kbox.api.errors.FieldError` lists that a strategy hands to ``errors.invalid_object``.
Messages follow Kubernetes v1.32 (the kubectl kbox is tested with), byte for byte, because clients
and users match on them. Lengths are counted in UTF-8 bytes, as Go's ``len`` does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from kbox.api.errors import FieldError, forbidden, invalid, required

NameRule = Callable[[str], list[str]]

FIELD_IMMUTABLE = "field is immutable"
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
FINALIZER_ORPHAN = "orphan"
FINALIZER_DELETE_DEPENDENTS = "foregroundDeletion"

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_QNAME_RE = re.compile(_QNAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63


def _blen(value: str) -> int:
    """The length Go's ``len`` gives: UTF-8 bytes."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """apimachinery's ``RegexError``, double spaces before each ``or`` included."""
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def empty_error() -> str:
    return "must be non-empty"


def is_dns1123_label(value: str) -> list[str]:
    """A DNS-1123 label: namespaces, and the names of most objects that become hostnames."""
    errs: list[str] = []
    if _blen(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """A DNS-1123 subdomain: the default rule for object names."""
    errs: list[str] = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """A DNS-1035 label (starts with a letter): Service names."""
    errs: list[str] = []
    if _blen(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """A qualified name, ``[prefix/]name``: label keys, annotation keys, finalizers."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + msg for msg in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif _blen(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _QNAME_RE.fullmatch(name):
        errs.append("name part " + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs: list[str] = []
    if _blen(value) > LABEL_VALUE_MAX:
        errs.append(max_len_error(LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


_CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_MAP_KEY_RE = re.compile(_CONFIG_MAP_KEY_FMT)
_CONFIG_MAP_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"


def is_config_map_key(value: str) -> list[str]:
    """A key of a ConfigMap's or Secret's data: it becomes a file name in a volume."""
    errs: list[str] = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _CONFIG_MAP_KEY_RE.fullmatch(value):
        errs.append(regex_error(_CONFIG_MAP_KEY_MSG, _CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if value in (".", ".."):
        errs.append(f"must not be '{value}'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def path_segment_name(name: str) -> list[str]:
    """What every name must satisfy to be a URL path segment and a store key (the generic registry)."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return path_segment_prefix(name)


def path_segment_prefix(name: str) -> list[str]:
    """The same for a ``generateName`` prefix: a suffix follows, so ``.`` and ``..`` are fine."""
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]


def name_parameter_error(name: str) -> str | None:
    """The 400 message the generic registry gives for a name in a URL that cannot be a key, else None."""
    if not name:
        return "Name parameter required."
    msgs = path_segment_name(name)
    if msgs:
        return f'Name parameter invalid: "{name}": ' + ";".join(msgs)
    return None


def _mask_trailing_dash(name: str) -> str:
    """A generateName may end in '-': the random suffix follows it."""
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def _prefix_rule(rule: NameRule) -> NameRule:
    if rule is path_segment_name:
        return path_segment_prefix
    return lambda value: rule(_mask_trailing_dash(value))


def _string_map(value: Any, path: str) -> tuple[dict[str, str], list[FieldError]]:
    if value is None:
        return {}, []
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return value, []
    return {}, [invalid(path, value, "must be a map of string keys to string values")]


def validate_label_name(key: str, path: str) -> list[FieldError]:
    return [invalid(path, key, msg) for msg in is_qualified_name(key)]


def validate_labels(labels: Mapping[str, str] | None, path: str) -> list[FieldError]:
    """Every key a qualified name, every value a label value; all reported at ``path`` as upstream does."""
    checked, errs = _string_map(labels, path)
    for key in sorted(checked):
        errs.extend(validate_label_name(key, path))
        errs.extend(invalid(path, checked[key], msg) for msg in is_valid_label_value(checked[key]))
    return errs


def annotations_size(annotations: Mapping[str, str]) -> int:
    return sum(_blen(k) + _blen(v) for k, v in annotations.items())


def validate_annotations(annotations: Mapping[str, str] | None, path: str) -> list[FieldError]:
    """Keys are qualified names (case-insensitive); keys and values together at most 256 KiB."""
    checked, errs = _string_map(annotations, path)
    for key in sorted(checked):
        errs.extend(invalid(path, key, msg) for msg in is_qualified_name(key.lower()))
    if annotations_size(checked) > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(
            FieldError("FieldValueTooLong", path, f"may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes")
        )
    return errs


def _api_version_parts(api_version: str) -> tuple[str, str]:
    """(group, version) as ``schema.ParseGroupVersion`` reads it; ("", "") when it cannot be read."""
    if not api_version or api_version == "/":
        return "", ""
    parts = api_version.split("/")
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    return "", ""


def _validate_owner_reference(ref: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    api_version = str(ref.get("apiVersion") or "")
    kind = str(ref.get("kind") or "")
    group, version = _api_version_parts(api_version)
    if not version:
        errs.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
    if not kind:
        errs.append(invalid(f"{path}.kind", kind, "kind must not be empty"))
    if not ref.get("name"):
        errs.append(invalid(f"{path}.name", str(ref.get("name") or ""), "name must not be empty"))
    if not ref.get("uid"):
        errs.append(invalid(f"{path}.uid", str(ref.get("uid") or ""), "uid must not be empty"))
    if (group, version, kind) == ("", "v1", "Event"):
        errs.append(invalid(path, ref, "/v1, Kind=Event is disallowed from being an owner"))
    return errs


def validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    """apiVersion, kind, name and uid present; no Event owner; at most one controller."""
    if refs is None:
        return []
    if not isinstance(refs, list) or not all(isinstance(ref, dict) for ref in refs):
        return [invalid(path, refs, "must be a list of owner references")]
    errs: list[FieldError] = []
    controller = ""
    for ref in refs:
        errs.extend(_validate_owner_reference(ref, path))
        if ref.get("controller") is True:
            name = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if controller:
                detail = (
                    'Only one reference can have Controller set to true. Found "true" in references for '
                    f"{controller} and {name}"
                )
                errs.append(invalid(path, refs, detail))
            else:
                controller = name
    return errs


def validate_finalizers(finalizers: Any, path: str) -> list[FieldError]:
    """Each a qualified name; ``orphan`` and ``foregroundDeletion`` exclude each other."""
    if finalizers is None:
        return []
    if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
        return [invalid(path, finalizers, "must be a list of strings")]
    errs = [invalid(path, f, msg) for f in finalizers for msg in is_qualified_name(f)]
    if FINALIZER_ORPHAN in finalizers and FINALIZER_DELETE_DEPENDENTS in finalizers:
        detail = f"finalizer {FINALIZER_ORPHAN} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set"
        errs.append(invalid(path, finalizers, detail))
    return errs


def _validate_generation(meta: Mapping[str, Any], path: str) -> list[FieldError]:
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        return [invalid(f"{path}.generation", generation, "must be greater than or equal to 0")]
    return []


def _validate_names(
    meta: Mapping[str, Any], namespaced: bool, name_rule: NameRule, path: str
) -> list[FieldError]:
    errs: list[FieldError] = []
    generate_name = meta.get("generateName") or ""
    if generate_name:
        errs.extend(
            invalid(f"{path}.generateName", generate_name, msg)
            for msg in _prefix_rule(name_rule)(generate_name)
        )
    name = meta.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name", "name or generateName is required"))
    else:
        errs.extend(invalid(f"{path}.name", name, msg) for msg in name_rule(name))
    namespace = meta.get("namespace") or ""
    if namespaced and not namespace:
        errs.append(required(f"{path}.namespace"))
    elif namespaced:
        errs.extend(invalid(f"{path}.namespace", namespace, msg) for msg in is_dns1123_label(namespace))
    elif namespace:
        errs.append(forbidden(f"{path}.namespace", "not allowed on this type"))
    return errs


def validate_object_meta(
    meta: Mapping[str, Any],
    *,
    namespaced: bool,
    name_rule: NameRule = is_dns1123_subdomain,
    path: str = "metadata",
) -> list[FieldError]:
    """ObjectMeta on create, after name generation (``ValidateObjectMetaAccessor``).

    The generic registry runs it twice: once with the kind's ``name_rule`` (from its strategy) and once
    with :func:`path_segment_name`; a ``generateName`` is checked as a prefix of a name.
    """
    errs = _validate_names(meta, namespaced, name_rule, path)
    errs.extend(_validate_generation(meta, path))
    errs.extend(validate_labels(meta.get("labels"), f"{path}.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    errs.extend(validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences"))
    errs.extend(validate_finalizers(meta.get("finalizers"), f"{path}.finalizers"))
    return errs


def validate_immutable(new: Any, old: Any, path: str) -> list[FieldError]:
    return [] if new == old else [invalid(path, new, FIELD_IMMUTABLE)]


_IMMUTABLE_META = (
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def _no_new_finalizers(new: Mapping[str, Any], old: Mapping[str, Any], path: str) -> list[FieldError]:
    if not old.get("deletionTimestamp"):
        return []
    added = sorted(set(new.get("finalizers") or []) - set(old.get("finalizers") or []))
    if not added:
        return []
    shown = "[]string{" + ", ".join(f'"{f}"' for f in added) + "}"
    detail = f"no new finalizers can be added if the object is being deleted, found new finalizers {shown}"
    return [forbidden(f"{path}.finalizers", detail)]


def validate_object_meta_update(
    new: Mapping[str, Any],
    old: Mapping[str, Any],
    path: str = "metadata",
    *,
    require_resource_version: bool = False,
) -> list[FieldError]:
    """ObjectMeta on update (``ValidateObjectMetaAccessorUpdate``).

    ``require_resource_version`` adds the "must be specified for an update" check, for callers that
    have not already applied the unconditional-update rule of their strategy.
    """
    errs = _no_new_finalizers(new, old, path)
    if require_resource_version and not new.get("resourceVersion"):
        errs.append(
            invalid(
                f"{path}.resourceVersion", new.get("resourceVersion") or "", "must be specified for an update"
            )
        )
    new_generation, old_generation = new.get("generation") or 0, old.get("generation") or 0
    if (
        isinstance(new_generation, int)
        and isinstance(old_generation, int)
        and new_generation < old_generation
    ):
        errs.append(invalid(f"{path}.generation", new_generation, "must not be decremented"))
    for key in _IMMUTABLE_META:
        errs.extend(validate_immutable(new.get(key), old.get(key), f"{path}.{key}"))
    errs.extend(validate_labels(new.get("labels"), f"{path}.labels"))
    errs.extend(validate_annotations(new.get("annotations"), f"{path}.annotations"))
    errs.extend(validate_owner_references(new.get("ownerReferences"), f"{path}.ownerReferences"))
    return errs


_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _validate_selector_requirement(expr: Any, path: str) -> list[FieldError]:
    if not isinstance(expr, dict):
        return [invalid(path, expr, "must be a label selector requirement")]
    errs: list[FieldError] = []
    operator, values = expr.get("operator"), expr.get("values") or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return [invalid(f"{path}.values", values, "must be a list of strings")]
    if operator in ("In", "NotIn") and not values:
        errs.append(required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif operator in ("Exists", "DoesNotExist") and values:
        detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        errs.append(forbidden(f"{path}.values", detail))
    elif operator not in _SELECTOR_OPERATORS:
        errs.append(invalid(f"{path}.operator", operator, "not a valid selector operator"))
    key = expr.get("key")
    errs.extend(validate_label_name(key if isinstance(key, str) else "", f"{path}.key"))
    for i, value in enumerate(values):
        errs.extend(invalid(f"{path}.values[{i}]", value, msg) for msg in is_valid_label_value(value))
    return errs


def validate_label_selector(selector: Any, path: str) -> list[FieldError]:
    """A ``metav1.LabelSelector`` (``matchLabels``/``matchExpressions``), as ``ValidateLabelSelector``."""
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return [invalid(path, selector, "must be a label selector")]
    errs = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        return [*errs, invalid(f"{path}.matchExpressions", expressions, "must be a list")]
    for i, expr in enumerate(expressions):
        errs.extend(_validate_selector_requirement(expr, f"{path}.matchExpressions[{i}]"))
    return errs
