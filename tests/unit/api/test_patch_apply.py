"""Server-side apply and field ownership (``metadata.managedFields``) of ordinary writes.

Covers: creating from nothing (the exact FieldsV1 kube-apiserver records for a kubectl
``apply --server-side`` of a Deployment); re-applying without a field removes it, unless another
manager owns it too; two managers conflicting (409 with ``FieldManagerConflict`` causes, messages as
apimachinery's ``managedfields/internal/conflict.go`` words them); ``force`` moving ownership; list-maps
(containers by ``name``, ports by ``containerPort``+``protocol``) merged per key; atomic lists and
custom resources; ``before-first-apply``; the client-side to server-side apply upgrade of the
``kubectl`` manager; ``record_update`` for creates, updates, resets and subresources; and the 400/500
answers for bad applied configurations.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.api.patch import apply as ssa

APPS = {"group": "apps", "version": "v1", "kind": "Deployment"}
T0, T1, T2, T3 = (f"2025-01-01T00:0{i}:00Z" for i in range(4))


def manifest(replicas: int | None = 2, image: str = "nginx:1.27", labels: bool = True) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    }
    if labels:
        obj["metadata"]["labels"] = {"app": "web"}
    if replicas is not None:
        obj["spec"]["replicas"] = replicas
    return obj


def run(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str = "kubectl",
    *,
    force: bool = False,
    now: str = T1,
) -> dict[str, Any]:
    live_before, applied_before = copy.deepcopy(live), copy.deepcopy(applied)
    result = ssa.apply(live, applied, manager=manager, force=force, now=now, **APPS)
    assert live == live_before and applied == applied_before, "an input was modified"
    return result


def entries(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The managedFields entries by manager (and operation when it is Update)."""
    out = {}
    for entry in obj["metadata"]["managedFields"]:
        key = entry["manager"] if entry["operation"] == "Apply" else f"{entry['manager']} (Update)"
        out[key] = entry
    return out


def conflict(call: Any) -> StatusError:
    with pytest.raises(StatusError) as info:
        call()
    assert (info.value.code, info.value.reason) == (409, "Conflict")
    return info.value


def created_by_client_side_apply(**kwargs: Any) -> dict[str, Any]:
    """What ``kubectl apply`` (client-side) creates: a POST recorded as an Update entry."""
    obj = manifest(**kwargs)
    ssa.record_update(None, obj, manager="kubectl-client-side-apply", api_version="apps/v1", now=T0)
    return obj


# --- create and re-apply ----------------------------------------------------------------------------------------


def test_create_from_nothing() -> None:
    obj = run(None, manifest(), now=T0)
    expected = manifest()
    assert {k: v for k, v in obj.items() if k != "metadata"} == {
        k: v for k, v in expected.items() if k != "metadata"
    }
    assert obj["metadata"]["name"] == "web" and obj["metadata"]["labels"] == {"app": "web"}
    assert obj["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"nginx"}': {
                                    ".": {},
                                    "f:image": {},
                                    "f:name": {},
                                    "f:ports": {
                                        'k:{"containerPort":80,"protocol":"TCP"}': {
                                            ".": {},
                                            "f:containerPort": {},
                                        }
                                    },
                                }
                            }
                        },
                    },
                },
            },
        }
    ]


def test_reapplying_the_same_configuration_changes_nothing_not_even_the_time() -> None:
    first = run(None, manifest(), now=T0)
    again = run(first, manifest(), now=T1)
    assert again == first


def test_reapplying_without_a_field_removes_it() -> None:
    first = run(None, manifest(), now=T0)
    second = run(first, manifest(replicas=None, labels=False), now=T1)
    assert "replicas" not in second["spec"]
    assert "labels" not in second["metadata"]
    fields = entries(second)["kubectl"]["fieldsV1"]
    assert "f:replicas" not in fields["f:spec"] and "f:metadata" not in fields
    assert entries(second)["kubectl"]["time"] == T1


