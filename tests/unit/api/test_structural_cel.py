"""``x-kubernetes-validations`` (CEL) rules: which ones kbox evaluates, and kube-apiserver's wording when
one fails (message, default message, reason, fieldPath, messageExpression, missing keys, transition
rules with ``oldSelf``, values typed by the schema, rules skipped after blocking errors)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kbox.api.structural import Schema

NOT_CHECKED = (
    "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


def load(text: str) -> Schema:
    return Schema.from_schema(yaml.safe_load(text))


def lines(schema: Schema, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    errs = schema.validate(obj) if old is None else schema.validate_update(obj, old)
    return [f"{e.field}: {e.message()}" for e in errs]


SCALING = load(
    """
type: object
x-kubernetes-validations:
- rule: self.metadata.name.startsWith('app-')
  message: name must start with app-
properties:
  spec:
    type: object
    x-kubernetes-validations:
    - rule: self.minReplicas <= self.maxReplicas
      message: minReplicas must not exceed maxReplicas
    - rule: "!has(self.mode) || self.mode != 'Off' || self.minReplicas == 0"
    - rule: self.ratio < 1.5
      fieldPath: .ratio
      reason: FieldValueForbidden
    - rule: size(self.tags) <= 2
      messageExpression: "'too many tags: ' + string(size(self.tags))"
    properties:
      minReplicas: {type: integer, minimum: 0}
      maxReplicas: {type: integer}
      mode: {type: string}
      ratio: {type: number}
      tags: {type: array, items: {type: string}, default: []}
      image:
        type: string
        x-kubernetes-validations:
        - rule: self == oldSelf
          message: image is immutable
      targets:
        type: array
        x-kubernetes-list-type: map
        x-kubernetes-list-map-keys: [name]
        items:
          type: object
          required: [name]
          properties:
            name: {type: string}
            weight:
              type: integer
              x-kubernetes-validations:
              - rule: self >= oldSelf
                message: weight may only grow
"""
)


def _obj(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"minReplicas": 1, "maxReplicas": 3, "ratio": 1, "tags": []}
    base.update(spec)
    return {"apiVersion": "example.com/v1", "kind": "Scaler", "metadata": {"name": "app-a"}, "spec": base}


def test_all_rules_here_are_enforced() -> None:
    assert SCALING.warnings() == []
    assert lines(SCALING, _obj()) == []


def test_a_false_rule_uses_its_message() -> None:
    assert lines(SCALING, _obj(minReplicas=5)) == [
        'spec: Invalid value: "object": minReplicas must not exceed maxReplicas'
    ]


def test_a_false_rule_without_message_quotes_the_rule() -> None:
    assert lines(SCALING, _obj(mode="Off")) == [
        "spec: Invalid value: \"object\": failed rule: !has(self.mode) || self.mode != 'Off' || self.minReplicas == 0"
    ]
    assert lines(SCALING, _obj(mode="Off", minReplicas=0)) == []


def test_reason_and_field_path() -> None:
    assert lines(SCALING, _obj(ratio=2)) == ["spec.ratio: Forbidden: failed rule: self.ratio < 1.5"]


def test_numbers_are_doubles_when_the_schema_says_number() -> None:
    """``ratio: 1`` is an integer in JSON but a double to CEL, so ``self.ratio < 1.5`` type-checks."""
    assert lines(SCALING, _obj(ratio=1)) == []


def test_message_expression() -> None:
    assert lines(SCALING, _obj(tags=["a", "b", "c"])) == ['spec: Invalid value: "object": too many tags: 3']


def test_root_rules_see_metadata() -> None:
    obj = _obj()
    obj["metadata"]["name"] = "other"
    assert lines(SCALING, obj) == ['<nil>: Invalid value: "object": name must start with app-']


def test_a_missing_key_fails_as_upstream() -> None:
    schema = load(
        """
type: object
properties:
  spec:
    type: object
    x-kubernetes-validations: [{rule: self.a > 0}]
    properties: {a: {type: integer}}
