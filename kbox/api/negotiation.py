"""Content negotiation: what a client sent (JSON, YAML, Kubernetes protobuf) and what it accepts
(JSON, or a server-side printed Table)."""

from __future__ import annotations

from typing import Any

import msgspec
import yaml

from kbox.api import errors

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, APPLY_PATCH)


def media_type(header: str | None) -> str:
    """The bare media type of a Content-Type header (no parameters, lower case)."""
    return (header or "").split(";", 1)[0].strip().lower()


def wants_table(accept: str | None) -> bool:
    """Whether the client asked for ``as=Table`` (kubectl get with human output)."""
    if not accept:
        return False
    for clause in accept.split(","):
        params = {}
        for piece in clause.split(";")[1:]:
            key, _, value = piece.strip().partition("=")
            params[key.strip()] = value.strip()
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


def decode_body(body: bytes, content_type: str | None) -> Any:
    """Decode a request body by its Content-Type; a missing type is taken as JSON (kubectl does that)."""
    kind = media_type(content_type)
    if not body:
        raise errors.bad_request("the request body is empty")
    if kind in ("", JSON, MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, "*/*"):
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise errors.bad_request(f"the body of the request was in an unknown format - {exc}") from None
    if kind in (YAML, APPLY_PATCH, "application/x-yaml", "text/yaml"):
        try:
            return yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error converting YAML to JSON: {exc}") from None
    if kind == PROTOBUF:
        from kbox.api import protobuf

        return protobuf.decode(body)
    raise errors.unsupported_media_type(
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json, application/yaml, application/vnd.kubernetes.protobuf (got {kind})"
    )
