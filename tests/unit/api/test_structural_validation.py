"""Custom-object validation against a CRD schema, with kube-apiserver's exact messages (v1.32).

Each case is a schema for one field, a value, and the ``<field>: <message>`` lines kube-apiserver
returns (kube-openapi's "in body" wording turned into field errors by apiextensions-apiserver). Cases
marked "upstream" repeat behaviour pinned by apiextensions-apiserver's own validation tests; the rest
follow the kube-openapi validators and ``field.Error`` formatting. Order is compared as a sorted set,
as upstream's tests do, except where a test says it checks order.
"""

from __future__ import annotations

from typing import Any

import pytest

from kbox.api import errors
from kbox.api.structural import Schema


def _schema(field: dict[str, Any], **root: Any) -> Schema:
    return Schema.from_schema({"type": "object", "properties": {"field": field}, **root})


def messages(schema: Schema, obj: dict[str, Any]) -> list[str]:
    return [f"{e.field}: {e.message()}" for e in schema.validate(obj)]


def check(field: dict[str, Any], value: Any) -> list[str]:
    return sorted(messages(_schema(field), {"field": value}))


# (name, field schema, value, expected lines)
CASES: list[tuple[str, dict[str, Any], Any, list[str]]] = [
    # --- types (upstream) ---
    (
        "object gets a string",
        {"type": "object"},
        "foo",
        ['field: Invalid value: "string": field in body must be of type object: "string"'],
    ),
    (
        "object gets an integer",
        {"type": "object"},
        42,
        ['field: Invalid value: "integer": field in body must be of type object: "integer"'],
    ),
    (
        "object gets a boolean",
        {"type": "object"},
        True,
        ['field: Invalid value: "boolean": field in body must be of type object: "boolean"'],
    ),
    (
        "object gets a number",
        {"type": "object"},
        1.2,
        ['field: Invalid value: "number": field in body must be of type object: "number"'],
    ),
    (
        "object gets an array",
        {"type": "object"},
        [],
        ['field: Invalid value: "array": field in body must be of type object: "array"'],
    ),
    (
        "integer gets a string",
        {"type": "integer"},
        "string",
        ['field: Invalid value: "string": field in body must be of type integer: "string"'],
    ),
    ("integer gets a whole float", {"type": "integer"}, 3.0, []),
    (
        "integer gets a fraction",
        {"type": "integer"},
        3.5,
        ['field: Invalid value: "number": field in body must be of type integer: "number"'],
    ),
    ("number gets an integer", {"type": "number"}, 3, []),
    (
        "string gets null",
        {"type": "string"},
        None,
        ['field: Invalid value: "null": field in body must be of type string: "null"'],
    ),
    ("nullable string gets null", {"type": "string", "nullable": True}, None, []),
    ("nullable without type takes anything", {"nullable": True}, {"a": [1]}, []),
    (
        "boolean gets a string",
        {"type": "boolean"},
        "true",
        ['field: Invalid value: "string": field in body must be of type boolean: "string"'],
    ),
    (
        "array gets an object",
        {"type": "array", "items": {"type": "string"}},
        {},
        ['field: Invalid value: "object": field in body must be of type array: "object"'],
    ),
    # --- int-or-string (upstream) ---
    ("int-or-string takes an integer", {"x-kubernetes-int-or-string": True}, 42, []),
    ("int-or-string takes a string", {"x-kubernetes-int-or-string": True}, "25%", []),
    (
        "int-or-string gets null",
        {"x-kubernetes-int-or-string": True},
        None,
        ['field: Invalid value: "null": field in body must be of type integer,string: "null"'],
    ),
    (
        "int-or-string gets a number",
        {"x-kubernetes-int-or-string": True},
        1.2,
        ['field: Invalid value: "number": field in body must be of type integer,string: "number"'],
    ),
    (
        "int-or-string with its anyOf gets a boolean",
        {
            "x-kubernetes-int-or-string": True,
            "nullable": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        },
        True,
        [
            '<nil>: Invalid value: "": "field" must validate at least one schema (anyOf)',
            'field: Invalid value: "boolean": field in body must be of type integer,string: "boolean"',
            'field: Invalid value: "boolean": field in body must be of type integer: "boolean"',
        ],
    ),
    (
        "int-or-string with its anyOf takes null when nullable",
        {
            "x-kubernetes-int-or-string": True,
            "nullable": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        },
        None,
        [],
    ),
    (
        "int-or-string with allOf of anyOf gets an object",
        {"x-kubernetes-int-or-string": True, "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}]},
        {},
        [
            '<nil>: Invalid value: "": "field" must validate all the schemas (allOf). None validated',
            '<nil>: Invalid value: "": "field" must validate at least one schema (anyOf)',
            'field: Invalid value: "object": field in body must be of type integer,string: "object"',
            'field: Invalid value: "object": field in body must be of type integer: "object"',
        ],
    ),
    # --- enum ---
    (
        "enum of strings",
        {"type": "string", "enum": ["S", "M"]},
        "XL",
        ['field: Unsupported value: "XL": supported values: "S", "M"'],
    ),
    (
        "enum of integers gets a string (upstream)",
        {"type": "integer", "enum": [1, 2]},
        "x",
        [
            'field: Invalid value: "string": field in body must be of type integer: "string"',
            'field: Unsupported value: "x": supported values: "1", "2"',
        ],
    ),
    (
        "enum of strings gets a boolean (upstream)",
        {"type": "string", "enum": ["a", "b"]},
        True,
        [
            'field: Invalid value: "boolean": field in body must be of type string: "boolean"',
            'field: Unsupported value: true: supported values: "a", "b"',
        ],
    ),
    ("enum of integers takes a whole float", {"type": "integer", "enum": [1, 2]}, 2.0, []),
    (
        "enum null value with nullable",
        {"type": "string", "nullable": True, "enum": ["a"]},
        None,
        ['field: Unsupported value: null: supported values: "a"'],
    ),
    (
        "enum of objects",
        {"type": "object", "enum": [{"a": 1}]},
        {"a": 2},
        ['field: Unsupported value: map[string]interface {}{"a":2}: supported values: "{\\"a\\":1}"'],
    ),
    # --- strings ---
    (
        "maxLength (upstream)",
        {"type": "string", "maxLength": 2},
        "abc",
        ["field: Too long: may not be more than 2 bytes"],
    ),
    ("maxLength counts characters, not bytes", {"type": "string", "maxLength": 2}, "éé", []),
    (
        "minLength",
        {"type": "string", "minLength": 3},
        "ab",
        ['field: Invalid value: "ab": field in body should be at least 3 chars long'],
    ),
    (
        "pattern",
        {"type": "string", "pattern": "^[a-z]+$"},
        "Abc",
        ["field: Invalid value: \"Abc\": field in body should match '^[a-z]+$'"],
    ),
    ("pattern is a search, not a full match", {"type": "string", "pattern": "[0-9]"}, "ab1c", []),
    (
        "pattern $ does not match before a final newline",
        {"type": "string", "pattern": "^a$"},
        "a\n",
        ["field: Invalid value: \"a\\n\": field in body should match '^a$'"],
    ),
    (
        "invalid pattern (upstream)",
        {"type": "string", "pattern": "+"},
        "foo",
        [
            'field: Invalid value: "foo": field in body should match \'+, but pattern is invalid: '
            "error parsing regexp: missing argument to repetition operator: `+`'"
        ],
    ),
    (
        "maxLength stops before the pattern",
        {"type": "string", "maxLength": 1, "pattern": "^[0-9]+$"},
        "ab",
        ["field: Too long: may not be more than 1 bytes"],
    ),
    # --- numbers ---
    (
        "maximum",
        {"type": "integer", "maximum": 65535},
        70000,
        ["field: Invalid value: 70000: field in body should be less than or equal to 65535"],
    ),
    (
        "exclusive maximum",
        {"type": "integer", "maximum": 10, "exclusiveMaximum": True},
        10,
        ["field: Invalid value: 10: field in body should be less than 10"],
    ),
    (
        "minimum (upstream wording)",
        {"type": "integer", "minimum": 10},
        3,
        ["field: Invalid value: 3: field in body should be greater than or equal to 10"],
    ),
    (
        "exclusive minimum on a float",
        {"type": "number", "minimum": 0.5, "exclusiveMinimum": True},
        0.5,
        ["field: Invalid value: 0.5: field in body should be greater than 0.5"],
    ),
    (
        "integer bound is truncated for integers",
        {"type": "integer", "maximum": 2.5},
        3,
        ["field: Invalid value: 3: field in body should be less than or equal to 2"],
    ),
    (
        "multipleOf",
        {"type": "integer", "multipleOf": 5},
        12,
        ["field: Invalid value: 12: field in body should be a multiple of 5"],
    ),
    ("multipleOf a fraction takes a float multiple", {"type": "number", "multipleOf": 0.1}, 0.3, []),
    (
        "multipleOf on a float",
        {"type": "number", "multipleOf": 0.5},
        1.2,
        ["field: Invalid value: 1.2: field in body should be a multiple of 0.5"],
    ),
    (
        "min and max both reported, minimum first",
        {"type": "integer", "minimum": 10, "maximum": 5, "multipleOf": 3},
        7,
        [
            "field: Invalid value: 7: field in body should be a multiple of 3",
            "field: Invalid value: 7: field in body should be greater than or equal to 10",
            "field: Invalid value: 7: field in body should be less than or equal to 5",
        ],
    ),
    (
        "float values print as Go does",
        {"type": "number", "maximum": 1e20},
        1e21,
        ["field: Invalid value: 1e+21: field in body should be less than or equal to 100000000000000000000"],
    ),
    # --- arrays ---
    (
        "maxItems (upstream)",
        {"type": "array", "maxItems": 2, "items": {"type": "string"}},
        ["a", "b", "c"],
        ["field: Too many: 3: must have at most 2 items"],
    ),
    (
        "minItems",
        {"type": "array", "minItems": 2, "items": {"type": "string"}},
        ["a"],
        ["field: Invalid value: 1: field in body should have at least 2 items"],
    ),
    (
        "uniqueItems",
        {"type": "array", "uniqueItems": True, "items": {"type": "integer"}},
        [1, 2, 1],
        ['field: Invalid value: "": field in body shouldn\'t contain duplicates'],
    ),
    (
        "item errors carry the index",
        {"type": "array", "items": {"type": "integer", "minimum": 0}},
        [1, -1],
        ["field[1]: Invalid value: -1: field[1] in body should be greater than or equal to 0"],
    ),
    # --- objects ---
    (
        "maxProperties (upstream)",
        {"type": "object", "maxProperties": 2},
        {"a": True, "b": True, "c": True},
        ["field: Too many: 3: must have at most 2 items"],
    ),
    (
        "minProperties",
        {"type": "object", "minProperties": 2},
        {"a": 1},
        ["field: Invalid value: 1: field in body should have at least 2 properties"],
    ),
    (
        "required",
        {
            "type": "object",
            "required": ["a", "b"],
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        },
        {"a": "x"},
        ["field.b: Required value"],
    ),
    (
        "additionalProperties schema",
        {"type": "object", "additionalProperties": {"type": "integer"}},
        {"x": 1, "y": "two"},
        ['field.y: Invalid value: "string": field.y in body must be of type integer: "string"'],
    ),
    (
        "additionalProperties false",
        {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}},
        {"a": "x", "b": 1},
        ['field: Invalid value: "b": field.b in body is a forbidden property'],
    ),
    # --- formats ---
    (
        "date-time",
        {"type": "string", "format": "date-time"},
        "yesterday",
        ['field: Invalid value: "yesterday": field in body must be of type date-time: "yesterday"'],
    ),
    ("date-time takes RFC 3339", {"type": "string", "format": "date-time"}, "2024-02-29T10:00:00Z", []),
    (
        "date",
        {"type": "string", "format": "date"},
        "2023-02-29",
        ['field: Invalid value: "2023-02-29": field in body must be of type date: "2023-02-29"'],
    ),
    (
        "uuid",
        {"type": "string", "format": "uuid"},
        "not-a-uuid",
        ['field: Invalid value: "not-a-uuid": field in body must be of type uuid: "not-a-uuid"'],
    ),
    (
        "email",
        {"type": "string", "format": "email"},
        "someone",
        ['field: Invalid value: "someone": field in body must be of type email: "someone"'],
    ),
    (
        "ipv4",
        {"type": "string", "format": "ipv4"},
        "10.0.0.256",
        ['field: Invalid value: "10.0.0.256": field in body must be of type ipv4: "10.0.0.256"'],
    ),
    (
        "ipv6",
        {"type": "string", "format": "ipv6"},
        "1.2.3.4",
        ['field: Invalid value: "1.2.3.4": field in body must be of type ipv6: "1.2.3.4"'],
    ),
    (
        "cidr",
        {"type": "string", "format": "cidr"},
        "10.0.0.0/33",
        ['field: Invalid value: "10.0.0.0/33": field in body must be of type cidr: "10.0.0.0/33"'],
    ),
    (
        "byte",
        {"type": "string", "format": "byte"},
        "not base64!",
        ['field: Invalid value: "not base64!": field in body must be of type byte: "not base64!"'],
    ),
    ("int32 is not checked by kube-apiserver", {"type": "integer", "format": "int32"}, 2**40, []),
    ("an unknown format is ignored", {"type": "string", "format": "color"}, "anything", []),
    (
        "format on a non-string fails the type check as upstream",
        {"type": "string", "format": "date"},
        5,
        ['field: Invalid value: "int64": field in body must be of type date: "int64"'],
    ),
    # --- combinators ---
    (
        "oneOf none valid",
        {"type": "integer", "oneOf": [{"minimum": 10}, {"maximum": 1}]},
        5,
        [
            '<nil>: Invalid value: "": "field" must validate one and only one schema (oneOf). Found none valid',
            "field: Invalid value: 5: field in body should be greater than or equal to 10",
        ],
    ),
    (
        "oneOf two valid",
        {"type": "integer", "oneOf": [{"minimum": 1}, {"maximum": 10}]},
        5,
        [
            '<nil>: Invalid value: "": "field" must validate one and only one schema (oneOf). Found 2 valid alternatives'
        ],
    ),
    (
        "not",
        {"type": "string", "not": {"enum": ["forbidden"]}},
        "forbidden",
        ['<nil>: Invalid value: "": "field" must not validate the schema (not)'],
    ),
    (
        "allOf one fails",
        {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 3}]},
        5,
        [
            '<nil>: Invalid value: "": "field" must validate all the schemas (allOf)',
            "field: Invalid value: 5: field in body should be less than or equal to 3",
        ],
    ),
    (
        "anyOf with required alternatives",
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
        },
        {},
        [
            '<nil>: Invalid value: "": "field" must validate at least one schema (anyOf)',
            "field.a: Required value",
        ],
    ),
]


