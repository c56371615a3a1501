"""``kbox port-forward`` through the installed command against a fake-runtime profile.

Nothing listens in a fake pod, so a forwarded connection is closed at once and the error the server
sends on the error channel is printed; around that: the ``Forwarding from`` lines and a free local port
for ``:REMOTE``, a Service's named ``targetPort`` translated to the pod's port, the refusal of a pod that
is not running, bad port arguments, and the command ending ("lost connection to pod") when the pod is
deleted. Bytes really crossing a tunnel are tested on Docker (tests/e2e/test_cli_docker.py).
"""

from __future__ import annotations

import asyncio
import json
import re

from tests.component.cli.conftest import KBOX, KboxCluster, one_line_error

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "containers": [
            {"name": "main", "image": "busybox", "ports": [{"name": "http", "containerPort": 8080}]}
        ]
    },
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"name": "front", "port": 80, "targetPort": "http"}]},
}


async def _line(stream: asyncio.StreamReader) -> str:
    return (await asyncio.wait_for(stream.readline(), 30)).decode()


async def test_forwarding_a_pod_until_it_is_deleted(cluster: KboxCluster) -> None:
    ns = cluster.namespace("pf")
    cluster.kubectl_ok(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [POD, SERVICE]}),
    )
    cluster.kubectl_ok("wait", "-n", ns, "--for=condition=Ready", "pod/web", "--timeout=60s")
    process = await asyncio.create_subprocess_exec(
        KBOX,
        "port-forward",
        "-n",
        ns,
        "svc/web",
        ":front",
        "--address",
        "127.0.0.1",
        env=cluster.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        first = await _line(process.stdout)
        # The Service's port "front" → targetPort "http" → the pod's container port 8080.
        match = re.fullmatch(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080\n", first)
        assert match, first
        port = int(match.group(1))
        assert port > 0

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await _line(process.stdout) == f"Handling connection for {port}\n"
        assert await asyncio.wait_for(reader.read(), 30) == b""  # nothing listens: closed at once
        writer.close()
        error = await _line(process.stderr)
        assert error.startswith(
            f"error: an error occurred forwarding {port} -> 8080: error forwarding port 8080 to pod {ns}/web, uid "
        )
        assert error.endswith("port-forward is not possible on the fake runtime (nothing listens)\n")

        # The pod goes away: so does the port-forward, with kubectl's words.
        cluster.kubectl_ok("delete", "pod", "-n", ns, "web", "--wait=false")
        assert await asyncio.wait_for(process.wait(), 30) == 1
        assert (await process.stderr.read()).decode() == "Error: lost connection to pod\n"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_port_forward_errors(cluster: KboxCluster) -> None:
    ns = cluster.namespace("pferr")
    pending = {**POD, "metadata": {"name": "slow", "annotations": {"fake.kbox.io/start-delay": "1h"}}}
    cluster.kubectl_ok("apply", "-n", ns, "-f", "-", input=json.dumps(pending))
    assert one_line_error(cluster.kbox("port-forward", "-n", ns, "slow", "8080")) == (
        "Error: unable to forward port because pod is not running. Current status=Pending"
    )
    assert one_line_error(cluster.kbox("port-forward", "-n", ns, "slow", "x:80")) == (
        'Error: error parsing local port "x"'
    )
    assert one_line_error(cluster.kbox("port-forward", "-n", ns, "slow", "8080:")) == (
        "Error: remote port cannot be empty"
    )
    assert one_line_error(cluster.kbox("port-forward", "-n", ns, "slow", "9000:nope")) == (
        "Error: Pod 'slow' does not have a named port 'nope'"
    )
    assert (
        one_line_error(cluster.kbox("port-forward", "-n", ns, "gone", "80")) == 'Error: pods "gone" not found'
    )
