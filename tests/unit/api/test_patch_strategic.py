"""Strategic merge patch (``application/strategic-merge-patch+json``) driven by the built-in schemas.

Covers the bodies ``kubectl apply`` (client-side) sends: the Deployment patch with
``$setElementOrder/containers`` recorded in kubectl-wire.md §7.5, container ``env``/``ports`` merges
by their merge keys, ``$patch: delete`` in a list, ``$retainKeys`` (Deployment strategy, volumes),
conditions merged by ``type``, tolerations replaced whole (no strategy), finalizers as a merged
primitive list with ``$deleteFromPrimitiveList``; the ordering rules of apimachinery's
``strategicpatch`` (the expected orders are the outcomes of its ``patch_test.go`` cases); ``$patch``
in maps; that no directive is ever left in the result; and the errors: a custom resource kind is 415
as kube-apiserver's CR handler answers, malformed directives are 400.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.api.patch import strategic

APPS = {"group": "apps", "version": "v1", "kind": "Deployment"}
POD = {"group": "", "version": "v1", "kind": "Pod"}


def live_deployment() -> dict[str, Any]:
    """A Deployment as kube-apiserver stores it after ``kubectl apply`` created it (defaults included)."""
    last_applied = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"annotations": {}, "name": "web", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"image": "nginx:1.27", "name": "nginx"}]},
            },
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "3b1c6f0e-0000-4000-8000-000000000001",
            "resourceVersion": "1200",
            "generation": 1,
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(last_applied) + "\n",
            },
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "imagePullPolicy": "IfNotPresent",
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "resources": {},
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        }
                    ],
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30,
                },
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "conditions": [
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            ],
        },
    }


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


def directives(value: Any, path: str = "") -> list[str]:
    """Every key of ``value`` that is a strategic merge patch directive."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            if key in ("$patch", "$retainKeys") or key.startswith(
                ("$setElementOrder/", "$deleteFromPrimitiveList/")
            ):
                found.append(f"{path}/{key}")
            found += directives(child, f"{path}/{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += directives(child, f"{path}/{i}")
    return found


def apply(original: dict[str, Any], patch: Any, gvk: dict[str, str] = APPS) -> dict[str, Any]:
    before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)
    result = strategic.apply(original, patch, **gvk)
    assert original == before, "the original was modified"
    assert patch == patch_before, "the patch was modified"
    assert directives(result) == [], "a directive was left in the result"
    return result


# --- the bodies kubectl client-side apply sends ------------------------------------------------------------


def test_kubectl_client_side_apply_body_for_a_deployment() -> None:
    live = live_deployment()
    new_last_applied = (
        '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"name":"web"}}\n'
    )
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": new_last_applied}},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "nginx"}],
                    "containers": [{"image": "nginx:1.28", "name": "nginx"}],
                }
            },
        },
    }
    result = apply(live, patch)
    assert result["spec"]["replicas"] == 3
    assert result["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "1",
        "kubectl.kubernetes.io/last-applied-configuration": new_last_applied,
    }
    [nginx] = containers(result)
    expected = copy.deepcopy(containers(live)[0])
    expected["image"] = "nginx:1.28"
    assert nginx == expected
    # everything the patch does not mention is untouched
    assert result["spec"]["strategy"] == live["spec"]["strategy"]
    assert result["status"] == live["status"]
    assert result["metadata"]["resourceVersion"] == "1200"


def test_adding_a_container_in_the_order_set_by_kubectl() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
                    "containers": [{"image": "busybox", "name": "sidecar"}],
                }
            }
        }
    }
    result = apply(live_deployment(), patch)
    assert [c["name"] for c in containers(result)] == ["sidecar", "nginx"]
    assert containers(result)[0] == {"image": "busybox", "name": "sidecar"}
    assert containers(result)[1]["imagePullPolicy"] == "IfNotPresent"


def test_removing_a_container_with_a_delete_directive() -> None:
    live = live_deployment()
    containers(live).append({"name": "sidecar", "image": "busybox"})
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "nginx"}],
                    "containers": [{"$patch": "delete", "name": "sidecar"}],
                }
            }
        }
    }
    result = apply(live, patch)
    assert [c["name"] for c in containers(result)] == ["nginx"]


def test_delete_directive_removes_every_element_with_the_key_and_ignores_missing_ones() -> None:
    live = live_deployment()
    containers(live).extend([{"name": "x", "image": "1"}, {"name": "x", "image": "2"}])
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "x", "$patch": "delete"}, {"name": "nope", "$patch": "delete"}]
                }
            }
        }
    }
    assert [c["name"] for c in containers(apply(live, patch))] == ["nginx"]