"""
    )
    assert lines(schema, {"spec": {}}) == [
        'spec: Invalid value: "object": no such key: a evaluating rule: self.a > 0'
    ]
    assert lines(schema, {"spec": {"a": 1}}) == []


def test_transition_rules_run_only_on_update_against_the_correlated_old_value() -> None:
    old = _obj(image="nginx:1", targets=[{"name": "a", "weight": 5}, {"name": "b", "weight": 1}])
    new = _obj(
        image="nginx:2",
        targets=[{"name": "b", "weight": 2}, {"name": "a", "weight": 4}, {"name": "c", "weight": 0}],
    )
    assert lines(SCALING, new) == []  # create: no old value, no transition rule
    assert lines(SCALING, new, old) == [
        'spec.image: Invalid value: "string": image is immutable',
        'spec.targets[1].weight: Invalid value: "integer": weight may only grow',
    ]


def test_rules_are_skipped_after_blocking_errors() -> None:
    assert lines(SCALING, _obj(minReplicas="five", maxReplicas=1)) == [
        'spec.minReplicas: Invalid value: "string": spec.minReplicas in body must be of type integer: "string"',
        NOT_CHECKED,
    ]
    # a plain Invalid (a bound) is not blocking: the rules still run
    assert lines(SCALING, _obj(minReplicas=-1, maxReplicas=-2)) == [
        "spec.minReplicas: Invalid value: -1: spec.minReplicas in body should be greater than or equal to 0",
        'spec: Invalid value: "object": minReplicas must not exceed maxReplicas',
    ]


def test_rules_in_items_and_maps_name_their_element() -> None:
    schema = load(
        """
type: object
properties:
  spec:
    type: object
    properties:
      ports:
        type: array
        items:
          type: object
          x-kubernetes-validations: [{rule: self.port != 22, message: ssh is not allowed}]
          properties: {port: {type: integer}}
      limits:
        type: object
        additionalProperties:
          type: integer
          x-kubernetes-validations: [{rule: self <= 100}]
"""
    )
    obj = {"spec": {"ports": [{"port": 80}, {"port": 22}], "limits": {"cpu": 50, "mem": 200}}}
    assert lines(schema, obj) == [
        'spec.ports[1]: Invalid value: "object": ssh is not allowed',
        'spec.limits[mem]: Invalid value: "integer": failed rule: self <= 100',
    ]


def test_formats_become_cel_types() -> None:
    schema = load(
        """
type: object
properties:
  spec:
    type: object
    x-kubernetes-validations:
    - rule: self.end > self.start
      message: end must be after start
    - rule: self.timeout < duration('1h')
      message: timeout must be under an hour
    properties:
      start: {type: string, format: date-time}
      end: {type: string, format: date-time}
      timeout: {type: string, format: duration}
"""
    )
    good = {"spec": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "timeout": "30m"}}
    bad = {"spec": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z", "timeout": "2h"}}
    assert lines(schema, good) == []
    assert lines(schema, bad) == [
        'spec: Invalid value: "object": end must be after start',
        'spec: Invalid value: "object": timeout must be under an hour',
    ]


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ("semver(self.name).major() == 1", "uses major(), semver()"),
        (
            "!format.dns1123Label().validate(self.name).hasValue()",
            "uses dns1123Label(), hasValue(), validate()",
        ),
        ("self.x == oldSelf.x", None),
        ("self.name.lowerAscii() == self.name", None),
    ],
)
def test_rules_using_other_kubernetes_libraries_are_reported_not_enforced(rule: str, why: str | None) -> None:
    schema = Schema.from_schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "x-kubernetes-validations": [{"rule": rule}],
                    "properties": {
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "q": {"type": "string"},
                        "name": {"type": "string"},
                        "x": {"type": "string"},
                    },
                }
            },
        }
    )
    if why is None:
        assert schema.warnings() == []
        return
    assert schema.warnings() == [
        f"openAPIV3Schema.properties[spec].x-kubernetes-validations[0]: rule {rule!r} is not enforced by kbox: {why}"
    ]
    assert lines(schema, {"spec": {"tags": ["b", "a"], "q": "0", "name": "X"}}) == []


def test_optional_field_syntax_is_reported_not_enforced() -> None:
    schema = load(
        """
type: object
properties:
  spec:
    type: object
    x-kubernetes-validations: [{rule: "self.?x.orValue('') == ''"}]
    properties: {x: {type: string}}
