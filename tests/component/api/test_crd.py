"""CustomResourceDefinitions served at run time, through the real kubectl and the official client's
CustomObjectsApi against one embedded cluster (fake runtime, controllers running):

- the CRD lifecycle: apply, ``kubectl wait --for=condition=Established``, discovery (plural, short
  name, kind, categories), OpenAPI (``kubectl explain``), printer columns, ``kubectl scale``, strategic
  merge refused with 415, deletion (objects first, then the CRD, then the resource leaves discovery);
- custom objects with CustomObjectsApi: create, list with selectors, watch, patch (merge, JSON, apply),
  status subresource and generation, delete, cluster scope;
- CRD validation and name conflicts (NamesAccepted False), several versions (apiVersion rewritten,
  served=false not served, Webhook conversion not established);
- garbage collection and namespace deletion of custom objects registered at run time;
- CRDs and their objects after a restart of the control plane (last: it restarts the shared cluster).

Not covered here: schema validation wording (tests/unit/api/test_structural*.py) and kopf
(tests/component/test_kopf_operator.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from kbox.api.crd import definition
from kbox.testing.cluster import Cluster, SyncCluster
from tests.support.apiserver import KUBECTL
from tests.support.wait import until

Obj = dict[str, Any]


def crd_manifest(
    group: str,
    kind: str,
    *,
    plural: str | None = None,
    scope: str = "Namespaced",
    short: tuple[str, ...] = (),
    versions: list[Obj] | None = None,
    conversion: Obj | None = None,
) -> Obj:
    plural = plural or kind.lower() + "s"
    spec: Obj = {
        "group": group,
        "scope": scope,
        "names": {"plural": plural, "kind": kind, "shortNames": list(short), "categories": ["all"]},
        "versions": versions or [version("v1")],
    }
    if conversion is not None:
        spec["conversion"] = conversion
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": spec,
    }


def version(name: str, *, served: bool = True, storage: bool = True, columns: bool = True) -> Obj:
    entry: Obj = {
        "name": name,
        "served": served,
        "storage": storage,
        "subresources": {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            },
        },
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "properties": {
                            "cronSpec": {"type": "string"},
                            "image": {"type": "string"},
                            "replicas": {"type": "integer"},
                        },
                    },
                    "status": {
                        "type": "object",
                        "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}},
                    },
                },
            }
        },
    }
    if columns:
        entry["additionalPrinterColumns"] = [
            {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ]
    return entry


@pytest.fixture(scope="module")
def c() -> Iterator[SyncCluster]:
    with Cluster(runtime="fake", durable=True) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def api(c: SyncCluster) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(c.kubeconfig_path), client_configuration=configuration)
    return client.ApiClient(configuration)


def kubectl(c: SyncCluster, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if not Path(KUBECTL).exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{KUBECTL} is missing under CI=true")
        pytest.skip(f"{KUBECTL} is not installed")
    cache = Path(c.state_dir) / "kubectl-cache"
    return subprocess.run(
        [KUBECTL, f"--kubeconfig={c.kubeconfig_path}", f"--cache-dir={cache}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(c: SyncCluster, *args: str, stdin: str | None = None) -> str:
    result = kubectl(c, *args, stdin=stdin)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}{result.stdout}"
    return result.stdout


def established(c: SyncCluster, crd: Obj) -> Obj:
    name = crd["metadata"]["name"]
    c.apply(crd)
    return c.wait_for(
        "customresourcedefinitions",
        name,
        lambda o: any(
            x["type"] == "Established" and x["status"] == "True"
            for x in (o.get("status") or {}).get("conditions") or []
        ),
        timeout=10,
    )


def conditions(c: SyncCluster, name: str) -> dict[str, Obj]:
    crd = c.get("customresourcedefinitions", name)
    return {x["type"]: x for x in (crd.get("status") or {}).get("conditions") or []}


# -- kubectl ---------------------------------------------------------------------------------------------


def test_kubectl_lifecycle(c: SyncCluster) -> None:
    crd = crd_manifest("stable.example.com", "CronTab", short=("ct",))
    ok(c, "apply", "-f", "-", stdin=yaml.safe_dump(crd))
    ok(c, "wait", "--for=condition=Established", "crd/crontabs.stable.example.com", "--timeout=10s")
    cron = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "nightly", "labels": {"app": "cron"}},
        "spec": {"cronSpec": "0 3 * * *", "image": "backup:1", "replicas": 1},
    }
    ok(c, "apply", "-f", "-", stdin=yaml.safe_dump(cron))

    table = ok(c, "get", "ct")
    header = table.splitlines()[0].split()
    assert header[0] == "NAME" and header[-1] == "AGE"
    assert "nightly" in table
    assert "nightly" in ok(c, "get", "crontabs.stable.example.com")
    assert "nightly" in ok(c, "get", "CronTab")
    assert "crontab.stable.example.com/nightly" in ok(c, "get", "all", "-o", "name")
    resources = ok(c, "api-resources", "--api-group=stable.example.com")
    assert "crontabs" in resources and "ct" in resources and "CronTab" in resources
    assert "cronSpec" in ok(c, "explain", "crontab.spec")

    ok(c, "scale", "ct/nightly", "--replicas=3")
    scaled = json.loads(ok(c, "get", "ct", "nightly", "-o", "json"))
    assert scaled["spec"]["replicas"] == 3 and scaled["metadata"]["generation"] == 2

    refused = kubectl(c, "patch", "ct", "nightly", "-p", '{"spec":{"image":"x"}}')
    assert refused.returncode != 0
    assert "application/strategic-merge-patch+json is not supported" in refused.stderr
    ok(c, "patch", "ct", "nightly", "--type=merge", "-p", '{"spec":{"image":"backup:2"}}')
    assert json.loads(ok(c, "get", "ct", "nightly", "-o", "json"))["spec"]["image"] == "backup:2"

    ok(c, "delete", "crd", "crontabs.stable.example.com", "--timeout=20s")
    gone = kubectl(c, "get", "crd", "crontabs.stable.example.com")
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    assert "crontabs" not in ok(c, "api-resources")
    assert kubectl(c, "get", "--raw", "/apis/stable.example.com/v1").returncode != 0


def test_printer_columns(c: SyncCluster) -> None:
    structural = pytest.importorskip("kbox.api.structural")
    if not hasattr(structural, "printer_for_columns"):
        pytest.skip("the structural-schema engine has no printer yet")
    established(c, crd_manifest("print.example.com", "Job", plural="jobs"))
    c.apply(
        {
            "apiVersion": "print.example.com/v1",
            "kind": "Job",
            "metadata": {"name": "j1"},
            "spec": {"cronSpec": "*/5 * * * *", "replicas": 4},
        }
    )
    lines = ok(c, "get", "jobs.print.example.com").splitlines()
    assert lines[0].split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert lines[1].split()[:6] == ["j1", "*/5", "*", "*", "*", "*"]
    assert lines[1].split()[6] == "4"


def test_fixture_applies_a_crd_and_its_objects_in_one_manifest(c: SyncCluster) -> None:
    crd = crd_manifest("fixture.example.com", "Probe", short=("pb",))
    probe = {"apiVersion": "fixture.example.com/v1", "kind": "Probe", "metadata": {"name": "p1"}, "spec": {}}
    applied = c.apply(yaml.safe_dump_all([crd, probe]))
    assert applied[1]["kind"] == "Probe" and applied[1]["metadata"]["namespace"] == "default"
    assert c.get("pb", "p1")["metadata"]["uid"] == applied[1]["metadata"]["uid"]


# -- the official client ---------------------------------------------------------------------------------


def test_custom_objects_api(c: SyncCluster, api: client.ApiClient) -> None:
    established(c, crd_manifest("objects.example.com", "Widget"))
    objects = client.CustomObjectsApi(api)
    args = ("objects.example.com", "v1", "default", "widgets")
    events: list[tuple[str, str]] = []
    started = threading.Event()

    def watch_events() -> None:
        w = watch.Watch()
        started.set()
        for event in w.stream(objects.list_namespaced_custom_object, *args, timeout_seconds=10):
            events.append((event["type"], event["object"]["metadata"]["name"]))
            if event["type"] == "DELETED":
                w.stop()

    watcher = threading.Thread(target=watch_events, daemon=True)
    watcher.start()
    started.wait()

    body = {
        "apiVersion": "objects.example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "labels": {"tier": "a"}},
    }
    body["spec"] = {"image": "one", "replicas": 1}
    body["status"] = {"replicas": 9}  # dropped: status only changes through the subresource
    created = objects.create_namespaced_custom_object(*args, body)
    assert created["metadata"]["generation"] == 1 and "status" not in created
    objects.create_namespaced_custom_object(
        *args, {"apiVersion": "objects.example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}}
    )

    listed = objects.list_namespaced_custom_object(*args, label_selector="tier=a")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["w1"]
    by_name = objects.list_cluster_custom_object(
        "objects.example.com", "v1", "widgets", field_selector="metadata.name=w2"
    )
    assert [i["metadata"]["name"] for i in by_name["items"]] == ["w2"]

    patched = objects.patch_namespaced_custom_object(*args, "w1", {"spec": {"image": "two"}})
    assert patched["spec"]["image"] == "two" and patched["metadata"]["generation"] == 2
    status = objects.patch_namespaced_custom_object_status(*args, "w1", {"status": {"replicas": 1}})
    assert status["status"] == {"replicas": 1} and status["metadata"]["generation"] == 2
    # A write of the main resource keeps the status; metadata changes do not bump the generation.
    labelled = objects.patch_namespaced_custom_object(
        *args, "w1", {"metadata": {"labels": {"x": "y"}}, "status": {}}
    )
    assert labelled["status"] == {"replicas": 1} and labelled["metadata"]["generation"] == 2

    json_patched = objects.patch_namespaced_custom_object(
        *args,
        "w1",
        [{"op": "replace", "path": "/spec/replicas", "value": 2}],
        _content_type="application/json-patch+json",
    )
    assert json_patched["spec"]["replicas"] == 2

    scale = objects.get_namespaced_custom_object_scale(*args, "w1")
    assert scale["spec"]["replicas"] == 2 and scale["status"]["replicas"] == 1

    objects.delete_namespaced_custom_object(*args, "w2")
    objects.delete_namespaced_custom_object(*args, "w1")
    with pytest.raises(ApiException) as missing:
        objects.get_namespaced_custom_object(*args, "w1")
    assert missing.value.status == 404
    watcher.join(15)
    assert ("ADDED", "w1") in events and ("MODIFIED", "w1") in events and ("DELETED", "w2") in events


def test_server_side_apply_and_cluster_scope(c: SyncCluster, api: client.ApiClient) -> None:
    established(c, crd_manifest("cluster.example.com", "Gadget", scope="Cluster"))
    objects = client.CustomObjectsApi(api)
    manifest = yaml.safe_dump(
        {
            "apiVersion": "cluster.example.com/v1",
            "kind": "Gadget",
            "metadata": {"name": "g1"},
            "spec": {"image": "a"},
        }
    )
    ok(c, "apply", "--server-side", "-f", "-", stdin=manifest)
    got = objects.get_cluster_custom_object("cluster.example.com", "v1", "gadgets", "g1")
    assert got["spec"] == {"image": "a"} and "namespace" not in got["metadata"]
    assert any(
        m["manager"] == "kubectl" and m["operation"] == "Apply" for m in got["metadata"]["managedFields"]
    )
    with pytest.raises(ApiException) as namespaced:
        objects.get_namespaced_custom_object("cluster.example.com", "v1", "default", "gadgets", "g1")
    assert namespaced.value.status == 404


# -- schemas ---------------------------------------------------------------------------------------------

SCHEMA_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: databases.schema.example.com}
spec:
  group: schema.example.com
  scope: Namespaced
  names: {plural: databases, kind: Database}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [engine]
            x-kubernetes-validations:
            - {rule: "!has(self.owner) || self.owner.lowerAscii() == self.owner", message: owner must be lower case}
            properties:
              engine: {type: string, enum: [postgres, mysql]}
              owner: {type: string}
              replicas: {type: integer, minimum: 0, default: 1}
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    port: {type: integer}
"""


