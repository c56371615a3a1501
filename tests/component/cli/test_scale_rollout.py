"""``kbox scale`` and ``kbox rollout`` through the installed command against a fake-runtime profile.

Covers: scaling deployments, replicasets and statefulsets through ``/scale``, the ``--current-replicas``
precondition, a kind without a scale subresource; ``rollout status`` on a rollout that cannot finish
(pods that no node accepts: the timeout and kubectl's waiting line) and one that does; ``history`` with
revisions and change causes; ``undo`` to the previous and to a given revision, skipped when already
there, refused when paused; ``restart``; ``pause``/``resume``.
"""

from __future__ import annotations

import json

from tests.component.cli.conftest import KboxCluster, one_line_error


def get_json(cluster: KboxCluster, *args: str) -> dict:
    return json.loads(cluster.kubectl_ok("get", *args, "-o", "json"))


def image_of(cluster: KboxCluster, name: str, ns: str) -> str:
    deploy = get_json(cluster, "deployment", name, "-n", ns)
    return str(deploy["spec"]["template"]["spec"]["containers"][0]["image"])


def rollout_done(cluster: KboxCluster, name: str, ns: str) -> None:
    out = cluster.ok("rollout", "status", f"deployment/{name}", "-n", ns, "--timeout=60s")
    assert out.splitlines()[-1] == f'deployment "{name}" successfully rolled out'


