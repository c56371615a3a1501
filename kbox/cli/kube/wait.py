"""``kbox wait``: block until objects meet a condition, are deleted, or a field has a value.

Each object is read once and then watched (a watch on its name from the read's resourceVersion),
re-checking on every event, so nothing polls; a watch the server ends is resumed from the last version
seen, and an expired version (410) re-reads. ``--timeout`` is one deadline for all the objects, as in
kubectl (``0`` checks once); running out ends with kubectl's ``error: timed out waiting for the
condition on pods/x`` and exit 1.

``--for`` takes ``delete``, ``create``, ``condition=NAME[=VALUE]`` (names and values compared without
case, the value defaulting to ``true``) and ``jsonpath={.path}[=VALUE]`` (kubectl's JSONPath, through
``kbox.cli.kube.jsonpath``; without a value: until the field exists; with one, the path must select a
single plain value, compared as text).

``wait_deleted`` is shared with ``kbox delete --wait``, and ``watch_until`` (read, then watch one object
until a check holds) with ``kbox rollout status``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from kbox.api.errors import StatusError
from kbox.cli.kube import jsonpath, manifests, session, targets
from kbox.cli.kube.manifests import CommandError

EXAMPLES = """
\b
Examples:
  kbox wait --for=condition=Ready pod/web-0
  kbox wait --for=condition=Available deployment/web --timeout=2m
  kbox wait --for=delete pod/web-0 --timeout=60s
  kbox wait --for=jsonpath='{.status.phase}'=Running pod -l app=web
  kbox wait --for=condition=Ready pods --all -n staging
"""

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_FOREVER = 7 * 24 * 3600.0  # kubectl: a negative timeout means a week


def parse_duration(text: str) -> float:
    """Seconds from a Go duration (``30s``, ``1m30s``, ``500ms``) or a plain number of seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        sign = -1.0 if value.startswith("-") else 1.0
        body = value.lstrip("+-")
        parts = _DURATION.findall(body)
        if not body or "".join(n + u for n, u in parts) != body:
            raise CommandError(f'invalid duration "{text}" (use e.g. 30s, 1m30s, 500ms)') from None
        seconds = sign * sum(float(n) * _UNITS[u] for n, u in parts)
    return _FOREVER if seconds < 0 else seconds


# --- conditions ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """What ``--for`` asks; ``met(obj)`` on a live object (None: it does not exist)."""

    text: str
    kind: str  # delete | create | condition | jsonpath
    name: str = ""
    value: str | None = None
    extract: Callable[[dict[str, Any]], list[Any]] | None = None

    def met(self, obj: dict[str, Any] | None) -> bool:
        if self.kind == "delete":
            return obj is None
        if obj is None:
            return False
        if self.kind == "create":
            return True
        if self.kind == "condition":
            want = self.value or "true"
            generation = (obj.get("metadata") or {}).get("generation")
            for cond in (obj.get("status") or {}).get("conditions") or ():
                if not isinstance(cond, dict) or str(cond.get("type", "")).lower() != self.name.lower():
                    continue
                observed = cond.get("observedGeneration", (obj.get("status") or {}).get("observedGeneration"))
                if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
                    return False  # a condition about an older spec says nothing yet
                return str(cond.get("status", "")).lower() == want.lower()
            return False
        assert self.extract is not None
        found = self.extract(obj)
        if self.value is None:
            return bool(found)
        if len(found) != 1 or isinstance(found[0], dict | list):
            return False
        return _text(found[0]).strip() == self.value.strip()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def parse_for(text: str) -> Condition:
    """``--for`` as kubectl reads it."""
    if text in ("delete", "create"):
        return Condition(text, text)
    head, sep, rest = text.partition("=")
    if head == "condition" and sep and rest:
        name, _, wanted = rest.partition("=")
        return Condition(text, "condition", name, wanted or None)
    if head == "jsonpath" and sep and rest:
        expression, value = _split_jsonpath(rest)
        return Condition(text, "jsonpath", expression, value, jsonpath_extractor(expression))
    raise CommandError(
        f'unrecognized condition: "{text}" '
        "(use delete, create, condition=NAME[=VALUE] or jsonpath={.path}[=VALUE])"
    )


