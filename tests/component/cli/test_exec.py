"""``kbox exec`` and ``kbox attach`` through the installed command against a fake-runtime profile.

The fake runtime runs no processes, so it refuses exec and attach; what is checked here is that the
refusal (and every other error on the way: no command, no such pod or container, a completed pod)
reaches the user as one line and a non-zero exit code. The sessions themselves are tested on Docker in
tests/e2e/test_cli_docker.py and, protocol-wise, in tests/unit/cli/test_streams.py.
"""

from __future__ import annotations

import json

from tests.component.cli.conftest import KboxCluster, one_line_error

FAKE = "fake.kbox.io"


def run_pod(cluster: KboxCluster, ns: str, name: str, *, restart: str = "Always", **annotations: str) -> None:
    """A one-container pod; ``exit_after="1s"`` becomes the annotation ``fake.kbox.io/exit-after``."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "annotations": {f"{FAKE}/{k.replace('_', '-')}": v for k, v in annotations.items()},
        },
        "spec": {"restartPolicy": restart, "containers": [{"name": "main", "image": "busybox"}]},
    }
    cluster.kubectl_ok("apply", "-n", ns, "-f", "-", input=json.dumps(pod))


def test_exec_on_the_fake_runtime_is_refused_in_one_line(cluster: KboxCluster) -> None:
    ns = cluster.namespace("exec")
    run_pod(cluster, ns, "p")
    cluster.kubectl_ok("wait", "-n", ns, "--for=condition=Ready", "pod/p", "--timeout=60s")
    result = cluster.kbox("exec", "-n", ns, "p", "--", "ls", "/")
    assert result.returncode == 1
    assert one_line_error(result) == "Error: exec is not possible on the fake runtime (no processes run)"
    # The same with stdin and with a workload's pod.
    result = cluster.kbox("exec", "-i", "-n", ns, "p", "--", "cat", input="x\n")
    assert one_line_error(result) == "Error: exec is not possible on the fake runtime (no processes run)"
    result = cluster.kbox("attach", "-n", ns, "p")
    assert one_line_error(result) == "Error: attach is not possible on the fake runtime (no processes run)"


def test_exec_errors(cluster: KboxCluster) -> None:
    ns = cluster.namespace("execerr")
    assert one_line_error(cluster.kbox("exec", "-n", ns, "p")) == (
        "Error: you must specify at least one command for the container (after --)"
    )
    assert (
        one_line_error(cluster.kbox("exec", "-n", ns, "nope", "--", "ls")) == 'Error: pods "nope" not found'
    )
    run_pod(cluster, ns, "p")
    cluster.kubectl_ok("wait", "-n", ns, "--for=condition=Ready", "pod/p", "--timeout=60s")
    assert one_line_error(cluster.kbox("exec", "-n", ns, "p", "-c", "x", "--", "ls")) == (
        "Error: container x is not valid for pod p out of: main"
    )
    # -t without a terminal on stdin: a warning, then the session as without -t.
    result = cluster.kbox("exec", "-it", "-n", ns, "p", "--", "sh", input="")
    assert result.stderr.splitlines() == [
        "Unable to use a TTY - input is not a terminal or the right kind of file",
        "Error: exec is not possible on the fake runtime (no processes run)",
    ]

    run_pod(cluster, ns, "done", restart="Never", exit_after="1s", exit_code="0")
    cluster.kubectl_ok(
        "wait", "-n", ns, "--for=jsonpath={.status.phase}=Succeeded", "pod/done", "--timeout=60s"
    )
    assert one_line_error(cluster.kbox("exec", "-n", ns, "done", "--", "ls")) == (
        "Error: cannot exec into a container in a completed pod; current phase is Succeeded"
    )
    assert one_line_error(cluster.kbox("attach", "-n", ns, "done")) == (
        "Error: cannot attach a container in a completed pod; current phase is Succeeded"
    )


def test_exec_into_a_workload_waits_for_its_pod(cluster: KboxCluster) -> None:
    ns = cluster.namespace("execwait")
    cluster.kubectl_ok("create", "deployment", "none", "-n", ns, "--image=busybox", "--replicas=0")
    result = cluster.kbox("exec", "-n", ns, "deploy/none", "--pod-running-timeout", "1", "--", "ls")
    assert one_line_error(result) == (
        f"Error: timed out waiting for the condition: no pod matches app=none in namespace {ns}"
    )