"""
    )
    [warning] = schema.warnings()
    assert warning.startswith("openAPIV3Schema.properties[spec].x-kubernetes-validations[0]: rule ")
    assert warning.endswith("is not enforced by kbox: uses optional field syntax (.? or [?)")
    assert lines(schema, {"spec": {"x": "y"}}) == []


LIBRARY_CASES = [
    ("self.s.lowerAscii() == 'abcé'", {"s": "ABCé"}, True),
    ("self.s.upperAscii() == 'ABCé'", {"s": "abcé"}, True),
    ("self.s.charAt(1) == 'é'", {"s": "aéb"}, True),
    ("self.s.indexOf('b') == 2", {"s": "aéb"}, True),
    ("self.s.indexOf('z') == -1", {"s": "abc"}, True),
    ("self.s.lastIndexOf('a') == 2", {"s": "aba"}, True),
    ("self.s.replace('-', '_') == 'a_b_c'", {"s": "a-b-c"}, True),
    ("self.s.replace('-', '_', 1) == 'a_b-c'", {"s": "a-b-c"}, True),
    ("self.s.split('/') == ['a', 'b', 'c']", {"s": "a/b/c"}, True),
    ("self.s.split('/', 2) == ['a', 'b/c']", {"s": "a/b/c"}, True),
    ("self.s.substring(1, 3) == 'bc'", {"s": "abcd"}, True),
    ("self.s.trim() == 'x'", {"s": "  x \t"}, True),
    ("self.l.join('.') == 'a.b'", {"l": ["a", "b"]}, True),
    ("self.l.isSorted()", {"l": ["a", "b", "c"]}, True),
    ("self.l.isSorted()", {"l": ["b", "a"]}, False),
    ("self.n.sum() == 6", {"n": [1, 2, 3]}, True),
    ("self.n.min() == 1 && self.n.max() == 3", {"n": [3, 1, 2]}, True),
    ("self.l.indexOf('b') == 1", {"l": ["a", "b"]}, True),
    ("self.s.find('[0-9]+') == '42'", {"s": "abc42def7"}, True),
    ("self.s.findAll('[0-9]+') == ['42', '7']", {"s": "abc42def7"}, True),
    ("self.s.findAll('[0-9]+', 1) == ['42']", {"s": "abc42def7"}, True),
    ("quantity(self.s).isLessThan(quantity('1Gi'))", {"s": "512Mi"}, True),
    ("quantity(self.s).isLessThan(quantity('1Gi'))", {"s": "2Gi"}, False),
    ("quantity(self.s) == quantity('1')", {"s": "1000m"}, True),
    ("quantity(self.s).compareTo(quantity('1')) == -1", {"s": "500m"}, True),
    ("quantity(self.s).add(quantity('500m')).asApproximateFloat() == 1.0", {"s": "500m"}, True),
    ("quantity(self.s).sub(1).sign() == -1", {"s": "0"}, True),
    ("quantity(self.s).isInteger() && quantity(self.s).asInteger() == 2048", {"s": "2Ki"}, True),
    ("isQuantity(self.s)", {"s": "lots"}, False),
    (
        "url(self.s).getScheme() == 'https' && url(self.s).getHost() == 'example.com:8443'",
        {"s": "https://example.com:8443/a%20b?x=1&x=2&y"},
        True,
    ),
    ("url(self.s).getHostname() == '::1' && url(self.s).getPort() == '80'", {"s": "http://[::1]:80/"}, True),
    ("url(self.s).getEscapedPath() == '/a%20b'", {"s": "https://example.com/a%20b"}, True),
    (
        "url(self.s).getQuery()['x'] == ['1', '2'] && url(self.s).getQuery()['y'] == ['']",
        {"s": "https://example.com/?x=1&x=2&y"},
        True,
    ),
    ("isURL(self.s)", {"s": "not a url"}, False),
    ("isIP(self.s) && ip(self.s).family() == 6", {"s": "fd00::1"}, True),
    ("isIP(self.s)", {"s": "::ffff:1.2.3.4"}, False),
    ("isIP(self.s)", {"s": "010.0.0.1"}, False),
    ("ip(self.s).isLoopback() && !ip(self.s).isGlobalUnicast()", {"s": "127.0.0.1"}, True),
    ("ip(self.s).isGlobalUnicast()", {"s": "10.1.2.3"}, True),
    ("ip(self.s).isLinkLocalUnicast()", {"s": "169.254.1.1"}, True),
    ("ip(self.s).isLinkLocalMulticast()", {"s": "ff02::1"}, True),
    (
        "cidr(self.s).containsIP('10.1.2.3') && !cidr(self.s).containsIP(ip('11.0.0.1'))",
        {"s": "10.0.0.0/8"},
        True,
    ),
    (
        "cidr(self.s).containsCIDR('10.2.0.0/16') && cidr(self.s).prefixLength() == 8",
        {"s": "10.0.0.0/8"},
        True,
    ),
    (
        "cidr(self.s).masked() == cidr('10.0.0.0/8') && cidr(self.s).ip() == ip('10.1.2.3')",
        {"s": "10.1.2.3/8"},
        True,
    ),
    ("isCIDR(self.s)", {"s": "10.0.0.0/33"}, False),
]


@pytest.mark.parametrize(("rule", "spec", "holds"), LIBRARY_CASES)
def test_kubernetes_string_list_regex_and_quantity_functions(
    rule: str, spec: dict[str, Any], holds: bool
) -> None:
    schema = Schema.from_schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "x-kubernetes-validations": [{"rule": rule, "message": "no"}],
                    "properties": {
                        "s": {"type": "string"},
                        "l": {"type": "array", "items": {"type": "string"}},
                        "n": {"type": "array", "items": {"type": "integer"}},
                    },
                }
            },
        }
    )
    assert schema.warnings() == []
    assert lines(schema, {"spec": spec}) == ([] if holds else ['spec: Invalid value: "object": no'])


def test_a_library_error_is_not_judged() -> None:
    """``min()`` of an empty list is an error upstream too; kbox does not reject what it cannot judge."""
    schema = load(
        """