def _split_jsonpath(rest: str) -> tuple[str, str | None]:
    """``{.status.phase}=Running`` → (``{.status.phase}``, ``Running``); braces are optional."""
    if rest.startswith("{"):
        if rest.endswith("}"):
            return rest, None
        end = rest.rfind("}=")
        if end < 0:
            raise CommandError(_JSONPATH_FORMAT)
        return rest[: end + 1], rest[end + 2 :]
    expression, sep, value = rest.partition("=")
    return "{" + expression + "}", value if sep else None


_JSONPATH_FORMAT = (
    "jsonpath wait format must be --for=jsonpath='{.status.readyReplicas}'=3 "
    "or --for=jsonpath='{.status.readyReplicas}'"
)


def jsonpath_extractor(expression: str) -> Callable[[dict[str, Any]], list[Any]]:
    """A function giving the values ``expression`` (one ``{...}`` action) selects in an object."""
    try:
        nodes = jsonpath.parse(expression)
    except jsonpath.JSONPathError as exc:
        raise CommandError(f"jsonpath {expression}: {exc}") from None
    if len(nodes) != 1 or not isinstance(nodes[0], jsonpath.Action):
        raise CommandError(_JSONPATH_FORMAT)
    steps = nodes[0].steps

    def extract(obj: dict[str, Any]) -> list[Any]:
        try:
            return jsonpath.find(steps, obj)
        except jsonpath.JSONPathError:
            return []  # e.g. an index past the end: nothing selected yet

    return extract


# --- waiting -------------------------------------------------------------------------------------------


async def wait_for(
    api: session.Api,
    info: session.ResourceInfo,
    namespace: str | None,
    name: str,
    condition: Condition,
    *,
    uid: str | None = None,
) -> dict[str, Any] | None:
    """Block until the object meets ``condition``; returns it (None once deleted). With ``uid``, an
    object of the same name but another uid counts as the old one deleted."""

    def gone() -> None:
        if condition.kind not in ("delete", "create"):
            raise StatusError(f'{info.qualified} "{name}" not found', 404, "NotFound")

    return await watch_until(api, info, namespace, name, condition.met, uid=uid, on_gone=gone)


async def watch_until(
    api: session.Api,
    info: session.ResourceInfo,
    namespace: str | None,
    name: str,
    check: Callable[[dict[str, Any] | None], bool],
    *,
    uid: str | None = None,
    on_gone: Callable[[], None] | None = None,
) -> dict[str, Any] | None:
    """Read the object, then watch it by name from that version, until ``check`` (given the object,
    or None while it does not exist) holds; returns what it held for. A watch the server ends is
    resumed from the last version seen; an expired version (410) reads again. With ``uid``, an object
    of the same name but another uid counts as gone. ``on_gone`` is called (and may raise) when a
    watch event says the object went away, before ``check`` sees None."""
    selector = f"metadata.name={name}"
    while True:
        try:
            obj: dict[str, Any] | None = await api.request("GET", info.path(namespace, name))
        except StatusError as exc:
            if exc.code != 404:
                raise
            obj = None
        if obj is not None and uid and (obj.get("metadata") or {}).get("uid") != uid:
            obj = None
        if check(obj):
            return obj
        version = (obj or {}).get("metadata", {}).get("resourceVersion", "") if obj else ""
        if not version:
            listing = await api.client.list(info.resource, namespace=namespace, field_selector=selector)
            version = (listing.get("metadata") or {}).get("resourceVersion", "")
            # Made between the GET and the list: the watch from the list's version will not show it.
            for item in listing.get("items") or ():
                if (not uid or (item.get("metadata") or {}).get("uid") == uid) and check(item):
                    return dict(item)
        try:
            while True:  # one watch, resumed from the last version until a 410 sends us back to GET
                async for event in api.client.watch(
                    info.resource, namespace=namespace, field_selector=selector, resource_version=version
                ):
                    version = (event.object.get("metadata") or {}).get("resourceVersion", version)
                    if event.type == "BOOKMARK":
                        continue
                    current: dict[str, Any] | None = None if event.type == "DELETED" else event.object
                    if current is not None and uid and (current.get("metadata") or {}).get("uid") != uid:
                        current = None
                    if current is None and on_gone is not None:
                        on_gone()
                    if check(current):
                        return current
        except StatusError as exc:
            if exc.code != 410:
                raise


