"""Printing objects the way kubectl prints them: server-side Tables, YAML, JSON, names, templates.

Human-readable output is the apiserver's ``meta.k8s.io/v1`` Table rendered as kubectl's table printer
does: upper-case headers, ``-o wide`` adds the priority-1 columns, ``-A`` a NAMESPACE column,
``--show-labels`` a LABELS column, and several kinds in one listing prefix names with ``kind/``. Columns
are aligned by a port of the behaviour of Go's text/tabwriter with kubectl's settings (minimum width 6,
padding 3, the last cell never padded, widths remembered across flushes so a watch stays aligned).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from kbox.cli.kube import jsonpath

TAB_MIN_WIDTH = 6
TAB_PADDING = 3
_BREAKS = "\f\n\r"


# -- alignment --------------------------------------------------------------------------------------


@dataclass
class TabWriter:
    """Aligns lines of cells as Go's tabwriter does with kubectl's settings (``get``'s by default).

    Every cell but the last of a line ends a column; a column's width is its widest cell plus the
    padding (at least the minimum width) over each run of consecutive lines that have that column.
    With ``remember`` widths only grow from one ``format`` call to the next (kubectl's
    ``RememberWidths``), which keeps rows printed one event at a time under the header.
    """

    remember: bool = True
    widths: list[int] = field(default_factory=list)
    min_width: int = TAB_MIN_WIDTH
    padding: int = TAB_PADDING

    def reset(self) -> None:
        self.widths = []

    def format(self, lines: list[list[str]]) -> str:
        out: list[str] = []
        self._block(lines, [], 0, len(lines), out)
        return "".join(out)

    def _block(
        self, lines: list[list[str]], widths: list[int], line0: int, line1: int, out: list[str]
    ) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            self._write(lines[line0:this], widths, out)
            line0 = this
            width = self.min_width
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + self.padding)
                this += 1
            if self.remember:
                if column < len(self.widths):
                    width = max(width, self.widths[column])
                    self.widths[column] = width
                else:
                    self.widths.append(width)
            widths.append(width)
            self._block(lines, widths, line0, this, out)
            widths.pop()
            line0 = this
        self._write(lines[line0:line1], widths, out)

    @staticmethod
    def _write(lines: list[list[str]], widths: list[int], out: list[str]) -> None:
        for line in lines:
            for index, cell in enumerate(line):
                out.append(cell)
                if index < len(widths) and index < len(line) - 1:
                    out.append(" " * (widths[index] - len(cell)))
            out.append("\n")


# -- cells ------------------------------------------------------------------------------------------


def escape_terminal(text: str) -> str:
    """kubectl's defence against terminal escapes in object data."""
    return text.replace("\x1b", "^[").replace("\r", "\\r")


def cell_text(value: Any) -> str:
    """A Table cell as kubectl prints it: multi-line text cut at the first break with ``...``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else jsonpath.go_sprint(value)
    cut = min((i for i in (text.find(c) for c in _BREAKS) if i >= 0), default=-1)
    if cut >= 0:
        return escape_terminal(text[:cut]) + "..."
    return escape_terminal(text) if "\x1b" in text else text


def format_labels(labels: dict[str, Any] | None) -> str:
    """``a=b,c=d`` sorted by key, or ``<none>``."""
    if not labels:
        return "<none>"
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


# -- tables -----------------------------------------------------------------------------------------


@dataclass
class TableOptions:
    wide: bool = False
    no_headers: bool = False
    with_namespace: bool = False
    show_labels: bool = False
    label_columns: tuple[str, ...] = ()  # -L: one column per label key
    kind_prefix: str = ""  # "pod", "deployment.apps": set when several kinds are printed together


def table_lines(table: dict[str, Any], options: TableOptions, *, header: bool) -> list[list[str]]:
    """The header (if ``header`` and there are rows) and one line of cells per row of a server Table."""
    columns = table.get("columnDefinitions") or []
    visible = [i for i, c in enumerate(columns) if options.wide or not c.get("priority")]
    name_column = -1
    if options.kind_prefix:
        name_column = next(
            (i for i, c in enumerate(columns) if c.get("format") == "name" and c.get("type") == "string"), -1
        )
    rows = table.get("rows") or []
    lines: list[list[str]] = []
    if header and rows and not options.no_headers:
        names = [str(columns[i].get("name", "")).upper() for i in visible]
        if options.with_namespace:
            names.insert(0, "NAMESPACE")
        names.extend(key.rsplit("/", 1)[-1].upper() for key in options.label_columns)
        if options.show_labels:
            names.append("LABELS")
        lines.append(names)
    for row in rows:
        cells = row.get("cells") or []
        line = []
        for i in visible:
            if i >= len(cells):
                continue
            text = cell_text(cells[i])
            if i == name_column:
                text = f"{options.kind_prefix}/{text}"
            line.append(text)
        metadata = (row.get("object") or {}).get("metadata")
        if options.with_namespace:
            line.insert(0, str((metadata or {}).get("namespace", "")))
        labels = (metadata or {}).get("labels") or {}
        line.extend(str(labels.get(key, "")) for key in options.label_columns)
        if options.show_labels:
            line.append(format_labels((metadata or {}).get("labels")) if metadata is not None else "")
        lines.append(line)
    return lines


# -- whole objects ----------------------------------------------------------------------------------


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Several objects as kubectl prints them together: a ``v1`` ``List``."""
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def to_json(obj: Any) -> str:
    """``-o json``: four-space indent, sorted keys, Go's escaping; ends with a newline."""
    text = json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False)
    return jsonpath.escape_html(text) + "\n"


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases, long lines kept whole."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_GO_BOOLS = frozenset({"y", "Y", "n", "N"})  # YAML 1.1 booleans Go's library knows and PyYAML does not


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # As Go's YAML library writes strings: text with line breaks as a literal block (PyYAML falls
    # back to quoting where a block cannot hold it exactly); text that would read back as another
    # type ("true", "12", a timestamp, "") in double quotes; the rest plain, or single-quoted where
    # plain is not allowed.
    style: str | None = None
    if "\n" in value:
        style = "|"
    else:
        tag = dumper.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
        if value in _GO_BOOLS or tag != "tag:yaml.org,2002:str":
            style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj: Any) -> str:
    """``-o yaml``: sorted keys, two-space indent, sequences flush with their key."""
    text: str = yaml.dump(
        obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 20
    )
    return text


def object_name(obj: dict[str, Any]) -> str:
    """``-o name``: ``pod/web``, ``deployment.apps/web``."""
    kind = str(obj.get("kind") or "<unknown>").lower()
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    name = (obj.get("metadata") or {}).get("name") or "<unknown>"
    return f"{kind}.{group}/{name}" if group else f"{kind}/{name}"
