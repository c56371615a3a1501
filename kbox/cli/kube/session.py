"""Connecting the kubectl-like commands to a running profile, and naming resources as kubectl does.

``connect(profile)`` reads the profile's kubeconfig, token and CA and yields an ``Api``: an authorised
``HttpClient`` for CRUD and watches, an authorised ``aiohttp`` session for raw HTTP and WebSockets, and
resolution of what a user types (``po``, ``deployments.apps``, ``Deployment.apps``) or what a manifest
names (``apps/v1``, ``Deployment``) into a served resource. Resolution uses only discovery (aggregated
discovery first, the legacy per-group-version documents as a fallback), fetched once per invocation, so
every type the server lists resolves, CRDs included; nothing here knows a kind by name.

``run(coro)`` is how a click command enters asyncio: server errors, connection failures and Ctrl-C end
in one line (or exit 130 quietly), never in a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import click
import msgspec
import yaml

from kbox.api.errors import StatusError
from kbox.client.http import HttpClient
from kbox.client.interface import Resource
from kbox.profile import Profile, ProfileError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

AGGREGATED_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


@dataclass(frozen=True)
class ResourceInfo:
    """One served resource type, as discovery describes it."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    preferred: bool = True  # the group's preferred version

    @property
    def resource(self) -> Resource:
        """The name ``kbox.client`` calls take."""
        return Resource(self.group, self.version, self.plural, self.namespaced)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps``, ``pods``: the name kubectl prints with ``-o name`` and in errors."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_name(self) -> str:
        """``deployment.apps``, ``pod``: the prefix of ``-o name`` output."""
        lower = self.kind.lower()
        return f"{lower}.{self.group}" if self.group else lower

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        """The URL path of the collection, or of one object (and its subresource)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace and self.namespaced:
            base += f"/namespaces/{_quote(namespace)}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{_quote(name)}"
        if sub:
            base += f"/{sub}"
        return base


def _quote(part: str) -> str:
    from urllib.parse import quote

    return quote(part, safe="")


class Api:
    """A connection to one running profile; create it with ``connect``."""

    def __init__(self, *, profile: Profile, url: str, namespace: str, token: str, ca_file: str) -> None:
        self.profile = profile
        self.url = url.rstrip("/")
        self.namespace = namespace
        self.client = HttpClient(self.url, token=token, ca_file=ca_file, field_manager="kbox")
        context = ssl.create_default_context(cafile=ca_file)
        self.session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"},
            connector=aiohttp.TCPConnector(ssl=context),
        )
        self._resources: list[ResourceInfo] | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self.client.close()
        await self.session.close()

    # -- raw HTTP -----------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """``method path`` (``path`` is relative to the server, e.g. ``/api/v1/pods``); JSON decoded.

        A body that is ``bytes`` or ``str`` is sent as is; anything else is encoded as JSON. A response
        of 400 or more raises ``StatusError`` built from the server's ``Status``.
        """
        if body is None:
            data: bytes | None = None
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = _encoder.encode(body)
        headers = {"Accept": accept}
        if data is not None:
            headers["Content-Type"] = content_type
        async with self.session.request(
            method, self.url + path, params=params, data=data, headers=headers
        ) as response:
            raw = await response.read()
            if response.status >= 400:
                raise status_error(response.status, raw)
        if not raw:
            return None
        try:
            return _decoder.decode(raw)
        except msgspec.DecodeError:
            return raw.decode(errors="replace")

    # -- discovery and resolution -------------------------------------------------------------------

    async def resources(self) -> list[ResourceInfo]:
        """Every served resource type (subresources left out), preferred versions first in server order."""
        async with self._lock:
            if self._resources is None:
                found = await self._aggregated()
                if found is None:
                    found = await self._legacy()
                found.sort(key=lambda r: not r.preferred)  # stable: server order within each half
                self._resources = found
            return self._resources

    async def _aggregated(self) -> list[ResourceInfo] | None:
        found: list[ResourceInfo] = []
        for path in ("/api", "/apis"):
            doc = await self.request("GET", path, accept=f"{AGGREGATED_ACCEPT},application/json")
            if not isinstance(doc, dict) or doc.get("kind") != "APIGroupDiscoveryList":
                return None
            for item in doc.get("items") or []:
                group = (item.get("metadata") or {}).get("name", "")
                for index, entry in enumerate(item.get("versions") or []):
                    version = entry.get("version", "")
                    for res in entry.get("resources") or []:
                        kind = (res.get("responseKind") or {}).get("kind", "")
                        if not kind:
                            continue  # kubectl drops these too
                        found.append(
                            ResourceInfo(
                                group=group,
                                version=version,
                                plural=res.get("resource", ""),
                                singular=res.get("singularResource") or kind.lower(),
                                kind=kind,
                                namespaced=res.get("scope") == "Namespaced",
                                short_names=tuple(res.get("shortNames") or ()),
                                verbs=tuple(res.get("verbs") or ()),
                                categories=tuple(res.get("categories") or ()),
                                preferred=index == 0,
                            )
                        )
        return found

    async def _legacy(self) -> list[ResourceInfo]:
        versions: list[tuple[str, str, bool]] = []
        core = await self.request("GET", "/api")
        for version in (core or {}).get("versions") or []:
            versions.append(("", version, version == ((core or {}).get("versions") or [""])[0]))
        groups = await self.request("GET", "/apis")
        for group in (groups or {}).get("groups") or []:
            preferred = (group.get("preferredVersion") or {}).get("version")
            for entry in group.get("versions") or []:
                versions.append(
                    (group.get("name", ""), entry.get("version", ""), entry.get("version") == preferred)
                )
        found: list[ResourceInfo] = []
        for group_name, version, preferred in versions:
            path = f"/apis/{group_name}/{version}" if group_name else f"/api/{version}"
            doc = await self.request("GET", path)
            for res in (doc or {}).get("resources") or []:
                name = res.get("name", "")
                if "/" in name or not res.get("kind"):
                    continue
                found.append(
                    ResourceInfo(
                        group=group_name,
                        version=version,
                        plural=name,
                        singular=res.get("singularName") or res["kind"].lower(),
                        kind=res["kind"],
                        namespaced=bool(res.get("namespaced")),
                        short_names=tuple(res.get("shortNames") or ()),
                        verbs=tuple(res.get("verbs") or ()),
                        categories=tuple(res.get("categories") or ()),
                        preferred=preferred,
                    )
                )
        return found

    async def resolve(self, name: str) -> ResourceInfo:
        """What a user typed as a resource type, as kubectl reads it.

        ``name`` may be a plural, singular, short name or kind (any case), alone or qualified by a group
        (``deployments.apps``) or by version and group (``deployments.v1.apps``). Unqualified names pick
        the preferred version, and the first group in server order (core first), as kubectl does.
        """
        found = resolve_name(await self.resources(), name)
        if found is None:
            raise click.ClickException(f'the server doesn\'t have a resource type "{name}"')
        return found

    async def resolve_kind(self, api_version: str, kind: str) -> ResourceInfo:
        """The resource a manifest's ``apiVersion`` and ``kind`` name; unknown → the kinds that are known."""
        group, _, version = api_version.rpartition("/")
        resources = await self.resources()
        for info in resources:
            if info.group == group and info.version == version and info.kind == kind:
                return info
        known = sorted({f"{r.kind} ({r.api_version})" for r in resources if r.preferred})
        raise click.ClickException(
            f'no matches for kind "{kind}" in version "{api_version}"; known kinds: {", ".join(known)}'
        )


