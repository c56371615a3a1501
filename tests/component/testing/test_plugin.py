"""The pytest plugin as a downstream project meets it: an inner test run (pytest's ``pytester``) whose
tests use ``kbox_cluster`` and ``kbox_namespace`` from plain and from pytest-asyncio tests, the ini and
command-line options, and ``--kbox-keep`` on failure. The plugin comes from kbox's ``pytest11`` entry
point, as in any project that installs kbox."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import kubernetes
import pytest

import kbox.testing.cluster
from kbox.testing.plugin import namespace_name

pytest_plugins = ["pytester"]

# The inner runs are in process: pytester drops the modules they import afterwards, and cryptography's
# extension cannot be imported twice. Everything the inner tests use is imported here, once.
_PRELOADED = (kubernetes.client, kbox.testing.cluster)

INNER = """
import asyncio

import pytest
from kubernetes import client as k8s, config as k8s_config

SEEN = {}


def pod(name, node):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "busybox"}]},
    }


def test_sync_pod_runs_in_its_namespace(kbox_cluster, kbox_namespace):
    SEEN["cluster"] = kbox_cluster.name
    SEEN["namespace"] = kbox_namespace
    assert kbox_namespace.startswith("kbox-test-sync-pod-runs")
    kbox_cluster.apply(pod("web", kbox_cluster.node_names[0]), namespace=kbox_namespace)
    kbox_cluster.wait_for("Pod", "web", kbox_namespace, condition="Running", timeout=10)
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(kbox_cluster.kubeconfig_path), client_configuration=configuration)
    with k8s.ApiClient(configuration) as api:
        names = [p.metadata.name for p in k8s.CoreV1Api(api).list_namespaced_pod(kbox_namespace).items]
    assert names == ["web"]


@pytest.mark.asyncio
async def test_async_shares_the_session_cluster(kbox_cluster, kbox_namespace):
    assert kbox_cluster.name == SEEN["cluster"]
    assert kbox_namespace != SEEN["namespace"]
    # the previous test's namespace was deleted with everything in it (the namespace controller)
    await kbox_cluster.aio.wait_for("Pod", "web", SEEN["namespace"], condition="delete", timeout=10)
    await kbox_cluster.aio.wait_for("Namespace", SEEN["namespace"], condition="delete", timeout=10)
    await kbox_cluster.aio.apply(pod("api", kbox_cluster.node_names[0]), namespace=kbox_namespace)
    ready = await kbox_cluster.aio.wait_for("Pod", "api", kbox_namespace, condition="Ready", timeout=10)
    assert ready["status"]["phase"] == "Running"
    # blocking helpers work here too: the cluster runs on its own loop
    assert kbox_cluster.get("Pod", "api", kbox_namespace)["metadata"]["name"] == "api"
    await asyncio.sleep(0)


def test_nodes_option(kbox_cluster, request):
    expected = int(request.config.getoption("--kbox-nodes") or request.config.getini("kbox_nodes"))
    assert len(kbox_cluster.node_names) == expected
    for node in kbox_cluster.node_names:
        assert kbox_cluster.wait_for("Node", node, condition="Ready", timeout=5)
"""


def project(pytester: pytest.Pytester, ini: str = "") -> None:
    """A downstream project: its pytest configuration (pytest-asyncio in strict mode, its default)."""
    pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{ini}")


def test_fixtures_in_sync_and_async_tests(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_ini_options_and_command_line(pytester: pytest.Pytester) -> None:
    project(pytester, "kbox_nodes = 2\nkbox_runtime = fake\n")
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "nodes_option")
    result.assert_outcomes(passed=1, deselected=2)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "nodes_option", "--kbox-nodes", "3")
    result.assert_outcomes(passed=1, deselected=2)
    result = pytester.runpytest("-p", "no:cacheprovider", "--kbox-runtime", "podman")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_keep_on_failure_keeps_the_namespace_and_the_state(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_failing="""
def test_fails(kbox_cluster, kbox_namespace):
    kbox_cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "evidence"}}, namespace=kbox_namespace
    )
    assert False, "look at the evidence"
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--kbox-keep")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert re.search(
        r"kbox: kept namespace kbox-test-fails-\w+ of failed test test_failing.py::test_fails", output
    )
    match = re.search(r"kept the state of cluster \S+ in (\S+) \(kubeconfig", output)
    assert match, output
    state = Path(match.group(1))
    try:
        assert (state / "state.db").exists()  # durable, so it can be reopened with kbox serve
        assert (state / "kubeconfig").exists()
    finally:
        shutil.rmtree(state.parent)


def test_without_keep_a_failure_cleans_up(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_failing="""
def test_fails(kbox_cluster, kbox_namespace):
    assert False
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "kbox: kept" not in result.stdout.str()


def test_namespace_names_are_dns_labels() -> None:
    name = namespace_name("test_something[param-with/Odd_chars" + "x" * 80 + "]")
    assert len(name) <= 63
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
