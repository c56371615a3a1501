"""``kbox get``: list or fetch objects, printed as kubectl prints them.

Arguments are read as kubectl reads them: ``TYPE[,TYPE...] [NAME...]`` or ``TYPE/NAME ...``, where a
type is any name discovery knows (``po``, ``deployments.apps``, a CRD's plural) or a category
(``all``). Human output asks the apiserver for Tables (server-side printing), so every kind prints
its own columns with no client-side knowledge of it; ``-o yaml|json|name|jsonpath|custom-columns``
print the objects themselves. ``-w`` lists, then follows the watch from the list's resourceVersion.
Errors for single names (``NotFound``) are reported after what could be printed, as kubectl does.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from kbox.api import quantity
from kbox.api.errors import StatusError
from kbox.cli.kube import columns as custom_columns
from kbox.cli.kube import completion, jsonpath, output, session
from kbox.cli.kube.jsonpath import JSONPathError
from kbox.cli.kube.session import Api, ResourceInfo

CHUNK_SIZE = 500
FORMATS = "custom-columns,custom-columns-file,json,jsonpath,jsonpath-file,name,wide,yaml"


# -- what to print ---------------------------------------------------------------------------------


@dataclass
class OutputFormat:
    """A parsed ``-o`` value."""

    kind: str  # "table", "wide", "yaml", "json", "name", "jsonpath", "custom-columns"
    template: list[Any] = field(default_factory=list)
    text: str = ""  # the template as given, for error messages
    columns: list[custom_columns.Column] = field(default_factory=list)

    @property
    def human(self) -> bool:
        return self.kind in ("table", "wide")


def parse_output(value: str | None) -> OutputFormat:
    """``-o`` as kubectl accepts it; an unknown format or a bad template is one line."""
    if not value:
        return OutputFormat("table")
    name, sep, argument = value.partition("=")
    try:
        if name in ("wide", "yaml", "json", "name") and not sep:
            return OutputFormat(name)
        if name == "jsonpath" and sep:
            return OutputFormat("jsonpath", jsonpath.parse(argument), argument)
        if name == "jsonpath-file" and sep:
            text = _read(argument)
            return OutputFormat("jsonpath", jsonpath.parse(text), text)
        if name == "custom-columns" and sep:
            return OutputFormat("custom-columns", columns=custom_columns.parse_columns(argument))
        if name == "custom-columns-file" and sep:
            return OutputFormat("custom-columns", columns=custom_columns.parse_columns_file(_read(argument)))
    except JSONPathError as exc:
        raise click.ClickException(f"error parsing {name} template {argument!r}: {exc}") from None
    if name in ("jsonpath", "jsonpath-file", "custom-columns", "custom-columns-file"):
        raise click.ClickException(f"{name} format specified but no template given (use -o {name}=...)")
    raise click.ClickException(
        f'unable to match a printer suitable for the output format "{value}", allowed formats are: {FORMATS}'
    )


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from None


# -- what to fetch ---------------------------------------------------------------------------------


@dataclass
class Request:
    """One resource type, with the names asked for (none: list the collection)."""

    info: ResourceInfo
    names: list[str] = field(default_factory=list)


async def parse_args(api: Api, args: tuple[str, ...]) -> list[Request]:
    """``TYPE[,TYPE] [NAME...]`` or ``TYPE/NAME ...`` as resolved requests, in the order given."""
    if not args:
        raise click.ClickException(
            "you must specify the type of resource to get "
            "(kbox kubectl -- api-resources lists them), e.g. kbox get pods"
        )
    if any("/" in arg for arg in args):
        if not all("/" in arg for arg in args):
            raise click.ClickException(
                "there is no need to specify a resource type as a separate argument when passing "
                "arguments in resource/name form (e.g. 'kbox get resource/<name>' instead of "
                "'kbox get resource resource/<name>')"
            )
        requests: list[Request] = []
        for arg in args:
            kind, _, name = arg.partition("/")
            if not kind or not name:
                raise click.ClickException(
                    f"arguments in resource/name form must have a single resource and name: {arg}"
                )
            info = await api.resolve(kind)
            if requests and requests[-1].info == info:
                requests[-1].names.append(name)
            else:
                requests.append(Request(info, [name]))
        return requests
    names = list(args[1:])
    requests = []
    for word in args[0].split(","):
        if not word:
            continue
        for info in await _expand(api, word):
            if not any(r.info == info for r in requests):
                requests.append(Request(info, list(names)))
    return requests


async def _expand(api: Api, word: str) -> list[ResourceInfo]:
    """A type name, or a category (``all``) as the listable types in it."""
    found = session.resolve_name(await api.resources(), word)
    if found is not None:
        return [found]
    members = [
        r for r in await api.resources() if r.preferred and word.lower() in r.categories and "list" in r.verbs
    ]
    if members:
        return members
    return [await api.resolve(word)]  # raises the kubectl-worded error


def _selector_params(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


async def list_pages(
    api: Api, info: ResourceInfo, namespace: str | None, params: dict[str, str], *, accept: str
) -> AsyncIterator[dict[str, Any]]:
    """The collection in chunks of ``CHUNK_SIZE`` (a Table or a list per page)."""
    token = ""
    while True:
        query = {**params, "limit": str(CHUNK_SIZE)}
        if token:
            query["continue"] = token
        page = await api.request("GET", info.path(namespace), params=query, accept=accept)
        yield page
        token = ((page or {}).get("metadata") or {}).get("continue") or ""
        if not token:
            return


def _not_found_line(exc: StatusError) -> str:
    return f"Error from server ({exc.reason or 'Unknown'}): {exc.message}"


# -- the command -----------------------------------------------------------------------------------


@dataclass
class GetOptions:
    namespace: str | None
    all_namespaces: bool
    selector: str | None
    field_selector: str | None
    output: OutputFormat
    show_labels: bool
    label_columns: tuple[str, ...]
    sort_by: list[Any] | None  # a parsed JSONPath template
    no_headers: bool
    ignore_not_found: bool
    watch: bool
    watch_only: bool


@click.command(
    "get",
    epilog="""\b
