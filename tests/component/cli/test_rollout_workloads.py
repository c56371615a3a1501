"""``kbox rollout`` on DaemonSets and StatefulSets, compared with the real kubectl on a fake-runtime profile.

Covers: ``status`` (kubectl's daemon set and statefulset lines, and its refusal of OnDelete strategies),
``history`` (the table and ``--revision`` in describe's layout, both byte for byte as kubectl prints
them, a Deployment's revision too), ``undo`` (``--dry-run=client``, for a Deployment too, back to the previous revision, ``--to-revision``, skipped when
already there), ``restart`` (a new revision with the restartedAt annotation) and
``pause``/``resume`` refusing them.
"""

from __future__ import annotations

import json

from tests.component.cli.conftest import KboxCluster, assert_same_as_kubectl, one_line_error
from tests.support.wait import eventually


def workloads(ns: str, *, on_delete: bool = False) -> str:
    strategy = {"type": "OnDelete"} if on_delete else {}

    def template(app: str) -> dict:
        return {
            "metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": "busybox:1"}]},
        }

    items = [
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": ns},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "updateStrategy": strategy,
                "template": template("agent"),
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": ns},
            "spec": {
                "replicas": 1,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "updateStrategy": strategy,
                "template": template("db"),
            },
        },
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def image_of(cluster: KboxCluster, ref: str, ns: str) -> str:
    obj = json.loads(cluster.kubectl_ok("get", ref, "-n", ns, "-o", "json"))
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


async def test_daemon_set_and_stateful_set_rollouts(cluster: KboxCluster) -> None:
    ns = cluster.namespace("roll")
    cluster.ok("apply", "-f", "-", input=workloads(ns))
    out = cluster.ok("rollout", "status", "daemonset/agent", "sts/db", "-n", ns, "--timeout=30s")
    assert out.splitlines()[-2:] == [
        'daemon set "agent" successfully rolled out',
        "partitioned roll out complete: 1 new pods have been updated...",
    ]
    for ref in ("ds/agent", "sts/db"):
        cluster.kubectl_ok("set", "image", ref, "main=busybox:2", "-n", ns)
    cluster.kubectl_ok("create", "deployment", "web", "--image=busybox:1", "-n", ns)
    cluster.kubectl_ok("set", "image", "deploy/web", "busybox=busybox:2", "-n", ns)
    cluster.ok("rollout", "status", "ds/agent", "sts/db", "deploy/web", "-n", ns, "--timeout=30s")
    for args in (
        ("rollout", "history", "ds/agent", "sts/db"),
        ("rollout", "history", "sts/db", "--revision=1"),
        ("rollout", "history", "deploy/web", "--revision=1"),
        ("rollout", "undo", "ds/agent", "--dry-run=client"),
        ("rollout", "undo", "deploy/web", "--dry-run=client"),
        ("rollout", "pause", "ds/agent"),
    ):
        await assert_same_as_kubectl(cluster, *args, "-n", ns)

    assert cluster.ok("rollout", "undo", "ds/agent", "-n", ns).strip() == "daemonset.apps/agent rolled back"
    assert cluster.ok("rollout", "undo", "sts/db", "--to-revision=1", "-n", ns).strip() == (
        "statefulset.apps/db rolled back"
    )
    assert image_of(cluster, "ds/agent", ns) == "busybox:1"
    assert image_of(cluster, "sts/db", ns) == "busybox:1"

    # Revision 1's template became revision 3: rolling back to it again changes nothing.
    def revisions() -> list[str]:
        out = cluster.kubectl_ok("rollout", "history", "sts/db", "-n", ns)
        return [line.split()[0] for line in out.splitlines()[2:] if line.strip()]

    await eventually(lambda: revisions() == ["2", "3"], timeout=20)
    assert cluster.ok("rollout", "undo", "sts/db", "--to-revision=3", "-n", ns).strip() == (
        "statefulset.apps/db skipped rollback (current template already matches revision 3)"
    )

    out = cluster.ok("rollout", "restart", "ds/agent", "sts/db", "-n", ns)
    assert out.splitlines() == ["daemonset.apps/agent restarted", "statefulset.apps/db restarted"]
    for ref in ("ds/agent", "sts/db"):
        obj = json.loads(cluster.kubectl_ok("get", ref, "-n", ns, "-o", "json"))
        assert "kubectl.kubernetes.io/restartedAt" in obj["spec"]["template"]["metadata"]["annotations"]


async def test_on_delete_strategies_have_no_rollout_status(cluster: KboxCluster) -> None:
    ns = cluster.namespace("ondelete")
    cluster.ok("apply", "-f", "-", input=workloads(ns, on_delete=True))
    for ref in ("ds/agent", "sts/db"):
        result = await assert_same_as_kubectl(cluster, "rollout", "status", ref, "-n", ns)
        assert (
            one_line_error(result)
            == "error: rollout status is only available for RollingUpdate strategy type"
        )
