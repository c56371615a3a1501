"""A CronJob on Docker through the path a user takes, on the real clock: ``kbox.testing.Cluster(runtime=
"docker")`` with the real kubectl. An hourly CronJob whose minute has just passed gets a
``lastScheduleTime`` three and a half hours back (as after a kbox restart): the controller starts only the
most recent missed time at once — one Job, not four — and its busybox container runs for real; the
CronJob records the run, and deleting it removes its Job."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from kbox.controllers.cronjob import JOBS
from kbox.testing import Cluster
from tests.e2e.conftest import BuiltImages
from tests.support.apiserver import Kubectl
from tests.support.wait import eventually

pytestmark = pytest.mark.docker

MANIFEST = """
apiVersion: batch/v1
kind: CronJob
metadata: {{name: tick}}
spec:
  schedule: "{minute} * * * *"
  jobTemplate:
    metadata: {{labels: {{app: tick}}}}
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: work
            image: {image}
            imagePullPolicy: Never
            command: ["sh", "-c", "echo tick from $HOSTNAME"]
"""


async def test_cronjob_runs_the_most_recent_missed_time_on_docker(
    docker_images: BuiltImages, tmp_path: Path
) -> None:
    async with Cluster(runtime="docker") as cluster:
        cache = tmp_path / "cache"
        cache.mkdir()
        kubectl = Kubectl(Path(cluster.kubeconfig_path), cache)
        recent = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0) - datetime.timedelta(
            minutes=1
        )
        manifest = MANIFEST.format(image=docker_images.busybox, minute=recent.minute)
        await kubectl.ok("apply", "-f", "-", stdin=manifest)
        before = recent - datetime.timedelta(hours=3, minutes=30)
        patch = {"status": {"lastScheduleTime": before.strftime("%Y-%m-%dT%H:%M:%SZ")}}
        await kubectl.ok(
            "patch", "cronjob", "tick", "--subresource=status", "--type=merge", "-p", json.dumps(patch)
        )

        async def job_names() -> list[str]:
            found = await cluster.client.list(JOBS, namespace="default", label_selector="app=tick")
            return [j["metadata"]["name"] for j in found["items"]]

        (name,) = await eventually(job_names, timeout=20, message="the missed minute's Job")
        assert name == f"tick-{int(recent.timestamp()) // 60}"
        await kubectl.ok("wait", "--for=condition=complete", f"job/{name}", "--timeout=60s")
        logs = await kubectl.ok("logs", f"job/{name}")
        assert logs.startswith(f"tick from {name}-")

        async def recorded() -> dict | None:
            cj = await cluster.get("cronjobs.batch", "tick")
            status = cj.get("status") or {}
            return cj if status.get("lastSuccessfulTime") and not status.get("active") else None

        cj = await eventually(recorded, timeout=20, message="the run recorded on the CronJob")
        assert cj["status"]["lastScheduleTime"] == recent.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert await job_names() == [name]  # the other missed minutes did not run

        await kubectl.ok("delete", "cronjob", "tick")

        async def gone() -> bool:
            return not await job_names()

        await eventually(gone, timeout=20, message="the Job deleted with its CronJob")
