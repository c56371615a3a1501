"""``<plural>/<name>/scale`` of a custom resource: an ``autoscaling/v1`` Scale read from and written to
the paths the CRD names (``specReplicasPath``, ``statusReplicasPath``, ``labelSelectorPath``), as
upstream's ``customresource`` ScaleREST does. A missing replicas field reads as 0; writing a Scale to
an object whose spec replicas field is unset is refused unless the Scale sets it (upstream's
"cannot be empty" check applies to a Scale that carries no replicas at all).
"""

from __future__ import annotations

from typing import Any

from kbox.api import errors, negotiation
from kbox.api.patch import json_patch, merge_patch
from kbox.api.registry import GenericStore
from kbox.api.requestinfo import RequestInfo

Obj = dict[str, Any]
MAX_INT32 = 2**31 - 1


def split(path: str) -> list[str]:
    return [part for part in path.lstrip(".").split(".") if part]


def lookup(obj: Any, path: str) -> tuple[Any, bool]:
    """The value at a ``.a.b`` path and whether it is there."""
    value = obj
    for part in split(path):
        if not isinstance(value, dict) or part not in value:
            return None, False
        value = value[part]
    return value, True


def assign(obj: Obj, path: str, value: Any) -> None:
    parts = split(path)
    target = obj
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[parts[-1]] = value


def _replicas(obj: Obj, path: str) -> int:
    value, found = lookup(obj, path)
    if not found or value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.internal(
            f"{path.lstrip('.')} accessor error: {value!r} is of the type {type(value).__name__}"
        )
    return value


def to_scale(obj: Obj, paths: Obj) -> Obj:
    metadata = obj.get("metadata") or {}
    status: Obj = {"replicas": _replicas(obj, str(paths.get("statusReplicasPath") or ""))}
    selector_path = paths.get("labelSelectorPath")
    if selector_path:
        selector, found = lookup(obj, str(selector_path))
        if found and isinstance(selector, str) and selector:
            status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: metadata[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in metadata
        },
        "spec": {"replicas": _replicas(obj, str(paths.get("specReplicasPath") or ""))},
        "status": status,
    }


def validate(obj: Obj, paths: Obj, *, spec: bool = True) -> list[errors.FieldError]:
    """Upstream's ValidateScaleSpec/ValidateScaleStatus: replicas fields, when set, are int32 ≥ 0."""
    problems: list[errors.FieldError] = []
    keys = ("specReplicasPath", "statusReplicasPath") if spec else ("statusReplicasPath",)
    for key in keys:
        path = str(paths.get(key) or "")
        value, found = lookup(obj, path)
        if not found or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(
                errors.invalid(path, value, f"{path.lstrip('.')} accessor error: must be an integer")
            )
        elif value < 0:
            problems.append(errors.invalid(path, value, "should be a non-negative integer"))
        elif value > MAX_INT32:
            problems.append(errors.invalid(path, value, f"should be less than or equal to {MAX_INT32}"))
    selector_path = paths.get("labelSelectorPath")
    if selector_path:
        value, found = lookup(obj, str(selector_path))
        if found and value is not None and not isinstance(value, str):
            problems.append(errors.invalid(str(selector_path), value, "must be a string"))
    return problems


async def serve(generic: GenericStore, info: RequestInfo, body: Any, content_type: str | None) -> Obj:
    """GET, PUT or PATCH the Scale of a custom resource."""
    assert info.name is not None
    paths = generic.resource.extra.get("scale")
    assert isinstance(paths, dict)
    name = info.name
    if info.verb == "get":
        return to_scale(await generic.get(info.namespace, name), paths)
    kind = negotiation.media_type(content_type)

    def transform(current: Obj | None) -> Obj:
        if current is None:
            raise errors.not_found(generic.resource.group, generic.resource.plural, name)
        wanted = to_scale(current, paths)
        if info.verb == "update":
            given = body
        elif kind == negotiation.JSON_PATCH:
            given = json_patch.apply(wanted, body)
        elif kind == negotiation.MERGE_PATCH:
            given = merge_patch.apply(wanted, body)
        else:
            raise errors.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            )
        if not isinstance(given, dict):
            raise errors.bad_request("the body must be a Scale object")
        replicas = (given.get("spec") or {}).get("replicas")
        if replicas is None:
            raise errors.bad_request(
                f'the spec replicas field "{paths.get("specReplicasPath")}" cannot be empty'
            )
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid_object(
                "autoscaling",
                "Scale",
                name,
                [errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        expected = (given.get("metadata") or {}).get("resourceVersion")
        current["metadata"].pop("resourceVersion", None)
        if expected:
            current["metadata"]["resourceVersion"] = expected  # a precondition, as upstream
        assign(current, str(paths.get("specReplicasPath")), replicas)
        return current

    result, _ = await generic.update(info.namespace, name, transform, subresource="scale")
    return to_scale(result, paths)
