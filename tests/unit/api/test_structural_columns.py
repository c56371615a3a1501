"""``additionalPrinterColumns`` → the Table printer of a custom resource (kube-apiserver's CRD table
convertor): column definitions, cell typing, dates as ages, the default ``Age`` column, and a Table that
``kbox.api.tables.to_table`` builds from it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kbox.api import tables
from kbox.api.structural import printer_for_columns

NOW = datetime.datetime(2026, 1, 10, 12, 0, 0, tzinfo=datetime.UTC)

WIDGET = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w1", "namespace": "default", "creationTimestamp": "2026-01-10T11:55:00Z"},
    "spec": {
        "replicas": 3,
        "ratio": 2,
        "size": "M",
        "paused": False,
        "selector": {"matchLabels": {"app": "w"}},
        "hosts": ["a.example.com", "b.example.com"],
        "expires": "2026-01-08T12:00:00Z",
    },
    "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]},
}


def _columns() -> list[dict[str, Any]]:
    return [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
        {"name": "Size", "type": "string", "jsonPath": ".spec.size", "description": "T-shirt size"},
        {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused", "priority": 1},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Selector", "type": "string", "jsonPath": ".spec.selector", "priority": 1},
        {"name": "Host", "type": "string", "jsonPath": ".spec.hosts[*]"},
        {"name": "Expires", "type": "date", "jsonPath": ".spec.expires"},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "format": "date-time"},
    ]


def test_columns_follow_the_definitions_after_name() -> None:
    printer = printer_for_columns(_columns())
    definitions = printer.definitions()
    assert [(d["name"], d["type"], d["priority"]) for d in definitions] == [
        ("Name", "string", 0),
        ("Replicas", "integer", 0),
        ("Ratio", "number", 0),
        ("Size", "string", 0),
        ("Paused", "boolean", 1),
        ("Ready", "string", 0),
        ("Selector", "string", 1),
        ("Host", "string", 0),
        ("Expires", "date", 0),
        ("Missing", "string", 0),
        ("Age", "date", 0),
    ]
    assert definitions[0]["format"] == "name"
    assert definitions[3]["description"] == "T-shirt size"
    assert (
        definitions[1]["description"]
        == "Custom resource definition column (in JSONPath format): .spec.replicas"
    )
    assert definitions[-1]["format"] == "date-time"


def test_cells_are_typed_as_kube_apiserver_types_them() -> None:
    row = printer_for_columns(_columns()).row(WIDGET, NOW)
    assert row == [
        "w1",
        3,
        2.0,
        "M",
        False,
        "True",
        '{"matchLabels":{"app":"w"}}',
        "a.example.com",  # the first result only
        "2d",
        None,
        "5m",
    ]


@pytest.mark.parametrize(
    ("kind", "value", "cell"),
    [
        ("integer", 3.9, 3),
        ("integer", "3", None),
        ("number", 1, 1.0),
        ("boolean", "true", None),
        ("string", 5, "5"),
        ("string", 1.5, "1.5"),
        ("string", True, "true"),
        ("date", "not a date", "<invalid>"),
        ("date", "", "<unknown>"),
        ("date", 5, None),
        ("date", "2026-01-10T11:59:30+00:00", "30s"),
    ],
)
def test_cell_types(kind: str, value: Any, cell: Any) -> None:
    printer = printer_for_columns([{"name": "X", "type": kind, "jsonPath": ".spec.x"}])
    assert printer.row({"metadata": {"name": "a"}, "spec": {"x": value}}, NOW) == ["a", cell]


def test_no_columns_means_name_and_age() -> None:
    printer = printer_for_columns([])
    assert [d["name"] for d in printer.definitions()] == ["Name", "Age"]
    assert printer.definitions()[1]["type"] == "date"
    assert printer.row(WIDGET, NOW) == ["w1", "5m"]
    assert printer.row({"metadata": {"name": "x"}}, NOW) == ["x", None]


def test_declared_columns_do_not_get_an_implicit_age() -> None:
    printer = printer_for_columns([{"name": "Size", "type": "string", "jsonPath": ".spec.size"}])
    assert [d["name"] for d in printer.definitions()] == ["Name", "Size"]


def test_a_bad_json_path_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unrecognized column definition"):
        printer_for_columns([{"name": "X", "type": "string", "jsonPath": ".spec[?(@.a=="}])


def test_the_printer_makes_a_table() -> None:
    printer = printer_for_columns(_columns()[:3])
    table = tables.to_table(printer, [WIDGET], now=NOW, resource_version="7")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Replicas", "Ratio", "Size"]
    assert table["rows"][0]["cells"] == ["w1", 3, 2.0, "M"]