def resolve_name(resources: list[ResourceInfo], name: str) -> ResourceInfo | None:
    """The resolution behind ``Api.resolve``, on a given discovery list (for tests and completion)."""
    lowered = name.lower()
    head, _, rest = lowered.partition(".")
    candidates: list[tuple[str, str | None]] = [(lowered, None)] if not rest else []
    if rest:
        candidates.append((head, rest))  # resource.group
        version, _, group = rest.partition(".")
        candidates.append((head, f"{version}\0{group}"))  # resource.version.group
    for word, qualifier in candidates:
        for info in resources:
            if qualifier is None:
                pass
            elif "\0" in qualifier:
                version, group = qualifier.split("\0")
                if (info.version, info.group) != (version, group):
                    continue
            elif info.group != qualifier:
                continue
            if word in (info.plural, info.singular, info.kind.lower(), *info.short_names):
                return info
    return None


def status_error(code: int, raw: bytes) -> StatusError:
    """A ``StatusError`` from a response body that is (usually) a Kubernetes ``Status``."""
    try:
        status = _decoder.decode(raw)
    except msgspec.DecodeError:
        text = raw.decode(errors="replace").strip()
        return StatusError(text[:300] or f"HTTP {code}", code, "Unknown")
    if not isinstance(status, dict):
        return StatusError(f"HTTP {code}", code, "Unknown")
    return StatusError(
        str(status.get("message") or f"HTTP {code}"),
        int(status.get("code") or code),
        str(status.get("reason") or ""),
        status.get("details") or {},
    )