def test_schema_validation_defaulting_pruning_and_apply(c: SyncCluster) -> None:
    created = kubectl(c, "apply", "-f", "-", stdin=SCHEMA_CRD)
    assert created.returncode == 0, created.stderr
    ok(c, "wait", "--for=condition=Established", "crd/databases.schema.example.com", "--timeout=10s")
    # A CEL rule is enforced when the schema engine can evaluate it, else each create warns about it.
    unenforced = definition.STRATEGY.warnings(yaml.safe_load(SCHEMA_CRD))
    upper = {"apiVersion": "schema.example.com/v1", "kind": "Database", "metadata": {"name": "upper"}}
    upper["spec"] = {"engine": "mysql", "owner": "Alice"}
    judged = kubectl(c, "create", "-f", "-", stdin=yaml.safe_dump(upper))
    if unenforced:
        assert all(f"Warning: {text}" in created.stderr for text in unenforced), created.stderr
        assert judged.returncode == 0, judged.stderr
    else:
        assert judged.returncode != 0 and "spec: Invalid value" in judged.stderr
        assert "owner must be lower case" in judged.stderr

    bad = kubectl(
        c,
        "apply",
        "-f",
        "-",
        stdin=yaml.safe_dump(
            {
                "apiVersion": "schema.example.com/v1",
                "kind": "Database",
                "metadata": {"name": "bad"},
                "spec": {"engine": "oracle", "replicas": -1},
            }
        ),
    )
    assert bad.returncode != 0
    assert 'spec.engine: Unsupported value: "oracle": supported values: "postgres", "mysql"' in bad.stderr
    assert (
        "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
        in bad.stderr
    )

    strict = kubectl(
        c,
        "create",
        "--validate=strict",
        "-f",
        "-",
        stdin=yaml.safe_dump(
            {
                "apiVersion": "schema.example.com/v1",
                "kind": "Database",
                "metadata": {"name": "typo"},
                "spec": {"engine": "mysql", "replicaz": 2},
            }
        ),
    )
    assert strict.returncode != 0 and 'unknown field "spec.replicaz"' in strict.stderr

    first = {
        "apiVersion": "schema.example.com/v1",
        "kind": "Database",
        "metadata": {"name": "db"},
        "spec": {"engine": "postgres", "ports": [{"name": "main", "port": 5432}], "extra": True},
    }
    ok(
        c,
        "apply",
        "--server-side",
        "--field-manager=one",
        "--validate=false",
        "-f",
        "-",
        stdin=yaml.safe_dump(first),
    )
    db = c.get("databases.schema.example.com", "db")
    assert db["spec"] == {"engine": "postgres", "replicas": 1, "ports": [{"name": "main", "port": 5432}]}
    # A second manager adds a port: list-map items merge by their key instead of replacing the list.
    second = {
        "apiVersion": "schema.example.com/v1",
        "kind": "Database",
        "metadata": {"name": "db"},
        "spec": {"engine": "postgres", "ports": [{"name": "metrics", "port": 9187}]},
    }
    ok(c, "apply", "--server-side", "--field-manager=two", "-f", "-", stdin=yaml.safe_dump(second))
    db = c.get("databases.schema.example.com", "db")
    assert [p["name"] for p in db["spec"]["ports"]] == ["main", "metrics"]


