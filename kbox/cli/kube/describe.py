"""``kbox describe``: an object explained in prose-like ``Key: value`` lines, with its Events.

Every kind gets kubectl's generic describer: Name, Namespace, Labels, Annotations, then the rest of the
object field by field (``creationTimestamp`` reads ``Creation Timestamp``), nested maps and lists
indented two spaces per level, then the Events whose ``involvedObject`` is this object. Pods, Nodes,
the apps/v1 workloads, Jobs, CronJobs, Services, ConfigMaps, Secrets, Namespaces, PersistentVolumes,
PersistentVolumeClaims, StorageClasses and PodDisruptionBudgets get kubectl's own layouts
(``describers``, ``workloads``, ``basics``, ``storage``; ``describers.for_kind`` registers them). Columns are
aligned the way kubectl's describe output is: Go's tabwriter with padding 2 over each run of lines
holding a tab.

Names match as in kubectl: an exact name, else every object whose name starts with it; no name (or
``-l``) describes every object that matches, separated by blank lines.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Callable
from typing import Any

import click

from kbox.api.errors import StatusError
from kbox.api.tables import human_duration
from kbox.cli.kube import completion, output, session
from kbox.cli.kube.session import Api, ResourceInfo

Obj = dict[str, Any]
# Annotations kubectl leaves out of describe output (it is the whole object again).
SKIP_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
MAX_ANNOTATION_LENGTH = 140
ACRONYMS = ("API", "URL", "UID", "GUID")


class Writer:
    """kubectl's prefix writer: two spaces per level, terminal escapes neutralised, tabs aligned last."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, level: int, text: str) -> None:
        self.parts.append(output.escape_terminal("  " * level + text))

    def text(self) -> str:
        lines = [line.split("\t") for line in "".join(self.parts).split("\n")]
        last = lines.pop()  # the text after the final newline (normally empty)
        tabs = output.TabWriter(remember=False, min_width=0, padding=2)
        return tabs.format(lines) + "\t".join(last)


# -- shared pieces (kubectl's helpers of the same purpose) ---------------------------------------------


def write_lines(w: Writer, title: str, texts: list[str], *, indent: str = "") -> None:
    """``Title:  first`` then each further text on a line of its own under the first; ``<none>`` for none.
    kubectl lays out labels, taints and tolerations so."""
    w.write(0, f"{indent}{title}:\t")
    if not texts:
        w.write(0, "<none>\n")
        return
    for index, text in enumerate(texts):
        if index:
            w.write(0, f"{indent}\t")
        w.write(0, f"{text}\n")


def write_labels(w: Writer, title: str, labels: dict[str, Any] | None, *, indent: str = "") -> None:
    """``Labels:  a=b`` then one label per line under the first."""
    write_lines(w, title, [f"{key}={(labels or {})[key]}" for key in sorted(labels or {})], indent=indent)


def write_metadata(w: Writer, metadata: Obj, *, namespace: bool = True) -> None:
    """``Name``, ``Namespace`` (unless left out), ``Labels`` and ``Annotations``: how most layouts open."""
    w.write(0, f"Name:\t{metadata.get('name', '')}\n")
    if namespace:
        w.write(0, f"Namespace:\t{metadata.get('namespace', '')}\n")
    write_labels(w, "Labels", metadata.get("labels"))
    write_annotations(w, "Annotations", metadata.get("annotations"))


def write_set(w: Writer, label: str, value: Any, *, level: int = 0, zero: bool = False) -> None:
    """``Label:  value`` for an optional field only when it is set: not empty, or with ``zero`` not
    absent (a set 0 or "" counts), as kubectl leaves unset optional fields out."""
    if (value is not None) if zero else value:
        w.write(level, f"{label}:\t{value}\n")


def write_controlled_by(w: Writer, metadata: Obj) -> None:
    """``Controlled By:  ReplicaSet/web-5d8`` when the object has a controller."""
    owner = next((o for o in metadata.get("ownerReferences") or [] if o.get("controller")), None)
    if owner:
        w.write(0, f"Controlled By:\t{owner.get('kind')}/{owner.get('name')}\n")


def write_annotations(w: Writer, title: str, annotations: dict[str, Any] | None) -> None:
    """Annotations, long or multi-line values on lines of their own (cut at 140 characters)."""
    w.write(0, f"{title}:\t")
    keys = sorted(k for k in (annotations or {}) if k not in SKIP_ANNOTATIONS)
    if not keys:
        w.write(0, "<none>\n")
        return
    for index, key in enumerate(keys):
        if index:
            w.write(0, "\t")
        value = str((annotations or {})[key]).removesuffix("\n")
        if len(value) + len(key) + 2 > MAX_ANNOTATION_LENGTH or "\n" in value:
            w.write(0, f"{key}:\n")
            for line in value.split("\n"):
                cut = MAX_ANNOTATION_LENGTH - 2
                w.write(0, f"\t  {line[:cut] + '...' if len(line) > cut else line}\n")
        else:
            w.write(0, f"{key}: {value}\n")


