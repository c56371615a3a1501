"""``additionalPrinterColumns``: the Table ``kubectl get`` prints for a custom resource.

As kube-apiserver's CRD table convertor: a ``Name`` column first, then one column per definition, in
order; a version with no columns gets the single default ``Age`` column (``.metadata.creationTimestamp``
as a ``date``), and a version that declares columns gets no ``Age`` unless it declares one (most
operator CRDs do). Each cell is the first value the JSONPath finds, typed by the column:

* ``string``: printed as kubectl's JSONPath prints it (maps and lists as JSON);
* ``integer``/``number``: the number (a float in an integer column is truncated), else empty;
* ``boolean``: the boolean, else empty;
* ``date``: an RFC 3339 string shown as an age like ``AGE`` (``5m``), ``<invalid>`` when unreadable,
  ``<unknown>`` when empty; anything else is empty.

A missing field is an empty cell (``null``), which kubectl prints as ``<none>``. A JSONPath that
cannot be parsed raises ``ValueError`` (the CRD validation refuses such a column).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from typing import Any

from kbox.api.tables import Column, Printer, human_duration
from kbox.cli.kube import jsonpath

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generated name automatically. Name is primarily "
    "intended for creation idempotence and configuration definition. Cannot be updated."
)
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "Populated by the system. Read-only. Null for lists."
)
DEFAULT_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": AGE_DESCRIPTION,
    }
]

Cell = Callable[[dict[str, Any], datetime.datetime], Any]


def _parse_time(text: str) -> datetime.datetime:
    """``metav1.Time``'s query-parameter parse: RFC 3339 with a zone."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def _date_cell(value: Any, now: datetime.datetime) -> Any:
    if not isinstance(value, str):
        return None
    if value in ("", "null"):
        return "<unknown>"
    try:
        moment = _parse_time(value)
    except ValueError:
        return "<invalid>"
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)
    return human_duration(now - moment)


def _typed_cell(kind: str, value: Any, now: datetime.datetime) -> Any:
    """``cellForJSONValue``: the value when it fits the column type, else ``None``."""
    if value is None:
        return None
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer" and is_number:
        if isinstance(value, float):
            return math.trunc(value) if math.isfinite(value) else None
        return value
    if kind == "number" and is_number:
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date":
        return _date_cell(value, now)
    return None


def _text(value: Any) -> str:
    """How kubectl's JSONPath prints one result: strings as they are, maps and lists as JSON."""
    if isinstance(value, dict | list):
        return jsonpath.go_json(value)
    return jsonpath.go_sprint(value)


def _column_cell(path: str, kind: str) -> Cell:
    template = jsonpath.parse("{" + path + "}")
    actions = [node for node in template if isinstance(node, jsonpath.Action)]
    if len(actions) != 1:
        raise ValueError(f"unrecognized column definition {path!r}")
    steps = tuple(actions[0].steps)

    def cell(obj: dict[str, Any], now: datetime.datetime) -> Any:
        try:
            found = jsonpath.find(steps, obj)
        except jsonpath.JSONPathError:
            return None
        if not found:
            return None
        value = found[0]
        if kind == "string":
            return None if value is None else _text(value)
        return _typed_cell(kind, value, now)

    return cell


def printer_for_columns(columns: list[dict[str, Any]]) -> Printer:
    """The Table printer for one CRD version's ``additionalPrinterColumns``."""
    definitions = columns or DEFAULT_COLUMNS
    headers = [Column("Name", type="string", format="name", description=NAME_DESCRIPTION)]
    cells: list[Cell] = []
    for definition in definitions:
        path = str(definition.get("jsonPath") or "")
        kind = str(definition.get("type") or "string")
        try:
            cells.append(_column_cell(path, kind))
        except jsonpath.JSONPathError as exc:
            raise ValueError(f"unrecognized column definition {path!r}") from exc
        description = str(definition.get("description") or "")
        headers.append(
            Column(
                str(definition.get("name") or ""),
                type=kind,
                format=str(definition.get("format") or ""),
                description=description or f"Custom resource definition column (in JSONPath format): {path}",
                priority=int(definition.get("priority") or 0),
            )
        )

    def row(obj: dict[str, Any], now: datetime.datetime) -> list[Any]:
        name = ((obj.get("metadata") or {}).get("name")) or ""
        return [name, *(cell(obj, now) for cell in cells)]

    return Printer(headers, row)
