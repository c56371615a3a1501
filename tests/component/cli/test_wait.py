"""``kbox wait`` through the installed command against a fake-runtime profile.

Covers: ``--for=condition=...`` (default ``true``, explicit values, any case), ``--for=jsonpath=...`` with
a value, a filter and existence only, ``--for=delete`` and ``--for=create``; objects named by
``TYPE/NAME``, ``-l`` and ``--all``; conditions met only after the command started (the watch path, with
the change made by kubectl while ``kbox wait`` runs); kubectl's timeout message, ``--timeout=0`` (check
once) and one-line errors for a bad ``--for``, a bad duration, a missing object and an empty selector.
"""

from __future__ import annotations

import asyncio
import subprocess

from tests.component.cli.conftest import KBOX, KboxCluster, one_line_error
from tests.support.wait import eventually


def start_wait(cluster: KboxCluster, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [KBOX, "wait", *args],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


def open_watches(cluster: KboxCluster, resource: str) -> float:
    """How many HTTP watches of a core ``resource`` are open on the apiserver (its gauge)."""
    metrics = cluster.kubectl_ok("get", "--raw", "/metrics")
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("apiserver_longrunning_requests{") and f'resource="{resource}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def unschedulable_pod(cluster: KboxCluster, name: str, ns: str) -> None:
    overrides = '{"spec":{"nodeSelector":{"disk":"none"}}}'
    cluster.kubectl_ok("run", name, "--image=busybox", f"--overrides={overrides}", "-n", ns)


def test_conditions_and_jsonpath(cluster: KboxCluster) -> None:
    ns = cluster.namespace("wait")
    for name in ("a", "b"):
        cluster.kubectl_ok("run", name, "--image=busybox", "--labels=group=ab", "-n", ns)
    out = cluster.ok("wait", "--for=condition=Ready", "pod", "-l", "group=ab", "-n", ns, "--timeout=60s")
    assert sorted(out.splitlines()) == ["pod/a condition met", "pod/b condition met"]
    assert (
        cluster.ok("wait", "--for=condition=ready=TRUE", "pod/a", "-n", ns).strip() == "pod/a condition met"
    )
    out = cluster.ok("wait", "--for=jsonpath={.status.phase}=Running", "pods", "--all", "-n", ns)
    assert sorted(out.splitlines()) == ["pod/a condition met", "pod/b condition met"]
    out = cluster.ok(
        "wait", "--for=jsonpath={.status.conditions[?(@.type=='Ready')].status}=True", "pod/b", "-n", ns
    )
    assert out.strip() == "pod/b condition met"
    assert (
        cluster.ok("wait", "--for=jsonpath={.status.podIP}", "pod/a", "-n", ns).strip()
        == "pod/a condition met"
    )

    unschedulable_pod(cluster, "pending", ns)
    out = cluster.ok("wait", "--for=condition=PodScheduled=false", "pod/pending", "-n", ns, "--timeout=30s")
    assert out.strip() == "pod/pending condition met"
    result = cluster.kbox("wait", "--for=condition=Ready", "pod/pending", "-n", ns, "--timeout=1s")
    assert result.returncode == 1
    assert one_line_error(result) == "error: timed out waiting for the condition on pods/pending"
    result = cluster.kbox("wait", "--for=condition=Ready", "pod/pending", "-n", ns, "--timeout=0")
    assert one_line_error(result) == "error: condition not met for pod/pending"
    assert cluster.ok("wait", "--for=condition=Ready", "pod/a", "-n", ns, "--timeout=0").strip() == (
        "pod/a condition met"
    )


def test_conditions_met_while_waiting(cluster: KboxCluster) -> None:
    ns = cluster.namespace("wait-watch")
    cluster.kubectl_ok("create", "configmap", "cm", "-n", ns)
    labelled = start_wait(cluster, "--for=jsonpath={.metadata.labels.stage}=done", "configmap/cm", "-n", ns)
    created = start_wait(cluster, "--for=create", "configmap/later", "-n", ns, "--timeout=60s")
    cluster.kubectl_ok("label", "configmap", "cm", "stage=started", "-n", ns)
    cluster.kubectl_ok("label", "configmap", "cm", "stage=done", "--overwrite", "-n", ns)
    cluster.kubectl_ok("create", "configmap", "later", "-n", ns)
    assert finish(labelled) == (0, "configmap/cm condition met\n", "")
    assert finish(created) == (0, "configmap/later condition met\n", "")

    # Deleting after kbox wait has read the object and started watching it (the apiserver counts the
    # watch), so the deletion is seen on the watch rather than as an object already gone.
    before = open_watches(cluster, "configmaps")
    deleted = start_wait(cluster, "--for=delete", "configmap/cm", "-n", ns, "--timeout=60s")
    asyncio.run(eventually(lambda: open_watches(cluster, "configmaps") > before))
    assert deleted.poll() is None
    cluster.kubectl_ok("delete", "configmap", "cm", "-n", ns)
    assert finish(deleted) == (0, "configmap/cm condition met\n", "")
    # Already gone: nothing to wait for, as kubectl.
    result = cluster.kbox("wait", "--for=delete", "configmap/cm", "-n", ns)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_bad_input_is_one_line(cluster: KboxCluster) -> None:
    ns = cluster.namespace("wait-bad")
    assert one_line_error(cluster.kbox("wait", "--for=ready", "pod/x", "-n", ns)).startswith(
        'error: unrecognized condition: "ready"'
    )
    assert one_line_error(cluster.kbox("wait", "--for=delete", "pod/x", "--timeout=soon", "-n", ns)) == (
        'error: invalid duration "soon" (use e.g. 30s, 1m30s, 500ms)'
    )
    assert one_line_error(cluster.kbox("wait", "--for=condition=Ready", "pod/ghost", "-n", ns)) == (
        'Error from server (NotFound): pods "ghost" not found'
    )
    assert one_line_error(
        cluster.kbox("wait", "--for=condition=Ready", "pods", "-l", "app=none", "-n", ns)
    ) == ("error: no matching resources found")
    assert "jsonpath wait format" in one_line_error(cluster.kbox("wait", "--for=jsonpath={.a}{.b}", "pod/x"))
