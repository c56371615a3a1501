"""The dashboard's way to the apiserver: HTTPS with the cluster's CA and the *user's* token.

The dashboard is an API client like any other (DESIGN.md: everything goes through the apiserver). It
holds no token of its own for user data: each call here takes the token of the browser session it
serves, so the apiserver authenticates (and one day authorises) the user, not the dashboard.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

APPLY_PATCH = "application/apply-patch+yaml"
AGGREGATED_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Kind:
    """One served resource type: enough to build its URLs from a manifest's apiVersion and kind."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            base += f"/namespaces/{namespace or 'default'}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name is not None else base


class UpstreamError(Exception):
    """The apiserver answered with an error: its ``Status`` (or one made from the HTTP status)."""

    def __init__(self, code: int, status: dict[str, Any]) -> None:
        super().__init__(str(status.get("message") or f"HTTP {code}"))
        self.code = code
        self.status = status


def status_body(code: int, raw: bytes) -> dict[str, Any]:
    """The apiserver's ``Status`` from an error response, or one built from the code and text."""
    try:
        decoded = _decoder.decode(raw)
    except msgspec.DecodeError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status":
        return decoded
    text = raw.decode(errors="replace").strip()[:300]
    return make_status(code, text or f"HTTP {code}")


def make_status(code: int, message: str, reason: str = "") -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class Upstream:
    """An HTTPS client of one apiserver; open it inside the running loop, ``close()`` at the end."""

    def __init__(self, url: str, *, ca_file: str | None) -> None:
        self.url = url.rstrip("/")
        self.ssl: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else False
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl, limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )

    async def close(self) -> None:
        await self.session.close()

    def request(
        self,
        token: str,
        method: str,
        path: str,
        *,
        params: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """An ``aiohttp`` request context (``async with``) to ``path`` as the holder of ``token``."""
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        return self.session.request(method, self.url + path, params=params, data=data, headers=all_headers)

    async def call(
        self,
        token: str,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """One JSON request; an error answer raises :class:`UpstreamError` with the server's Status."""
        data: bytes | None
        if body is None:
            data = None
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = _encoder.encode(body)
        headers = {"Accept": accept}
        if data is not None:
            headers["Content-Type"] = content_type
        async with self.request(token, method, path, params=params, data=data, headers=headers) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise UpstreamError(resp.status, status_body(resp.status, raw))
        return _decoder.decode(raw) if raw else None

    async def who_am_i(self, token: str) -> str | None:
        """The username the apiserver sees for ``token`` (a SelfSubjectReview), or ``None`` when refused."""
        if not token or any(c in token for c in "\r\n"):
            return None
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            review = await self.call(
                token, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=body
            )
        except UpstreamError as exc:
            if exc.code in (401, 403):
                return None
            raise
        info = ((review or {}).get("status") or {}).get("userInfo") or {}
        return str(info.get("username") or "unknown")

    async def kinds(self, token: str) -> dict[tuple[str, str], Kind]:
        """(apiVersion, kind) → :class:`Kind` for every served type, from aggregated discovery."""
        found: dict[tuple[str, str], Kind] = {}
        for path in ("/api", "/apis"):
            doc = await self.call(token, "GET", path, accept=AGGREGATED_ACCEPT)
            for item in (doc or {}).get("items") or []:
                group = (item.get("metadata") or {}).get("name", "")
                for entry in item.get("versions") or []:
                    version = entry.get("version", "")
                    for res in entry.get("resources") or []:
                        kind = (res.get("responseKind") or {}).get("kind", "")
                        if not kind:
                            continue
                        api_version = f"{group}/{version}" if group else version
                        found[(api_version, kind)] = Kind(
                            group, version, res.get("resource", ""), kind, res.get("scope") == "Namespaced"
                        )
        return found

    async def ws_connect(
        self, token: str, path: str, *, params: Any, protocols: tuple[str, ...]
    ) -> aiohttp.ClientWebSocketResponse:
        url = self.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + path
        return await self.session.ws_connect(
            url,
            params=params,
            protocols=protocols,
            headers={"Authorization": f"Bearer {token}"},
            max_msg_size=16 * 1024 * 1024,
            autoping=True,
        )