Examples:
  kbox get pods                          # pods in the context's namespace
  kbox get pod -n kube-system -o wide    # the control plane, with nodes and IPs
  kbox get deploy,svc -A                 # two kinds, every namespace
  kbox get pod/web svc/web               # by TYPE/NAME
  kbox get all -l app=web                # a category, filtered by labels
  kbox get nodes -o jsonpath='{.items[*].metadata.name}'
  kbox get pods -o custom-columns=NAME:.metadata.name,NODE:.spec.nodeName
  kbox get pods -w                       # list, then follow changes (Ctrl-C ends)""",
)
@click.argument("args", nargs=-1, shell_complete=completion.complete_args)
@session.namespace_options
@click.option(
    "--selector", "-l", default=None, metavar="SELECTOR", help="Label selector (a=b,c!=d,e in (f))."
)
@click.option(
    "--field-selector", default=None, metavar="SELECTOR", help="Field selector (status.phase=Running)."
)
@click.option(
    "--output",
    "-o",
    default=None,
    metavar="FORMAT",
    help="wide|yaml|json|name|jsonpath=TEMPLATE|jsonpath-file=PATH|custom-columns=SPEC|custom-columns-file=PATH",
)
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@click.option(
    "--label-columns",
    "-L",
    multiple=True,
    metavar="KEY[,KEY]",
    help="Add a column with the value of each of these labels.",
)
@click.option("--sort-by", default=None, metavar="JSONPATH", help="Sort by a field, e.g. .metadata.name.")
@click.option("--raw", default=None, metavar="URI", help="Print the server's answer to GET URI as it is.")
@click.option("--no-headers", is_flag=True, help="Leave out the header line of tables.")
@click.option("--ignore-not-found", is_flag=True, help="A name that does not exist is not an error.")
@click.option("--watch", "-w", is_flag=True, help="After listing, print each change as it happens.")
@click.option("--watch-only", is_flag=True, help="Print changes only, not the current objects.")
@session.profile_option
def get(
    args: tuple[str, ...],
    namespace: str | None,
    all_namespaces: bool,
    selector: str | None,
    field_selector: str | None,
    output: str | None,
    show_labels: bool,
    label_columns: tuple[str, ...],
    sort_by: str | None,
    raw: str | None,
    no_headers: bool,
    ignore_not_found: bool,
    watch: bool,
    watch_only: bool,
    profile: str | None,
) -> None:
    """Show objects of one or more types: a table from the server, or the objects themselves."""
    if raw is not None:
        session.run(_raw(profile, raw))
        return
    sort_template = None
    if sort_by:
        try:
            sort_template = jsonpath.parse(custom_columns.relaxed(sort_by))
        except JSONPathError as exc:
            raise click.ClickException(f"bad --sort-by {sort_by!r}: {exc}") from None
    options = GetOptions(
        namespace=namespace,
        all_namespaces=all_namespaces,
        selector=selector,
        field_selector=field_selector,
        output=parse_output(output),
        show_labels=show_labels,
        label_columns=tuple(k for value in label_columns for k in value.split(",") if k),
        sort_by=sort_template,
        no_headers=no_headers,
        ignore_not_found=ignore_not_found,
        watch=watch or watch_only,
        watch_only=watch_only,
    )
    code = session.run(_run(profile, args, options))
    if code:
        raise click.exceptions.Exit(code)


