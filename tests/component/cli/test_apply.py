"""``kbox apply`` and ``kbox create`` through the installed command against a fake-runtime profile.

Covers: create / unchanged / configured with fields removed since the last apply; interoperation with
the real ``kubectl apply`` on the last-applied annotation in both directions; files, directories (``-R``),
stdin and ``kind: List``; namespaces (manifest, ``-n``, conflict); dry runs and ``-o``; one-line errors
for YAML that does not parse, objects without a kind and unknown kinds; ``kbox create -f`` reporting
AlreadyExists and going on; the ``create namespace`` / ``create deployment`` generators.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.component.cli.conftest import KboxCluster, one_line_error

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def deployment(
    name: str, *, image: str = "busybox", env: dict[str, str] | None = None, **spec: object
) -> dict:
    container: dict[str, object] = {"name": "app", "image": image}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
            **spec,
        },
    }


def configmap(name: str, data: dict[str, str], namespace: str | None = None) -> dict:
    meta: dict[str, str] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def write(path: Path, *objects: dict) -> str:
    path.write_text(yaml.safe_dump_all(objects))
    return str(path)


def get_json(cluster: KboxCluster, *args: str) -> dict:
    return json.loads(cluster.kubectl_ok("get", *args, "-o", "json"))


def test_apply_creates_then_reports_unchanged_then_configures_removals(
    cluster: KboxCluster, tmp_path: Path
) -> None:
    ns = cluster.namespace("apply")
    path = tmp_path / "app.yaml"
    write(
        path,
        deployment("web", env={"A": "1", "B": "2"}, minReadySeconds=2),
        configmap("settings", {"a": "1", "b": "2"}),
    )
    out = cluster.ok("apply", "-f", str(path), "-n", ns)
    assert out.splitlines() == ["deployment.apps/web created", "configmap/settings created"]
    assert cluster.ok("apply", "-f", str(path), "-n", ns).splitlines() == [
        "deployment.apps/web unchanged",
        "configmap/settings unchanged",
    ]

    # Someone else labels the ConfigMap; the next apply keeps that label but drops what the file dropped.
    cluster.kubectl_ok("label", "configmap", "settings", "owner=ops", "-n", ns)
    write(path, deployment("web", env={"A": "1"}), configmap("settings", {"a": "1", "c": "3"}))
    assert cluster.ok("apply", "-f", str(path), "-n", ns).splitlines() == [
        "deployment.apps/web configured",
        "configmap/settings configured",
    ]
    cm = get_json(cluster, "configmap", "settings", "-n", ns)
    assert cm["data"] == {"a": "1", "c": "3"}
    assert cm["metadata"]["labels"] == {"owner": "ops"}
    web = get_json(cluster, "deployment", "web", "-n", ns)
    assert "minReadySeconds" not in web["spec"]
    assert web["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    applied = json.loads(web["metadata"]["annotations"][LAST_APPLIED])
    assert applied["metadata"]["namespace"] == ns and "minReadySeconds" not in applied["spec"]

    # The real kubectl reads kbox's annotation as its own: nothing to change.
    assert cluster.kubectl_ok("apply", "-f", str(path), "-n", ns).splitlines() == [
        "deployment.apps/web unchanged",
        "configmap/settings unchanged",
    ]


def test_kubectl_apply_then_kbox_apply_share_the_annotation(cluster: KboxCluster, tmp_path: Path) -> None:
    ns = cluster.namespace("interop")
    path = tmp_path / "cm.yaml"
    write(path, configmap("shared", {"a": "1", "b": "2", "note": "<x & y>"}))
    cluster.kubectl_ok("apply", "-f", str(path), "-n", ns)
    assert cluster.ok("apply", "-f", str(path), "-n", ns).strip() == "configmap/shared unchanged"
    # kubectl applied "b"; kbox removes it because it is gone from the file, as kubectl would.
    write(path, configmap("shared", {"a": "1", "note": "<x & y>"}))
    assert cluster.ok("apply", "-f", str(path), "-n", ns).strip() == "configmap/shared configured"
    assert get_json(cluster, "configmap", "shared", "-n", ns)["data"] == {"a": "1", "note": "<x & y>"}
    assert cluster.kubectl_ok("apply", "-f", str(path), "-n", ns).strip() == "configmap/shared unchanged"


def test_apply_an_object_created_without_annotation_warns_and_adopts(
    cluster: KboxCluster, tmp_path: Path
) -> None:
    ns = cluster.namespace("adopt")
    cluster.kubectl_ok("create", "configmap", "plain", "--from-literal=a=1", "-n", ns)
    path = write(tmp_path / "plain.yaml", configmap("plain", {"a": "2"}))
    result = cluster.kbox("apply", "-f", path, "-n", ns)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "configmap/plain configured"
    assert "missing the kubectl.kubernetes.io/last-applied-configuration annotation" in result.stderr
    cm = get_json(cluster, "configmap", "plain", "-n", ns)
    assert cm["data"] == {"a": "2"} and LAST_APPLIED in cm["metadata"]["annotations"]


def test_directories_stdin_lists_and_namespaces(cluster: KboxCluster, tmp_path: Path) -> None:
    ns = cluster.namespace("files")
    other = cluster.namespace("files-other")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "a.yaml", configmap("from-dir", {"x": "1"}, namespace=ns))
    write(tmp_path / "sub" / "b.yml", configmap("from-subdir", {"x": "1"}, namespace=other))
    (tmp_path / "notes.txt").write_text("not a manifest")
    assert cluster.ok("apply", "-f", str(tmp_path)).strip() == "configmap/from-dir created"
    out = cluster.ok("apply", "-R", "-f", str(tmp_path))
    assert out.splitlines() == ["configmap/from-dir unchanged", "configmap/from-subdir created"]
    cluster.kubectl_ok("get", "configmap", "from-subdir", "-n", other)  # each manifest's namespace

    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [configmap("listed-1", {}), configmap("listed-2", {})],
    }
    out = cluster.ok("apply", "-f", "-", "-n", ns, input=json.dumps(listing) + "\n---\n")
    assert out.splitlines() == ["configmap/listed-1 created", "configmap/listed-2 created"]

    # A manifest's namespace that contradicts -n is refused, as kubectl refuses it.
    path = write(tmp_path / "sub" / "b.yml", configmap("from-subdir", {"x": "2"}, namespace=other))
    line = one_line_error(cluster.kbox("apply", "-f", path, "-n", ns))
    assert line == (
        f'error: the namespace from the provided object "{other}" does not match the namespace "{ns}". '
        f"You must pass '--namespace={other}' to perform this operation."
    )


def test_dry_runs_and_output_formats(cluster: KboxCluster, tmp_path: Path) -> None:
    ns = cluster.namespace("dry")
    path = write(tmp_path / "cm.yaml", configmap("dry", {"a": "1"}))
    assert (
        cluster.ok("apply", "-f", path, "-n", ns, "--dry-run=server").strip()
        == "configmap/dry created (server dry run)"
    )
    assert (
        cluster.ok("apply", "-f", path, "-n", ns, "--dry-run=client").strip()
        == "configmap/dry created (dry run)"
    )
    assert cluster.kubectl("get", "configmap", "dry", "-n", ns).returncode != 0  # nothing persisted
    assert cluster.ok("apply", "-f", path, "-n", ns, "-o", "name").strip() == "configmap/dry"
    shown = yaml.safe_load(cluster.ok("apply", "-f", path, "-n", ns, "-o", "yaml"))
    assert shown["kind"] == "ConfigMap" and shown["metadata"]["uid"]
    shown = json.loads(cluster.ok("create", "-f", path, "-n", ns, "--dry-run=server", "-o", "json"))
    assert shown["metadata"]["name"] == "dry"


def test_bad_input_is_one_line(cluster: KboxCluster, tmp_path: Path) -> None:
    bad = tmp_path / "deploy.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: a: b\n")
    line = one_line_error(cluster.kbox("apply", "-f", str(bad)))
    assert line.startswith(f"error: {bad}:5: mapping values are not allowed")

    nokind = write(tmp_path / "nokind.yaml", {"apiVersion": "v1", "metadata": {"name": "x"}})
    assert one_line_error(cluster.kbox("apply", "-f", nokind)) == (
        f'error: {nokind} (document 1): object "x" has no kind'
    )

    unknown = write(
        tmp_path / "unknown.yaml", {"apiVersion": "v1", "kind": "Frobnicator", "metadata": {"name": "x"}}
    )
    line = one_line_error(cluster.kbox("apply", "-f", unknown))
    assert 'no matches for kind "Frobnicator" in version "v1"' in line
    assert "Deployment (apps/v1)" in line and "ConfigMap (v1)" in line

    assert one_line_error(cluster.kbox("apply", "-f", str(tmp_path / "missing.yaml"))) == (
        f'error: the path "{tmp_path / "missing.yaml"}" does not exist'
    )
    ns = cluster.namespace("validate")
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: {ns}\ndatta: {{}}\n"
    )
    assert one_line_error(cluster.kbox("apply", "-f", str(typo))) == (
        f'Error from server (BadRequest): error when creating "{typo}": strict decoding error: unknown field "datta"'
    )
    assert cluster.ok("apply", "-f", str(typo), "--validate=false").strip() == "configmap/typo created"

    empty = tmp_path / "empty.yaml"
    empty.write_text("---\n# nothing\n---\n")
    assert (
        one_line_error(cluster.kbox("apply", "-f", str(empty))) == "error: no objects passed to the command"
    )


def test_create_reports_already_exists_and_goes_on(cluster: KboxCluster, tmp_path: Path) -> None:
    ns = cluster.namespace("create")
    path = write(tmp_path / "two.yaml", configmap("first", {"a": "1"}), configmap("second", {"a": "1"}))
    cluster.kubectl_ok("create", "configmap", "first", "-n", ns)
    result = cluster.kbox("create", "-f", path, "-n", ns)
    assert result.returncode == 1
    assert result.stdout.strip() == "configmap/second created"
    assert one_line_error(result) == (
        f'Error from server (AlreadyExists): error when creating "{path}": configmaps "first" already exists'
    )
    assert LAST_APPLIED not in (
        get_json(cluster, "configmap", "second", "-n", ns)["metadata"].get("annotations") or {}
    )


def test_create_generators(cluster: KboxCluster) -> None:
    name = "gen-ns-" + cluster.namespace("x").split("-")[-1]
    assert cluster.ok("create", "namespace", name).strip() == f"namespace/{name} created"
    out = cluster.ok(
        "create", "deployment", "web", "--image=registry.local/team/nginx:1.27", "--replicas=2", "-n", name
    )
    assert out.strip() == "deployment.apps/web created"
    web = get_json(cluster, "deployment", "web", "-n", name)
    assert web["spec"]["replicas"] == 2
    assert web["spec"]["selector"]["matchLabels"] == {"app": "web"}
    assert web["spec"]["template"]["spec"]["containers"][0]["name"] == "nginx"
    shown = yaml.safe_load(
        cluster.ok("create", "deployment", "other", "--image=busybox", "--dry-run=client", "-o", "yaml")
    )
    assert shown["metadata"] == {"labels": {"app": "other"}, "name": "other"}
    assert cluster.kubectl("get", "deployment", "other", "-n", name).returncode != 0


def test_server_side_apply_and_conflicts(cluster: KboxCluster, tmp_path: Path) -> None:
    ns = cluster.namespace("ssa")
    path = write(tmp_path / "web.yaml", {**deployment("web"), "metadata": {"name": "web", "namespace": ns}})
    assert (
        cluster.ok("apply", "--server-side", "-f", path).strip() == "deployment.apps/web serverside-applied"
    )
    web = get_json(cluster, "deployment", "web", "-n", ns, "--show-managed-fields")
    assert [m["manager"] for m in web["metadata"]["managedFields"] if m["operation"] == "Apply"] == [
        "kubectl"
    ]
    assert LAST_APPLIED not in (web["metadata"].get("annotations") or {})

    # Another manager asking for a field kubectl owns conflicts, until it forces.
    other = {**deployment("web"), "metadata": {"name": "web", "namespace": ns}}
    other["spec"]["replicas"] = 3
    other_path = write(tmp_path / "other.yaml", other)
    result = cluster.kbox("apply", "--server-side", "--field-manager=ops", "-f", other_path)
    assert result.returncode == 1
    assert one_line_error(result) == (
        f'Error from server (Conflict): error when patching "{other_path}": '
        'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas'
    )
    out = cluster.ok("apply", "--server-side", "--field-manager=ops", "--force-conflicts", "-f", other_path)
    assert out.strip() == "deployment.apps/web serverside-applied"
    assert get_json(cluster, "deployment", "web", "-n", ns)["spec"]["replicas"] == 3

    assert "doesn't work with --server-side" in one_line_error(
        cluster.kbox("apply", "--server-side", "--dry-run=client", "-f", path)
    )
    assert one_line_error(cluster.kbox("apply", "--force-conflicts", "-f", path)) == (
        "error: --force-conflicts only works with --server-side"
    )
