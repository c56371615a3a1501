"""Pruning, defaulting and metadata normalisation of custom objects (apiextensions-apiserver's
``schema/pruning``, ``schema/defaulting`` and ``schema/objectmeta`` behaviour).

Covers: unknown fields dropped and reported with their paths, ``apiVersion``/``kind``/``metadata`` kept,
``x-kubernetes-preserve-unknown-fields`` (with specified fields still pruned inside), embedded
resources, non-nullable nulls, defaults at every level (properties, array items, additionalProperties,
never below unspecified fields), defaults pruned by their own schema, and the prune → default → prune
order of :meth:`Schema.normalize`.
"""

from __future__ import annotations

import copy
from typing import Any

from kbox.api.structural import Schema


def schema(root_properties: dict[str, Any], **root: Any) -> Schema:
    return Schema.from_schema({"type": "object", "properties": root_properties, **root})


SPEC = {
    "spec": {
        "type": "object",
        "properties": {
            "replicas": {"type": "integer"},
            "template": {
                "type": "object",
                "properties": {"image": {"type": "string"}},
            },
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "partly": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
            },
        },
    },
    "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
}


def test_unknown_fields_are_dropped_and_reported_sorted() -> None:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "zzz": 1,
            "template": {"image": "nginx", "imagePullPolicy": "Always"},
            "items": [{"name": "a", "extra": True}, {"name": "b"}],
            "labels": {"any": "key"},
        },
        "status": {"phase": "Ready", "message": "x"},
        "extraTop": {"a": 1},
    }
    unknown = schema(SPEC).prune(obj)
    assert unknown == [
        "extraTop",
        "spec.items[0].extra",
        "spec.template.imagePullPolicy",
        "spec.zzz",
        "status.message",
    ]
    assert obj == {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "template": {"image": "nginx"},
            "items": [{"name": "a"}, {"name": "b"}],
            "labels": {"any": "key"},
        },
        "status": {"phase": "Ready"},
    }


def test_preserve_unknown_fields_keeps_everything_but_prunes_specified_children() -> None:
    obj = {
        "spec": {
            "free": {"a": {"b": [1, {"c": 2}]}},
            "partly": {"anything": {"x": 1}, "known": {"a": "ok", "b": "pruned"}},
        }
    }
    unknown = schema(SPEC).prune(obj)
    assert unknown == ["spec.partly.known.b"]
    assert obj == {
        "spec": {
            "free": {"a": {"b": [1, {"c": 2}]}},
            "partly": {"anything": {"x": 1}, "known": {"a": "ok"}},
        }
    }


def test_root_preserve_unknown_fields_keeps_unknown_top_level_fields() -> None:
    s = Schema.from_schema(
        {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"spec": {"type": "object"}},
        }
    )
    obj = {"apiVersion": "v", "kind": "K", "anything": {"deep": 1}, "spec": {"dropped": 1}}
    assert s.prune(obj) == ["spec.dropped"]
    assert obj == {"apiVersion": "v", "kind": "K", "anything": {"deep": 1}, "spec": {}}


def test_root_metadata_keeps_object_meta_fields_only() -> None:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default", "labels": {}, "bogus": 1},
    }
    assert schema(SPEC).prune(obj) == ["metadata.bogus"]
    assert obj["metadata"] == {"name": "w", "namespace": "default", "labels": {}}


EMBEDDED = {
    "spec": {
        "type": "object",
        "properties": {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "typed": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
            },
        },
    }
}


def test_embedded_resources_keep_type_meta_and_normalise_metadata() -> None:
    obj = {
        "spec": {
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "labels": {}, "creationTimestamp": None, "unknown": "x"},
                "spec": {"containers": [{"name": "c"}]},
            },
            "typed": {
                "apiVersion": "v1",
                "kind": "Thing",
                "metadata": {"generateName": "t-", "ownerReferences": [{"name": "o", "bogus": 1}]},
                "spec": {"a": "x", "b": "y"},
                "other": 1,
            },
        }
    }
    unknown = schema(EMBEDDED).prune(obj)
    assert unknown == [
        "spec.template.metadata.unknown",
        "spec.typed.metadata.ownerReferences[0].bogus",
        "spec.typed.other",
        "spec.typed.spec.b",
    ]
    assert obj["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c"}]},
    }
    assert obj["spec"]["typed"] == {
        "apiVersion": "v1",
        "kind": "Thing",
        "metadata": {"generateName": "t-", "ownerReferences": [{"name": "o"}]},
        "spec": {"a": "x"},
    }


