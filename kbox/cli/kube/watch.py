"""``kbox get -w`` / ``--watch-only``: list one resource type, then follow its watch.

As kubectl does: one type only (one name at most, watched through a ``metadata.name`` field
selector), the current objects first unless ``--watch-only``, then every change from the list's
resourceVersion. Human output asks for Table frames, so each change prints as a row aligned under
the first header (widths only grow); other formats print each changed object. The watch ends when
the server ends it or on Ctrl-C.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
import click
import msgspec

from kbox.api.errors import StatusError
from kbox.cli.kube import output, session
from kbox.cli.kube.session import Api

if TYPE_CHECKING:
    from kbox.cli.kube.get import GetOptions, Request

_decoder = msgspec.json.Decoder()


async def watch(api: Api, requests: list[Request], namespace: str | None, options: GetOptions) -> int:
    """List, print, then print each change until the watch ends; the exit code."""
    from kbox.cli.kube import get as getting

    if len(requests) != 1:
        raise click.ClickException("you may only specify a single resource type with --watch")
    request = requests[0]
    if len(request.names) > 1:
        raise click.ClickException(
            "watch is only supported on individual resources and resource collections, "
            f"but {len(request.names)} resources were found"
        )
    info = request.info
    field_selector = options.field_selector
    if request.names:
        by_name = f"metadata.name={request.names[0]}"
        field_selector = f"{field_selector},{by_name}" if field_selector else by_name
    params = getting._selector_params(options.selector, field_selector)
    human = options.output.human
    accept = session.TABLE_ACCEPT if human else "application/json"

    found: list[dict[str, Any]] = []  # rows or objects
    columns: list[dict[str, Any]] = []
    resource_version = ""
    async for page in getting.list_pages(api, info, namespace, params, accept=accept):
        found.extend(page.get("rows" if human else "items") or [])
        columns = columns or page.get("columnDefinitions") or []
        resource_version = (page.get("metadata") or {}).get("resourceVersion") or resource_version
    if request.names and not found:
        name = request.names[0]
        click.echo(f'Error from server (NotFound): {info.qualified} "{name}" not found', err=True)
        return 1

    table_options = getting.table_options_for(info, options, several_kinds=False)
    tabs = output.TabWriter()
    printer = getting.ObjectPrinter(options.output, no_headers=options.no_headers)
    header_printed = False

    def show_rows(rows: list[dict[str, Any]]) -> None:
        nonlocal header_printed
        lines = output.table_lines(
            {"columnDefinitions": columns, "rows": rows}, table_options, header=not header_printed
        )
        if lines:
            header_printed = header_printed or not options.no_headers
            _write(tabs.format(lines))

    def show_object(obj: dict[str, Any]) -> None:
        obj.setdefault("apiVersion", info.api_version)
        obj.setdefault("kind", info.kind)
        _write(printer.one(obj))

    if not options.watch_only:
        if human:
            show_rows(found)
        else:
            for obj in found:
                show_object(obj)

    query = {**params, "watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true"}
    async for event_type, obj in _events(api, info.path(namespace), query, accept):
        if event_type == "BOOKMARK":
            continue
        if human:
            columns = obj.get("columnDefinitions") or columns
            show_rows(obj.get("rows") or [])
        else:
            show_object(obj)
    return 0


async def _events(api: Api, path: str, params: dict[str, str], accept: str) -> AsyncIterator[tuple[str, Any]]:
    """``(type, object)`` per watch event; an ERROR event raises its Status."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with api.session.get(
        api.url + path, params=params, headers={"Accept": accept}, timeout=timeout
    ) as resp:
        if resp.status >= 400:
            raise session.status_error(resp.status, await resp.read())
        buffer = b""
        async for chunk in resp.content.iter_any():
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                event = _decoder.decode(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise StatusError(
                        str(status.get("message") or "watch failed"),
                        int(status.get("code") or 500),
                        str(status.get("reason") or ""),
                    )
                yield str(event.get("type")), event.get("object") or {}


def _write(text: str) -> None:
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()
