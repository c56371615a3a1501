"""``kbox apply -f``: kubectl's client-side apply, interoperable with ``kubectl apply``.

For each object in the manifests, in order: resolve its kind through discovery, pick its namespace (the
manifest's, else ``-n``, else the context's; a manifest namespace that contradicts ``-n`` is refused as
kubectl refuses it), then

- if it does not exist: create it, annotated with ``kubectl.kubernetes.io/last-applied-configuration``
  (the manifest itself, encoded exactly as kubectl encodes it);
- else: compute the three-way patch (``threeway``) from the annotation, the new manifest and the live
  object and send it, as a strategic merge patch when the server's OpenAPI says the kind takes one
  (built-in kinds, with merge keys from the same document) and as a JSON merge patch otherwise (custom
  resources); an empty patch is "unchanged" and sends nothing.

With ``--server-side`` each object is sent as an apply patch instead (``--field-manager``,
``--force-conflicts``); the server merges, records field ownership and reports conflicts.

Errors on one object are reported (one line each) and the others still applied; the exit code is 1 if
any failed, as kubectl does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import click

from kbox.api.errors import StatusError
from kbox.cli.kube import manifests, session, threeway
from kbox.cli.kube import output as kube_output
from kbox.cli.kube.manifests import CommandError, Manifest
from kbox.client.interface import APPLY_PATCH, MERGE_PATCH, STRATEGIC_PATCH

FIELD_MANAGER = "kubectl-client-side-apply"  # the manager name kubectl's client-side apply records

EXAMPLES = """
\b
Examples:
  kbox apply -f deploy.yaml              # create or update what the file describes
  kbox apply -f manifests/ -R            # every .yaml/.yml/.json file below manifests/
  cat app.yaml | kbox apply -f -         # from stdin
  kbox apply -f app.yaml --dry-run=server -o yaml
  kbox apply --server-side -f app.yaml   # the server merges and tracks field owners
"""


@dataclass(frozen=True)
class Target:
    """Where one manifest goes: its resource type and namespace, and the object to send."""

    manifest: Manifest
    info: session.ResourceInfo
    namespace: str | None
    modified: dict[str, Any]  # the manifest with its namespace and last-applied annotation

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def ref(self) -> str:
        """``deployment.apps/web``: kubectl's ``-o name`` form."""
        return f"{self.info.kind_name}/{self.name}"


def validate_option(f: Any) -> Any:
    return click.option(
        "--validate",
        type=click.Choice(["strict", "warn", "ignore", "true", "false"]),
        default="strict",
        show_default=True,
        help="Unknown or duplicate fields: strict rejects the object, ignore drops them.",
    )(f)


_FIELD_VALIDATION = {
    "strict": "Strict",
    "true": "Strict",
    "warn": "Warn",
    "ignore": "Ignore",
    "false": "Ignore",
}


dry_run_option = session.dry_run_option(
    "client: only print what would be sent; server: the server checks but does not persist."
)


def output_option(f: Any) -> Any:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["name", "yaml", "json"]),
        default=None,
        help="Print the objects (or their names) instead of a status line.",
    )(f)


def namespace_option(f: Any) -> Any:
    return click.option(
        "-n", "--namespace", default=None, metavar="NS", help="Namespace for objects that name none."
    )(f)


def file_options(f: Any) -> Any:
    f = click.option("-R", "--recursive", is_flag=True, help="Read directories given to -f recursively.")(f)
    return click.option(
        "-f",
        "--filename",
        "filenames",
        multiple=True,
        metavar="FILE|DIR|-",
        help="A manifest file, a directory of them, or - for stdin (repeatable).",
    )(f)


def write_options(f: Any) -> Any:
    """``-f/-R``, ``-n``, ``--dry-run``, ``-o`` and ``--validate``: how apply and create take manifests."""
    for option in (validate_option, output_option, dry_run_option, namespace_option, file_options):
        f = option(f)
    return f


@dataclass(frozen=True)
class Settings:
    """How objects are written: the flags of ``kbox apply`` that shape each request."""

    dry_run: str = "none"  # none | client | server
    validate: str = "strict"
    server_side: bool = False
    force_conflicts: bool = False
    field_manager: str | None = None  # None: kubectl's default for the mode

    @property
    def manager(self) -> str:
        return self.field_manager or ("kubectl" if self.server_side else FIELD_MANAGER)

    def params(self) -> dict[str, str]:
        """Query parameters of a write."""
        params = {**dry_run_params(self.dry_run, self.validate), "fieldManager": self.manager}
        if self.server_side and self.force_conflicts:
            params["force"] = "true"
        return params


