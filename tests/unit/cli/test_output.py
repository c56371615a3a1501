"""Printing as kubectl prints: the tabwriter alignment (minimum width 6, padding 3, last cell never
padded, blocks of lines, remembered widths), Table decoration (wide columns, NAMESPACE, LABELS,
kind prefixes, header only with rows), cell text, and YAML/JSON/name output in Go's style."""

from __future__ import annotations

from typing import Any

from kbox.cli.kube import output

TABLE: dict[str, Any] = {
    "columnDefinitions": [
        {"name": "Name", "type": "string", "format": "name", "priority": 0},
        {"name": "Ready", "type": "string", "format": "", "priority": 0},
        {"name": "Nominated Node", "type": "string", "format": "", "priority": 1},
        {"name": "Age", "type": "string", "format": "", "priority": 0},
    ],
    "rows": [
        {
            "cells": ["web", "1/1", None, "5s"],
            "object": {"metadata": {"name": "web", "namespace": "default", "labels": {"b": "2", "a": "1"}}},
        },
        {
            "cells": ["a-much-longer-name", "0/1", "node-1", "10m"],
            "object": {"metadata": {"namespace": "ns2"}},
        },
    ],
}


def test_tabwriter_pads_to_widest_cell_plus_three_with_minimum_six() -> None:
    text = output.TabWriter().format([["NAME", "AGE"], ["a", "1s"], ["longer-name", "2s"]])
    assert text == "NAME          AGE\na             1s\nlonger-name   2s\n"
    assert output.TabWriter().format([["A", "B", "C"]]) == "A     B     C\n"


def test_tabwriter_aligns_each_block_of_lines_that_share_a_column() -> None:
    text = output.TabWriter(remember=False).format([["a", "b"], ["only"], ["ccccccc", "d"]])
    # "only" ends the first block: "a" is padded to the minimum width alone, not to "ccccccc".
    assert text == "a     b\nonly\nccccccc   d\n"


def test_tabwriter_remembers_widths_so_later_rows_stay_aligned() -> None:
    tabs = output.TabWriter()
    first = tabs.format([["NAME", "AGE"], ["a-long-pod-name", "1s"]])
    later = tabs.format([["b", "2s"]])
    assert first.splitlines()[0].index("AGE") == later.index("2s") == len("a-long-pod-name   ")
    grown = tabs.format([["an-even-longer-pod-name", "3s"]])
    assert grown == "an-even-longer-pod-name   3s\n"


def test_table_lines_default_wide_namespace_labels_and_kind() -> None:
    plain = output.table_lines(TABLE, output.TableOptions(), header=True)
    assert plain == [["NAME", "READY", "AGE"], ["web", "1/1", "5s"], ["a-much-longer-name", "0/1", "10m"]]
    wide = output.table_lines(TABLE, output.TableOptions(wide=True), header=True)
    assert wide[0] == ["NAME", "READY", "NOMINATED NODE", "AGE"] and wide[1][2] == ""
    decorated = output.table_lines(
        TABLE, output.TableOptions(with_namespace=True, show_labels=True, kind_prefix="pod"), header=True
    )
    assert decorated[0] == ["NAMESPACE", "NAME", "READY", "AGE", "LABELS"]
    assert decorated[1] == ["default", "pod/web", "1/1", "5s", "a=1,b=2"]
    assert decorated[2] == ["ns2", "pod/a-much-longer-name", "0/1", "10m", "<none>"]
    assert output.table_lines(TABLE, output.TableOptions(no_headers=True), header=True)[0][0] == "web"
    empty = {"columnDefinitions": TABLE["columnDefinitions"], "rows": []}
    assert output.table_lines(empty, output.TableOptions(), header=True) == []


def test_cell_text_cuts_multi_line_values_and_escapes_terminal_codes() -> None:
    assert output.cell_text("first\nsecond") == "first..."
    assert output.cell_text("\x1b[31mred") == "^[[31mred"
    assert output.cell_text(3) == "3" and output.cell_text(True) == "true" and output.cell_text(None) == ""
    assert output.cell_text(["a", "b"]) == "[a b]"


def test_yaml_quotes_as_go_does() -> None:
    text = output.to_yaml(
        {
            "when": "2026-01-01T00:00:00Z",
            "n": "no-quote-needed",
            "y": "true",
            "num": "12",
            "empty": "",
            "lead": " space",
            "script": "a\nb\n",
            "list": [{"k": 1}],
        }
    )
    assert text == (
        'empty: ""\n'
        "lead: ' space'\n"
        "list:\n"
        "- k: 1\n"
        '"n": no-quote-needed\n'
        'num: "12"\n'
        "script: |\n"
        "  a\n"
        "  b\n"
        'when: "2026-01-01T00:00:00Z"\n'
        '"y": "true"\n'
    )


def test_json_and_names() -> None:
    assert output.to_json({"b": "<", "a": {}}) == '{\n    "a": {},\n    "b": "\\u003c"\n}\n'
    assert output.object_name({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}}) == (
        "deployment.apps/w"
    )
    assert output.object_name({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}) == "pod/p"
    assert output.as_list([])["metadata"] == {"resourceVersion": ""}