async def _run(profile: str | None, args: tuple[str, ...], options: GetOptions) -> int:
    async with session.connect(profile) as api:
        requests = await parse_args(api, args)
        named = any(r.names for r in requests)
        if named and options.selector:
            raise click.ClickException("name cannot be provided when a selector is specified")
        if named and options.all_namespaces:
            raise click.ClickException("a resource cannot be retrieved by name across all namespaces")
        namespace = None if options.all_namespaces else (options.namespace or api.namespace)
        if options.watch:
            from kbox.cli.kube import watch as watching

            return await watching.watch(api, requests, namespace, options)
        if options.output.human:
            return await _print_tables(api, requests, namespace, options)
        return await _print_objects(api, requests, namespace, options)


async def _print_tables(api: Api, requests: list[Request], namespace: str | None, options: GetOptions) -> int:
    kinds = {(r.info.group, r.info.kind) for r in requests}
    errors: list[str] = []
    written = False
    params = _selector_params(options.selector, options.field_selector)
    if options.sort_by is not None:
        params["includeObject"] = "Object"  # rows are sorted by a field of the whole object
    for request in requests:
        info = request.info
        table: dict[str, Any] = {"columnDefinitions": [], "rows": []}
        tables: list[dict[str, Any]] = []
        if request.names:
            for name in request.names:
                try:
                    tables.append(
                        await api.request(
                            "GET", info.path(namespace, name), params=params, accept=session.TABLE_ACCEPT
                        )
                    )
                except StatusError as exc:
                    if not (exc.code == 404 and options.ignore_not_found):
                        errors.append(_not_found_line(exc))
        else:
            async for page in list_pages(api, info, namespace, params, accept=session.TABLE_ACCEPT):
                tables.append(page)
        for part in tables:
            if not table["columnDefinitions"]:
                table["columnDefinitions"] = part.get("columnDefinitions") or []
            table["rows"].extend(part.get("rows") or [])
        if options.sort_by is not None:
            table["rows"] = sort_objects(table["rows"], options.sort_by, key=lambda row: row.get("object"))
        table_options = table_options_for(info, options, several_kinds=len(kinds) > 1)
        lines = output.table_lines(table, table_options, header=True)
        if not lines:
            continue
        text = output.TabWriter().format(lines)
        if written and not options.no_headers:
            text = "\n" + text
        _write(text)
        written = True
    for line in errors:
        click.echo(line, err=True)
    if not written and not errors and not options.ignore_not_found:
        if namespace is not None and all(r.info.namespaced for r in requests):
            click.echo(f"No resources found in {namespace} namespace.", err=True)
        else:
            click.echo("No resources found", err=True)
    return 1 if errors else 0


def table_options_for(info: ResourceInfo, options: GetOptions, *, several_kinds: bool) -> output.TableOptions:
    return output.TableOptions(
        wide=options.output.kind == "wide",
        no_headers=options.no_headers,
        with_namespace=options.all_namespaces and info.namespaced,
        show_labels=options.show_labels,
        label_columns=options.label_columns,
        kind_prefix=info.kind_name if several_kinds else "",
    )


async def fetch_objects(
    api: Api,
    request: Request,
    namespace: str | None,
    params: dict[str, str],
    errors: list[str],
    *,
    ignore_not_found: bool,
) -> list[dict[str, Any]]:
    """The objects of one request, each with its apiVersion and kind."""
    info = request.info
    objects: list[dict[str, Any]] = []
    if request.names:
        for name in request.names:
            try:
                objects.append(await api.request("GET", info.path(namespace, name)))
            except StatusError as exc:
                if not (exc.code == 404 and ignore_not_found):
                    errors.append(_not_found_line(exc))
    else:
        async for page in list_pages(api, info, namespace, params, accept="application/json"):
            objects.extend(page.get("items") or [])
    for obj in objects:
        obj.setdefault("apiVersion", info.api_version)
        obj.setdefault("kind", info.kind)
    return objects


