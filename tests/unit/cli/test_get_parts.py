"""Pieces of ``kbox get`` and the session that need no cluster: ``-o`` parsing, ``--sort-by`` ordering
(numbers, quantities, text, missing values first, stable), and how ``session.run`` turns server
errors, connection failures, Ctrl-C and a closed pipe into one line or an exit code."""

from __future__ import annotations

from typing import Any

import aiohttp
import click
import pytest

from kbox.api.errors import StatusError
from kbox.cli.kube import get, jsonpath, session
from kbox.profile import free_port


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "table"),
        ("wide", "wide"),
        ("yaml", "yaml"),
        ("json", "json"),
        ("name", "name"),
        ("jsonpath={.a}", "jsonpath"),
        ("custom-columns=A:.a", "custom-columns"),
    ],
)
def test_parse_output(value: str | None, kind: str) -> None:
    assert get.parse_output(value).kind == kind


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fancy", "allowed formats are"),
        ("jsonpath", "no template given"),
        ("jsonpath={.a[", "error parsing jsonpath"),
        ("custom-columns=A", "expected <header>:<json-path-expr>"),
        ("jsonpath-file=/nonexistent/file", "/nonexistent/file"),
    ],
)
def test_parse_output_errors(value: str, message: str) -> None:
    with pytest.raises(click.ClickException, match=message):
        get.parse_output(value)


def _items(*values: Any) -> list[dict[str, Any]]:
    return [{"name": f"o{i}", **({} if v is None else {"v": v})} for i, v in enumerate(values)]


def _sorted_names(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in get.sort_objects(items, jsonpath.parse("{.v}"))]


def test_sort_by_numbers_quantities_text_and_missing() -> None:
    assert _sorted_names(_items(10, 2, 33)) == ["o1", "o0", "o2"]
    assert _sorted_names(_items("1Gi", "500Mi", "2")) == ["o2", "o1", "o0"]  # as quantities
    assert _sorted_names(_items("web", "api", "db")) == ["o1", "o2", "o0"]
    assert _sorted_names(_items("b", None, "a")) == ["o1", "o2", "o0"]  # missing first
    assert _sorted_names(_items("x", "x", "x")) == ["o0", "o1", "o2"]  # stable


def test_sort_rows_by_their_object() -> None:
    rows = [
        {"cells": ["b"], "object": {"metadata": {"name": "b"}}},
        {"cells": ["a"], "object": {"metadata": {"name": "a"}}},
    ]
    ordered = get.sort_objects(rows, jsonpath.parse("{.metadata.name}"), key=lambda row: row.get("object"))
    assert [r["cells"][0] for r in ordered] == ["a", "b"]


async def _raise(exc: BaseException) -> None:
    raise exc


def test_run_maps_errors_to_one_line() -> None:
    with pytest.raises(click.ClickException, match='pods "x" not found'):
        session.run(_raise(StatusError('pods "x" not found', 404, "NotFound")))
    with pytest.raises(click.ClickException, match="talking to the API server failed"):
        session.run(_raise(aiohttp.ServerDisconnectedError()))
    with pytest.raises(click.exceptions.Exit) as interrupted:
        session.run(_raise(KeyboardInterrupt()))
    assert interrupted.value.exit_code == 130


def test_status_error_from_bodies() -> None:
    status = session.status_error(
        409, b'{"kind":"Status","message":"conflict","reason":"Conflict","code":409}'
    )
    assert (status.message, status.reason, status.code) == ("conflict", "Conflict", 409)
    plain = session.status_error(502, b"bad gateway")
    assert (plain.message, plain.code) == ("bad gateway", 502)


def test_run_reports_a_refused_connection_in_one_line() -> None:
    async def connect_to_closed_port() -> None:
        async with aiohttp.ClientSession() as client:
            await client.get(f"http://127.0.0.1:{free_port()}/")

    with pytest.raises(click.ClickException, match=r"cannot reach the API server at 127\.0\.0\.1:\d+"):
        session.run(connect_to_closed_port())