@pytest.mark.parametrize(("field", "value", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_field_validation(field: dict[str, Any], value: Any, expected: list[str]) -> None:
    assert check(field, value) == sorted(expected)


def test_missing_optional_field_is_not_validated() -> None:
    assert messages(_schema({"type": "integer", "minimum": 5}), {}) == []


def test_errors_come_in_kube_openapi_order_per_node() -> None:
    """Type first, then enum; properties in schema order; required after the properties."""
    schema = Schema.from_schema(
        {
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "size": {"type": "string", "enum": ["S"]},
                        "replicas": {"type": "integer"},
                        "name": {"type": "string"},
                    },
                }
            },
        }
    )
    obj = {"spec": {"replicas": "three", "size": 3}}
    assert messages(schema, obj) == [
        'spec.size: Invalid value: "integer": spec.size in body must be of type string: "integer"',
        'spec.size: Unsupported value: 3: supported values: "S"',
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        "spec.name: Required value",
    ]
    assert messages(schema, {}) == ["spec: Required value"]


def test_field_error_reasons_are_kubernetes_cause_types() -> None:
    schema = Schema.from_schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["a"],
                    "properties": {
                        "a": {"type": "string"},
                        "size": {"type": "string", "enum": ["S"]},
                        "name": {"type": "string", "maxLength": 1},
                        "list": {"type": "array", "maxItems": 1, "items": {"type": "integer"}},
                        "n": {"type": "integer"},
                        "m": {"type": "integer", "maximum": 1},
                    },
                }
            },
        }
    )
    errs = schema.validate({"spec": {"size": "L", "name": "ab", "list": [1, 2], "n": "x", "m": 2}})
    assert [(e.field, e.type) for e in errs] == [
        ("spec.size", "FieldValueNotSupported"),
        ("spec.name", "FieldValueTooLong"),
        ("spec.list", "FieldValueTooMany"),
        ("spec.n", "FieldValueTypeInvalid"),
        ("spec.m", "FieldValueInvalid"),
        ("spec.a", "FieldValueRequired"),
    ]