# -- connecting ----------------------------------------------------------------------------------------


def _kubeconfig_target(prof: Profile) -> tuple[str | None, str]:
    """The server URL and namespace of the profile kubeconfig's current context."""
    try:
        data = yaml.safe_load(prof.kubeconfig.read_text())
    except (OSError, yaml.YAMLError):
        return None, "default"
    if not isinstance(data, dict):
        return None, "default"

    def named(key: str, name: Any) -> dict[str, Any]:
        for entry in data.get(key) or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                value = entry.get(key[:-1])
                return value if isinstance(value, dict) else {}
        return {}

    context = named("contexts", data.get("current-context"))
    server = named("clusters", context.get("cluster")).get("server")
    return (str(server) if server else None), str(context.get("namespace") or "default")


@contextlib.asynccontextmanager
async def connect(profile: str | None) -> AsyncIterator[Api]:
    """An ``Api`` on the running profile ``profile`` (None: ``$KBOX_PROFILE``, else ``kbox``)."""
    try:
        prof = Profile.get(profile)
        settings = prof.load_settings()
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from None
    if not prof.exists() or prof.read_pid() is None:
        hint = "kbox start" if prof.name == "kbox" else f"kbox start --profile {prof.name}"
        raise click.ClickException(f'profile "{prof.name}" is not running: {hint}')
    url, namespace = _kubeconfig_target(prof)
    if url is None:
        if settings is None:
            raise click.ClickException(f"{prof.kubeconfig}: no server for profile {prof.name!r}")
        url = f"https://127.0.0.1:{settings.port}"
    try:
        token = prof.token_file.read_text().strip()
    except OSError as exc:
        raise click.ClickException(f"{prof.token_file}: {exc.strerror or exc}") from None
    if not prof.ca_file.is_file():
        raise click.ClickException(f"{prof.ca_file}: missing; restart the profile")
    api = Api(profile=prof, url=url, namespace=namespace, token=token, ca_file=str(prof.ca_file))
    try:
        yield api
    finally:
        await api.close()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine: errors a user can meet end as one line, Ctrl-C as exit 130."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(130) from None
    except BrokenPipeError:
        # The reader went away (``kbox get pods -w | head``): end quietly, as a program killed by
        # SIGPIPE does, and keep Python from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise click.exceptions.Exit(141) from None
    except StatusError as exc:
        raise click.ClickException(exc.message or f"the server answered {exc.code} {exc.reason}") from None
    except aiohttp.ClientConnectorError as exc:
        raise click.ClickException(
            f"cannot reach the API server at {exc.host}:{exc.port}: {exc.os_error}"
        ) from None
    except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as exc:
        text = str(exc) or type(exc).__name__
        raise click.ClickException(f"talking to the API server failed: {text}") from None


# -- shared click options ----------------------------------------------------------------------------


def dry_run_option(help: str) -> Callable[[F], F]:
    """``--dry-run[=none|client|server]`` as kubectl takes it (bare ``--dry-run`` means client);
    ``help`` says what the command does with it."""

    def decorate(f: F) -> F:
        return click.option(
            "--dry-run",
            type=click.Choice(["none", "client", "server"]),
            default="none",
            is_flag=False,
            flag_value="client",
            help=help,
        )(f)

    return decorate


def profile_option(f: F) -> F:
    """``--profile/-p NAME``: the cluster to talk to."""
    return click.option(
        "--profile",
        "-p",
        default=None,
        metavar="NAME",
        help="The cluster to talk to (default: $KBOX_PROFILE, else 'kbox').",
    )(f)


def namespace_options(f: F) -> F:
    """``-n/--namespace NS`` and ``-A/--all-namespaces``."""
    f = click.option(
        "--all-namespaces",
        "-A",
        "all_namespaces",
        is_flag=True,
        help="Act across every namespace (a namespace flag is then ignored).",
    )(f)
    return click.option(
        "--namespace",
        "-n",
        default=None,
        metavar="NS",
        help="The namespace (default: the profile context's, usually 'default').",
    )(f)


def bool_option(*decls: str, default: bool, help: str) -> Callable[[F], F]:
    """A kubectl-style boolean flag: ``--wait`` alone is true, ``--wait=false`` sets it."""
    return click.option(
        *decls, type=click.BOOL, default=default, is_flag=False, flag_value=True, show_default=True, help=help
    )


def wrap_errors(f: F) -> F:
    """For synchronous command bodies: profile errors as one line."""

    @functools.wraps(f)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except ProfileError as exc:
            raise click.ClickException(str(exc)) from None

    return inner  # type: ignore[return-value]