def test_reapplying_without_a_container_removes_it() -> None:
    two = manifest()
    two["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    first = run(None, two, now=T0)
    second = run(first, manifest(), now=T1)
    assert [c["name"] for c in second["spec"]["template"]["spec"]["containers"]] == ["nginx"]


def test_a_field_another_manager_also_owns_is_kept() -> None:
    first = run(None, manifest(replicas=3), now=T0)
    shared = run(
        first,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}},
        "hpa",
        now=T1,
    )
    assert set(entries(shared)) == {"kubectl", "hpa"}
    after = run(shared, manifest(replicas=None), now=T2)
    assert after["spec"]["replicas"] == 3
    assert "f:replicas" not in entries(after)["kubectl"]["fieldsV1"]["f:spec"]
    assert entries(after)["hpa"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


def test_fields_nobody_applied_are_kept() -> None:
    live = run(None, manifest(), now=T0)
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"  # a default
    live["status"] = {"replicas": 2}
    after = run(live, manifest(image="nginx:1.28"), now=T1)
    [nginx] = after["spec"]["template"]["spec"]["containers"]
    assert nginx == {
        "name": "nginx",
        "image": "nginx:1.28",
        "ports": [{"containerPort": 80}],
        "imagePullPolicy": "IfNotPresent",
    }
    assert after["status"] == {"replicas": 2}


# --- conflicts and force -------------------------------------------------------------------------------------------


def test_two_managers_conflict() -> None:
    live = created_by_client_side_apply()
    error = conflict(lambda: run(live, manifest(replicas=5)))
    assert error.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )
    assert error.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
                "field": ".spec.replicas",
            }
        ]
    }
    assert error.status()["details"]["causes"][0]["reason"] == "FieldManagerConflict"


def test_an_apply_that_keeps_the_values_takes_shared_ownership_without_conflict() -> None:
    live = created_by_client_side_apply()
    after = run(live, manifest())
    assert set(entries(after)) == {"kubectl", "kubectl-client-side-apply (Update)"}
    assert entries(after)["kubectl-client-side-apply (Update)"]["fieldsV1"]["f:spec"]["f:replicas"] == {}


def test_several_conflicts_are_listed_by_manager() -> None:
    live = run(None, manifest(), "alice", now=T0)
    other = manifest(replicas=9, image="nginx:2")
    error = conflict(lambda: run(live, other, "bob"))
    image = '.spec.template.spec.containers[name="nginx"].image'
    assert (
        error.message
        == f'Apply failed with 2 conflicts: conflicts with "alice":\n- .spec.replicas\n- {image}'
    )
    assert [c["field"] for c in error.details["causes"]] == [".spec.replicas", image]
    assert {c["message"] for c in error.details["causes"]} == {'conflict with "alice"'}


def test_force_takes_ownership() -> None:
    live = created_by_client_side_apply()
    after = run(live, manifest(replicas=5), force=True)
    assert after["spec"]["replicas"] == 5
    assert entries(after)["kubectl"]["fieldsV1"]["f:spec"]["f:replicas"] == {}
    assert "f:replicas" not in entries(after)["kubectl-client-side-apply (Update)"]["fieldsV1"]["f:spec"]
    # the former owner now conflicts in turn
    error = conflict(
        lambda: run(
            after,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {"replicas": 1},
            },
            "kubectl-client-side-apply",
        )
    )
    assert error.details["causes"][0] == {
        "reason": "FieldManagerConflict",
        "message": 'conflict with "kubectl"',
        "field": ".spec.replicas",
    }