def test_container_env_and_ports_merge_by_their_merge_keys() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "nginx"}],
                    "containers": [
                        {
                            "name": "nginx",
                            "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
                            "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
                            "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
                            "ports": [{"containerPort": 443, "name": "https"}],
                        }
                    ],
                }
            }
        }
    }
    [nginx] = containers(apply(live_deployment(), patch))
    assert nginx["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "two"},
        {"name": "C", "value": "3"},
    ]
    assert nginx["ports"] == [
        {"containerPort": 80, "protocol": "TCP"},
        {"containerPort": 443, "name": "https"},
    ]


def test_removing_an_env_var_and_a_field_of_one() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "$setElementOrder/env": [{"name": "B"}],
                            "env": [
                                {"$patch": "delete", "name": "A"},
                                {
                                    "name": "B",
                                    "value": None,
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                            ],
                        }
                    ],
                }
            }
        }
    }
    [nginx] = containers(apply(live_deployment(), patch))
    assert nginx["env"] == [{"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]


def test_retain_keys_switches_the_deployment_strategy() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}
    result = apply(live_deployment(), patch)
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_in_volume_elements() -> None:
    live = live_deployment()
    live["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "emptyDir": {}},
        {"name": "conf", "configMap": {"name": "c", "defaultMode": 420}},
    ]
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/volumes": [{"name": "data"}, {"name": "conf"}],
                    "volumes": [
                        {"$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/data"}, "name": "data"}
                    ],
                }
            }
        }
    }
    result = apply(live, patch)
    assert result["spec"]["template"]["spec"]["volumes"] == [
        {"name": "data", "hostPath": {"path": "/data"}},
        {"name": "conf", "configMap": {"name": "c", "defaultMode": 420}},
    ]


def test_retain_keys_must_name_every_key_the_patch_sets() -> None:
    patch = {
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
        }
    }
    with pytest.raises(StatusError) as info:
        strategic.apply(live_deployment(), patch, **APPS)
    assert (info.value.code, info.value.reason) == (400, "BadRequest")
    assert info.value.message == "invalid patch format of retainKeys"


def test_deployment_conditions_merge_by_type() -> None:
    patch = {
        "status": {
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "ReplicaFailure", "status": "False"},
            ]
        }
    }
    result = apply(live_deployment(), patch)
    assert result["status"]["conditions"] == [
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {"type": "ReplicaFailure", "status": "False"},
    ]
    assert result["status"]["replicas"] == 1


def test_pod_conditions_merge_by_type() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "status": {
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}]
        },
    }
    result = apply(pod, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, POD)
    assert result["status"]["conditions"] == [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "True"},
    ]


def test_tolerations_have_no_strategy_and_are_replaced_whole() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "i", "args": ["a", "b"]}],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
            ],
        },
    }
    patch = {
        "spec": {
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
            ],
            "containers": [{"name": "c", "args": ["z"]}],
        }
    }
    result = apply(pod, patch, POD)
    assert result["spec"]["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    ]
    assert result["spec"]["containers"] == [{"name": "c", "image": "i", "args": ["z"]}]


def test_finalizers_are_a_merged_primitive_list() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "finalizers": ["a", "b"]},
    }
    result = apply(obj, {"metadata": {"finalizers": ["b", "c"]}})
    assert result["metadata"]["finalizers"] == ["a", "b", "c"]
    result = apply(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "zzz"]}})
    assert result["metadata"]["finalizers"] == ["b"]
    # without an order list, an added value goes before the server's values (upstream's mergeSortedSlice)
    result = apply(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "finalizers": ["c"]}})
    assert result["metadata"]["finalizers"] == ["c", "a"]
    result = apply(obj, {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}})
    assert result["metadata"]["finalizers"] == ["c", "b", "a"]


def test_delete_from_a_primitive_list_that_does_not_exist_adds_nothing() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    assert apply(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}) == obj


def test_args_have_no_strategy_and_are_replaced() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "command": ["sh", "-c"]}]},
    }
    result = apply(pod, {"spec": {"containers": [{"name": "c", "command": ["true"]}]}}, POD)
    assert result["spec"]["containers"][0]["command"] == ["true"]


# --- maps and $patch -------------------------------------------------------------------------------------------