async def _print_objects(
    api: Api, requests: list[Request], namespace: str | None, options: GetOptions
) -> int:
    errors: list[str] = []
    params = _selector_params(options.selector, options.field_selector)
    objects: list[dict[str, Any]] = []
    for request in requests:
        objects.extend(
            await fetch_objects(
                api, request, namespace, params, errors, ignore_not_found=options.ignore_not_found
            )
        )
    if options.sort_by is not None:
        objects = sort_objects(objects, options.sort_by)
    single = len(requests) == 1 and len(requests[0].names) == 1
    if single and errors:
        click.echo(errors[0], err=True)
        return 1
    printer = ObjectPrinter(options.output, no_headers=options.no_headers)
    if options.output.kind in ("name", "custom-columns"):
        _write(printer.many(objects))
    elif single and objects:
        _write(printer.one(objects[0]))
    elif objects or not single:
        _write(printer.one(output.as_list(objects)))
    for line in errors:
        click.echo(line, err=True)
    return 1 if errors else 0


def sort_objects(
    items: list[Any], template: list[Any], *, key: Callable[[Any], Any] = lambda item: item
) -> list[Any]:
    """``--sort-by``: a stable sort on the first value the template finds; objects without one first.

    Values compare as kubectl compares them: numbers as numbers, strings that both read as quantities
    (``500m``, ``2Gi``, ``10``) as quantities, other strings as text."""
    steps = next((node.steps for node in template if isinstance(node, jsonpath.Action)), ())

    def value(item: Any) -> Any:
        try:
            found = jsonpath.find(steps, key(item))
        except JSONPathError as exc:
            raise click.ClickException(f"--sort-by: {exc}") from None
        return found[0] if found else None

    def compare(a: Any, b: Any) -> int:
        if a is None or b is None:
            return (a is not None) - (b is not None)
        if isinstance(a, str) and isinstance(b, str):
            try:
                a, b = quantity.parse(a), quantity.parse(b)
            except ValueError:
                pass
        elif not (isinstance(a, int | float) and isinstance(b, int | float)):
            a, b = jsonpath.go_json(a), jsonpath.go_json(b)
        return int(a > b) - int(a < b)

    def compare_pairs(x: tuple[Any, Any], y: tuple[Any, Any]) -> int:
        return compare(x[0], y[0])

    keyed = [(value(item), item) for item in items]
    keyed.sort(key=functools.cmp_to_key(compare_pairs))
    return [item for _, item in keyed]


async def _raw(profile: str | None, uri: str) -> None:
    """``--raw URI``: the body of ``GET URI``, unchanged."""
    async with session.connect(profile) as api, api.session.get(api.url + uri) as response:
        body = await response.read()
        if response.status >= 400:
            raise session.status_error(response.status, body)
    sys.stdout.buffer.write(body)
    sys.stdout.flush()


class ObjectPrinter:
    """``-o yaml|json|name|jsonpath|custom-columns`` for objects one at a time (a watch) or together."""

    def __init__(self, fmt: OutputFormat, *, no_headers: bool = False) -> None:
        self.fmt = fmt
        self.no_headers = no_headers
        self.printed = 0
        self.tabs = output.TabWriter()

    def one(self, obj: dict[str, Any]) -> str:
        """One object (or a ``List``) in the format."""
        self.printed += 1
        kind = self.fmt.kind
        if kind == "yaml":
            return ("---\n" if self.printed > 1 else "") + output.to_yaml(obj)
        if kind == "json":
            return output.to_json(obj)
        if kind == "jsonpath":
            try:
                return jsonpath.render(self.fmt.template, obj)
            except JSONPathError as exc:
                raise click.ClickException(f"error executing jsonpath {self.fmt.text!r}: {exc}") from None
        items = obj.get("items") if obj.get("kind") == "List" else None
        return self.many(items if isinstance(items, list) else [obj])

    def many(self, objects: list[dict[str, Any]]) -> str:
        """Objects printed one per line (``name``, ``custom-columns``)."""
        if self.fmt.kind == "name":
            return "".join(output.object_name(o) + "\n" for o in objects)
        if self.fmt.kind != "custom-columns":
            return "".join(self.one(o) for o in objects)
        lines: list[list[str]] = []
        if not self.no_headers and not self.printed:
            lines.append([c.header for c in self.fmt.columns])
        self.printed += 1
        try:
            lines.extend([custom_columns.column_cell(c, o) for c in self.fmt.columns] for o in objects)
        except JSONPathError as exc:
            raise click.ClickException(f"error executing custom-columns: {exc}") from None
        return self.tabs.format(lines) if lines else ""


def _write(text: str) -> None:
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()