def test_selectable_fields(c: SyncCluster, api: client.ApiClient) -> None:
    crd = crd_manifest("select.example.com", "Paint")
    crd["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": ".spec.image"}]
    established(c, crd)
    for name, image in (("red", "r"), ("blue", "b"), ("none", None)):
        spec = {"image": image} if image else {}
        c.apply(
            {"apiVersion": "select.example.com/v1", "kind": "Paint", "metadata": {"name": name}, "spec": spec}
        )
    objects = client.CustomObjectsApi(api)
    args = ("select.example.com", "v1", "default", "paints")
    picked = objects.list_namespaced_custom_object(*args, field_selector="spec.image=r")
    assert [i["metadata"]["name"] for i in picked["items"]] == ["red"]
    others = objects.list_namespaced_custom_object(*args, field_selector="spec.image!=r,metadata.name!=none")
    assert [i["metadata"]["name"] for i in others["items"]] == ["blue"]
    with pytest.raises(ApiException) as unknown:
        objects.list_namespaced_custom_object(*args, field_selector="spec.replicas=1")
    assert unknown.value.status == 400
    assert json.loads(unknown.value.body)["message"] == (
        '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace", "spec.image"'
    )


# -- validation and names --------------------------------------------------------------------------------


def test_invalid_crds_are_refused(c: SyncCluster) -> None:
    bad = crd_manifest("nodot", "Thing")
    bad["metadata"]["name"] = "wrong.nodot"
    bad["spec"]["versions"].append(version("v2"))
    result = kubectl(c, "apply", "-f", "-", stdin=yaml.safe_dump(bad))
    assert result.returncode != 0
    assert (
        'metadata.name: Invalid value: "wrong.nodot": must be spec.names.plural+"."+spec.group'
        in result.stderr
    )
    assert 'spec.group: Invalid value: "nodot": should be a domain with at least one dot' in result.stderr
    assert "must have exactly one version marked as storage version" in result.stderr

    crd = crd_manifest("immutable.example.com", "Stone")
    established(c, crd)
    crd["spec"]["scope"] = "Cluster"
    refused = kubectl(c, "apply", "-f", "-", stdin=yaml.safe_dump(crd))
    assert (
        refused.returncode != 0
        and "spec.scope: Invalid value" in refused.stderr
        and "field is immutable" in refused.stderr
    )


