"""kubectl's JSONPath templates: fields, wildcards, indexes and slices, unions, recursive descent,
filters, literals, range/end, how results print (space separated, JSON for maps and lists, Go's
number formatting), missing keys, and the errors kubectl gives for bad templates or bad indexes.
Custom-columns specs (relaxed expressions, ``<none>``, Go's ``fmt.Sprint`` of maps) are covered too."""

from __future__ import annotations

from typing import Any

import pytest

from kbox.cli.kube import columns, jsonpath
from kbox.cli.kube.jsonpath import JSONPathError

POD_LIST: dict[str, Any] = {
    "kind": "List",
    "items": [
        {
            "metadata": {"name": "web", "labels": {"app": "web", "a.b/c": "dotted"}},
            "spec": {"containers": [{"name": "c1", "image": "nginx"}, {"name": "c2", "image": "redis"}]},
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                ],
                "restarts": 3,
                "ratio": 0.5,
            },
        },
        {
            "metadata": {"name": "db"},
            "spec": {"containers": [{"name": "main", "image": "postgres"}]},
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "Ready", "status": "False"}],
                "restarts": 0,
            },
        },
    ],
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{.kind}", "List"),
        ("{$.kind}", "List"),
        ("{.items[*].metadata.name}", "web db"),
        ("{.items[0].metadata.name}", "web"),
        ("{.items[-1].metadata.name}", "db"),
        ("{.items[0:1].metadata.name}", "web"),
        ("{.items[0].spec.containers[0:2:2].name}", "c1"),
        ("{.items[*].spec.containers[*].image}", "nginx redis postgres"),
        ("{.items[0].spec.containers[0,1].name}", "c1 c2"),
        ("{.items[0].metadata['name','labels']}", 'web {"a.b/c":"dotted","app":"web"}'),
        ("{.items[0].metadata.labels['a.b/c']}", "dotted"),
        ("{.items[0].metadata.labels.a\\.b/c}", "dotted"),
        ("{.items[0].metadata.labels.*}", "web dotted"),
        ("{..image}", "nginx redis postgres"),
        ('{.items[?(@.status.phase=="Running")].metadata.name}', "web"),
        ("{.items[?(@.status.phase!='Running')].metadata.name}", "db"),
        ("{.items[?(@.status.restarts>1)].metadata.name}", "web"),
        ("{.items[?(@.status.restarts<=0)].metadata.name}", "db"),
        ("{.items[?(@.status.ratio)].metadata.name}", "web"),
        ('{.items[0].status.conditions[?(@.type=="Ready")].status}', "True"),
        ("{.items[0].status.restarts}", "3"),
        ("{.items[0].status.ratio}", "0.5"),
        ("{.items[1].status.conditions}", '[{"status":"False","type":"Ready"}]'),
        ("name: {.items[0].metadata.name}!", "name: web!"),
        ('{"a\\tb\\n"}', "a\tb\n"),
        ("{.items[0].nothing}", ""),
        ("{.items[*].nothing.deeper}", ""),
        ("{range .items[*]}{.metadata.name}{'\\n'}{end}", "web\ndb\n"),
        (
            "{range .items[*]}[{.metadata.name}:{range .spec.containers[*]}{.name},{end}]{end}",
            "[web:c1,c2,][db:main,]",
        ),
        ("{range .items[?(@.metadata.name=='none')]}x{end}after", "after"),
        ("plain text", "plain text"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert jsonpath.render(template, POD_LIST) == expected


def test_whole_object_prints_as_compact_json_with_sorted_keys_and_go_escapes() -> None:
    assert jsonpath.render("{@}", {"b": "<x>", "a": [1, 2.5, True, None]}) == (
        '{"a":[1,2.5,true,null],"b":"\\u003cx\\u003e"}'
    )


def test_missing_keys_are_errors_when_not_allowed() -> None:
    with pytest.raises(JSONPathError, match="nothing is not found"):
        jsonpath.render("{.items[0].nothing}", POD_LIST, allow_missing=False)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{.items[5].metadata.name}", "array index out of bounds: index 5, length 2"),
        ("{.items[0:9]}", "array index out of bounds"),
        ("{.items[0:2:0]}", "step must be > 0"),
        ("{.kind[0]}", "is not array or slice"),
        ("{.kind[?(@.a)]}", "cannot be filtered"),
        ("{.items[", "unclosed action"),
        ("{.items[0}", "unterminated array"),
        ("{.items[x]}", "invalid array index x"),
        ("{end}", "not in range"),
        ("{range .items[*]}{.metadata.name}", "unclosed range"),
        ("{.items[?(@.a=~'x')]}", "unrecognized filter operator ="),
        ("{foo}", "unrecognized identifier foo"),
        ("{....name}", "invalid multiple recursive descent"),
        ('{"open}', "unclosed action"),
        ("{.items[?(@.metadata.name==1)].x}", "incompatible types for comparison"),
    ],
)
def test_errors(template: str, message: str) -> None:
    with pytest.raises(JSONPathError, match=message.replace("[", r"\[").replace("?", r"\?")):
        jsonpath.render(template, POD_LIST)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (0.5, "0.5"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-07"),
        (-2.25, "-2.25"),
        (123456789.0, "123456789"),
    ],
)
def test_go_float(value: float, expected: str) -> None:
    assert jsonpath.go_float(value) == expected


def test_go_sprint_prints_maps_and_lists_as_go_does() -> None:
    assert jsonpath.go_sprint({"b": 1, "a": ["x", True]}) == "map[a:[x true] b:1]"
    assert jsonpath.go_sprint(None) == "<nil>"


@pytest.mark.parametrize(
    ("expression", "template"),
    [
        ("metadata.name", "{.metadata.name}"),
        (".metadata.name", "{.metadata.name}"),
        ("{metadata.name}", "{.metadata.name}"),
        ("{.metadata.name}", "{.metadata.name}"),
    ],
)
def test_relaxed_expressions(expression: str, template: str) -> None:
    assert columns.relaxed(expression) == template


def test_custom_columns_cells() -> None:
    spec = columns.parse_columns(
        "NAME:.metadata.name,IMAGES:.spec.containers[*].image,LABELS:.metadata.labels,X:.x"
    )
    assert [c.header for c in spec] == ["NAME", "IMAGES", "LABELS", "X"]
    cells = [columns.column_cell(c, POD_LIST["items"][0]) for c in spec]
    assert cells == ["web", "nginx,redis", "map[a.b/c:dotted app:web]", "<none>"]


def test_custom_columns_file_and_bad_specs() -> None:
    spec = columns.parse_columns_file("NAME   PHASE\n.metadata.name   {.status.phase}\n")
    assert [columns.column_cell(c, POD_LIST["items"][1]) for c in spec] == ["db", "Pending"]
    with pytest.raises(JSONPathError, match="expected <header>:<json-path-expr>"):
        columns.parse_columns("NAME")
    with pytest.raises(JSONPathError, match="don't match"):
        columns.parse_columns_file("A B\n.a\n")
    with pytest.raises(JSONPathError, match="no custom columns"):
        columns.parse_columns("")
