"""``kbox delete`` through the installed command against a fake-runtime profile.

Covers: each way of naming objects (``TYPE NAME...``, ``TYPE/NAME``, ``-f``, ``-l``, ``--all``);
kubectl's output lines; waiting by default until objects are really gone (a finalizer holds one, so
the wait is observable: ``--timeout`` fails with kubectl's message, ``--wait=false`` returns at once);
``--cascade`` orphan and foreground; NotFound and ``--ignore-not-found``; ``--force``; and that
``kbox delete`` without objects still means deleting a profile.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import yaml

from tests.component.cli.conftest import KBOX, KboxCluster, one_line_error
from tests.support.wait import eventually


def configmap(name: str, ns: str, **meta: object) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, **meta}}


def names(cluster: KboxCluster, kind: str, ns: str, *args: str) -> list[str]:
    out = cluster.kubectl_ok("get", kind, "-n", ns, "-o", "name", *args)
    return sorted(line.split("/", 1)[1] for line in out.split())


def test_delete_by_name_file_selector_and_all(cluster: KboxCluster, tmp_path: Path) -> None:
    ns = cluster.namespace("del")
    for name, labels in (
        ("a", "tier=web"),
        ("b", "tier=web"),
        ("c", "tier=db"),
        ("d", "tier=db"),
        ("e", "x=y"),
    ):
        cluster.kubectl_ok("create", "configmap", name, "-n", ns)
        cluster.kubectl_ok("label", "configmap", name, labels, "-n", ns)
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(configmap("e", ns)))

    assert cluster.ok("delete", "configmap", "a", "-n", ns).strip() == 'configmap "a" deleted'
    assert cluster.ok("delete", "-f", str(path)).strip() == 'configmap "e" deleted'
    assert cluster.ok("delete", "cm", "-l", "tier=db", "-n", ns).splitlines() == [
        'configmap "c" deleted',
        'configmap "d" deleted',
    ]
    assert names(cluster, "configmaps", ns, "-l", "tier") == ["b"]
    assert cluster.ok("delete", "configmap/b", "-n", ns, "-o", "name").strip() == "configmap/b"
    assert cluster.ok("delete", "configmaps", "-l", "tier=web", "-n", ns).strip() == "No resources found"

    cluster.kubectl_ok("create", "configmap", "f", "-n", ns)
    out = cluster.ok("delete", "configmaps", "--all", "-n", ns)
    assert 'configmap "f" deleted' in out.splitlines()
    # Everything is gone but kube-root-ca.crt, which its controller puts back in every namespace.
    assert set(names(cluster, "configmaps", ns)) <= {"kube-root-ca.crt"}


def test_not_found_and_ignore_not_found(cluster: KboxCluster) -> None:
    ns = cluster.namespace("del-nf")
    result = cluster.kbox("delete", "pod", "ghost", "-n", ns)
    assert result.returncode == 1
    assert one_line_error(result) == 'Error from server (NotFound): pods "ghost" not found'
    result = cluster.kbox("delete", "pod", "ghost", "-n", ns, "--ignore-not-found")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    assert one_line_error(cluster.kbox("delete", "nosuchtype", "x")) == (
        'Error: the server doesn\'t have a resource type "nosuchtype"'
    )
    assert "no name was specified" in one_line_error(cluster.kbox("delete", "pods", "-n", ns))


def test_delete_waits_for_finalizers_unless_told_not_to(cluster: KboxCluster) -> None:
    ns = cluster.namespace("del-wait")
    held = configmap("held", ns, finalizers=["example.com/hold"])
    cluster.kubectl_ok("create", "-f", "-", input=json.dumps(held))

    result = cluster.kbox("delete", "configmap", "held", "-n", ns, "--timeout=1s")
    assert result.returncode == 1
    assert result.stdout.strip() == 'configmap "held" deleted'
    assert one_line_error(result) == "error: timed out waiting for the condition on configmaps/held"
    # Still there, marked for deletion, held by the finalizer.
    obj = json.loads(cluster.kubectl_ok("get", "configmap", "held", "-n", ns, "-o", "json"))
    assert obj["metadata"]["deletionTimestamp"]

    assert (
        cluster.ok("delete", "configmap", "held", "-n", ns, "--wait=false").strip()
        == 'configmap "held" deleted'
    )

    # Released by another client while kbox waits: the wait ends by itself.
    cluster.kubectl_ok(
        "create", "-f", "-", input=json.dumps(configmap("held2", ns, finalizers=["example.com/hold"]))
    )
    waiting = subprocess.Popen(
        [KBOX, "delete", "configmap", "held2", "-n", ns, "--timeout=60s"],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        asyncio.run(
            eventually(
                lambda: (
                    "deletionTimestamp" in cluster.kubectl_ok("get", "cm", "held2", "-n", ns, "-o", "yaml")
                )
            )
        )
        assert waiting.poll() is None  # still waiting on the finalizer
        cluster.kubectl_ok(
            "patch", "configmap", "held2", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
        )
        out, err = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 0, err
    assert out.strip() == 'configmap "held2" deleted'
    assert cluster.kubectl("get", "configmap", "held2", "-n", ns).returncode != 0


def test_pods_are_gone_when_delete_returns(cluster: KboxCluster) -> None:
    ns = cluster.namespace("del-pod")
    cluster.kubectl_ok("run", "sleeper", "--image=busybox", "-n", ns)
    cluster.ok("wait", "--for=condition=Ready", "pod/sleeper", "-n", ns, "--timeout=60s")
    assert cluster.ok("delete", "pod", "sleeper", "-n", ns).strip() == 'pod "sleeper" deleted'
    assert cluster.kubectl("get", "pod", "sleeper", "-n", ns).returncode != 0

    cluster.kubectl_ok("run", "forced", "--image=busybox", "-n", ns)
    result = cluster.kbox("delete", "pod", "forced", "-n", ns, "--force")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'pod "forced" force deleted'
    assert "Immediate deletion does not wait" in result.stderr
    assert cluster.kubectl("get", "pod", "forced", "-n", ns).returncode != 0
    assert "cannot be specified together" in one_line_error(
        cluster.kbox("delete", "pod", "x", "--now", "--grace-period=5", "-n", ns)
    )


def test_cascade_orphan_and_foreground(cluster: KboxCluster) -> None:
    ns = cluster.namespace("del-cascade")
    for name in ("kept", "gone"):
        cluster.ok("create", "deployment", name, "--image=busybox", "--replicas=2", "-n", ns)
        cluster.ok("rollout", "status", f"deployment/{name}", "-n", ns, "--timeout=60s")

    assert cluster.ok("delete", "deployment", "kept", "-n", ns, "--cascade=orphan").strip() == (
        'deployment.apps "kept" deleted'
    )
    rs = json.loads(cluster.kubectl_ok("get", "rs", "-n", ns, "-l", "app=kept", "-o", "json"))["items"]
    assert len(rs) == 1 and not rs[0]["metadata"].get("ownerReferences")
    assert len(names(cluster, "pods", ns, "-l", "app=kept")) == 2

    cluster.ok("delete", "deployment", "gone", "-n", ns, "--cascade=foreground")
    # Foreground: the deployment is gone only after its dependents, so nothing is left when delete returns.
    assert names(cluster, "rs", ns, "-l", "app=gone") == []


def test_delete_without_objects_still_deletes_a_profile(cluster: KboxCluster) -> None:
    result = cluster.kbox("delete", "--profile", "never-created")
    assert result.returncode == 0
    assert "kbox profile 'never-created' does not exist" in result.stdout
    assert "kbox delete --all" in cluster.ok("delete", "--help")
