"""``kbox apply``, ``rollout``, ``scale``, ``wait`` and ``delete`` on real containers: a docker-runtime
profile started through the installed command, a busybox Deployment applied from a file.

Checked as a user meets them: the rollout waits for real containers, an applied change rolls the pods
(new containers with the new command; ``wait --for=delete`` on the old pods), ``rollout undo`` brings
the old command back, scaling adds a container, and ``kbox delete -f`` returns only once every pod is
gone, at which point Docker runs no container of them.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.component.cli.conftest import KboxCluster
from tests.e2e.conftest import BuiltImages

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, docker_images: BuiltImages) -> Iterator[KboxCluster]:
    base = tmp_path_factory.mktemp("kbox-apply-docker")
    c = KboxCluster(home=base / "home", kbox_home=base / "kbox-home", profile=f"apply-{uuid.uuid4().hex[:6]}")
    c.home.mkdir()
    try:
        c.ok("start", "--runtime", "docker", "--port", "0", timeout=300)
        yield c
    finally:
        c.kbox("delete", "--profile", c.profile, timeout=180)


def manifest(image: str, message: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "command": ["sh", "-c", f"echo {message}; exec sleep 3600"],
                        }
                    ],
                },
            },
        },
    }


def containers_of(cluster: KboxCluster, *, running_only: bool = True) -> list[dict[str, str]]:
    """The app containers Docker runs for the profile's ``web`` pods: name of pod and command."""
    args = ["docker", "ps", "--format", "{{json .}}", "--no-trunc"]
    if not running_only:
        args.insert(2, "-a")
    args += [
        "--filter",
        f"label=io.kbox.cluster={cluster.profile}",
        "--filter",
        "label=io.kbox.kind=container",
    ]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=30).stdout
    found = []
    for line in out.splitlines():
        row = json.loads(line)
        if "io.kubernetes.pod.name=web-" in row["Labels"]:
            found.append({"labels": row["Labels"], "command": row["Command"]})
    return found


def test_apply_rollout_scale_undo_delete_on_docker(
    cluster: KboxCluster, docker_images: BuiltImages, tmp_path: Path
) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump(manifest(docker_images.busybox, "first")))
    assert cluster.ok("apply", "-f", str(path)).strip() == "deployment.apps/web created"
    out = cluster.ok("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    assert out.splitlines()[-1] == 'deployment "web" successfully rolled out'
    running = containers_of(cluster)
    assert len(running) == 2 and all("echo first" in c["command"] for c in running)
    first_pods = cluster.kubectl_ok("get", "pods", "-l", "app=web", "-o", "name").split()

    path.write_text(yaml.safe_dump(manifest(docker_images.busybox, "second")))
    assert cluster.ok("apply", "-f", str(path)).strip() == "deployment.apps/web configured"
    cluster.ok("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    cluster.ok("wait", "--for=delete", *first_pods, "--timeout=60s")
    running = containers_of(cluster)
    assert len(running) == 2 and all("echo second" in c["command"] for c in running)
    second_pods = cluster.kubectl_ok("get", "pods", "-l", "app=web", "-o", "name").split()

    assert cluster.ok("rollout", "undo", "deployment/web").strip() == "deployment.apps/web rolled back"
    cluster.ok("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    pods = json.loads(cluster.kubectl_ok("get", "pods", "-l", "app=web", "-o", "json"))["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert {p["spec"]["containers"][0]["command"][-1] for p in live} == {"echo first; exec sleep 3600"}

    cluster.ok("wait", "--for=delete", *second_pods, "--timeout=60s")
    assert cluster.ok("scale", "deployment/web", "--replicas=3").strip() == "deployment.apps/web scaled"
    cluster.ok("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    running = containers_of(cluster)
    assert len(running) == 3 and all("echo first" in c["command"] for c in running)

    # delete waits for the pods' real termination: when it returns, Docker runs none of them.
    out = cluster.ok("delete", "-f", str(path), "--cascade=foreground", timeout=180)
    assert out.strip() == 'deployment.apps "web" deleted'
    assert cluster.kubectl_ok("get", "pods", "-l", "app=web", "-o", "name").strip() == ""
    assert containers_of(cluster) == []