def test_name_conflicts(c: SyncCluster) -> None:
    established(c, crd_manifest("names.example.com", "First", plural="things", short=("th",)))
    second = crd_manifest("names.example.com", "Second", plural="seconds", short=("th",))
    with pytest.raises(ValueError, match='ShortNamesConflict: "th" is already in use'):
        c.apply(second)  # the fixture's apply waits for Established, and says why not
    until(
        lambda: conditions(c, "seconds.names.example.com").get("NamesAccepted", {}).get("status") == "False",
        10,
    )
    found = conditions(c, "seconds.names.example.com")
    assert found["NamesAccepted"]["reason"] == "ShortNamesConflict"
    assert found["NamesAccepted"]["message"] == '"th" is already in use'
    assert found["Established"]["status"] == "False"
    assert "seconds" not in ok(c, "api-resources", "--api-group=names.example.com")

    builtin = crd_manifest("coordination.k8s.io", "MyLease", plural="leases")
    missing = kubectl(c, "apply", "-f", "-", stdin=yaml.safe_dump(builtin))
    assert missing.returncode != 0
    assert (
        "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval "
        'annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111'
    ) in missing.stderr
    builtin["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, testing kbox"}
    with pytest.raises(ValueError, match="PluralConflict"):
        c.apply(builtin)
    until(
        lambda: conditions(c, "leases.coordination.k8s.io").get("NamesAccepted", {}).get("status") == "False",
        10,
    )
    found = conditions(c, "leases.coordination.k8s.io")
    assert found["NamesAccepted"]["reason"] == "PluralConflict"
    assert found["KubernetesAPIApprovalPolicyConformant"]["reason"] == "UnapprovedAnnotation"
    c.delete("customresourcedefinitions", "leases.coordination.k8s.io")
    until(lambda: kubectl(c, "get", "crd", "leases.coordination.k8s.io").returncode != 0, 10)
    # The built-in Leases are still served as they were.
    assert ok(c, "get", "--raw", "/apis/coordination.k8s.io/v1").count('"kind":"Lease"') == 1


