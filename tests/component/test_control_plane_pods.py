"""The control plane as pods in kube-system, through the installed ``kbox`` and the real kubectl.

One fake-runtime cluster started with ``kbox start`` and ``KBOX_TEST_HOOKS=1`` (the only way to make a
component of a separate process fail on purpose: the ConfigMap ``kube-system/kbox-test-hooks``). Covers:
every component Running and Ready right after start, ``kubectl logs`` of a component, a crash shown as
a restart with ``lastState`` and ``--previous`` logs, a deleted mirror pod coming back, exec refused
with a clear message, and ``kbox status`` listing the components.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.component.test_lifecycle import Env, require_kubectl
from tests.support.wait import until

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_kubectl()
    root: Path = tmp_path_factory.mktemp("control-plane")
    env = Env(home=root / "home", kbox_home=root / "kbox-home")
    env.home.mkdir()
    hooked = {**env.env, "KBOX_TEST_HOOKS": "1"}
    result = env.kbox("start", "--runtime", "fake", "--port", "0", env=hooked, timeout=120)
    assert result.returncode == 0, (result.stdout, result.stderr)
    try:
        yield env
    finally:
        env.kbox("delete", "--all")


def pods(env: Env) -> dict[str, Any]:
    listing = json.loads(env.kubectl("get", "pods", "-n", "kube-system", "-o", "json"))
    return {p["metadata"]["name"]: p for p in listing["items"]}


def test_every_component_is_a_running_ready_pod(cluster: Env) -> None:
    table = cluster.kubectl("get", "pods", "-n", "kube-system")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    for component in COMPONENTS:
        row = rows[f"{component}-kbox"]
        assert row[1:3] == ["1/1", "Running"], table
    pod = pods(cluster)["kube-scheduler-kbox"]
    assert pod["metadata"]["annotations"]["kubernetes.io/config.mirror"]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Node"
    assert pod["spec"]["nodeName"] == "kbox" and pod["spec"]["hostNetwork"] is True
    assert pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]


def test_component_logs_are_served(cluster: Env) -> None:
    logs = cluster.kubectl("logs", "-n", "kube-system", "kube-scheduler-kbox")
    assert "scheduler default-scheduler started" in logs
    tail = cluster.kubectl("logs", "-n", "kube-system", "kube-controller-manager-kbox", "--tail=1")
    assert len(tail.splitlines()) == 1


def test_a_crash_is_a_restart_with_its_reason_and_previous_logs(cluster: Env) -> None:
    cluster.kubectl(
        "create", "configmap", "kbox-test-hooks", "-n", "kube-system", "--from-literal=crash=kube-scheduler"
    )

    def restarted() -> Any:
        status = pods(cluster)["kube-scheduler-kbox"]["status"]["containerStatuses"][0]
        return status if status["restartCount"] == 1 and status["ready"] else None

    status = until(restarted)
    terminated = status["lastState"]["terminated"]
    assert terminated["exitCode"] == 1 and terminated["reason"] == "Error"
    assert "InjectedCrash" in terminated["message"]
    row = cluster.kubectl("get", "pod", "-n", "kube-system", "kube-scheduler-kbox", "--no-headers").split()
    assert row[1:4] == ["1/1", "Running", "1"], row
    previous = cluster.kubectl("logs", "-n", "kube-system", "kube-scheduler-kbox", "--previous")
    assert "InjectedCrash" in previous
    current = cluster.kubectl("logs", "-n", "kube-system", "kube-scheduler-kbox")
    assert "InjectedCrash" not in current and "scheduler default-scheduler started" in current
    # The cluster still schedules after the restart.
    cluster.kubectl("run", "after-crash", "--image=busybox", "--restart=Never")
    until(lambda: "Running" in cluster.kubectl("get", "pod", "after-crash", "--no-headers"))


def test_a_deleted_mirror_pod_comes_back(cluster: Env) -> None:
    before = pods(cluster)["etcd-kbox"]["metadata"]["uid"]
    cluster.kubectl("delete", "pod", "-n", "kube-system", "etcd-kbox", "--timeout=20s")

    def recreated() -> bool:
        pod = pods(cluster).get("etcd-kbox")
        return bool(pod and pod["metadata"]["uid"] != before and pod["status"].get("phase") == "Running")

    until(recreated)


def test_exec_into_a_component_is_refused_clearly(cluster: Env) -> None:
    result = subprocess.run(
        ["/usr/bin/kubectl", "exec", "-n", "kube-system", "etcd-kbox", "--", "ls"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "runs as a task inside the kbox process" in result.stderr


def test_status_lists_the_components(cluster: Env) -> None:
    out = cluster.ok("status")
    for component in COMPONENTS:
        assert f"{component}-kbox: Running" in out, out
