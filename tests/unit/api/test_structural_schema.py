"""The schema itself: structural checks, the CRD validation's schema rules, warnings, list types.

Expected lines are kube-apiserver's (apiextensions-apiserver v1.32 integration tests pin most of them:
"forbidden in nested value validation", "missing types without extensions", "structural incomplete").
Also covered: reading a CRD version (``ValueError`` for what cannot be a schema), the warning for
patterns kbox cannot run, list-set/list-map duplicate detection, and the merge shape handed to
server-side apply. CEL rules have their own file (test_structural_cel.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kbox.api.structural import Schema

P = "spec.versions[0].schema.openAPIV3Schema"


def load(text: str) -> Schema:
    return Schema.from_schema(yaml.safe_load(text))


def violations(text: str) -> list[str]:
    return load(text).structural_errors(P)


def test_a_structural_schema_has_no_violations() -> None:
    assert (
        violations(
            """
type: object
properties:
  spec:
    type: object
    properties:
      port: {x-kubernetes-int-or-string: true, anyOf: [{type: integer}, {type: string}]}
      anything: {x-kubernetes-preserve-unknown-fields: true}
      template: {type: object, x-kubernetes-embedded-resource: true, x-kubernetes-preserve-unknown-fields: true}
  metadata:
    type: object
    properties:
      name: {type: string, maxLength: 10}
"""
        )
        == []
    )


def test_forbidden_in_nested_value_validation() -> None:
    found = violations(
        """
type: object
properties:
  foo:
    type: string
not:
  type: string
  additionalProperties: true
  title: hello
  description: world
  nullable: true
allOf:
- properties:
    foo:
      type: string
      additionalProperties: true
      title: hello
      description: world
      nullable: true
anyOf:
- items:
    type: string
    additionalProperties: true
    title: hello
    description: world
    nullable: true
"""
    )
    expected = [
        f"{P}.anyOf[0].items.type: Forbidden: must be empty to be structural",
        f"{P}.anyOf[0].items.additionalProperties: Forbidden: must be undefined to be structural",
        f"{P}.anyOf[0].items.title: Forbidden: must be empty to be structural",
        f"{P}.anyOf[0].items.description: Forbidden: must be empty to be structural",
        f"{P}.anyOf[0].items.nullable: Forbidden: must be false to be structural",
        f"{P}.allOf[0].properties[foo].type: Forbidden: must be empty to be structural",
        f"{P}.allOf[0].properties[foo].additionalProperties: Forbidden: must be undefined to be structural",
        f"{P}.allOf[0].properties[foo].title: Forbidden: must be empty to be structural",
        f"{P}.allOf[0].properties[foo].description: Forbidden: must be empty to be structural",
        f"{P}.allOf[0].properties[foo].nullable: Forbidden: must be false to be structural",
        f"{P}.not.type: Forbidden: must be empty to be structural",
        f"{P}.not.additionalProperties: Forbidden: must be undefined to be structural",
        f"{P}.not.title: Forbidden: must be empty to be structural",
        f"{P}.not.description: Forbidden: must be empty to be structural",
        f"{P}.not.nullable: Forbidden: must be false to be structural",
        f"{P}.items: Required value: because it is defined in {P}.anyOf[0].items",
    ]
    assert sorted(found) == sorted(expected)
    assert found == sorted(found)  # upstream sorts by the full text


def test_missing_types_without_extensions() -> None:
    found = violations(
        """
properties:
  foo:
    properties:
      a: {}
  abc:
    additionalProperties:
      properties:
        a:
          items:
            additionalProperties:
              items:
"""
    )
    assert found == sorted(
        [
            f"{P}.properties[foo].properties[a].type: Required value: must not be empty for specified object fields",
            f"{P}.properties[foo].type: Required value: must not be empty for specified object fields",
            f"{P}.properties[abc].additionalProperties.properties[a].items.additionalProperties.type: Required value: "
            "must not be empty for specified object fields",
            f"{P}.properties[abc].additionalProperties.properties[a].items.type: Required value: "
            "must not be empty for specified array items",
            f"{P}.properties[abc].additionalProperties.properties[a].type: Required value: "
            "must not be empty for specified object fields",
            f"{P}.properties[abc].additionalProperties.type: Required value: must not be empty for specified object fields",
            f"{P}.properties[abc].type: Required value: must not be empty for specified object fields",
            f"{P}.type: Required value: must not be empty at the root",
        ]
    )


def test_structural_incompleteness() -> None:
    found = violations(
        """