async def wait_deleted(
    api: session.Api, info: session.ResourceInfo, namespace: str | None, name: str, uid: str | None
) -> None:
    """Until the object (that uid, when given) is gone."""
    await wait_for(api, info, namespace, name, Condition("delete", "delete"), uid=uid)


@click.command("wait", epilog=EXAMPLES)
@click.argument("args", nargs=-1)
@click.option(
    "--for",
    "for_",
    required=True,
    metavar="CONDITION",
    help="delete, create, condition=NAME[=VALUE] or jsonpath={.path}[=VALUE].",
)
@click.option(
    "--timeout",
    default="30s",
    show_default=True,
    help="How long to wait for each object (e.g. 30s, 2m; negative: a week).",
)
@click.option("-l", "--selector", default=None, help="Label selector (with a TYPE).")
@click.option("--all", "all_objects", is_flag=True, help="Every object of the TYPE in the namespace.")
@click.option(
    "-f", "--filename", "filenames", multiple=True, metavar="FILE", help="The objects in a manifest."
)
@click.option("-R", "--recursive", is_flag=True, help="Read directories given to -f recursively.")
@session.namespace_options
@session.profile_option
def wait(
    args: tuple[str, ...],
    for_: str,
    timeout: str,
    selector: str | None,
    all_objects: bool,
    filenames: tuple[str, ...],
    recursive: bool,
    namespace: str | None,
    all_namespaces: bool,
    profile: str | None,
) -> None:
    """Wait until objects meet a condition: TYPE/NAME, TYPE NAME, TYPE -l SEL or TYPE --all."""
    condition = parse_for(for_)
    seconds = parse_duration(timeout)
    named = targets.Named(args, namespace, all_namespaces, selector, all_objects, filenames, recursive)
    if manifests.run(_wait_all(named, condition, seconds, profile)):
        raise click.exceptions.Exit(1)


def timed_out(target: targets.Target) -> str:
    """kubectl's line for a wait that ran out of time."""
    return f"error: timed out waiting for the condition on {target.info.plural}/{target.name}"


async def _wait_all(named: targets.Named, condition: Condition, seconds: float, profile: str | None) -> bool:
    async with session.connect(profile) as api:
        found = await named.find(api)
        if not found and condition.kind != "delete":
            raise CommandError("no matching resources found")
        deadline = asyncio.get_running_loop().time() + seconds
        for target in found:
            try:
                obj: dict[str, Any] | None = await api.request("GET", target.path())
            except StatusError as exc:
                if exc.code != 404:
                    raise
                if condition.kind == "delete":
                    continue  # kubectl: nothing to wait for, and nothing to print
                if condition.kind != "create":
                    click.echo(manifests.server_error(exc), err=True)
                    return True
                obj = None
            if seconds == 0:  # kubectl: check once, do not wait
                if not condition.met(obj):
                    click.echo(f"error: condition not met for {target.ref}", err=True)
                    return True
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        await wait_for(api, *target, condition)
                except TimeoutError:
                    click.echo(timed_out(target), err=True)
                    return True
                except StatusError as exc:
                    click.echo(manifests.server_error(exc), err=True)
                    return True
            click.echo(f"{target.ref} condition met")
    return False