def test_versions(c: SyncCluster, api: client.ApiClient) -> None:
    crd = crd_manifest(
        "versions.example.com",
        "Multi",
        versions=[
            version("v1", storage=True, columns=False),
            version("v2", storage=False, columns=False),
            version("v3alpha1", served=False, storage=False, columns=False),
        ],
    )
    crd["spec"]["names"]["listKind"] = "MultiItems"
    crd["spec"]["versions"][0]["deprecated"] = True
    established(c, crd)
    objects = client.CustomObjectsApi(api)
    created = objects.create_namespaced_custom_object(
        "versions.example.com",
        "v2",
        "default",
        "multis",
        {"apiVersion": "versions.example.com/v2", "kind": "Multi", "metadata": {"name": "m"}},
    )
    assert created["apiVersion"] == "versions.example.com/v2"
    via_v1 = objects.get_namespaced_custom_object("versions.example.com", "v1", "default", "multis", "m")
    assert via_v1["apiVersion"] == "versions.example.com/v1"
    listed = objects.list_namespaced_custom_object("versions.example.com", "v2", "default", "multis")
    assert listed["items"][0]["apiVersion"] == "versions.example.com/v2"
    assert listed["kind"] == "MultiItems" and listed["apiVersion"] == "versions.example.com/v2"
    with pytest.raises(ApiException) as unserved:
        objects.get_namespaced_custom_object("versions.example.com", "v3alpha1", "default", "multis", "m")
    assert unserved.value.status == 404
    old = kubectl(c, "get", "multis.v1.versions.example.com", "m")
    assert old.returncode == 0 and "m " in old.stdout
    assert (
        "Warning: versions.example.com/v1 Multi is deprecated; use versions.example.com/v2 Multi"
        in old.stderr
    )
    newer = kubectl(c, "get", "multis.v2.versions.example.com", "m")
    assert "Warning" not in newer.stderr
    assert newer.stdout.splitlines()[0].split() == ["NAME", "AGE"]  # no printer columns: the default
    group = json.loads(ok(c, "get", "--raw", "/apis/versions.example.com"))
    assert group["preferredVersion"]["version"] == "v2"
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"]
    stored = c.run(c.cluster.plane.store.get("/registry/versions.example.com/multis/default/m"))
    assert stored is not None and b'"apiVersion":"versions.example.com/v1"' in stored.value

    webhook = crd_manifest(
        "hooks.example.com",
        "Hooked",
        versions=[version("v1", columns=False), version("v2", storage=False, columns=False)],
        conversion={
            "strategy": "Webhook",
            "webhook": {
                "clientConfig": {"url": "https://example.com/convert"},
                "conversionReviewVersions": ["v1"],
            },
        },
    )
    with pytest.raises(ValueError, match="WebhookConversionNotSupported"):
        c.apply(webhook)
    until(
        lambda: (
            conditions(c, "hookeds.hooks.example.com").get("Established", {}).get("reason")
            == "WebhookConversionNotSupported"
        ),
        10,
    )
    assert "not supported" in conditions(c, "hookeds.hooks.example.com")["Established"]["message"]