def test_maps_merge_and_null_deletes() -> None:
    patch = {
        "metadata": {"labels": {"tier": "front"}, "annotations": {"deployment.kubernetes.io/revision": None}}
    }
    result = apply(live_deployment(), patch)
    assert result["metadata"]["labels"] == {"tier": "front"}
    assert "deployment.kubernetes.io/revision" not in result["metadata"]["annotations"]


def test_nulls_in_new_content_are_dropped() -> None:
    result = apply(
        live_deployment(),
        {"spec": {"paused": None, "minReadySeconds": 5}, "metadata": {"labels": {"a": None, "b": "1"}}},
    )
    assert "paused" not in result["spec"] and result["spec"]["minReadySeconds"] == 5
    assert result["metadata"]["labels"] == {"b": "1"}


def test_patch_replace_in_a_map() -> None:
    result = apply(live_deployment(), {"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}})
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_patch_delete_in_a_map_empties_it() -> None:
    result = apply(
        live_deployment(),
        {"spec": {"selector": {"$patch": "delete"}}, "metadata": {"labels": {"$patch": "delete"}}},
    )
    assert result["spec"]["selector"] == {}
    assert "labels" not in result["metadata"]


def test_patch_merge_is_the_default() -> None:
    result = apply(live_deployment(), {"spec": {"strategy": {"$patch": "merge", "type": "RollingUpdate"}}})
    assert result["spec"]["strategy"] == live_deployment()["spec"]["strategy"]
    result = apply(
        live_deployment(),
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "nginx", "$patch": "merge", "image": "x"}]}}
            }
        },
    )
    assert containers(result)[0]["image"] == "x"


def test_patch_replace_in_a_list() -> None:
    live = live_deployment()
    containers(live).append({"name": "sidecar", "image": "busybox"})
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "o"}]}}
        }
    }
    assert containers(apply(live, patch)) == [{"name": "only", "image": "o"}]


def test_replace_strategy_replaces_a_map_field() -> None:
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "b"},
        "spec": {"selector": {"matchLabels": {"app": "a", "tier": "t"}}, "minAvailable": 1},
    }
    result = apply(
        pdb,
        {"spec": {"selector": {"matchLabels": {"app": "b"}}}},
        {"group": "policy", "version": "v1", "kind": "PodDisruptionBudget"},
    )
    assert result["spec"] == {"selector": {"matchLabels": {"app": "b"}}, "minAvailable": 1}


def test_the_whole_object_can_be_replaced() -> None:
    result = apply(
        live_deployment(),
        {"$patch": "replace", "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}},
    )
    assert result == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}}


def test_a_type_change_replaces_the_value() -> None:
    result = apply(live_deployment(), {"spec": {"replicas": {"odd": True}}})
    assert result["spec"]["replicas"] == {"odd": True}


def test_new_content_is_taken_with_its_directives_resolved() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {}}
    patch = {
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                    "containers": [
                        {"name": "b", "image": "b"},
                        {"name": "a", "image": "a"},
                        {"name": "c", "$patch": "delete"},
                    ],
                }
            },
        }
    }
    result = apply(obj, patch)
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    assert containers(result) == [{"name": "b", "image": "b"}, {"name": "a", "image": "a"}]


def test_null_patch_changes_nothing() -> None:
    assert strategic.apply(live_deployment(), None, **APPS) == live_deployment()


# --- ordering ------------------------------------------------------------------------------------------------------


def named(*names: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [{"name": n, **extra} for n in names]}}},
    }


def names_after(live_names: tuple[str, ...], patch_spec: dict[str, Any]) -> list[str]:
    result = apply(named(*live_names), {"spec": {"template": {"spec": patch_spec}}})
    return [c["name"] for c in containers(result)]


def test_set_element_order_with_server_only_items_at_the_end() -> None:
    order = [{"name": n} for n in ("4", "2", "3", "1")]
    assert names_after(("1", "3", "4", "2", "9"), {"$setElementOrder/containers": order}) == [
        "4",
        "2",
        "3",
        "1",
        "9",
    ]


def test_set_element_order_keeps_server_only_items_where_they_stood() -> None:
    order = [{"name": n} for n in ("2", "1", "4", "3")]
    live = ("1", "2", "7", "9", "8", "3", "4")
    assert names_after(live, {"$setElementOrder/containers": order}) == ["2", "1", "7", "9", "8", "4", "3"]


def test_an_added_item_goes_where_the_order_says_with_server_only_items_after() -> None:
    patch = {"$setElementOrder/containers": [{"name": "1"}, {"name": "2"}], "containers": [{"name": "2"}]}
    assert names_after(("1", "3"), patch) == ["1", "2", "3"]


