"""A node failure end to end through the installed ``kbox`` command, on Docker: a two-node profile (grace
period 3 s and default tolerations 1 s set through the environment ``kbox start`` passes on), a
Deployment spread over both nodes, ``kbox node stop`` of the control-plane node: the node turns Unknown
with the unreachable taints, its pod is evicted and the replacement runs on the other node, while the
stopped node's container keeps running in Docker; ``kbox node start`` brings the node back Ready and
untainted, and its kubelet finishes the evicted pod (its containers removed); ``kbox node delete`` of the
other node removes its containers and the Deployment's pods come back on the first."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from kbox.kubelet.runtime.interface import LABEL_CLUSTER, LABEL_NODE, LABEL_POD_UID
from tests.component.test_lifecycle import Env
from tests.e2e.conftest import BuiltImages
from tests.support.wait import until

pytestmark = pytest.mark.docker

SETTINGS = {
    "KBOX_NODE_MONITOR_GRACE_PERIOD": "3",
    "KBOX_DEFAULT_NOT_READY_TOLERATION_SECONDS": "1",
    "KBOX_DEFAULT_UNREACHABLE_TOLERATION_SECONDS": "1",
}


async def _containers(cluster: str, label: str, value: str) -> int:
    client = aiodocker.Docker()
    try:
        labels = [f"{LABEL_CLUSTER}={cluster}", f"{label}={value}"]
        return len(await client.containers.list(all=True, filters={"label": labels}))
    finally:
        await client.close()


@pytest.fixture
def started(tmp_path: Path, docker_images: BuiltImages) -> Iterator[tuple[Env, str]]:
    env = Env(home=tmp_path / "home", kbox_home=tmp_path / "kbox-home")
    env.home.mkdir()
    profile = f"e2e-{uuid.uuid4().hex[:6]}"
    result = env.kbox(
        "start", "-p", profile, "--runtime", "docker", "--nodes", "2", "--port", "0",
        timeout=180, env={**env.env, **SETTINGS},
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout, result.stderr)
    try:
        yield env, profile
    finally:
        env.kbox("delete", "--all", timeout=120)


def _json(env: Env, profile: str, *args: str) -> Any:
    """The real kubectl (the kbox start merged the profile into ~/.kube/config) for the polling."""
    return json.loads(env.kubectl("--context", profile, "get", *args, "-o", "json"))


def _web(env: Env, profile: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _json(env, profile, "pods", "-l", "app=web")["items"]
    return items


def _serving(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    return status.get("phase") == "Running" and ready and not pod["metadata"].get("deletionTimestamp")


def test_kbox_node_stop_moves_the_pods_and_start_recovers(
    started: tuple[Env, str], docker_images: BuiltImages
) -> None:
    env, profile = started
    manifest = env.home / "web.yaml"
    manifest.write_text(
        f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - {{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway,
         labelSelector: {{matchLabels: {{app: web}}}}}}
      containers:
      - name: web
        image: {docker_images.busybox}
        imagePullPolicy: Never
        command: [sleep, "3600"]
"""
    )
    env.ok("apply", "-f", str(manifest), "-p", profile)
    env.kubectl("--context", profile, "rollout", "status", "deployment/web", "--timeout=60s")
    victim, other = profile, f"{profile}-m02"  # the control-plane node may be stopped too
    victim_pod = next(p for p in _web(env, profile) if p["spec"]["nodeName"] == victim)

    assert env.ok("node", "stop", victim, "-p", profile).strip() == f"node {victim} stopped"

    def moved() -> bool:
        pods = [p for p in _web(env, profile) if _serving(p)]
        return len(pods) == 2 and all(p["spec"]["nodeName"] == other for p in pods)

    until(moved, 60)
    node = _json(env, profile, "node", victim)
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    keys = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
    assert {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    } <= keys
    evicted = _json(env, profile, "pod", victim_pod["metadata"]["name"])
    assert evicted["metadata"].get("deletionTimestamp"), "evicted; Terminating while its node is down"
    uid = victim_pod["metadata"]["uid"]
    assert (
        asyncio.run(_containers(profile, LABEL_POD_UID, uid)) > 0
    )  # the stopped kubelet's pod still runs in Docker
    assert victim in env.ok("node", "list", "-p", profile)

    assert env.ok("node", "start", victim, "-p", profile).strip() == f"node {victim} started"

    def recovered() -> bool:
        node = _json(env, profile, "node", victim)
        return not node["spec"].get("taints") and any(
            c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"]
        )

    until(recovered, 30)
    # The kubelet back on the node finishes the evicted pod: object and containers gone.
    until(lambda: len(_web(env, profile)) == 2, 60)
    until(lambda: asyncio.run(_containers(profile, LABEL_POD_UID, uid)) == 0, 60)

    # Deleting the other node (no drain): its containers are removed, its pods recreated elsewhere.
    assert asyncio.run(_containers(profile, LABEL_NODE, other)) > 0  # both web pods run there now
    assert env.ok("node", "delete", other, "-p", profile).strip() == f"node {other} deleted"
    assert asyncio.run(_containers(profile, LABEL_NODE, other)) == 0

    def on_control_plane() -> bool:
        pods = _web(env, profile)
        return len(pods) == 2 and all(_serving(p) and p["spec"]["nodeName"] == profile for p in pods)

    until(on_control_plane, 60)