def test_an_update_after_an_apply_takes_the_field_and_the_next_apply_conflicts() -> None:
    live = run(None, manifest(), now=T0)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 7
    ssa.record_update(live, scaled, manager="kubectl", api_version="apps/v1", now=T1)
    assert entries(scaled)["kubectl (Update)"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entries(scaled)["kubectl"]["fieldsV1"]["f:spec"]
    error = conflict(lambda: run(scaled, manifest(), now=T2))
    assert (
        error.message == 'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'
    )


def test_an_object_without_managed_fields_is_owned_by_before_first_apply() -> None:
    live = manifest()
    live["metadata"]["uid"] = "u-1"
    error = conflict(lambda: run(live, manifest(replicas=4)))
    assert (
        error.message
        == 'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas'
    )
    after = run(live, manifest(replicas=4), force=True)
    assert set(entries(after)) == {"kubectl", "before-first-apply (Update)"}
    assert entries(after)["before-first-apply (Update)"]["time"] == T1


# --- the client-side to server-side apply upgrade ------------------------------------------------------------------


def with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    config = manifest()
    obj["metadata"].setdefault("annotations", {})[ssa.LAST_APPLIED] = json.dumps(config) + "\n"
    return obj


def test_kubectl_takes_over_fields_client_side_apply_last_applied() -> None:
    live = manifest()
    with_last_applied(live)
    ssa.record_update(None, live, manager="kubectl-client-side-apply", api_version="apps/v1", now=T0)
    after = run(live, manifest(replicas=5))
    assert after["spec"]["replicas"] == 5
    assert "f:replicas" not in entries(after)["kubectl-client-side-apply (Update)"]["fieldsV1"]["f:spec"]
    # the annotation now holds the configuration kubectl applied, as Go encodes it
    annotation = after["metadata"]["annotations"][ssa.LAST_APPLIED]
    assert annotation.endswith("\n") and json.loads(annotation) == manifest(replicas=5)
    assert annotation == json.dumps(manifest(replicas=5), separators=(",", ":"), sort_keys=True) + "\n"


def test_other_managers_get_no_upgrade_and_changed_fields_still_conflict() -> None:
    live = manifest()
    with_last_applied(live)
    ssa.record_update(None, live, manager="kubectl-client-side-apply", api_version="apps/v1", now=T0)
    conflict(lambda: run(live, manifest(replicas=5), "helm"))
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 3  # no longer what client-side apply last applied
    ssa.record_update(live, scaled, manager="kubectl-client-side-apply", api_version="apps/v1", now=T1)
    error = conflict(lambda: run(scaled, manifest(replicas=5)))
    assert [c["field"] for c in error.details["causes"]] == [".spec.replicas"]


# --- list-maps, sets, atomic lists ---------------------------------------------------------------------------------


def test_containers_are_merged_by_name_between_managers() -> None:
    live = run(None, manifest(), now=T0)
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}},
    }
    after = run(live, sidecar, "injector", now=T1)
    assert [c["name"] for c in after["spec"]["template"]["spec"]["containers"]] == ["nginx", "sidecar"]
    assert entries(after)["injector"]["fieldsV1"] == {
        "f:spec": {
            "f:template": {
                "f:spec": {"f:containers": {'k:{"name":"sidecar"}': {".": {}, "f:image": {}, "f:name": {}}}}
            }
        }
    }
    # kubectl re-applies its own configuration: the injector's container stays
    again = run(after, manifest(image="nginx:1.28"), now=T2)
    assert [(c["name"], c["image"]) for c in again["spec"]["template"]["spec"]["containers"]] == [
        ("nginx", "nginx:1.28"),
        ("sidecar", "busybox"),
    ]
    # and the injector withdrawing its container removes it
    withdrawn = {k: v for k, v in sidecar.items() if k != "spec"}
    gone = run(again, withdrawn, "injector", now=T3)
    assert [c["name"] for c in gone["spec"]["template"]["spec"]["containers"]] == ["nginx"]
    assert "injector" not in entries(gone)


def test_ports_are_keyed_by_port_and_protocol() -> None:
    config = manifest()
    config["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 53, "protocol": "UDP"},
        {"containerPort": 53},
    ]
    obj = run(None, config)
    ports = entries(obj)["kubectl"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"][
        'k:{"name":"nginx"}'
    ]["f:ports"]
    assert set(ports) == {
        'k:{"containerPort":53,"protocol":"TCP"}',
        'k:{"containerPort":53,"protocol":"UDP"}',
    }