def smart_label(field: str) -> str:
    """``creationTimestamp`` → ``Creation Timestamp``, ``podIP`` → ``Pod IP``, as kubectl labels fields."""
    if any(not (c.isalpha() or c == "-") for c in field):
        return field
    parts = _camel_split(field)
    merged: list[str] = []
    index = 0
    while index < len(parts):
        part = parts[index]
        upper_run = len(part) >= 2 and all(not c.isalpha() or c.isupper() for c in part)
        if index + 1 < len(parts) and upper_run and parts[index + 1][:1].isupper():
            merged.append(part + parts[index + 1])
            index += 2
            continue
        merged.append(part)
        index += 1
    words = []
    for part in merged:
        if part.upper() in ACRONYMS:
            part = part.upper()
        elif part.lower() == part:
            part = part[:1].upper() + part[1:]
        words.append(part)
    return " ".join(words)


def _camel_split(text: str) -> list[str]:
    """Runs of lower case, upper case, digits and other characters; an upper-case run hands its last
    letter to a following lower-case run (``HTTPServer`` → ``HTTP``, ``Server``)."""

    def kind(c: str) -> int:
        return 1 if c.islower() else 2 if c.isupper() else 3 if c.isdigit() else 4

    runs: list[list[str]] = []
    for char in text:
        if runs and kind(runs[-1][-1]) == kind(char):
            runs[-1].append(char)
        else:
            runs.append([char])
    for i in range(len(runs) - 1):
        if runs[i][-1].isupper() and runs[i + 1][0].islower():
            runs[i + 1].insert(0, runs[i].pop())
    return ["".join(run) for run in runs if run]


def go_value(value: Any) -> str:
    """A scalar as Go's ``%v`` prints a decoded JSON value."""
    return output.cell_text(value) if value is not None else "<nil>"


def write_content(w: Writer, level: int, content: dict[str, Any], prefix: str, skip: frozenset[str]) -> None:
    """Every field, sorted, as ``Label:  value``; maps and lists of maps nested one level deeper."""
    for key in sorted(content):
        value = content[key]
        path = f"{prefix}.{key}"
        if path in skip:
            continue
        if isinstance(value, dict):
            w.write(level, f"{smart_label(key)}:\n")
            write_content(w, level + 1, value, path, skip)
        elif isinstance(value, list):
            w.write(level, f"{smart_label(key)}:\n")
            for child in value:
                if isinstance(child, dict):
                    write_content(w, level + 1, child, path, skip)
                else:
                    w.write(level + 1, f"{go_value(child)}\n")
        else:
            w.write(level, f"{smart_label(key)}:\t{go_value(value)}\n")


def parse_time(timestamp: str | None) -> datetime.datetime | None:
    """An RFC 3339 timestamp from an object, or None."""
    if not timestamp:
        return None
    try:
        return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def since(timestamp: str | None, now: datetime.datetime) -> str:
    """The age of a timestamp as kubectl prints it, ``<unknown>`` for none."""
    when = parse_time(timestamp)
    return "<unknown>" if when is None else human_duration(now - when)


def rfc1123z(timestamp: str | None) -> str:
    """``Mon, 02 Jan 2006 15:04:05 -0700`` in local time, as kubectl shows start times."""
    if not timestamp:
        return ""
    try:
        when = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    return when.astimezone().strftime("%a, %d %b %Y %H:%M:%S %z")