@click.command("apply", epilog=EXAMPLES)
@write_options
@click.option("--server-side", is_flag=True, help="Let the server merge (server-side apply, managed fields).")
@click.option(
    "--force-conflicts", is_flag=True, help="With --server-side: take over fields other managers own."
)
@click.option("--field-manager", default=None, help="The manager name recorded for the fields written.")
@session.profile_option
def apply(
    filenames: tuple[str, ...],
    recursive: bool,
    namespace: str | None,
    dry_run: str,
    output: str | None,
    validate: str,
    server_side: bool,
    force_conflicts: bool,
    field_manager: str | None,
    profile: str | None,
) -> None:
    """Create or update objects from manifests (client-side apply, like kubectl apply; or --server-side)."""
    if not filenames:
        raise CommandError("must specify one of -f and -k")
    if force_conflicts and not server_side:
        raise CommandError("--force-conflicts only works with --server-side")
    if server_side and dry_run == "client":
        raise CommandError(
            "--dry-run=client doesn't work with --server-side (did you mean --dry-run=server instead?)"
        )
    settings = Settings(dry_run, validate, server_side, force_conflicts, field_manager)
    loaded = manifests.load(filenames, recursive=recursive)
    failed = manifests.run(
        _apply_all(loaded, namespace=namespace, output=output, profile=profile, settings=settings)
    )
    if failed:
        raise click.exceptions.Exit(1)


async def resolve(
    api: session.Api, manifest: Manifest, namespace: str | None
) -> tuple[session.ResourceInfo, str | None]:
    """The resource type of a manifest and the namespace it goes to (None for cluster-scoped kinds)."""
    info = await api.resolve_kind(manifest.api_version, manifest.kind)
    if not info.namespaced:
        return info, None
    given = manifest.namespace
    if given and namespace and given != namespace:
        raise CommandError(
            f'the namespace from the provided object "{given}" does not match the namespace '
            f"\"{namespace}\". You must pass '--namespace={given}' to perform this operation."
        )
    return info, given or namespace or api.namespace


def dry_run_params(dry_run: str, validate: str = "strict") -> dict[str, str]:
    """Query parameters of a write: ``dryRun`` and ``fieldValidation`` (kubectl's ``--validate``)."""
    params = {"fieldValidation": _FIELD_VALIDATION[validate]}
    if dry_run == "server":
        params["dryRun"] = "All"
    return params


