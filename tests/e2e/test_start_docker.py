"""``kbox start`` with the docker runtime, end to end through the installed ``kbox`` command only:
the kube-system pods (control plane, kube-proxy, coredns) Running, a Deployment applied and reached by
Service name from another pod through the cluster DNS, the dns addon disabled and enabled again without
a restart, and ``kbox stop`` stopping the pods' containers while ``kbox start`` brings every object and
pod back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiodocker
import pytest

from kbox.kubelet.runtime.interface import LABEL_CLUSTER
from tests.component.test_lifecycle import Env
from tests.e2e.conftest import BuiltImages
from tests.support.wait import until

pytestmark = pytest.mark.docker


async def _running(cluster: str) -> int:
    client = aiodocker.Docker()
    try:
        found = await client.containers.list(filters={"label": [f"{LABEL_CLUSTER}={cluster}"]})
        return len(found)
    finally:
        await client.close()


@pytest.fixture(scope="module")
def started(
    tmp_path_factory: pytest.TempPathFactory, docker_images: BuiltImages
) -> Iterator[tuple[Env, str]]:
    root: Path = tmp_path_factory.mktemp("start-docker")
    env = Env(home=root / "home", kbox_home=root / "kbox-home")
    env.home.mkdir()
    profile = f"e2e-{uuid.uuid4().hex[:6]}"
    result = env.kbox("start", "-p", profile, "--runtime", "docker", "--port", "0", timeout=180)
    assert result.returncode == 0, (result.stdout, result.stderr)
    try:
        yield env, profile
    finally:
        env.kbox("delete", "--all", timeout=120)


def rows(env: Env, *args: str) -> dict[str, list[str]]:
    out = env.ok(*args, "--no-headers")
    return {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}


def test_kube_system_shows_every_component_running(started: tuple[Env, str]) -> None:
    env, profile = started
    pods = rows(env, "get", "pod", "-n", "kube-system", "-p", profile)
    names = list(pods)
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert pods[f"{component}-{profile}"][1:3] == ["1/1", "Running"], pods
    assert any(n.startswith("kube-proxy-") for n in names), names
    assert any(n.startswith("coredns-") for n in names), names
    assert all(row[2] == "Running" for row in pods.values()), pods


def test_service_by_name_through_dns_and_addon_toggle(
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
      containers:
      - name: web
        image: {docker_images.busybox}
        imagePullPolicy: Never
        command: [sh, -c, 'echo serving; exec httpd -f -p 80 -h /etc']
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80}}]
"""
    )
    assert "deployment.apps/web created" in env.ok("apply", "-f", str(manifest), "-p", profile)
    env.ok("rollout", "status", "deployment/web", "-p", profile, "--timeout=90s")
    assert "serving" in env.ok("logs", "deployment/web", "-p", profile)
    cluster_ip = env.ok("get", "svc", "web", "-p", profile, "-o", "jsonpath={.spec.clusterIP}").strip()

    def lookup() -> str:
        result = env.kbox(
            "exec", "deploy/web", "-p", profile, "--", "nslookup", "web.default.svc.cluster.local"
        )
        return result.stdout if result.returncode == 0 and cluster_ip in result.stdout else ""

    until(lookup, 60)

    assert "disabled" in env.ok("addons", "disable", "dns", "-p", profile)
    assert not any(
        n.startswith("coredns-") for n in rows(env, "get", "pod", "-n", "kube-system", "-p", profile)
    )
    assert "dns" in env.ok("addons", "list", "-p", profile)
    assert "enabled" in env.ok("addons", "enable", "dns", "-p", profile)
    pods = rows(env, "get", "pod", "-n", "kube-system", "-p", profile)
    assert any(n.startswith("coredns-") and row[2] == "Running" for n, row in pods.items()), pods
    until(lookup, 60)


def test_stop_stops_the_pods_and_start_brings_them_back(started: tuple[Env, str]) -> None:
    env, profile = started
    assert asyncio.run(_running(profile)) > 0
    assert "stopped" in env.ok("stop", "-p", profile)
    assert asyncio.run(_running(profile)) == 0  # kbox stop stops the pods' containers
    env.ok("start", "-p", profile)
    env.ok("rollout", "status", "deployment/web", "-p", profile, "--timeout=90s")
    pods = rows(env, "get", "pod", "-l", "app=web", "-p", profile)
    assert len(pods) == 2 and all(row[2] == "Running" for row in pods.values()), pods
    assert until(lambda: asyncio.run(_running(profile)) >= 4, 60)  # two pods: sandbox + app each