def test_atomic_lists_are_replaced_and_owned_whole() -> None:
    config = manifest()
    config["spec"]["template"]["spec"]["containers"][0]["args"] = ["a", "b"]
    config["spec"]["template"]["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    live = run(None, config, now=T0)
    spec_fields = entries(live)["kubectl"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    assert spec_fields["f:tolerations"] == {}
    assert spec_fields["f:containers"]['k:{"name":"nginx"}']["f:args"] == {}
    config["spec"]["template"]["spec"]["containers"][0]["args"] = ["c"]
    after = run(live, config, now=T1)
    assert after["spec"]["template"]["spec"]["containers"][0]["args"] == ["c"]


def test_finalizers_are_a_set() -> None:
    config = manifest()
    config["metadata"]["finalizers"] = ["example.com/a"]
    live = run(None, config, now=T0)
    assert entries(live)["kubectl"]["fieldsV1"]["f:metadata"]["f:finalizers"] == {'v:"example.com/a"': {}}
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "finalizers": ["example.com/b"]},
    }
    after = run(live, other, "controller", now=T1)
    assert after["metadata"]["finalizers"] == ["example.com/a", "example.com/b"]


def test_atomic_maps_are_owned_whole() -> None:
    live = run(None, manifest(), now=T0)
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "other"}}},
    }
    error = conflict(lambda: run(live, other, "someone"))
    assert error.details["causes"][0]["field"] == ".spec.selector"


def test_custom_resources_merge_maps_and_replace_lists() -> None:
    crd = {"group": "stable.example.com", "version": "v1", "kind": "CronTab"}
    config = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "c", "labels": {"a": "1"}},
        "spec": {"schedule": "* * * * *", "items": [1, 2]},
    }
    live = ssa.apply(None, config, manager="kubectl", force=False, now=T0, **crd)
    assert live["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:a": {}}},
        "f:spec": {".": {}, "f:items": {}, "f:schedule": {}},
    }
    other = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "c"},
        "spec": {"image": "x", "items": [3]},
    }
    error = conflict(lambda: ssa.apply(live, other, manager="m", force=False, now=T1, **crd))
    assert error.details["causes"][0]["field"] == ".spec.items"
    after = ssa.apply(live, other, manager="m", force=True, now=T1, **crd)
    assert after["spec"] == {"schedule": "* * * * *", "items": [3], "image": "x"}


# --- bad applied configurations ------------------------------------------------------------------------------------


def test_the_version_must_match() -> None:
    with pytest.raises(StatusError) as info:
        run(None, {**manifest(), "apiVersion": "apps/v1beta1"})
    assert (info.value.code, info.value.reason) == (400, "BadRequest")
    assert (
        info.value.message
        == "Incorrect version specified in apply patch. Specified patch version: apps/v1beta1, expected: apps/v1"
    )


def test_managed_fields_may_not_be_applied() -> None:
    config = manifest()
    config["metadata"]["managedFields"] = []
    with pytest.raises(StatusError) as info:
        run(None, config)
    assert (info.value.code, info.value.message) == (400, "metadata.managedFields must be nil")


def test_duplicate_keys_in_the_applied_configuration_are_refused() -> None:
    config = manifest()
    config["spec"]["template"]["spec"]["containers"].append({"name": "nginx", "image": "other"})
    with pytest.raises(StatusError) as info:
        run(None, config)
    assert info.value.code == 500
    assert info.value.message == (
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
        '.spec.template.spec.containers: duplicate entries for key [name="nginx"]'
    )


# --- record_update -------------------------------------------------------------------------------------------------


def configmap(**data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", "uid": "u"},
        "data": dict(data),
    }


def test_record_update_on_create_owns_every_field() -> None:
    obj = configmap(a="1")
    obj["metadata"]["labels"] = {"x": "y"}
    ssa.record_update(None, obj, manager="kube-controller-manager", api_version="v1", now=T0)
    assert obj["metadata"]["managedFields"] == [
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}},
        }
    ]