def test_scale_deployments_replicasets_and_statefulsets(cluster: KboxCluster) -> None:
    ns = cluster.namespace("scale")
    cluster.ok("create", "deployment", "web", "--image=busybox", "-n", ns)
    assert (
        cluster.ok("scale", "deployment/web", "--replicas=3", "-n", ns).strip()
        == "deployment.apps/web scaled"
    )
    rollout_done(cluster, "web", ns)
    assert get_json(cluster, "deployment", "web", "-n", ns)["status"]["availableReplicas"] == 3

    result = cluster.kbox("scale", "deploy", "web", "--replicas=1", "--current-replicas=5", "-n", ns)
    assert one_line_error(result) == "error: Expected replicas to be 5, was 3"
    assert get_json(cluster, "deployment", "web", "-n", ns)["spec"]["replicas"] == 3
    assert cluster.ok("scale", "deploy", "web", "--replicas=1", "--current-replicas=3", "-n", ns).strip() == (
        "deployment.apps/web scaled"
    )
    assert get_json(cluster, "deployment", "web", "-n", ns)["spec"]["replicas"] == 1

    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {
            "replicas": 1,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "x"}]},
            },
        },
    }
    rs = {**sts, "kind": "ReplicaSet", "metadata": {"name": "bare", "namespace": ns}}
    rs["spec"] = {k: v for k, v in sts["spec"].items() if k != "serviceName"}
    rs["spec"]["template"] = {**sts["spec"]["template"], "metadata": {"labels": {"app": "bare"}}}
    rs["spec"]["selector"] = {"matchLabels": {"app": "bare"}}
    cluster.ok("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [sts, rs]}))
    out = cluster.ok("scale", "statefulset/db", "rs/bare", "--replicas=2", "-n", ns)
    assert out.splitlines() == ["statefulset.apps/db scaled", "replicaset.apps/bare scaled"]
    assert get_json(cluster, "statefulset", "db", "-n", ns)["spec"]["replicas"] == 2
    assert get_json(cluster, "replicaset", "bare", "-n", ns)["spec"]["replicas"] == 2

    cluster.kubectl_ok("create", "configmap", "plain", "-n", ns)
    line = one_line_error(cluster.kbox("scale", "configmap/plain", "--replicas=2", "-n", ns))
    assert line == "error: cannot scale configmaps: the server offers no scale subresource for it"
    line = one_line_error(cluster.kbox("scale", "deployment/ghost", "--replicas=2", "-n", ns))
    assert line == 'Error from server (NotFound): deployments.apps "ghost" not found'


def test_rollout_status_waits_and_times_out(cluster: KboxCluster) -> None:
    ns = cluster.namespace("status")
    cluster.ok("create", "deployment", "stuck", "--image=busybox", "--replicas=2", "-n", ns)
    # No node has this label: the pods stay Pending, the rollout cannot finish.
    cluster.kubectl_ok(
        "patch",
        "deployment",
        "stuck",
        "-n",
        ns,
        "-p",
        '{"spec":{"template":{"spec":{"nodeSelector":{"disk":"none"}}}}}',
    )
    result = cluster.kbox("rollout", "status", "deployment/stuck", "-n", ns, "--timeout=2s")
    assert result.returncode == 1
    assert one_line_error(result) == "error: timed out waiting for the condition"
    assert result.stdout.splitlines()[-1].startswith('Waiting for deployment "stuck" rollout to finish: ')

    once = cluster.ok("rollout", "status", "deploy/stuck", "-n", ns, "--watch=false")
    assert len(once.splitlines()) == 1 and once.startswith('Waiting for deployment "stuck"')

    cluster.kubectl_ok("patch", "deployment", "stuck", "-n", ns, "--type=json", "-p",
                       '[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]')  # fmt: skip
    rollout_done(cluster, "stuck", ns)
    assert one_line_error(cluster.kbox("rollout", "history", "deployment/ghost", "-n", ns)) == (
        'Error from server (NotFound): deployments.apps "ghost" not found'
    )
    assert one_line_error(cluster.kbox("rollout", "status", "configmap/x", "-n", ns)).endswith(
        "kbox rollout handles deployments, daemonsets and statefulsets only, not configmaps"
    )


def test_history_undo_restart_pause_resume(cluster: KboxCluster) -> None:
    ns = cluster.namespace("rollout")
    cluster.ok("create", "deployment", "web", "--image=busybox:1", "-n", ns)
    rollout_done(cluster, "web", ns)
    for image in ("busybox:2", "busybox:3"):
        cluster.kubectl_ok("set", "image", "deployment/web", f"busybox={image}", "-n", ns)
        rollout_done(cluster, "web", ns)
    first_rs = next(
        rs["metadata"]["name"]
        for rs in get_json(cluster, "rs", "-n", ns)["items"]
        if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    )
    cluster.kubectl_ok("annotate", "rs", first_rs, "-n", ns, "kubernetes.io/change-cause=first image")

    lines = cluster.ok("rollout", "history", "deployment/web", "-n", ns).splitlines()
    assert lines[0].strip() == "deployment.apps/web"
    assert [line.split(None, 1) for line in lines[1:5]] == [
        ["REVISION", "CHANGE-CAUSE"],
        ["1", "first image"],
        ["2", "<none>"],
        ["3", "<none>"],
    ]
    template = cluster.ok("rollout", "history", "deployment/web", "-n", ns, "--revision=2")
    assert template.startswith("deployment.apps/web with revision #2") and "busybox:2" in template

    assert (
        cluster.ok("rollout", "undo", "deployment/web", "-n", ns).strip() == "deployment.apps/web rolled back"
    )
    rollout_done(cluster, "web", ns)
    assert image_of(cluster, "web", ns) == "busybox:2"
    assert cluster.ok("rollout", "undo", "deploy/web", "--to-revision=1", "-n", ns).strip() == (
        "deployment.apps/web rolled back"
    )
    rollout_done(cluster, "web", ns)
    assert image_of(cluster, "web", ns) == "busybox:1"
    revisions = [
        line.split()[0]
        for line in cluster.ok("rollout", "history", "deploy/web", "-n", ns).splitlines()[2:]
        if line.strip()
    ]
    assert revisions[-1] == "5"  # each undo is a new revision
    assert cluster.ok("rollout", "undo", "deploy/web", "--to-revision=5", "-n", ns).strip() == (
        "deployment.apps/web skipped rollback (current template already matches revision 5)"
    )
    assert one_line_error(cluster.kbox("rollout", "undo", "deploy/web", "--to-revision=9", "-n", ns)) == (
        "error: unable to find specified revision 9 in history"
    )

    assert (
        cluster.ok("rollout", "restart", "deployment/web", "-n", ns).strip()
        == "deployment.apps/web restarted"
    )
    rollout_done(cluster, "web", ns)
    annotations = get_json(cluster, "deployment", "web", "-n", ns)["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert "kubectl.kubernetes.io/restartedAt" in annotations

    assert cluster.ok("rollout", "pause", "deployment/web", "-n", ns).strip() == "deployment.apps/web paused"
    assert get_json(cluster, "deployment", "web", "-n", ns)["spec"]["paused"] is True
    assert "can't restart paused deployment" in one_line_error(
        cluster.kbox("rollout", "restart", "deploy/web", "-n", ns)
    )
    assert "cannot rollback a paused deployment" in one_line_error(
        cluster.kbox("rollout", "undo", "deploy/web", "-n", ns)
    )
    assert (
        cluster.ok("rollout", "resume", "deployment/web", "-n", ns).strip() == "deployment.apps/web resumed"
    )
    assert not get_json(cluster, "deployment", "web", "-n", ns)["spec"].get("paused")