def write_events(w: Writer, events: list[Obj] | None, now: datetime.datetime) -> None:
    """The ``Events:`` table, oldest last-seen first; repeats as ``5s (x3 over 2m)``."""
    if events is None:
        return
    if not events:
        w.write(0, "Events:\t<none>\n")
        return
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.write(1, "----\t------\t----\t----\t-------\n")
    for event in sorted(events, key=lambda e: e.get("lastTimestamp") or ""):
        first = since(event.get("eventTime") or event.get("firstTimestamp"), now)
        series = event.get("series") or {}
        if series:
            interval = (
                f"{since(series.get('lastObservedTime'), now)} (x{series.get('count', 0)} over {first})"
            )
        elif int(event.get("count") or 0) > 1:
            interval = f"{since(event.get('lastTimestamp'), now)} (x{event.get('count')} over {first})"
        else:
            interval = first
        source = (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""
        message = str(event.get("message") or "").strip()  # kubectl 1.32 leaves out the field path
        w.write(1, f"{event.get('type', '')}\t{event.get('reason', '')}\t{interval}\t{source}\t{message}\n")


def describe_generic(obj: Obj, events: list[Obj] | None, now: datetime.datetime) -> str:
    """kubectl's describer for kinds it has no special layout for."""
    w = Writer()
    write_metadata(w, obj.get("metadata") or {})
    skip = frozenset(
        f".metadata.{k}" for k in ("managedFields", "name", "namespace", "labels", "annotations")
    )
    write_content(w, 0, obj, "", skip)
    write_events(w, events, now)
    return w.text()


# -- fetching -----------------------------------------------------------------------------------------


async def find_events(api: Api, obj: Obj) -> list[Obj]:
    """The core/v1 Events about ``obj`` (by name, namespace, kind and uid)."""
    metadata = obj.get("metadata") or {}
    parts = [f"involvedObject.name={metadata.get('name', '')}"]
    namespace = metadata.get("namespace") or ""
    parts.append(f"involvedObject.namespace={namespace}")
    if obj.get("kind"):
        parts.append(f"involvedObject.kind={obj['kind']}")
    if metadata.get("uid"):
        parts.append(f"involvedObject.uid={metadata['uid']}")
    path = f"/api/v1/namespaces/{namespace}/events" if namespace else "/api/v1/events"
    events: list[Obj] = []
    token = ""
    while True:
        params = {"fieldSelector": ",".join(parts), "limit": "500"}
        if token:
            params["continue"] = token
        page = await api.request("GET", path, params=params)
        events.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return events


async def _objects(
    api: Api,
    info: ResourceInfo,
    names: list[str],
    namespace: str | None,
    selector: str | None,
    *,
    prefix: bool,
) -> tuple[list[Obj], list[str], bool]:
    """The objects to describe, the errors (names not found), and whether a name was taken as a
    prefix (kubectl does that for ``describe TYPE NAME`` when no object has that exact name)."""
    from kbox.cli.kube import get as getting

    async def listing(params: dict[str, str]) -> list[Obj]:
        found: list[Obj] = []
        async for page in getting.list_pages(api, info, namespace, params, accept="application/json"):
            found.extend(page.get("items") or [])
        return found

    if not names:
        return await listing({"labelSelector": selector} if selector else {}), [], False
    objects: list[Obj] = []
    errors: list[str] = []
    for name in names:
        try:
            objects.append(await api.request("GET", info.path(namespace, name)))
        except StatusError as exc:
            if exc.code != 404:
                raise
            if prefix:
                matches = [o for o in await listing({}) if o["metadata"].get("name", "").startswith(name)]
                if matches:
                    return matches, [], True
            errors.append(f"Error from server ({exc.reason}): {exc.message}")
    return objects, errors, False


# -- the command -------------------------------------------------------------------------------------


@click.command(
    "describe",
    epilog="""\b
Examples:
  kbox describe pod web                  # a pod: containers, conditions, events
  kbox describe pods -n kube-system      # every pod of a namespace
  kbox describe node                     # every node
  kbox describe deploy/web               # TYPE/NAME works too
  kbox describe pods -l app=web
  kbox describe widgets.example.com w1   # any kind, CRDs included""",
)
@click.argument("args", nargs=-1, shell_complete=completion.complete_args)
@session.namespace_options
@click.option("--selector", "-l", default=None, metavar="SELECTOR", help="Label selector (a=b,c!=d).")
@click.option("--show-events/--no-show-events", default=True, show_default=True, help="Add the Events.")
@session.profile_option
def describe(
    args: tuple[str, ...],
    namespace: str | None,
    all_namespaces: bool,
    selector: str | None,
    show_events: bool,
    profile: str | None,
) -> None:
    """Show the details of objects and their recent events."""
    code = session.run(_run(profile, args, namespace, all_namespaces, selector, show_events))
    if code:
        raise click.exceptions.Exit(code)


async def _run(
    profile: str | None,
    args: tuple[str, ...],
    namespace: str | None,
    all_namespaces: bool,
    selector: str | None,
    show_events: bool,
) -> int:
    from kbox.cli.kube import describers
    from kbox.cli.kube import get as getting

    async with session.connect(profile) as api:
        if not args:
            raise click.ClickException(
                "you must specify the type of resource to describe, e.g. kbox describe pods"
            )
        requests = await getting.parse_args(api, args)
        if selector and any(r.names for r in requests):
            raise click.ClickException("name cannot be provided when a selector is specified")
        ns = None if all_namespaces else (namespace or api.namespace)
        texts: list[str] = []
        errors: list[str] = []
        by_prefix = False
        for request in requests:
            objects, missing, by_prefix = await _objects(
                api, request.info, request.names, ns, selector, prefix=len(args) == 2
            )
            errors.extend(missing)
            for obj in objects:
                obj.setdefault("apiVersion", request.info.api_version)
                obj.setdefault("kind", request.info.kind)
                events = await find_events(api, obj) if show_events else None
                now = datetime.datetime.now(datetime.UTC)
                special: Callable[..., Any] | None = describers.for_kind(
                    request.info.group, request.info.kind
                )
                if special is not None:
                    texts.append(await special(api, obj, events, now))
                else:
                    texts.append(describe_generic(obj, events, now))
        if texts:
            # As kubectl: prefix matches each end with a newline, other objects are two newlines apart.
            sys.stdout.write("".join(t + "\n" for t in texts) if by_prefix else "\n\n".join(texts))
            sys.stdout.flush()
        for line in errors:
            click.echo(line, err=True)
        if not texts and not errors:
            if ns is not None and all(r.info.namespaced for r in requests):
                click.echo(f"No resources found in {ns} namespace.", err=True)
            else:
                click.echo("No resources found", err=True)
        return 1 if errors else 0