def test_errors_make_a_kube_apiserver_422_status() -> None:
    schema = Schema.from_schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "replicas": {"type": "integer"},
                        "size": {"type": "string", "enum": ["S", "M"]},
                    },
                }
            },
        }
    )
    errs = schema.validate({"spec": {"replicas": "string", "size": "XL"}})
    status = errors.invalid_object("example.com", "Widget", "w1", errs).status()
    assert status["code"] == 422
    assert status["message"] == (
        'Widget.example.com "w1" is invalid: spec.replicas: Invalid value: "string": spec.replicas in body '
        'must be of type integer: "string"; spec.size: Unsupported value: "XL": supported values: "S", "M"'
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
            "field": "spec.replicas",
        },
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "XL": supported values: "S", "M"',
            "field": "spec.size",
        },
    ]


def test_status_validation_names_fields_relative_to_status() -> None:
    """The status subresource validates only ``status``, with its schema as the root, as upstream
    (``status.num: Invalid value: 15: num in body should be less than or equal to 10``)."""
    schema = Schema.from_schema(
        {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {"n": {"type": "integer"}}},
                "status": {"type": "object", "properties": {"num": {"type": "integer", "maximum": 10}}},
            },
        }
    )
    obj = {"spec": {"n": "bad"}, "status": {"num": 15}}
    assert [f"{e.field}: {e.message()}" for e in schema.validate_status(obj)] == [
        "status.num: Invalid value: 15: num in body should be less than or equal to 10"
    ]
    assert schema.validate_status({"spec": {}}) == []