def test_record_update_takes_changed_fields_and_drops_removed_ones() -> None:
    old = configmap(a="1", b="2")
    ssa.record_update(None, old, manager="alice", api_version="v1", now=T0)
    new = copy.deepcopy(old)
    new["data"] = {"a": "changed", "c": "3"}
    ssa.record_update(old, new, manager="bob", api_version="v1", now=T1)
    by_manager = {e["manager"]: e for e in new["metadata"]["managedFields"]}
    assert by_manager["alice"]["fieldsV1"] == {"f:data": {}}  # the map itself, no longer any key
    assert by_manager["bob"]["fieldsV1"] == {"f:data": {"f:a": {}, "f:c": {}}}
    assert [e["manager"] for e in new["metadata"]["managedFields"]] == ["alice", "bob"]  # sorted by time
    # a write that changes nothing records nothing
    same = copy.deepcopy(new)
    ssa.record_update(new, same, manager="carol", api_version="v1", now=T2)
    assert same == new


def test_record_update_keeps_the_managers_earlier_fields() -> None:
    old = configmap(a="1")
    ssa.record_update(None, old, manager="alice", api_version="v1", now=T0)
    new = copy.deepcopy(old)
    new["data"]["b"] = "2"
    ssa.record_update(old, new, manager="alice", api_version="v1", now=T1)
    [entry] = new["metadata"]["managedFields"]
    assert entry["fieldsV1"] == {"f:data": {".": {}, "f:a": {}, "f:b": {}}} and entry["time"] == T1


def test_record_update_of_a_subresource() -> None:
    old = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "uid": "u"},
        "spec": {"replicas": 1},
    }
    ssa.record_update(None, old, manager="kubectl", api_version="apps/v1", now=T0)
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    ssa.record_update(
        old, new, manager="kube-controller-manager", api_version="apps/v1", now=T1, subresource="status"
    )
    entry = new["metadata"]["managedFields"][1]
    assert entry["subresource"] == "status" and entry["manager"] == "kube-controller-manager"
    assert entry["fieldsV1"] == {
        "f:status": {
            "f:conditions": {".": {}, 'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}},
            "f:replicas": {},
        }
    }


def test_record_update_does_not_track_an_object_without_managed_fields() -> None:
    old = configmap(a="1")
    new = configmap(a="2")
    ssa.record_update(old, new, manager="m", api_version="v1", now=T1)
    assert "managedFields" not in new["metadata"]


def test_sending_empty_managed_fields_clears_them() -> None:
    old = configmap(a="1")
    ssa.record_update(None, old, manager="m", api_version="v1", now=T0)
    new = copy.deepcopy(old)
    new["metadata"]["managedFields"] = []
    new["data"]["a"] = "2"
    ssa.record_update(old, new, manager="m", api_version="v1", now=T1)
    assert "managedFields" not in new["metadata"]


def test_managed_fields_sent_with_an_update_replace_the_live_ones() -> None:
    old = configmap(a="1")
    ssa.record_update(None, old, manager="kubectl-client-side-apply", api_version="v1", now=T0)
    new = copy.deepcopy(old)
    new["metadata"]["managedFields"] = [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]
    ssa.record_update(old, new, manager="kubectl", api_version="v1", now=T1)
    assert new["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]


# --- field sets ----------------------------------------------------------------------------------------------------


def test_fields_v1_round_trip_and_set_operations() -> None:
    fields = {
        "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
        "f:spec": {"f:containers": {'k:{"name":"x"}': {".": {}, "f:image": {}}}},
    }
    parsed = ssa.FieldSet.from_fields(fields)
    assert parsed.to_fields() == fields
    assert parsed.has(("f:metadata", "f:labels")) and parsed.has(("f:metadata", "f:labels", "f:a"))
    assert not parsed.has(("f:metadata",))
    other = ssa.FieldSet.from_fields({"f:metadata": {"f:labels": {"f:a": {}}}})
    assert parsed.difference(other).to_fields() == {
        "f:metadata": {"f:labels": {}},
        "f:spec": fields["f:spec"],
    }
    assert parsed.intersection(other) == other
    assert parsed.union(other) == parsed
    assert [ssa.path_string(p) for p in parsed.paths()] == [
        ".metadata.labels",
        ".metadata.labels.a",
        '.spec.containers[name="x"]',
        '.spec.containers[name="x"].image',
    ]