def dry_run_suffix(dry_run: str) -> str:
    return {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")


def print_objects(objects: list[dict[str, Any]], output: str) -> None:
    """``-o yaml|json``: one object as itself, several as a ``v1`` ``List`` (kubectl's shape)."""
    if not objects:
        return
    shown = objects[0] if len(objects) == 1 else kube_output.as_list(objects)
    click.echo(kube_output.to_json(shown) if output == "json" else kube_output.to_yaml(shown), nl=False)


async def _apply_all(
    loaded: list[Manifest],
    *,
    namespace: str | None,
    output: str | None,
    profile: str | None,
    settings: Settings,
) -> bool:
    report = Report(output, settings.dry_run)
    async with session.connect(profile) as api:
        schemas = SchemaCache(api)
        for manifest in loaded:
            with report.each(manifest, action="retrieving"):
                info, target_ns = await resolve(api, manifest, namespace)
                if not manifest.name:
                    raise CommandError(
                        f'{manifest.source}: {manifest.kind} has no metadata.name (use "kbox create" '
                        "for generateName)"
                    )
                modified = dict(manifest.obj)
                if target_ns is not None:
                    modified["metadata"] = {**(modified.get("metadata") or {}), "namespace": target_ns}
                if settings.server_side:
                    target = Target(manifest, info, target_ns, modified)
                    verb, obj = await _server_side_apply(api, target, settings)
                else:
                    target = Target(manifest, info, target_ns, threeway.with_last_applied(modified))
                    verb, obj = await _apply_one(api, schemas, target, settings)
                report.done(target.ref, verb, obj)
    return report.finish()


class Report:
    """What apply and create print: for each object its name (``-o name``), a status line
    (``deployment.apps/web created (dry run)``) or, at the end, the objects themselves (``-o yaml|json``);
    for each failure one line, after which the next object is still written."""

    def __init__(self, output: str | None, dry_run: str) -> None:
        self.output = output
        self.dry_run = dry_run
        self.failed = False
        self._objects: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def each(self, manifest: Manifest, *, action: str) -> Iterator[None]:
        """Around one object: a failure is reported (a server error as ``error when <action>``)."""
        try:
            yield
        except WriteFailed as exc:
            self._fail(manifests.server_error(exc.error, action=exc.action, source=manifest.source))
        except StatusError as exc:
            self._fail(manifests.server_error(exc, action=action, source=manifest.source))
        except click.ClickException as exc:
            self._fail(f"error: {exc.format_message()}")

    def _fail(self, line: str) -> None:
        click.echo(line, err=True)
        self.failed = True

    def done(self, ref: str, verb: str, obj: dict[str, Any]) -> None:
        if self.output == "name":
            click.echo(ref)
        elif self.output is not None:
            self._objects.append(obj)
        else:
            click.echo(f"{ref} {verb}{dry_run_suffix(self.dry_run)}")

    def finish(self) -> bool:
        """Print the collected objects (``-o yaml|json``); True if any object failed."""
        if self.output in ("yaml", "json"):
            print_objects(self._objects, self.output)
        return self.failed


async def _server_side_apply(
    api: session.Api, target: Target, settings: Settings
) -> tuple[str, dict[str, Any]]:
    """One apply patch: the server merges, records field ownership and reports conflicts."""
    path = target.info.path(target.namespace, target.name)
    try:
        result = await api.request(
            "PATCH", path, params=settings.params(), body=target.modified, content_type=APPLY_PATCH
        )
    except StatusError as exc:
        raise WriteFailed("patching", exc) from None
    return "serverside-applied", result


async def _apply_one(
    api: session.Api, schemas: SchemaCache, target: Target, settings: Settings
) -> tuple[str, dict[str, Any]]:
    """Create or patch one object; returns the verb kubectl prints and the resulting object."""
    info, ns = target.info, target.namespace
    dry_run = settings.dry_run
    try:
        live: dict[str, Any] = await api.request("GET", info.path(ns, target.name))
    except StatusError as exc:
        if exc.code != 404:
            raise
        if dry_run == "client":
            return "created", target.modified
        params = settings.params()
        try:
            created = await api.request("POST", info.path(ns), params=params, body=target.modified)
        except StatusError as exc:
            raise WriteFailed("creating", exc) from None
        return "created", created
    original = threeway.last_applied(live)
    if original is None:
        click.echo(
            f"Warning: resource {info.qualified}/{target.name} is missing the {threeway.LAST_APPLIED} "
            "annotation which is required by kbox apply; it will be patched automatically.",
            err=True,
        )
    schema, strategic = await schemas.get(info)
    patch = threeway.three_way(original, target.modified, live, schema if strategic else None)
    if not patch:
        return "unchanged", live
    if dry_run == "client":
        return "configured", live
    params = settings.params()
    path = info.path(ns, target.name)
    try:
        if strategic:
            try:
                result = await api.request(
                    "PATCH", path, params=params, body=patch, content_type=STRATEGIC_PATCH
                )
                return "configured", result
            except StatusError as exc:
                if exc.code != 415:
                    raise
                # The server takes no strategic merge patch for this kind after all: compute a plain one.
                patch = threeway.three_way(original, target.modified, live, None)
        result = await api.request("PATCH", path, params=params, body=patch, content_type=MERGE_PATCH)
    except StatusError as exc:
        raise WriteFailed("patching", exc) from None
    return "configured", result


class WriteFailed(Exception):
    """A create or patch the server refused; ``action`` words kubectl's message ("error when creating")."""

    def __init__(self, action: str, error: StatusError) -> None:
        super().__init__(error.message)
        self.action = action
        self.error = error


class SchemaCache:
    """Patch metadata from the server's OpenAPI v3 documents, fetched once per group version.

    A kind gets a strategic merge patch when its ``patch`` operation lists that media type (what
    kubectl checks); its schema then supplies merge keys and strategies. Any failure to read the
    documents means "no schema": a JSON merge patch, which every kind accepts.
    """

    def __init__(self, api: session.Api) -> None:
        self.api = api
        self._index: Mapping[str, Any] | None = None
        self._docs: dict[str, Mapping[str, Any] | None] = {}

    async def get(self, info: session.ResourceInfo) -> tuple[threeway.PatchSchema | None, bool]:
        doc = await self._document(
            f"apis/{info.group}/{info.version}" if info.group else f"api/{info.version}"
        )
        if doc is None:
            return None, False
        gvk = {"group": info.group, "version": info.version, "kind": info.kind}
        strategic = False
        for operations in (doc.get("paths") or {}).values():
            patch_op = operations.get("patch") if isinstance(operations, Mapping) else None
            if not isinstance(patch_op, Mapping) or patch_op.get("x-kubernetes-group-version-kind") != gvk:
                continue
            content = ((patch_op.get("requestBody") or {}).get("content")) or {}
            if STRATEGIC_PATCH in content:
                strategic = True
                break
        components = (doc.get("components") or {}).get("schemas") or {}
        for schema in components.values():
            if isinstance(schema, Mapping) and gvk in (schema.get("x-kubernetes-group-version-kind") or ()):
                return threeway.PatchSchema(schema, components), strategic
        return None, strategic

    async def _document(self, path: str) -> Mapping[str, Any] | None:
        if path in self._docs:
            return self._docs[path]
        doc: Mapping[str, Any] | None = None
        try:
            if self._index is None:
                index = await self.api.request("GET", "/openapi/v3")
                self._index = index if isinstance(index, Mapping) else {}
            entry = (self._index.get("paths") or {}).get(path)
            url = entry.get("serverRelativeURL") if isinstance(entry, Mapping) else None
            if isinstance(url, str):
                found = await self.api.request("GET", url)
                doc = found if isinstance(found, Mapping) else None
        except StatusError:
            doc = None
        self._docs[path] = doc
        return doc