def test_string_values_are_quoted_as_go_quotes_them() -> None:
    line = check({"type": "string", "pattern": "^x$"}, 'tab\there "quoted"')
    assert line == ['field: Invalid value: "tab\\there \\"quoted\\"": field in body should match \'^x$\'']


def test_root_level_value_validation_uses_nil_path() -> None:
    schema = Schema.from_schema(
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
        }
    )
    assert sorted(messages(schema, {"a": "x", "b": "y"})) == [
        '<nil>: Invalid value: "": "" must validate one and only one schema (oneOf). Found 2 valid alternatives'
    ]
    assert messages(schema, {"a": "x"}) == []


RATCHET = Schema.from_schema(
    {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": "self.replicas <= 5", "message": "at most five"}],
                "properties": {
                    "replicas": {"type": "integer", "maximum": 3},
                    "name": {"type": "string", "maxLength": 3},
                    "other": {"type": "string"},
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "port": {"type": "integer", "maximum": 100},
                            },
                        },
                    },
                    "plain": {"type": "array", "items": {"type": "integer", "maximum": 1}},
                },
            }
        },
    }
)


def _update(new_spec: dict[str, Any], old_spec: dict[str, Any]) -> list[str]:
    return [
        f"{e.field}: {e.message()}" for e in RATCHET.validate_update({"spec": new_spec}, {"spec": old_spec})
    ]