def test_a_plain_merge_keeps_the_patch_order_and_places_server_only_items_by_the_live_order() -> None:
    assert names_after(("1", "2", "3"), {"containers": [{"name": "3"}, {"name": "1"}, {"name": "2"}]}) == [
        "3",
        "1",
        "2",
    ]
    assert names_after(("1", "2", "3"), {"containers": [{"name": "3"}, {"name": "1"}]}) == ["2", "3", "1"]


def test_an_order_list_that_contradicts_the_patch_list_is_400() -> None:
    patch = {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [{"name": "b"}, {"name": "a"}],
    }
    with pytest.raises(StatusError) as info:
        strategic.apply(named("a", "b"), {"spec": {"template": {"spec": patch}}}, **APPS)
    assert (info.value.code, info.value.reason) == (400, "BadRequest")
    assert info.value.message.startswith("The order in patch list:")


# --- errors ---------------------------------------------------------------------------------------------------------


def test_a_custom_resource_kind_is_415() -> None:
    crontab = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "c"},
        "spec": {"a": 1},
    }
    with pytest.raises(StatusError) as info:
        strategic.apply(crontab, {"spec": {"a": 2}}, group="stable.example.com", version="v1", kind="CronTab")
    assert (info.value.code, info.value.reason) == (415, "UnsupportedMediaType")
    assert info.value.message == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
            'map: {"image":"x"} does not contain declared merge key: name',
        ),
        (
            {"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}},
            'map: {"$patch":"delete"} does not contain declared merge key: name',
        ),
        ({"spec": {"strategy": {"$patch": "bogus"}}}, "unknown patch type: bogus in map: {}"),
        ({"spec": {"strategy": {"$retainKeys": "type"}}}, "invalid patch format of retainKeys"),
        ({"spec": {"$setElementOrder/": []}}, "invalid patch format of setElementOrder list"),
        ({"metadata": {"$deleteFromPrimitiveList/": ["a"]}}, "invalid patch format of primitive list"),
        ({"metadata": {"finalizers": [{"a": 1}]}}, 'list element types are not identical: [["x"],[{"a":1}]]'),
    ],
)
def test_malformed_directives_are_400(patch: dict[str, Any], message: str) -> None:
    obj = live_deployment()
    obj["metadata"]["finalizers"] = ["x"]
    with pytest.raises(StatusError) as info:
        strategic.apply(obj, patch, **APPS)
    assert (info.value.code, info.value.reason, info.value.message) == (400, "BadRequest", message)


def test_objects_in_a_merged_list_without_merge_key_are_400() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"finalizers": [{"a": 1}]}}
    with pytest.raises(StatusError) as info:
        strategic.apply(obj, {"metadata": {"finalizers": [{"b": 2}]}}, **APPS)
    assert (info.value.code, info.value.message) == (400, "cannot merge lists without merge key for list")


def test_lists_of_lists_are_422() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"finalizers": ["a"]}}
    with pytest.raises(StatusError) as info:
        strategic.apply(obj, {"metadata": {"finalizers": [["b"]]}}, **APPS)
    assert (info.value.code, info.value.reason) == (422, "Invalid")


def test_a_patch_that_is_not_an_object_is_400() -> None:
    with pytest.raises(StatusError) as info:
        strategic.apply(live_deployment(), ["x"], **APPS)
    assert (info.value.code, info.value.reason) == (400, "BadRequest")
    assert info.value.message == "json: cannot unmarshal array into Go value of type map[string]interface {}"


def test_merge_keys_come_from_the_schema_extensions() -> None:
    pod_spec = {"$ref": "#/$defs/io.k8s.api.core.v1.PodSpec"}
    assert strategic.merge_keys(strategic.field_schema(pod_spec, "containers")) == (
        frozenset({"merge"}),
        "name",
    )
    assert strategic.merge_keys(strategic.field_schema(pod_spec, "volumes")) == (
        frozenset({"merge", "retainKeys"}),
        "name",
    )
    assert strategic.merge_keys(strategic.field_schema(pod_spec, "tolerations")) == (frozenset(), None)
    container = strategic.items_schema(strategic.field_schema(pod_spec, "containers"))
    assert strategic.merge_keys(strategic.field_schema(container, "ports")) == (
        frozenset({"merge"}),
        "containerPort",
    )
    assert strategic.merge_keys(strategic.field_schema(container, "volumeMounts")) == (
        frozenset({"merge"}),
        "mountPath",
    )
    assert strategic.field_schema(None, "anything") is None