# -- garbage collection and namespaces -------------------------------------------------------------------


def test_garbage_collection_and_namespace_deletion(c: SyncCluster) -> None:
    established(c, crd_manifest("gc.example.com", "Owner"))
    c.create_namespace("crd-gc")
    owner = c.apply(
        {
            "apiVersion": "gc.example.com/v1",
            "kind": "Owner",
            "metadata": {"name": "o1", "namespace": "crd-gc"},
        }
    )
    ref = {"apiVersion": "gc.example.com/v1", "kind": "Owner", "name": "o1", "uid": owner["metadata"]["uid"]}
    c.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "dependent", "namespace": "crd-gc", "ownerReferences": [ref]},
        }
    )
    c.apply(
        {
            "apiVersion": "gc.example.com/v1",
            "kind": "Owner",
            "metadata": {"name": "child", "namespace": "crd-gc", "ownerReferences": [ref]},
        }
    )
    c.delete("owners.gc.example.com", "o1", namespace="crd-gc")
    until(
        lambda: (
            not _exists(c, "configmaps", "dependent", "crd-gc")
            and not _exists(c, "owners", "child", "crd-gc")
        ),
        15,
    )

    c.apply(
        {
            "apiVersion": "gc.example.com/v1",
            "kind": "Owner",
            "metadata": {"name": "left", "namespace": "crd-gc"},
        }
    )
    c.delete_namespace("crd-gc")
    assert not _exists(c, "owners", "left", "crd-gc")


def _exists(c: SyncCluster, kind: str, name: str, namespace: str) -> bool:
    try:
        c.get(kind, name, namespace=namespace)
    except Exception as exc:
        if "not found" in str(exc).lower() or "404" in str(exc):
            return False
        raise
    return True


def test_deleting_a_crd_waits_for_finalizers(c: SyncCluster) -> None:
    established(c, crd_manifest("final.example.com", "Held"))
    c.apply(
        {
            "apiVersion": "final.example.com/v1",
            "kind": "Held",
            "metadata": {"name": "h", "finalizers": ["example.com/hold"]},
        }
    )
    kubectl(c, "delete", "crd", "helds.final.example.com", "--wait=false")
    until(
        lambda: (
            conditions(c, "helds.final.example.com").get("Terminating", {}).get("reason")
            == "InstanceDeletionInProgress"
        ),
        10,
    )
    until(lambda: c.get("helds.final.example.com", "h")["metadata"].get("deletionTimestamp"), 10)
    refused = kubectl(
        c,
        "create",
        "-f",
        "-",
        stdin=yaml.safe_dump(
            {"apiVersion": "final.example.com/v1", "kind": "Held", "metadata": {"name": "new"}}
        ),
    )
    assert (
        refused.returncode != 0
        and "create not allowed while custom resource definition is terminating" in refused.stderr
    )
    ok(c, "patch", "helds.final.example.com", "h", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    until(lambda: kubectl(c, "get", "crd", "helds.final.example.com").returncode != 0, 10)


# -- restart (last: it restarts the module's cluster) ----------------------------------------------------


def test_survives_restart(c: SyncCluster) -> None:
    established(c, crd_manifest("restart.example.com", "Keeper", short=("kp",)))
    c.apply({"apiVersion": "restart.example.com/v1", "kind": "Keeper", "metadata": {"name": "k1"}})
    c.restart()
    assert "k1" in ok(c, "get", "kp")
    assert c.get("keepers.restart.example.com", "k1")["metadata"]["name"] == "k1"
