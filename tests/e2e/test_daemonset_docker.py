"""A DaemonSet on Docker through the real kubectl: one busybox container per node, each pod pinned to
its node; ``kubectl set env`` rolls it, ``kubectl rollout status`` waits for it, and every node ends up
running the new template (read back from the containers with ``kubectl exec``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbox.client import interface
from kbox.testing import Cluster
from tests.e2e.conftest import BuiltImages
from tests.support.apiserver import Kubectl

pytestmark = pytest.mark.docker

MANIFEST = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {image}
        imagePullPolicy: Never
        env: [{{name: VERSION, value: one}}]
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""


async def test_daemonset_rolls_on_docker(docker_images: BuiltImages, tmp_path: Path) -> None:
    async with Cluster(runtime="docker", nodes=2) as cluster:
        kubectl = Kubectl(Path(cluster.kubeconfig_path), tmp_path / "cache")
        await kubectl.ok("apply", "-f", "-", stdin=MANIFEST.format(image=docker_images.busybox))
        out = await kubectl.ok("rollout", "status", "ds/agent", "--timeout=60s")
        assert 'daemon set "agent" successfully rolled out' in out

        async def versions() -> dict[str, str]:
            found = await cluster.client.list(interface.PODS, namespace="default", label_selector="app=agent")
            result = {}
            for pod in found["items"]:
                if pod["metadata"].get("deletionTimestamp"):
                    continue
                name = pod["metadata"]["name"]
                said = await kubectl.ok("exec", name, "--", "sh", "-c", "echo $VERSION")
                result[pod["spec"]["nodeName"]] = said.strip()
            return result

        assert await versions() == dict.fromkeys(cluster.node_names, "one")
        await kubectl.ok("set", "env", "ds/agent", "VERSION=two")
        await kubectl.ok("rollout", "status", "ds/agent", "--timeout=60s")
        assert await versions() == dict.fromkeys(cluster.node_names, "two")
        assert "2" in (await kubectl.ok("rollout", "history", "ds/agent")).split()
