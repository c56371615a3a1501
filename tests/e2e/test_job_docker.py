"""Jobs on Docker through the path a user takes: ``kbox.testing.Cluster(runtime="docker")`` runs the
whole composition in process and the real kubectl drives it. A Job of the locally built busybox image
runs two pods in parallel to completion (their logs carry the work), and a Job whose pod exits 1 with
``backoffLimit: 0`` fails with BackoffLimitExceeded; deleting the Jobs removes every container."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbox.client import interface
from kbox.testing import Cluster
from tests.e2e.conftest import BuiltImages
from tests.support.apiserver import Kubectl
from tests.support.wait import eventually

pytestmark = pytest.mark.docker

MANIFEST = """
apiVersion: batch/v1
kind: Job
metadata: {{name: pair}}
spec:
  completions: 2
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: work
        image: {image}
        imagePullPolicy: Never
        command: ["sh", "-c", "echo done by $HOSTNAME"]
---
apiVersion: batch/v1
kind: Job
metadata: {{name: broken}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: work
        image: {image}
        imagePullPolicy: Never
        command: ["sh", "-c", "echo failing; exit 1"]
"""


async def test_jobs_on_docker_with_kubectl(docker_images: BuiltImages, tmp_path: Path) -> None:
    async with Cluster(runtime="docker") as cluster:
        cache = tmp_path / "cache"
        cache.mkdir()
        kubectl = Kubectl(Path(cluster.kubeconfig_path), cache)
        await kubectl.ok("apply", "-f", "-", stdin=MANIFEST.format(image=docker_images.busybox))
        out = await kubectl.ok("wait", "--for=condition=complete", "job/pair", "--timeout=60s")
        assert out.strip() == "job.batch/pair condition met"
        out = await kubectl.ok("wait", "--for=condition=failed", "job/broken", "--timeout=60s")
        assert out.strip() == "job.batch/broken condition met"

        row = (await kubectl.ok("get", "job", "pair", "--no-headers")).split()
        assert row[:3] == ["pair", "Complete", "2/2"]
        pods = (
            await cluster.client.list(interface.PODS, namespace="default", label_selector="job-name=pair")
        )["items"]
        assert len(pods) == 2 and {p["status"]["phase"] for p in pods} == {"Succeeded"}
        for pod in pods:
            logs = await kubectl.ok("logs", pod["metadata"]["name"])
            assert logs.strip() == f"done by {pod['metadata']['name']}"

        broken = await cluster.get("jobs.batch", "broken")
        failed = next(c for c in broken["status"]["conditions"] if c["type"] == "Failed")
        assert failed["reason"] == "BackoffLimitExceeded" and broken["status"]["failed"] == 1
        (pod,) = (
            await cluster.client.list(interface.PODS, namespace="default", label_selector="job-name=broken")
        )["items"]
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert pod["status"]["phase"] == "Failed" and terminated["exitCode"] == 1
        assert "failing" in await kubectl.ok("logs", "job/broken")

        await kubectl.ok("delete", "job", "pair", "broken", "--wait=true", "--timeout=60s")

        async def gone() -> bool:
            left = await cluster.client.list(interface.PODS, namespace="default")
            return not [p for p in left["items"] if "job-name" in (p["metadata"].get("labels") or {})]

        await eventually(gone, message="the Jobs' pods are gone")