def test_embedded_resource_validation() -> None:
    s = schema(EMBEDDED)
    obj = {
        "spec": {
            "template": {"metadata": {"name": "Bad_Name"}},
            "typed": {"apiVersion": 1, "kind": "bad kind"},
        }
    }
    lines = [f"{e.field}: {e.message()}" for e in s.validate(obj)]
    assert lines == [
        "spec.template.apiVersion: Required value: must not be empty",
        "spec.template.kind: Required value: must not be empty",
        "spec.typed.apiVersion: Invalid value: 1: must be a string",
        'spec.typed.kind: Invalid value: "bad kind": may have mixed case, but should otherwise match: '
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
        "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
        "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    ]
    undecodable = {"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": "x"}}}}
    assert [f"{e.field}: {e.message()}" for e in s.validate(undecodable)] == [
        'spec.template.metadata: Invalid value: map[string]interface {}{"labels":"x"}: json: cannot unmarshal '
        "string into Go struct field ObjectMeta.labels of type map[string]string"
    ]
    # an undecodable metadata is left as it is by pruning (kube-apiserver would refuse the body)
    assert s.prune(copy.deepcopy(undecodable)) == []


def test_nulls_of_non_nullable_fields_without_default_are_dropped() -> None:
    s = schema(
        {
            "spec": {
                "type": "object",
                "properties": {
                    "a": {"type": "string"},
                    "b": {"type": "string", "nullable": True},
                    "c": {"type": "string", "default": "dc"},
                    "m": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            }
        }
    )
    obj: dict[str, Any] = {"spec": {"a": None, "b": None, "c": None, "m": {"k": None}}}
    s.normalize(obj)
    assert obj == {"spec": {"b": None, "c": "dc", "m": {}}}


DEFAULTS = {
    "spec": {
        "type": "object",
        "default": {},
        "properties": {
            "replicas": {"type": "integer", "default": 1},
            "mode": {"type": "string", "default": "Auto"},
            "ports": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "protocol": {"type": "string", "default": "TCP"},
                    },
                },
            },
            "limits": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"max": {"type": "integer", "default": 10}},
                },
            },
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "nested": {
                "type": "object",
                "default": {"inner": {}},
                "properties": {
                    "inner": {"type": "object", "properties": {"flag": {"type": "boolean", "default": True}}}
                },
            },
        },
    }
}


def test_defaults_fill_properties_items_and_additional_properties() -> None:
    obj: dict[str, Any] = {
        "spec": {
            "mode": "Manual",
            "ports": [{"name": "http"}, {"name": "dns", "protocol": "UDP"}],
            "limits": {"cpu": {}, "mem": {"max": 3}},
            "extra": {"anything": {"replicas": None}},
        }
    }
    schema(DEFAULTS).default(obj)
    assert obj == {
        "spec": {
            "replicas": 1,
            "mode": "Manual",
            "ports": [{"name": "http", "protocol": "TCP"}, {"name": "dns", "protocol": "UDP"}],
            "limits": {"cpu": {"max": 10}, "mem": {"max": 3}},
            "extra": {"anything": {"replicas": None}},
            "nested": {"inner": {"flag": True}},
        }
    }


def test_a_missing_parent_with_a_default_is_defaulted_then_its_children() -> None:
    obj: dict[str, Any] = {"apiVersion": "v", "kind": "K", "metadata": {"name": "a"}}
    schema(DEFAULTS).default(obj)
    assert obj["spec"] == {"replicas": 1, "mode": "Auto", "nested": {"inner": {"flag": True}}}


def test_defaulted_objects_do_not_share_the_default() -> None:
    s = schema(DEFAULTS)
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    s.default(first)
    s.default(second)
    first["spec"]["nested"]["inner"]["flag"] = False
    assert second["spec"]["nested"]["inner"]["flag"] is True


def test_null_of_a_non_nullable_field_with_a_default_gets_the_default() -> None:
    obj: dict[str, Any] = {"spec": {"replicas": None, "ports": [None]}}
    s = Schema.from_schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "replicas": {"type": "integer", "default": 1},
                        "ports": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "default": {"name": "p"},
                                "properties": {"name": {"type": "string"}},
                            },
                        },
                    },
                }
            },
        }
    )
    s.default(obj)
    assert obj == {"spec": {"replicas": 1, "ports": [{"name": "p"}]}}


