"""``kbox get`` against the real kubectl, on one started profile (fake runtime).

Output must be byte-for-byte kubectl's: tables (plain, wide, -A, --show-labels, several kinds, a
category), the "No resources found" line, errors for missing names, and -o yaml/json/name/jsonpath/
custom-columns. Ages tick between the two commands: they may differ by a few seconds where they print
with the same width (conftest.same_but_ages); everything else is compared exactly. Also: bad input is one line, and ``-w``
prints changes as they happen and ends quietly on Ctrl-C.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.component.cli.conftest import KBOX, KboxCluster, assert_same_as_kubectl, one_line_error
from tests.support.wait import eventually


@pytest.fixture(scope="module")
def workload(cluster: KboxCluster) -> str:
    """A namespace holding a Deployment (ReplicaSet, two pods), a labelled pod, a Service and a ConfigMap."""
    ns = cluster.namespace("get")
    cluster.kubectl_ok("create", "deployment", "nginx", "--image=nginx", "--replicas=2", "-n", ns)
    cluster.kubectl_ok("run", "web", "--image=nginx", "--labels=app=web,tier=front", "-n", ns)
    cluster.kubectl_ok("create", "service", "clusterip", "web", "--tcp=80:8080", "-n", ns)
    cluster.kubectl_ok(
        "create", "configmap", "settings", "--from-literal=script=a\nb\n", "--from-literal=n=12", "-n", ns
    )
    return ns


async def _running(cluster: KboxCluster, ns: str, count: int) -> None:
    def check() -> bool:
        out = cluster.kubectl_ok("get", "pods", "-n", ns, "-o", "jsonpath={.items[*].status.phase}")
        return out.split() == ["Running"] * count

    await eventually(check, timeout=30, interval=0.2)


async def test_tables_match_kubectl(cluster: KboxCluster, workload: str) -> None:
    ns = workload
    await _running(cluster, ns, 3)
    out = (await assert_same_as_kubectl(cluster, "get", "pods", "-n", ns)).stdout
    assert out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(out.splitlines()) == 4
    wide = (await assert_same_as_kubectl(cluster, "get", "pods", "-n", ns, "-o", "wide")).stdout
    assert "NOMINATED NODE" in wide.splitlines()[0]
    labels = (
        await assert_same_as_kubectl(cluster, "get", "pods", "-n", ns, "--show-labels", "-l", "app=web")
    ).stdout
    assert "app=web,tier=front" in labels
    await assert_same_as_kubectl(cluster, "get", "po", "-A")
    several = (await assert_same_as_kubectl(cluster, "get", "deploy,rs,po", "-n", ns)).stdout
    assert "deployment.apps/nginx" in several and "\n\n" in several
    await assert_same_as_kubectl(cluster, "get", "all", "-n", ns)
    await assert_same_as_kubectl(cluster, "get", "pod/web", "deployments.apps/nginx", "svc/web", "-n", ns)
    await assert_same_as_kubectl(cluster, "get", "nodes")
    await assert_same_as_kubectl(cluster, "get", "nodes", "-o", "wide")
    await assert_same_as_kubectl(cluster, "get", "pod", "-n", "kube-system")
    await assert_same_as_kubectl(cluster, "get", "pods", "-n", ns, "--no-headers")
    await assert_same_as_kubectl(cluster, "get", "pods", "-n", ns, "--field-selector", "metadata.name=web")


async def test_sorting_label_columns_and_raw_match_kubectl(cluster: KboxCluster, workload: str) -> None:
    ns = workload
    await _running(cluster, ns, 3)
    await assert_same_as_kubectl(cluster, "get", "pods", "-n", ns, "--sort-by=.metadata.name")
    await assert_same_as_kubectl(cluster, "get", "pods", "-A", "--sort-by", "{.metadata.name}")
    await assert_same_as_kubectl(cluster, "get", "pods", "-n", ns, "--sort-by=.metadata.name", "-o", "name")
    labelled = (
        await assert_same_as_kubectl(cluster, "get", "pods", "-n", ns, "-L", "app,tier", "-L", "nope")
    ).stdout
    assert labelled.splitlines()[0].split()[-3:] == ["APP", "TIER", "NOPE"]
    await assert_same_as_kubectl(cluster, "get", "--raw", f"/api/v1/namespaces/{ns}/configmaps/settings")


async def test_nothing_found_and_missing_names_match_kubectl(cluster: KboxCluster, workload: str) -> None:
    empty = cluster.namespace("empty")
    result = await assert_same_as_kubectl(cluster, "get", "pods", "-n", empty)
    assert result.stderr == f"No resources found in {empty} namespace.\n" and result.stdout == ""
    await assert_same_as_kubectl(cluster, "get", "pods", "-A", "-l", "nothing=here")
    missing = await assert_same_as_kubectl(cluster, "get", "pod", "web", "nope", "-n", workload)
    assert missing.returncode == 1 and 'pods "nope" not found' in missing.stderr
    assert cluster.kbox("get", "pod", "nope", "-n", workload, "--ignore-not-found").returncode == 0


async def test_object_formats_match_kubectl(cluster: KboxCluster, workload: str) -> None:
    ns = workload
    await _running(cluster, ns, 3)
    for args in (
        ("get", "pod", "web", "-o", "yaml"),
        ("get", "configmap", "settings", "-o", "yaml"),
        ("get", "cm", "-o", "json"),
        ("get", "pods", "-o", "yaml"),
        ("get", "deploy", "nginx", "-o", "json"),
        ("get", "pods", "-o", "name"),
        ("get", "all", "-o", "name"),
        ("get", "pods", "-o", "jsonpath={.items[*].metadata.name}"),
        ("get", "pods", "-o", 'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}'),
        ("get", "pod", "web", "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'),
        ("get", "pods", "-o", "custom-columns=NAME:.metadata.name,IMAGES:.spec.containers[*].image"),
        ("get", "svc", "web", "-o", "custom-columns=PORT:.spec.ports[0].port,SEL:.spec.selector"),
        ("get", "secrets", "-o", "yaml"),
    ):
        await assert_same_as_kubectl(cluster, *args, "-n", ns)


def test_bad_input_is_one_line(cluster: KboxCluster) -> None:
    assert 'the server doesn\'t have a resource type "nope"' in one_line_error(cluster.kbox("get", "nope"))
    assert "allowed formats are" in one_line_error(cluster.kbox("get", "pods", "-o", "fancy"))
    assert "jsonpath" in one_line_error(cluster.kbox("get", "pods", "-o", "jsonpath={.items["))
    assert "resource/name form" in one_line_error(cluster.kbox("get", "pods", "pod/web"))
    assert "specify the type" in one_line_error(cluster.kbox("get"))
    other = cluster.kbox("get", "pods", env={"KBOX_PROFILE": "elsewhere"})
    assert (
        one_line_error(other) == 'Error: profile "elsewhere" is not running: kbox start --profile elsewhere'
    )
    help_text = cluster.ok("get", "--help")
    assert "Examples:" in help_text and "kbox get pods -w" in help_text


def test_watch_prints_changes_and_ends_on_ctrl_c(cluster: KboxCluster) -> None:
    ns = cluster.namespace("watch")
    cluster.kubectl_ok("run", "first-with-a-longer-name", "--image=nginx", "-n", ns)
    with subprocess.Popen(
        [KBOX, "get", "pods", "-n", ns, "-w"],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as watcher:
        try:
            assert watcher.stdout is not None
            header = watcher.stdout.readline()
            assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
            assert watcher.stdout.readline().startswith("first-with-a-longer-name   ")
            cluster.kubectl_ok("run", "second", "--image=nginx", "-n", ns)
            row = watcher.stdout.readline()
            # Rows printed later stay aligned under the header (widths are remembered).
            assert row.startswith("second ")
            assert row.index("/1") - 1 == header.index("READY")
        finally:
            watcher.send_signal(signal.SIGINT)
            _, err = watcher.communicate(timeout=15)
    assert watcher.returncode == 130
    assert "Traceback" not in err and err == ""


def test_shell_completion_offers_types_and_names(cluster: KboxCluster, workload: str) -> None:
    def complete(*words: str) -> list[str]:
        result = cluster.kbox(
            env={
                "_KBOX_COMPLETE": "bash_complete",
                "COMP_WORDS": " ".join(words),
                "COMP_CWORD": str(len(words) - 1),
            }
        )
        assert result.returncode == 0, result.stderr
        return [line.partition(",")[2] for line in result.stdout.splitlines()]

    assert "deployments" in complete("kbox", "get", "de")
    assert complete("kbox", "get", "-n", workload, "pods", "w") == ["web"]
    assert complete("kbox", "describe", "-n", workload, "pod/w") == ["pod/web"]
    assert "settings" in complete("kbox", "get", "-n", workload, "configmaps", "")
    # No cluster: nothing offered, and no error.
    absent = {"_KBOX_COMPLETE": "bash_complete", "COMP_WORDS": "kbox get p", "COMP_CWORD": "2"}
    result = cluster.kbox(env={**absent, "KBOX_PROFILE": "absent"})
    assert result.returncode == 0 and result.stdout.strip() == "" and result.stderr == ""
