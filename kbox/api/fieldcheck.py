"""Server-side field validation: unknown fields in a request body, found with the kind's schema.

kubectl leaves validation to the server when OpenAPI v3 says it can (it sends
``fieldValidation=Strict``), so a misspelled field in a manifest must come back as an error here:
``Strict`` refuses the request (400, ``strict decoding error: unknown field "spec.replicaz"``),
``Warn`` (kube-apiserver's default) accepts it with a ``Warning`` header per field, ``Ignore`` accepts it
silently. Accepted unknown fields are dropped, as decoding into kube-apiserver's typed objects drops
them. Kinds without a schema (custom resources without one) are not checked.
"""

from __future__ import annotations

from typing import Any

from kbox.api import errors, schemas

MODES = ("Ignore", "Warn", "Strict")


def unknown_fields(obj: Any, group: str, version: str, kind: str) -> list[str]:
    """Paths of fields the kind's schema does not know, as kube-apiserver prints them."""
    schema = schemas.schema_for(group, version, kind)
    if schema is None:
        return []
    found: list[str] = []
    _walk(obj, schema, "", found)
    return found


def check(
    obj: Any, group: str, version: str, kind: str, mode: str | None, warnings: list[str] | None
) -> None:
    """Apply ``mode`` (default Warn) to the unknown fields of ``obj``, dropping them unless refused."""
    mode = mode or "Warn"
    schema = schemas.schema_for(group, version, kind)
    if schema is None:
        return
    found: list[str] = []
    _walk(obj, schema, "", found, prune=mode != "Strict")
    if not found:
        return
    if mode == "Strict":
        raise errors.bad_request("strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in found))
    if mode == "Warn" and warnings is not None:
        warnings.extend(f'unknown field "{f}"' for f in found)


def _walk(value: Any, schema: dict[str, Any], path: str, found: list[str], *, prune: bool = False) -> None:
    schema = schemas.resolve(schema)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        if properties is not None:
            for key, item in list(value.items()):
                child = f"{path}.{key}" if path else key
                if key in properties:
                    _walk(item, properties[key], child, found, prune=prune)
                else:
                    found.append(child)
                    if prune:
                        del value[key]
            return
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                _walk(item, extra, f"{path}[{key}]", found, prune=prune)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                _walk(item, items, f"{path}[{index}]", found, prune=prune)