type: object
properties:
  b:
    type: object
    properties:
      b:
        type: array
        items: {type: string}
  c:
    type: array
    items:
      type: object
not:
  properties:
    a: {}
    b:
      not:
        properties:
          a: {}
          b:
            items: {}
    c:
      items:
        not:
          items:
            properties:
              a: {}
allOf:
- properties:
    e: {}
"""
    )
    assert found == [
        f"{P}.properties[a]: Required value: because it is defined in {P}.not.properties[a]",
        f"{P}.properties[b].properties[a]: Required value: because it is defined in {P}.not.properties[b].not.properties[a]",
        f"{P}.properties[c].items.items: Required value: because it is defined in "
        f"{P}.not.properties[c].items.not.items",
        f"{P}.properties[e]: Required value: because it is defined in {P}.allOf[0].properties[e]",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('type: ""', [f"{P}.type: Required value: must not be empty at the root"]),
        ("type: integer", [f'{P}.type: Invalid value: "integer": must be object at the root']),
        (
            "type: object\nadditionalProperties: false",
            [f"{P}.additionalProperties: Forbidden: must not be used at the root"],
        ),
        (
            "type: object\nproperties: {foo: {type: string, pattern: '+'}}",
            [
                f'{P}.properties[foo].pattern: Invalid value: "+": must be a valid regular expression, '
                "but isn't: error parsing regexp: missing argument to repetition operator: `+`"
            ],
        ),
        (
            "type: object\nproperties: {metadata: {type: object, properties: {labels: {type: object}}}}",
            [
                f"{P}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, "
                "but metadata is implicitly specified"
            ],
        ),
        (
            "type: object\nproperties: {kind: {type: integer}, metadata: {type: string}}",
            [
                f'{P}.properties[kind].type: Invalid value: "integer": must be string',
                f'{P}.properties[metadata].type: Invalid value: "string": must be object',
            ],
        ),
        (
            "type: object\nproperties: {t: {type: object, x-kubernetes-embedded-resource: true}}",
            [
                f"{P}.properties[t].properties: Required value: must not be empty if x-kubernetes-embedded-resource "
                "is true without x-kubernetes-preserve-unknown-fields"
            ],
        ),
        (
            "type: object\nproperties: {a: {x-kubernetes-int-or-string: true, x-kubernetes-preserve-unknown-fields: true}}",
            [
                f"{P}.properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: true: "
                "must be false if x-kubernetes-int-or-string is true"
            ],
        ),
        (
            "type: object\nproperties: {a: {type: array}}",
            [f"{P}.properties[a].items: Required value: must be specified"],
        ),
        (
            "type: object\nproperties: {a: {type: string}}\nanyOf: [{x-kubernetes-validations: [{rule: 'true'}]}]",
            [f"{P}.anyOf[0].x-kubernetes-validations: Forbidden: must be empty to be structural"],
        ),
        (
            "type: object\nproperties: {a: {type: object, properties: {metadata: {type: object}}}}",
            [],
        ),
    ],
)
def test_structural_rules(text: str, expected: list[str]) -> None:
    assert violations(text) == expected


def _schema_errors(text: str) -> list[str]:
    return [f"{e.field}: {e.message()}" for e in load(text).schema_errors(P)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "type: object\nproperties: {a: {type: array, uniqueItems: true, items: {type: string}}}",
            [
                f"{P}.properties[a].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime "
                "complexity becomes quadratic"
            ],
        ),
        (
            "type: object\nproperties: {a: {type: object, properties: {b: {type: string}}, "
            "additionalProperties: {type: string}}}",
            [
                f"{P}.properties[a].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
            ],
        ),
        (
            "type: object\nproperties: {a: {type: object, x-kubernetes-preserve-unknown-fields: false}}",
            [
                f"{P}.properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"
            ],
        ),
        (
            "type: object\nproperties: {a: {type: string, x-kubernetes-list-type: set}}",
            [
                f'{P}.properties[a].type: Invalid value: "string": must be array if x-kubernetes-list-type is specified'
            ],
        ),
        (
            "type: object\nproperties: {a: {type: array, x-kubernetes-list-type: bag, items: {type: string}}}",
            [
                f'{P}.properties[a].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map"'
            ],
        ),
        (
            "type: object\nproperties: {a: {type: object, x-kubernetes-map-type: merge}}",
            [
                f'{P}.properties[a].x-kubernetes-map-type: Unsupported value: "merge": supported values: "atomic", "granular"'
            ],
        ),
        (
            "type: object\nproperties: {a: {type: array, x-kubernetes-list-type: map, "
            "items: {type: object, properties: {name: {type: string}}}}}",
            [
                f"{P}.properties[a].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
            ],
        ),
        (
            "type: object\nproperties: {a: {type: array, x-kubernetes-list-type: map, x-kubernetes-list-map-keys: [name], "
            "items: {type: object, properties: {name: {type: string}}}}}",
            [
                f"{P}.properties[a].items.properties[name].default: Required value: this property is in "
                "x-kubernetes-list-map-keys, so it must have a default or be a required property"
            ],
        ),
        (
            "type: object\nproperties: {a: {type: array, x-kubernetes-list-map-keys: [name], "
            "items: {type: object, required: [name], properties: {name: {type: string}}}}}",
            [
                f"{P}.properties[a].x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty"
            ],
        ),
        (
            "type: object\nproperties: {a: {type: string, $ref: '#/definitions/x'}}",
            None,
        ),
        (
            "type: object\nproperties: {a: {type: 'null'}}",
            [
                f'{P}.properties[a].type: Unsupported value: "null": supported values: "array", "boolean", "integer", '
                '"number", "object", "string"'
            ],
        ),
    ],
)
def test_crd_schema_rules(text: str, expected: list[str] | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match=r"\$ref"):
            load(text)
        return
    assert _schema_errors(text) == expected


def test_from_crd_version_reads_the_schema_or_says_why_not() -> None:
    version = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object"}},
    }
    assert Schema.from_crd_version(version).structural_errors() == []
    with pytest.raises(ValueError, match=r"no schema\.openAPIV3Schema"):
        Schema.from_crd_version({"name": "v1"})
    with pytest.raises(ValueError, match=r"openAPIV3Schema\.properties: must be an object"):
        Schema.from_crd_version(
            {"name": "v1", "schema": {"openAPIV3Schema": {"type": "object", "properties": []}}}
        )
    with pytest.raises(ValueError, match=r"properties\[a\]\.required: must be a list of strings"):
        Schema.from_schema({"type": "object", "properties": {"a": {"type": "object", "required": "x"}}})
    with pytest.raises(ValueError, match=r"items: must be a schema object"):
        Schema.from_schema({"type": "array", "items": [{"type": "string"}]})


def test_patterns_kbox_cannot_run_are_warned_about_and_not_enforced() -> None:
    schema = load("type: object\nproperties: {a: {type: string, pattern: '^\\p{Greek}+$'}}")
    assert schema.warnings() == [
        "pattern '^\\\\p{Greek}+$' is not enforced by kbox: the Unicode class \\p{Greek} is not supported by kbox"
    ]
    assert schema.validate({"a": "abc"}) == []


LISTS = """
type: object
properties:
  spec:
    type: object
    properties:
      tags:
        type: array
        x-kubernetes-list-type: set
        items: {type: string}
      ports:
        type: array
        x-kubernetes-list-type: map
        x-kubernetes-list-map-keys: [port, protocol]
        items:
          type: object
          required: [port]
          properties:
            port: {type: integer}
            protocol: {type: string, default: TCP}
            name: {type: string}
      byName:
        type: object
        additionalProperties:
          type: array
          x-kubernetes-list-type: map
          x-kubernetes-list-map-keys: [name]
          items:
            type: object
            required: [name]
            properties: {name: {type: string}}
      plain:
        type: array
        items: {type: string}
      labels:
        type: object
        x-kubernetes-map-type: atomic
        additionalProperties: {type: string}
