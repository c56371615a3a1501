"""YAML in and out of the dashboard: an object's YAML to read or edit, and applying what was written.

The page works in JSON; YAML is the user's text, so it is made and parsed here, where PyYAML is.

``GET /_/yaml?path=<object path>`` reads one object with the session's token and answers it as YAML,
without ``metadata.managedFields`` (noise in an editor; ``kubectl get -o yaml`` leaves them out too
unless asked).

``POST /_/apply?namespace=<ns>`` takes one or more YAML documents. Each goes to the apiserver as the
user's own write: a document that carries ``metadata.resourceVersion`` (an edited object) is a PUT,
so a concurrent change is refused with the apiserver's Conflict rather than overwritten; any other is a
server-side apply (field manager ``kbox-dashboard``), which creates or updates. The first refusal stops
the rest and is answered with the apiserver's own Status, worded as it words it.

``POST /_/edit`` takes ``{"path", "original", "edited"}``: the YAML the editor was opened with and the
user's version. As ``kubectl edit`` does, only what the user changed is sent (a JSON merge patch from
one to the other), so the status updates a controller wrote meanwhile neither conflict nor get undone.
"""

from __future__ import annotations

from typing import Any

import msgspec
import yaml
from aiohttp import web

from kbox.addons.dashboard.proxy import api_path
from kbox.addons.dashboard.upstream import APPLY_PATCH, Upstream, UpstreamError, make_status

FIELD_MANAGER = "kbox-dashboard"
MAX_MANIFEST = 3 * 1024 * 1024

_encoder = msgspec.json.Encoder()


def to_yaml(obj: Any) -> str:
    """The object as an editor shows it: managedFields left out, keys in the object's own order."""
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        metadata = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
        obj = {**obj, "metadata": metadata}
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True)


def parse_documents(text: str) -> list[dict[str, Any]]:
    """The non-empty documents of ``text``; raises ``ValueError`` with one readable line."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ValueError(f"error parsing YAML: {' '.join(str(exc).split())}") from None
    if not docs:
        raise ValueError("no objects passed to apply")
    for doc in docs:
        if not isinstance(doc, dict):
            raise ValueError("each YAML document must be a mapping (an object with apiVersion and kind)")
        if not doc.get("apiVersion") or not doc.get("kind"):
            raise ValueError("every object needs apiVersion and kind")
        if not isinstance(doc.get("metadata"), dict) or not (doc["metadata"].get("name")):
            raise ValueError(f"{doc['kind']}: metadata.name is required")
    return docs


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(body), status=status, content_type="application/json")


async def read_yaml(request: web.Request, upstream: Upstream, token: str) -> web.StreamResponse:
    path = api_path(request.query.get("path", ""))
    if path is None:
        return _json(make_status(400, "path must be an object's /api or /apis path", "BadRequest"), 400)
    try:
        obj = await upstream.call(token, "GET", path)
    except UpstreamError as exc:
        return _json(exc.status, exc.code)
    return web.Response(text=to_yaml(obj), content_type="application/yaml")


async def apply(request: web.Request, upstream: Upstream, token: str) -> web.StreamResponse:
    text = (await request.read()).decode(errors="replace")
    default_namespace = request.query.get("namespace") or "default"
    done: list[dict[str, str]] = []
    try:
        docs = parse_documents(text)
    except ValueError as exc:
        return _json({"items": done, "error": make_status(400, str(exc), "BadRequest")}, 400)
    try:
        kinds = await upstream.kinds(token)
    except UpstreamError as exc:
        return _json({"items": done, "error": exc.status}, exc.code)
    for doc in docs:
        api_version, kind_name = str(doc["apiVersion"]), str(doc["kind"])
        kind = kinds.get((api_version, kind_name))
        if kind is None:
            message = f'no matches for kind "{kind_name}" in version "{api_version}"'
            return _json({"items": done, "error": make_status(404, message, "NotFound")}, 404)
        metadata = doc["metadata"]
        name = str(metadata["name"])
        namespace = str(metadata.get("namespace") or default_namespace) if kind.namespaced else None
        if namespace is not None:
            metadata["namespace"] = namespace
        path = kind.path(namespace, name)
        try:
            if metadata.get("resourceVersion"):
                await upstream.call(token, "PUT", path, body=doc, params={"fieldManager": FIELD_MANAGER})
                action = "updated"
            else:
                action = await _server_side_apply(upstream, token, path, doc)
        except UpstreamError as exc:
            return _json({"items": done, "error": exc.status}, exc.code)
        entry = {"kind": kind_name, "apiVersion": api_version, "name": name, "action": action}
        if namespace is not None:
            entry["namespace"] = namespace
        entry["path"] = path
        done.append(entry)
    return _json({"items": done})


def merge_patch(before: Any, after: Any) -> Any:
    """The RFC 7386 merge patch that turns ``before`` into ``after`` (lists are replaced whole)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    patch: dict[str, Any] = {}
    for key in before.keys() - after.keys():
        patch[key] = None
    for key, value in after.items():
        if key not in before:
            patch[key] = value
        elif before[key] != value:
            patch[key] = merge_patch(before[key], value)
    return patch


async def edit(request: web.Request, upstream: Upstream, token: str) -> web.StreamResponse:
    try:
        body = msgspec.json.decode(await request.read())
        path = api_path(str(body["path"]))
        original, edited = (yaml.safe_load(str(body[k])) for k in ("original", "edited"))
    except (msgspec.DecodeError, KeyError, TypeError):
        return _json(make_status(400, "expected {path, original, edited}", "BadRequest"), 400)
    except yaml.YAMLError as exc:
        return _json(make_status(400, f"error parsing YAML: {' '.join(str(exc).split())}", "BadRequest"), 400)
    if path is None or not isinstance(original, dict) or not isinstance(edited, dict):
        return _json(
            make_status(400, "path must be an object's path; YAML must be an object", "BadRequest"), 400
        )
    patch = merge_patch(original, edited)
    if not patch:
        return _json({"action": "unchanged"})
    try:
        updated = await upstream.call(
            token,
            "PATCH",
            path,
            body=patch,
            content_type="application/merge-patch+json",
            params={"fieldManager": FIELD_MANAGER},
        )
    except UpstreamError as exc:
        return _json(exc.status, exc.code)
    return _json(
        {"action": "edited", "resourceVersion": (updated or {}).get("metadata", {}).get("resourceVersion")}
    )


async def _server_side_apply(upstream: Upstream, token: str, path: str, doc: dict[str, Any]) -> str:
    try:
        await upstream.call(token, "GET", path)
        action = "configured"
    except UpstreamError as exc:
        if exc.code != 404:
            raise
        action = "created"
    params = {"fieldManager": FIELD_MANAGER, "force": "true"}
    body = _encoder.encode(doc)
    await upstream.call(token, "PATCH", path, body=body, content_type=APPLY_PATCH, params=params)
    return action