def test_defaults_are_pruned_by_their_own_schema() -> None:
    s = schema(
        {
            "spec": {
                "type": "object",
                "default": {"a": "x", "unknown": "dropped"},
                "properties": {"a": {"type": "string"}},
            }
        }
    )
    obj: dict[str, Any] = {}
    s.default(obj)
    assert obj == {"spec": {"a": "x"}}


def test_normalize_prunes_defaults_and_reports_only_the_request_unknowns() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"typo": 1, "ports": [{"name": "a", "port": 1}]},
    }
    assert schema(DEFAULTS).normalize(obj) == ["spec.ports[0].port", "spec.typo"]
    assert obj["spec"] == {
        "replicas": 1,
        "mode": "Auto",
        "ports": [{"name": "a", "protocol": "TCP"}],
        "nested": {"inner": {"flag": True}},
    }


def test_pruning_is_idempotent_and_keeps_valid_objects_unchanged() -> None:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"replicas": 1, "items": [{"name": "a"}], "free": {"x": {"y": 1}}},
    }
    before = copy.deepcopy(obj)
    assert schema(SPEC).prune(obj) == []
    assert obj == before


def test_nested_preserve_unknown_fields_as_upstream() -> None:
    """apiextensions-apiserver's pruning case "nested x-kubernetes-preserve-unknown-fields"."""
    s = Schema.from_schema(
        {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "alpha": {"type": "string"},
                "beta": {"type": "number"},
                "pruning": {
                    "type": "object",
                    "properties": {
                        "preserving": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        "pruning": {"type": "object"},
                    },
                },
                "preserving": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "preserving": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        "preservingUnknownType": {"x-kubernetes-preserve-unknown-fields": True},
                        "pruning": {"type": "object"},
                    },
                },
                "notInherited": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"specified": {"type": "object"}},
                    },
                },
            },
        }
    )
    obj: dict[str, Any] = {
        "unspecified": "bar",
        "alpha": "abc",
        "beta": 42.0,
        "unspecifiedObject": {"unspecified": "bar"},
        "pruning": {
            "unspecified": "bar",
            "unspecifiedObject": {"unspecified": "bar"},
            "pruning": {"unspecified": "bar"},
            "apiVersion": "unknown",
            "preserving": {"unspecified": "bar"},
        },
        "preserving": {
            "unspecified": "bar",
            "unspecifiedObject": {"unspecified": "bar"},
            "pruning": {"unspecified": "bar"},
            "preserving": {"unspecified": "bar"},
            "preservingUnknownType": [{"foo": True}, {"bar": True}],
        },
        "notInherited": {"foo": {"specified": {"unspecified": "bar"}, "unspecified": "bar"}},
    }
    assert s.prune(obj) == [
        "notInherited.foo.specified.unspecified",
        "notInherited.foo.unspecified",
        "preserving.pruning.unspecified",
        "pruning.apiVersion",
        "pruning.pruning.unspecified",
        "pruning.unspecified",
        "pruning.unspecifiedObject",
    ]
    assert obj == {
        "unspecified": "bar",
        "alpha": "abc",
        "beta": 42.0,
        "unspecifiedObject": {"unspecified": "bar"},
        "pruning": {"pruning": {}, "preserving": {"unspecified": "bar"}},
        "preserving": {
            "unspecified": "bar",
            "unspecifiedObject": {"unspecified": "bar"},
            "pruning": {},
            "preserving": {"unspecified": "bar"},
            "preservingUnknownType": [{"foo": True}, {"bar": True}],
        },
        "notInherited": {"foo": {"specified": {}}},
    }


def test_additional_properties_without_a_schema_prune_what_is_below_their_values() -> None:
    """Upstream's "additionalProperties with bool": values stay, their object content goes."""
    s = Schema.from_schema(
        {
            "type": "object",
            "properties": {
                "a": {"type": "integer"},
                "c": {"type": "object", "additionalProperties": False},
                "d": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
        }
    )
    obj: dict[str, Any] = {
        "a": 1,
        "b": 1,
        "c": {"a": 1, "b": 2, "c": {"a": 1, "apiVersion": "unknown"}},
        "d": {"x": 1, "y": {"z": 1}},
    }
    assert s.prune(obj) == ["b", "c.c.a", "c.c.apiVersion", "d.y.z"]
    assert obj == {"a": 1, "c": {"a": 1, "b": 2, "c": {}}, "d": {"x": 1, "y": {}}}
