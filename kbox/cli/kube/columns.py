"""``-o custom-columns=NAME:.metadata.name,...`` and ``-o custom-columns-file=...``: kubectl's column specs.

Each column is a header and a JSONPath expression written loosely (``metadata.name``,
``.metadata.name`` or ``{.metadata.name}``); a cell holds every value found, comma separated and
printed as Go's ``fmt.Sprint`` would, or ``<none>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kbox.cli.kube import jsonpath
from kbox.cli.kube.jsonpath import JSONPathError

_RELAXED = re.compile(r"^\{\.?([^{}]+)\}$|^\.?([^{}]+)$")


def relaxed(expression: str) -> str:
    """``metadata.name``, ``.metadata.name`` or ``{metadata.name}`` as the template ``{.metadata.name}``."""
    match = _RELAXED.match(expression)
    if match is None:
        raise JSONPathError(
            "unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or "
            "'{.name1.name2}'"
        )
    return "{." + (match.group(1) or match.group(2)) + "}"


@dataclass(frozen=True)
class Column:
    header: str
    nodes: tuple[Any, ...]


def parse_columns(spec: str) -> list[Column]:
    """``NAME:.metadata.name,NODE:.spec.nodeName``: one column per comma-separated pair."""
    if not spec:
        raise JSONPathError("custom-columns format specified but no custom columns given")
    columns = []
    for part in spec.split(","):
        header, sep, expression = part.partition(":")
        if not sep:
            raise JSONPathError(f"unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>")
        columns.append(Column(header, tuple(jsonpath.parse(relaxed(expression)))))
    return columns


def parse_columns_file(text: str) -> list[Column]:
    """A custom-columns file: a line of headers, then a line of expressions, both whitespace separated."""
    lines = text.splitlines()
    if len(lines) < 2:
        raise JSONPathError(
            "invalid template, expected one line of space separated headers and one line of column specs"
        )
    headers, specs = lines[0].split(), lines[1].split()
    if len(headers) != len(specs):
        raise JSONPathError(
            f"number of headers ({len(headers)}) and field specifications ({len(specs)}) don't match"
        )
    return [Column(h, tuple(jsonpath.parse(relaxed(s)))) for h, s in zip(headers, specs, strict=True)]


def column_cell(column: Column, obj: Any) -> str:
    """One custom-columns cell: every value the expression finds, comma separated; none is ``<none>``."""
    values: list[Any] = []
    for node in column.nodes:
        if isinstance(node, jsonpath.Action):
            values.extend(jsonpath.find(node.steps, obj))
    if not values:
        return "<none>"
    return ",".join(jsonpath.go_sprint(v) for v in values)
