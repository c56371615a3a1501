"""The whole cluster on Docker through the path a user takes: ``kbox serve`` would run the same
composition; here ``kbox.testing.Cluster(runtime="docker")`` starts it in process and the real kubectl
drives it. A Deployment of a locally built image rolls out on two nodes, its pods answer on their IPs,
kubectl logs/exec reach them through the Deployment, a rolling update replaces them, and deleting it
removes every container."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kbox.client import interface
from kbox.testing import Cluster
from tests.e2e.conftest import BuiltImages
from tests.support.apiserver import Kubectl
from tests.support.wait import eventually

pytestmark = pytest.mark.docker

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {image}
        imagePullPolicy: Never
        env: [{{name: VERSION, value: "{version}"}}]
        command: ["sh", "-c", "mkdir -p /w; echo $VERSION > /w/index.html; echo serving $VERSION; exec httpd -f -p 80 -h /w"]
        readinessProbe: {{tcpSocket: {{port: 80}}, periodSeconds: 1}}
"""


async def test_deployment_on_docker_with_kubectl(docker_images: BuiltImages, tmp_path: Path) -> None:
    async with Cluster(runtime="docker", nodes=2) as cluster:
        cache = tmp_path / "cache"
        cache.mkdir()
        kubectl = Kubectl(Path(cluster.kubeconfig_path), cache)
        await kubectl.ok(
            "apply", "-f", "-", stdin=MANIFEST.format(image=docker_images.busybox, version="one")
        )
        out = await kubectl.ok("rollout", "status", "deployment/web", "--timeout=60s")
        assert 'deployment "web" successfully rolled out' in out
        pods = (await cluster.client.list(interface.PODS, namespace="default", label_selector="app=web"))[
            "items"
        ]
        assert len({p["spec"]["nodeName"] for p in pods}) == 2
        for pod in pods:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(pod["status"]["podIP"], 80), 5)
            writer.write(b"GET /index.html HTTP/1.0\r\n\r\n")
            assert (await asyncio.wait_for(reader.read(), 5)).endswith(b"one\n")
            writer.close()
        assert "serving one" in await kubectl.ok("logs", "deploy/web")
        assert (await kubectl.ok("exec", "deploy/web", "--", "cat", "/w/index.html")).strip() == "one"

        await kubectl.ok(
            "apply", "-f", "-", stdin=MANIFEST.format(image=docker_images.busybox, version="two")
        )
        await kubectl.ok("rollout", "status", "deployment/web", "--timeout=60s")
        assert (await kubectl.ok("exec", "deploy/web", "--", "cat", "/w/index.html")).strip() == "two"

        await kubectl.ok("delete", "deployment", "web", "--wait=true", "--timeout=60s")

        async def gone() -> bool:
            left = await cluster.client.list(interface.PODS, namespace="default", label_selector="app=web")
            return not left["items"]

        await eventually(gone, message="the Deployment's pods are gone")