def test_update_ratchets_errors_in_unchanged_values() -> None:
    """An object stored under a looser schema can still be updated elsewhere (CRDValidationRatcheting):
    errors below unchanged values go, a rule on a value that changed still runs."""
    old = {"replicas": 9, "name": "toolong", "ports": [{"name": "a", "port": 500}], "plain": [5]}
    assert _update(old, old) == []
    relabelled = RATCHET.validate_update({"metadata": {"labels": {"a": "b"}}, "spec": old}, {"spec": old})
    assert relabelled == []
    assert _update({**old, "other": "changed"}, old) == ['spec: Invalid value: "object": at most five']


def test_update_reports_errors_in_changed_values() -> None:
    old = {"replicas": 9, "name": "toolong", "ports": [{"name": "a", "port": 500}]}
    new = {
        "replicas": 8,
        "name": "toolong",
        "ports": [{"name": "b", "port": 500}, {"name": "a", "port": 500}],
    }
    assert _update(new, old) == [
        "spec.replicas: Invalid value: 8: spec.replicas in body should be less than or equal to 3",
        "spec.ports[0].port: Invalid value: 500: spec.ports[0].port in body should be less than or equal to 100",
        'spec: Invalid value: "object": at most five',
    ]


def test_items_of_atomic_lists_do_not_correlate() -> None:
    assert _update({"replicas": 1, "plain": [5, 0]}, {"replicas": 1, "plain": [5]}) == [
        "spec.plain[0]: Invalid value: 5: spec.plain[0] in body should be less than or equal to 1"
    ]


def test_create_is_never_ratcheted() -> None:
    assert [e.field for e in RATCHET.validate({"spec": {"replicas": 9}})] == ["spec.replicas", "spec"]
