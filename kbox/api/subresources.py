"""Subresources with their own shapes: ``scale`` (autoscaling/v1 Scale), ``pods/binding`` and
``namespaces/finalize``. Each is a transform of the parent object through the generic store's update,
so they share its concurrency, validation and watch events.
"""

from __future__ import annotations

from typing import Any

from kbox.api import errors, negotiation, objects, selectors
from kbox.api.patch import json_patch, merge_patch
from kbox.api.registry import GenericStore
from kbox.api.requestinfo import RequestInfo

Obj = dict[str, Any]


def to_scale(obj: Obj) -> Obj:
    """The Scale view of a workload."""
    metadata = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = spec.get("selector")
    scale_status: Obj = {"replicas": status.get("replicas", 0)}
    if selector:
        scale_status["selector"] = str(selectors.from_label_selector(selector))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: metadata[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in metadata
        },
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": scale_status,
    }


async def scale(
    generic: GenericStore, info: RequestInfo, body: Any, content_type: str | None
) -> tuple[Obj, int]:
    """GET, PUT or PATCH ``<workload>/scale``; returns (Scale, HTTP status)."""
    assert info.name is not None
    if info.verb == "get":
        return to_scale(await generic.get(info.namespace, info.name)), 200
    kind = negotiation.media_type(content_type)

    def transform(current: Obj | None) -> Obj:
        if current is None:
            raise errors.not_found(generic.resource.group, generic.resource.plural, info.name or "")
        wanted = to_scale(current)
        if info.verb == "update":
            given = body
        elif kind == negotiation.JSON_PATCH:
            given = json_patch.apply(wanted, body)
        elif kind in (negotiation.MERGE_PATCH, negotiation.STRATEGIC_PATCH):
            given = merge_patch.apply(wanted, body)
        else:
            raise errors.unsupported_media_type(f"unsupported patch type for scale: {kind}")
        if not isinstance(given, dict):
            raise errors.bad_request("the body must be a Scale object")
        replicas = (given.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid_object(
                "autoscaling",
                "Scale",
                info.name or "",
                [errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        expected = (given.get("metadata") or {}).get("resourceVersion")
        if info.verb == "update" and expected and expected != current["metadata"].get("resourceVersion"):
            raise errors.conflict(
                generic.resource.group,
                generic.resource.plural,
                info.name or "",
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        current["metadata"].pop("resourceVersion", None)
        current.setdefault("spec", {})["replicas"] = replicas
        return current

    result, _ = await generic.update(info.namespace, info.name, transform)
    return to_scale(result), 200


async def bind(generic: GenericStore, info: RequestInfo, body: Any) -> Obj:
    """``POST pods/<name>/binding``: set ``spec.nodeName`` once (the scheduler's write)."""
    assert info.name is not None
    if not isinstance(body, dict) or body.get("kind") not in (None, "Binding"):
        raise errors.bad_request("the body must be a Binding object")
    target = (body.get("target") or {}).get("name")
    if not target:
        raise errors.invalid_object("", "Binding", info.name, [errors.required("target.name")])

    def transform(current: Obj | None) -> Obj:
        if current is None:
            raise errors.not_found("", "pods", info.name or "")
        if current["metadata"].get("deletionTimestamp"):
            raise errors.conflict(
                "", "pods", info.name or "", "pod is being deleted, cannot be assigned to a host"
            )
        node = (current.get("spec") or {}).get("nodeName")
        if node:
            raise errors.conflict(
                "", "pods", info.name or "", f'pod {info.name} is already assigned to node "{node}"'
            )
        current["metadata"].pop("resourceVersion", None)
        current["spec"]["nodeName"] = target
        conditions = current.setdefault("status", {}).setdefault("conditions", [])
        conditions[:] = [c for c in conditions if c.get("type") != "PodScheduled"]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": objects.timestamp(),
            }
        )
        return current

    await generic.update(info.namespace, info.name, transform, subresource="binding")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def finalize(generic: GenericStore, info: RequestInfo, body: Any) -> Obj:
    """``PUT namespaces/<name>/finalize``: replace ``spec.finalizers``; with none left, a terminating
    namespace is gone."""
    assert info.name is not None
    if not isinstance(body, dict):
        raise errors.bad_request("the body must be a Namespace object")
    finalizers = (body.get("spec") or {}).get("finalizers") or []

    def transform(current: Obj | None) -> Obj:
        if current is None:
            raise errors.not_found("", "namespaces", info.name or "")
        current["metadata"].pop("resourceVersion", None)
        current.setdefault("spec", {})["finalizers"] = list(finalizers)
        return current

    result, _ = await generic.update(info.namespace, info.name, transform, subresource="finalize")
    if (
        result["metadata"].get("deletionTimestamp")
        and not finalizers
        and not result["metadata"].get("finalizers")
    ):
        try:
            obj, _ = await generic.delete(None, info.name)
            return obj
        except errors.StatusError as exc:
            if exc.code != 404:
                raise
    return result
