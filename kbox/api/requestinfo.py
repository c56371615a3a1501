"""What a request addresses, parsed from its path and method (kube-apiserver's RequestInfo).

``/api/v1/namespaces/default/pods/web/log`` → group "", version v1, namespace default, resource pods,
name web, subresource log, verb get. ``/api/v1/namespaces/default`` is the namespace object itself, and
``/api/v1/namespaces/default/status`` its status subresource: the segment after a namespace name is a
resource only when it is not one of the namespace's own subresources.
"""

from __future__ import annotations

from dataclasses import dataclass

from kbox.api import errors

_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True)
class RequestInfo:
    verb: str
    group: str
    version: str
    resource: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse(method: str, path: str, *, watch: bool) -> RequestInfo:
    """Parse a resource request path (one under ``/api/<v>/`` or ``/apis/<g>/<v>/``)."""
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        raise errors.not_found("", "", path)
    if parts[0] == "api":
        if len(parts) < 3:
            raise errors.bad_request(f"not a resource path: {path}")
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            raise errors.bad_request(f"not a resource path: {path}")
        group, version, rest = parts[1], parts[2], parts[3:]

    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in _NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise errors.not_found(group, rest[0], "/".join(rest[1:]))
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if resource == "namespaces" and name is not None and namespace is None:
        # Namespaces are cluster-scoped, but their objects report themselves as their own namespace.
        pass
    verb = _verb(method, name=name, watch=watch)
    return RequestInfo(verb, group, version, resource, namespace, name, subresource)


def _verb(method: str, *, name: str | None, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        if watch:
            return "watch"
        return "get" if name is not None else "list"
    if method == "POST":
        return "create"
    if method in ("PUT", "PATCH"):
        if name is None:
            raise errors.method_not_allowed(
                f"the server does not allow this method on the requested resource: {method} on a collection"
            )
        return "update" if method == "PUT" else "patch"
    if method == "DELETE":
        return "delete" if name is not None else "deletecollection"
    raise errors.method_not_allowed(
        f"the server does not allow this method on the requested resource: {method}"
    )