type: object
properties:
  spec:
    type: object
    x-kubernetes-validations: [{rule: self.n.min() > 0}]
    properties: {n: {type: array, items: {type: integer}}}
"""
    )
    assert lines(schema, {"spec": {"n": []}}) == []
    assert lines(schema, {"spec": {"n": [0]}}) == [
        'spec: Invalid value: "object": failed rule: self.n.min() > 0'
    ]


def test_function_names_inside_string_literals_do_not_count() -> None:
    schema = load(
        """
type: object
properties:
  spec:
    type: object
    x-kubernetes-validations: [{rule: "self.note != 'call isSorted() please'"}]
    properties: {note: {type: string}}
"""
    )
    assert schema.warnings() == []
    assert lines(schema, {"spec": {"note": "call isSorted() please"}}) == [
        "spec: Invalid value: \"object\": failed rule: self.note != 'call isSorted() please'"
    ]


def test_status_updates_run_the_rules_of_the_whole_object() -> None:
    schema = load(
        """
type: object
properties:
  spec: {type: object, properties: {replicas: {type: integer}}}
  status:
    type: object
    x-kubernetes-validations:
    - rule: self.ready <= self.total
      message: ready cannot exceed total
    - rule: self.total >= oldSelf.total
      message: total may not shrink
    properties:
      ready: {type: integer}
      total: {type: integer}
"""
    )
    old = {"spec": {}, "status": {"ready": 1, "total": 3}}
    new = {"spec": {}, "status": {"ready": 4, "total": 2}}
    assert [f"{e.field}: {e.message()}" for e in schema.validate_status(new, old)] == [
        'status: Invalid value: "object": ready cannot exceed total',
        'status: Invalid value: "object": total may not shrink',
    ]


def test_errors_inside_exists_one_are_not_judged() -> None:
    """Gateway API's "Rule name must be unique within the route": CEL's ``||`` absorbs the error a rule
    without a name raises inside ``exists_one()``; cel-python does not, so such errors prove nothing."""
    schema = load(
        """
type: object
properties:
  spec:
    type: object
    properties:
      rules:
        type: array
        x-kubernetes-validations:
        - message: Rule name must be unique within the route
          rule: self.all(l1, !has(l1.name) || self.exists_one(l2, has(l2.name) && l1.name == l2.name))
        items:
          type: object
          properties: {name: {type: string}}
"""
    )
    assert lines(schema, {"spec": {"rules": [{"name": "a"}, {}]}}) == []
    assert lines(schema, {"spec": {"rules": [{"name": "a"}, {"name": "b"}]}}) == []
    assert lines(schema, {"spec": {"rules": [{"name": "a"}, {"name": "a"}]}}) == [
        'spec.rules: Invalid value: "array": Rule name must be unique within the route'
    ]


def test_outcomes_are_remembered_per_value_but_reported_per_path() -> None:
    """Equal items are judged once; each still gets its own error path, and other values their own
    verdict."""
    schema = load(
        """
type: object
properties:
  spec:
    type: object
    properties:
      ports:
        type: array
        items:
          type: object
          x-kubernetes-validations:
          - rule: self.port != 22
            messageExpression: "'port ' + string(self.port) + ' is not allowed'"
          properties: {port: {type: integer}}
"""
    )
    obj = {"spec": {"ports": [{"port": 22}, {"port": 80}, {"port": 22}]}}
    expected = [
        'spec.ports[0]: Invalid value: "object": port 22 is not allowed',
        'spec.ports[2]: Invalid value: "object": port 22 is not allowed',
    ]
    assert lines(schema, obj) == expected
    assert lines(schema, obj) == expected
    assert lines(schema, {"spec": {"ports": [{"port": 80}, {"port": 22}]}}) == [
        'spec.ports[1]: Invalid value: "object": port 22 is not allowed'
    ]
