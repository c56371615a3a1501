"""``kbox logs`` through the installed command against a started fake-runtime profile.

The fake runtime's containers log a line when they start and one when they exit (after
``fake.kbox.io/exit-after``), which is enough to check the options end to end: container choice and its
errors, workloads, ``--tail``, ``--timestamps``, ``--limit-bytes``, ``--previous``, ``-f`` ending with the
container, ``--all-containers --prefix``; and the component forms: the profile's log file (``--tail``,
``-f``), a control-plane component through its mirror pod, and the file filtered by component.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.component.cli.conftest import KBOX, KboxCluster, one_line_error

FAKE = "fake.kbox.io"


def pod_manifest(
    name: str, *containers: str, restart: str = "Always", annotations: dict[str, str] | None = None
) -> str:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "restartPolicy": restart,
            "containers": [{"name": c, "image": "busybox"} for c in containers or ("main",)],
        },
    }
    return json.dumps(pod)


def run_pod(cluster: KboxCluster, ns: str, name: str, *containers: str, **annotations: str) -> None:
    """A running pod; ``exit_after="1s"`` becomes the annotation ``fake.kbox.io/exit-after``."""
    notes = {f"{FAKE}/{k.replace('_', '-')}": v for k, v in annotations.items()}
    cluster.kubectl_ok("apply", "-n", ns, "-f", "-", input=pod_manifest(name, *containers, annotations=notes))
    cluster.kubectl_ok("wait", "-n", ns, "--for=condition=Ready", f"pod/{name}", "--timeout=60s")


def test_logs_of_a_pod_and_its_containers(cluster: KboxCluster) -> None:
    ns = cluster.namespace("logs")
    run_pod(cluster, ns, "solo")
    assert cluster.ok("logs", "-n", ns, "solo") == "fake container main started\n"
    assert cluster.ok("logs", "-n", ns, "pod/solo") == "fake container main started\n"

    run_pod(cluster, ns, "duo", "a", "b")
    result = cluster.kbox("logs", "-n", ns, "duo")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "fake container a started\n"
    assert result.stderr == 'Defaulted container "a" out of: a, b\n'
    assert cluster.ok("logs", "-n", ns, "duo", "-c", "b") == "fake container b started\n"
    assert cluster.ok("logs", "-n", ns, "duo", "--all-containers", "--prefix").splitlines() == [
        "[pod/duo/a] fake container a started",
        "[pod/duo/b] fake container b started",
    ]
    error = one_line_error(cluster.kbox("logs", "-n", ns, "duo", "-c", "x"))
    assert error == "Error: container x is not valid for pod duo out of: a, b"
    assert one_line_error(cluster.kbox("logs", "-n", ns, "nope")) == 'Error: pods "nope" not found'


def test_log_options(cluster: KboxCluster) -> None:
    ns = cluster.namespace("logopts")
    run_pod(cluster, ns, "p")
    # (The fake runtime ignores timestamps; tests/e2e/test_cli_docker.py checks them on Docker.)
    assert cluster.ok("logs", "-n", ns, "p", "--tail", "0") == ""
    assert cluster.ok("logs", "-n", ns, "p", "--limit-bytes", "4") == "fake"
    assert cluster.ok("logs", "-n", ns, "p", "--since", "1h") == "fake container main started\n"
    assert one_line_error(cluster.kbox("logs", "-n", ns, "p", "--since", "soon")).endswith(
        'time: invalid duration "soon"'
    )
    assert "--limit-bytes" in one_line_error(cluster.kbox("logs", "-n", ns, "p", "--limit-bytes", "0"))


def test_follow_ends_with_the_container_and_previous_shows_the_last_run(cluster: KboxCluster) -> None:
    ns = cluster.namespace("follow")
    manifest = pod_manifest(
        "short", restart="Never", annotations={f"{FAKE}/exit-after": "2s", f"{FAKE}/exit-code": "4"}
    )
    cluster.kubectl_ok("apply", "-n", ns, "-f", "-", input=manifest)
    cluster.kubectl_ok("wait", "-n", ns, "--for=condition=Ready", "pod/short", "--timeout=60s")
    # -f prints the start, waits, prints the exit line and ends with the container.
    out = cluster.ok("logs", "-n", ns, "-f", "short", timeout=60)
    assert out == "fake container main started\nfake container main exited with code 4\n"

    run_pod(cluster, ns, "crashy", exit_after="1s", exit_code="1")
    cluster.kubectl_ok(
        "wait",
        "-n",
        ns,
        "--for=jsonpath={.status.containerStatuses[0].restartCount}=1",
        "pod/crashy",
        "--timeout=60s",
    )
    previous = cluster.ok("logs", "-n", ns, "crashy", "--previous")
    assert previous.splitlines()[-1] == "fake container main exited with code 1"


def test_logs_of_a_workload_choose_a_pod(cluster: KboxCluster) -> None:
    ns = cluster.namespace("deploy")
    cluster.kubectl_ok("create", "deployment", "web", "-n", ns, "--image=busybox", "--replicas=2")
    cluster.kubectl_ok("rollout", "status", "-n", ns, "deployment/web", "--timeout=60s")
    result = cluster.kbox("logs", "-n", ns, "deploy/web")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "fake container busybox started\n"
    assert re.fullmatch(r"Found 2 pods, using pod/web-[a-z0-9]+-[a-z0-9]+\n", result.stderr), result.stderr
    lines = cluster.ok("logs", "-n", ns, "-l", "app=web", "--prefix").splitlines()
    assert len(lines) == 2, lines
    assert all(
        re.fullmatch(r"\[pod/web-\w+-\w+/busybox\] fake container busybox started", line) for line in lines
    )
    none = cluster.kbox("logs", "-n", ns, "-l", "app=none")
    assert (none.returncode, none.stdout, none.stderr) == (0, "", f"No resources found in {ns} namespace.\n")
    assert one_line_error(cluster.kbox("logs", "-n", ns, "configmap/x")) == 'Error: configmaps "x" not found'
    error = one_line_error(cluster.kbox("logs", "-n", ns, "widgets/x"))
    assert error == 'Error: the server doesn\'t have a resource type "widgets"'


def test_the_profiles_log_file_and_a_component(cluster: KboxCluster) -> None:
    whole = cluster.ok("logs")
    log_file = cluster.kbox_home / cluster.profile / "kbox.log"
    assert whole and log_file.read_text().startswith(whole)
    assert cluster.ok("logs", "--tail", "2").splitlines() == log_file.read_text().splitlines()[-2:]

    # A component with a mirror pod: its lines, served by the API from kube-system.
    scheduler = cluster.ok("logs", "kube-scheduler")
    assert "scheduler" in scheduler
    pod = cluster.kubectl_ok(
        "get", "pod", "-n", "kube-system", "-l", "component=kube-scheduler", "-o", "name"
    )
    mirror = cluster.kubectl_ok("logs", "-n", "kube-system", pod.strip())
    assert scheduler.splitlines()[0] == mirror.splitlines()[0]


def test_a_stopped_profiles_components_come_from_its_log_file(cluster: KboxCluster) -> None:
    # A profile of its own (the shared one stays up), stopped: no API to ask, the file answers.
    other = ["-p", "logs-stopped"]
    cluster.ok("start", *other, "--runtime", "fake", "--port", "0", timeout=180)
    cluster.ok("stop", *other, timeout=120)
    whole = cluster.ok("logs", *other)
    assert whole == (cluster.kbox_home / "logs-stopped" / "kbox.log").read_text()
    tagged = [line for line in whole.splitlines() if "[kube-controller-manager]" in line]
    assert tagged, whole
    assert cluster.ok("logs", *other, "kube-controller-manager").splitlines() == tagged
    assert cluster.ok("logs", *other, "kube-controller-manager", "--tail", "1").splitlines() == tagged[-1:]
    cluster.ok("delete", *other, timeout=120)
    assert "no log file" in one_line_error(cluster.kbox("logs", *other))


async def test_follow_the_log_file(cluster: KboxCluster) -> None:
    process = await asyncio.create_subprocess_exec(
        KBOX, "logs", "-f", "--tail", "0", env=cluster.env, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        log_file = cluster.kbox_home / cluster.profile / "kbox.log"
        marker = "2026-01-01 00:00:00,000 INFO [test] appended by test_follow_the_log_file\n"

        async def append_until_seen() -> None:
            # kbox may open the file (at its end: --tail 0) after a first append: keep appending.
            while True:
                with log_file.open("a") as f:
                    f.write(marker)
                await asyncio.sleep(0.5)

        async def appended() -> bytes:
            writer = asyncio.ensure_future(append_until_seen())
            try:
                while True:  # lines the cluster itself writes meanwhile come first
                    line = await process.stdout.readline()  # type: ignore[union-attr]
                    if not line or b"test_follow_the_log_file" in line:
                        return line
            finally:
                writer.cancel()

        assert await asyncio.wait_for(appended(), 20) == marker.encode()
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.parametrize("command", ["logs", "exec", "attach", "port-forward"])
def test_help_has_examples(cluster: KboxCluster, command: str) -> None:
    out = cluster.ok(command, "--help")
    assert "Examples:" in out and f"kbox {command} " in out
