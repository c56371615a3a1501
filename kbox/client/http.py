"""The HTTP client: the same ``Client`` interface over the REST API, for processes elsewhere (a kubelet
on another machine, tools, tests). Built on aiohttp; JSON through msgspec; watches read the chunked
stream line by line. Errors come back as ``StatusError`` built from the server's ``Status``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec

from kbox.api.errors import StatusError
from kbox.client.interface import JSON_PATCH, MERGE_PATCH, Client, Obj, Resource, WatchEvent

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class HttpClient(Client):
    def __init__(
        self, url: str, *, token: str, ca_file: str | None = None, field_manager: str = "kbox"
    ) -> None:
        self.url = url.rstrip("/")
        self.field_manager = field_manager
        context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            connector=aiohttp.TCPConnector(ssl=context if context is not None else True),
        )

    def _path(
        self, resource: Resource, namespace: str | None, name: str | None = None, sub: str | None = None
    ) -> str:
        base = (
            f"/api/{resource.version}" if not resource.group else f"/apis/{resource.group}/{resource.version}"
        )
        if namespace and resource.namespaced:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{resource.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        if sub is not None:
            base += f"/{sub}"
        return self.url + base

    async def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj:
        data = None if body is None else _encoder.encode(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self._session.request(method, url, params=params, data=data, headers=headers) as response:
            raw = await response.read()
            if response.status >= 400:
                raise _status_error(response.status, raw)
            result: Obj = _decoder.decode(raw)
            return result

    async def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> Obj:
        return await self._call("GET", self._path(resource, namespace, name))

    async def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str = "",
    ) -> Obj:
        params = _params(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            limit=str(limit) if limit else None,
            resourceVersion=resource_version or None,
        )
        if continue_token:
            params["continue"] = continue_token
        return await self._call("GET", self._path(resource, namespace), params=params)

    async def create(self, resource: Resource, obj: Obj, *, namespace: str | None = None) -> Obj:
        namespace = namespace or obj.get("metadata", {}).get("namespace")
        return await self._call("POST", self._path(resource, namespace), body=obj)

    async def update(
        self, resource: Resource, obj: Obj, *, namespace: str | None = None, subresource: str | None = None
    ) -> Obj:
        metadata = obj.get("metadata", {})
        namespace = namespace or metadata.get("namespace")
        return await self._call(
            "PUT", self._path(resource, namespace, metadata.get("name", ""), subresource), body=obj
        )

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: str = MERGE_PATCH,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
    ) -> Obj:
        params = _params(fieldManager=field_manager or self.field_manager, force="true" if force else None)
        if patch_type == JSON_PATCH and not isinstance(patch, list):
            raise StatusError("a JSON patch must be a list of operations", 400, "BadRequest")
        return await self._call(
            "PATCH",
            self._path(resource, namespace, name, subresource),
            params=params,
            body=patch,
            content_type=patch_type,
        )

    async def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> Obj:
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = preconditions
        return await self._call("DELETE", self._path(resource, namespace, name), body=options)

    async def bind(self, pod: str, node: str, *, namespace: str) -> None:
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod}, "target": {"name": node}}
        await self._call("POST", self._path(Resource("", "v1", "pods"), namespace, pod, "binding"), body=body)

    async def request_token(self, service_account: str, spec: Obj, *, namespace: str) -> Obj:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        url = self._path(Resource("", "v1", "serviceaccounts"), namespace, service_account, "token")
        return await self._call("POST", url, body=body)

    async def watch(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str = "",
        bookmarks: bool = False,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[WatchEvent]:
        params = _params(
            watch="1",
            labelSelector=label_selector,
            fieldSelector=field_selector,
            resourceVersion=resource_version or None,
            allowWatchBookmarks="true" if bookmarks else None,
            timeoutSeconds=str(timeout_seconds) if timeout_seconds else None,
        )
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._session.get(
            self._path(resource, namespace), params=params, timeout=timeout
        ) as response:
            if response.status >= 400:
                raise _status_error(response.status, await response.read())
            async for line in response.content:
                if not line.strip():
                    continue
                event = _decoder.decode(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise StatusError(
                        status.get("message", ""),
                        status.get("code", 500),
                        status.get("reason", ""),
                        status.get("details") or {},
                    )
                yield WatchEvent(event["type"], event["object"])

    async def close(self) -> None:
        await self._session.close()


def _params(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value is not None}


def _status_error(code: int, raw: bytes) -> StatusError:
    try:
        status = _decoder.decode(raw)
    except msgspec.DecodeError:
        return StatusError(raw.decode(errors="replace")[:200] or f"HTTP {code}", code, "Unknown")
    if not isinstance(status, dict):
        return StatusError(f"HTTP {code}", code, "Unknown")
    return StatusError(
        status.get("message", ""),
        status.get("code", code),
        status.get("reason", ""),
        status.get("details") or {},
    )
