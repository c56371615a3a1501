"""Subresources with their own shapes: ``scale`` (autoscaling/v1 Scale), ``pods/binding`` and
``namespaces/finalize``. Each is a transform of the parent object through the generic store's update,
so they share its concurrency, validation and watch events. ``serviceaccounts/token`` (TokenRequest)
only reads: it answers with a signed token (see :mod:`kbox.api.serviceaccounts`).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from kbox.api import errors, negotiation, objects, selectors, serviceaccounts
from kbox.api.patch import json_patch, merge_patch
from kbox.api.registry import GenericStore
from kbox.api.requestinfo import RequestInfo

if TYPE_CHECKING:
    from kbox.api.catalog import Catalog

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


async def token(catalog: Catalog, generic: GenericStore, info: RequestInfo, body: Any) -> Obj:
    """``POST serviceaccounts/<name>/token``: a TokenRequest answered with a signed token (not stored).

    As kube-apiserver: audiences default to the apiserver's, ``expirationSeconds`` to an hour (at least
    ten minutes), and a ``boundObjectRef`` (a Pod running as this ServiceAccount, or a Secret) must
    exist, with the uid given if one is; the token then dies with that object."""
    assert info.name is not None
    name, namespace = info.name, info.namespace or ""
    if not isinstance(body, dict) or body.get("kind") not in (None, "TokenRequest"):
        raise errors.bad_request("the body must be a TokenRequest object")
    if body.get("apiVersion") not in (None, "authentication.k8s.io/v1"):
        raise errors.bad_request(
            f"the API version in the data ({body.get('apiVersion')}) does not match the expected API "
            "version (authentication.k8s.io/v1)"
        )
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise errors.bad_request("spec must be an object")
    account = await generic.get(namespace, name)
    audiences = spec.get("audiences") or list(serviceaccounts.API_AUDIENCES)
    expiration = spec.get("expirationSeconds")
    if expiration is None:
        expiration = serviceaccounts.DEFAULT_EXPIRATION
    problems: list[errors.FieldError] = []
    if not isinstance(audiences, list) or not all(isinstance(a, str) and a for a in audiences):
        problems.append(errors.invalid("spec.audiences", audiences, "must be a list of non-empty strings"))
    if not isinstance(expiration, int) or isinstance(expiration, bool):
        problems.append(errors.invalid("spec.expirationSeconds", expiration, "must be an integer"))
    elif expiration < serviceaccounts.MIN_EXPIRATION:
        problems.append(
            errors.invalid(
                "spec.expirationSeconds", expiration, "may not specify a duration less than 10 minutes"
            )
        )
    elif expiration > serviceaccounts.MAX_EXPIRATION:
        problems.append(
            errors.invalid(
                "spec.expirationSeconds", expiration, "may not specify a duration larger than 2^32 seconds"
            )
        )
    if problems:
        raise errors.invalid_object("authentication.k8s.io", "TokenRequest", name, problems)
    bound: dict[str, serviceaccounts.Ref] = {}
    ref = spec.get("boundObjectRef")
    if ref:
        bound = await _bound_objects(catalog, namespace, name, ref)
    metadata = account["metadata"]
    issued_at = objects.now()
    claims = serviceaccounts.claims(
        namespace=namespace,
        account=serviceaccounts.Ref(name, metadata["uid"]),
        audiences=audiences,
        expiration_seconds=expiration,
        now=issued_at,
        pod=bound.get("pod"),
        secret=bound.get("secret"),
        node=bound.get("node"),
    )
    signed = await catalog.tokens.sign(claims)
    result_spec: Obj = {"audiences": audiences, "expirationSeconds": expiration}
    if ref:
        result_spec["boundObjectRef"] = ref
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": objects.timestamp(issued_at)},
        "spec": result_spec,
        "status": {
            "token": signed,
            "expirationTimestamp": objects.timestamp(
                datetime.datetime.fromtimestamp(claims["exp"], datetime.UTC)
            ),
        },
    }


async def _bound_objects(
    catalog: Catalog, namespace: str, account: str, ref: Any
) -> dict[str, serviceaccounts.Ref]:
    """The object a token is bound to (and a pod's node), checked as kube-apiserver checks it."""
    if not isinstance(ref, dict):
        raise errors.bad_request("spec.boundObjectRef must be an object")
    kind, api_version = ref.get("kind"), ref.get("apiVersion") or "v1"
    object_name = str(ref.get("name") or "")
    if api_version != "v1" or kind not in ("Pod", "Secret"):
        group, _, version = str(api_version).rpartition("/")
        # Go's GroupVersionKind.String(): "/v1, Kind=Node" for the core group.
        raise errors.bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
    if not object_name:
        raise errors.invalid_object(
            "authentication.k8s.io", "TokenRequest", account, [errors.required("spec.boundObjectRef.name")]
        )
    plural = "pods" if kind == "Pod" else "secrets"
    generic = catalog.lookup("", "v1", plural)
    if generic is None:
        raise errors.not_found("", plural, object_name)
    obj = await generic.get(namespace, object_name)
    metadata = obj["metadata"]
    if kind == "Pod" and (obj.get("spec") or {}).get("serviceAccountName", "default") != account:
        raise errors.bad_request(
            f'cannot bind token for serviceaccount "{account}" to pod running with different '
            "serviceaccount name."
        )
    if ref.get("uid") and ref["uid"] != metadata["uid"]:
        raise errors.conflict(
            "",
            kind,
            object_name,
            f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
            "The object might have been deleted and then recreated",
        )
    found = {kind.lower(): serviceaccounts.Ref(object_name, metadata["uid"])}
    node_name = (obj.get("spec") or {}).get("nodeName") if kind == "Pod" else None
    nodes = catalog.lookup("", "v1", "nodes")
    if node_name and nodes is not None:
        try:
            node = await nodes.get(None, node_name)
        except errors.StatusError as exc:
            if exc.code != 404:
                raise
        else:
            found["node"] = serviceaccounts.Ref(node_name, node["metadata"]["uid"])
    return found