"""


def _lines(schema: Schema, obj: dict[str, Any]) -> list[str]:
    return [f"{e.field}: {e.message()}" for e in schema.validate(obj)]


def test_list_set_and_map_duplicates_are_reported_at_their_first_repeat() -> None:
    schema = load(LISTS)
    obj = {
        "spec": {
            "tags": ["a", "b", "a", "a", "b"],
            "ports": [
                {"port": 80, "protocol": "TCP"},
                {"port": 80, "protocol": "UDP"},
                {"port": 80, "protocol": "TCP", "name": "again"},
            ],
            "byName": {"x": [{"name": "n"}, {"name": "n"}]},
            "plain": ["a", "a"],
        }
    }
    assert _lines(schema, obj) == [
        'spec.tags[2]: Duplicate value: "a"',
        'spec.tags[4]: Duplicate value: "b"',
        'spec.ports[2]: Duplicate value: map[string]interface {}{"port":80, "protocol":"TCP"}',
        'spec.byName[x][1]: Duplicate value: map[string]interface {}{"name":"n"}',
    ]


def test_list_map_defaults_make_keys_equal() -> None:
    schema = load(LISTS)
    obj: dict[str, Any] = {"spec": {"ports": [{"port": 53}, {"port": 53, "protocol": "TCP"}]}}
    schema.normalize(obj)
    assert _lines(schema, obj) == [
        'spec.ports[1]: Duplicate value: map[string]interface {}{"port":53, "protocol":"TCP"}'
    ]


def test_list_map_items_must_be_objects() -> None:
    schema = load(LISTS)
    lines = _lines(schema, {"spec": {"ports": ["x", {"port": 1}]}})
    assert 'spec.ports[0]: Invalid value: "x": must be an object for an array of list-type map' in lines


def test_update_keeps_old_duplicates_from_blocking() -> None:
    schema = load(LISTS)
    old = {"spec": {"tags": ["a", "a"]}}
    new = {"spec": {"tags": ["a", "a", "b"]}}
    assert schema.validate_update(new, old) == []
    assert [e.field for e in schema.validate_update(new, {"spec": {}})] == ["spec.tags[1]"]


def test_list_types_is_the_merge_shape_for_server_side_apply() -> None:
    shape = load(LISTS).list_types()
    spec = shape["properties"]["spec"]["properties"]
    assert spec["tags"] == {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}
    assert spec["ports"]["x-kubernetes-list-type"] == "map"
    assert spec["ports"]["x-kubernetes-list-map-keys"] == ["port", "protocol"]
    assert spec["ports"]["items"]["properties"]["protocol"] == {"type": "string"}
    assert spec["byName"]["additionalProperties"]["x-kubernetes-list-map-keys"] == ["name"]
    assert spec["plain"]["x-kubernetes-list-type"] == "atomic"  # CRD lists are atomic by default
    assert spec["labels"]["x-kubernetes-map-type"] == "atomic"
    with_meta = Schema.from_schema(
        {"type": "object", "properties": {"metadata": {"type": "object"}, "spec": {"type": "object"}}}
    )
    assert "metadata" not in with_meta.list_types()["properties"]


def test_bad_defaults_are_crd_errors() -> None:
    schema = Schema.from_schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "default": {"unknown": 1},
                    "properties": {
                        "replicas": {"type": "integer", "default": "abc"},
                        "size": {"type": "string", "enum": ["S", "M"], "default": "L"},
                        "ref": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": {"type": "string"}},
                            "default": {},
                        },
                        "n": {
                            "type": "integer",
                            "default": 3,
                            "x-kubernetes-validations": [{"rule": "self > 5"}],
                        },
                        "ok": {"type": "integer", "default": 7, "minimum": 1},
                    },
                }
            },
        }
    )
    assert [f"{e.field}: {e.message()}" for e in schema.schema_errors(P)] == [
        f'{P}.properties[spec].default: Invalid value: map[string]interface {{}}{{"unknown":1}}: '
        "must not have unknown fields",
        f'{P}.properties[spec].properties[replicas].default: Invalid value: "string":  in body must be of type '
        'integer: "string"',
        f'{P}.properties[spec].properties[size].default: Unsupported value: "L": supported values: "S", "M"',
        f"{P}.properties[spec].properties[ref].default.name: Required value",
        f'{P}.properties[spec].properties[n].default: Invalid value: "integer": failed rule: self > 5',
    ]


def test_defaults_are_checked_only_once_the_schema_is_structural() -> None:
    schema = Schema.from_schema({"type": "object", "properties": {"a": {"default": "x"}}})
    assert [e.field for e in schema.schema_errors(P)] == [f"{P}.properties[a].type"]
