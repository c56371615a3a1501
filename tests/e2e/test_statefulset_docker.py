"""A StatefulSet on Docker through the path a user takes: ``kbox.testing.Cluster(runtime="docker")`` and
the real kubectl. Its busybox pod writes a file into its claim (a hostPath volume the provisioner made
under the cluster's state directory); the pod is deleted, comes back with the same name and the same
claim, and ``kubectl exec`` reads the file back. Deleting the set and the claim removes the volume's
folder (reclaim policy Delete)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbox.testing import Cluster
from tests.e2e.conftest import BuiltImages
from tests.support.apiserver import Kubectl
from tests.support.wait import eventually

pytestmark = pytest.mark.docker

MANIFEST = """
apiVersion: v1
kind: Service
metadata: {{name: store}}
spec:
  clusterIP: None
  selector: {{app: store}}
  ports: [{{port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: store}}
spec:
  serviceName: store
  replicas: 1
  selector: {{matchLabels: {{app: store}}}}
  template:
    metadata: {{labels: {{app: store}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: main
        image: {image}
        imagePullPolicy: Never
        command: ["sh", "-c", "[ -f /data/first ] || hostname > /data/first; exec sleep 3600"]
        volumeMounts: [{{name: data, mountPath: /data}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 10Mi}}}}
"""


async def test_statefulset_pod_keeps_its_data_across_deletion(
    docker_images: BuiltImages, tmp_path: Path
) -> None:
    async with Cluster(runtime="docker") as cluster:
        cache = tmp_path / "cache"
        cache.mkdir()
        kubectl = Kubectl(Path(cluster.kubeconfig_path), cache)
        await kubectl.ok("apply", "-f", "-", stdin=MANIFEST.format(image=docker_images.busybox))
        out = await kubectl.ok("rollout", "status", "statefulset/store", "--timeout=60s")
        assert "roll out complete" in out
        first = await cluster.get("pods", "store-0")
        await kubectl.ok("exec", "store-0", "--", "sh", "-c", "echo kept > /data/note")

        claim = await cluster.get("persistentvolumeclaims", "data-store-0")
        volume = await cluster.get("persistentvolumes", claim["spec"]["volumeName"])
        folder = Path(volume["spec"]["hostPath"]["path"])
        assert folder.parent == Path(cluster.state_dir) / "volumes"
        assert (folder / "note").read_text() == "kept\n"  # the container wrote into the host folder

        await kubectl.ok("delete", "pod", "store-0", "--wait=true")

        async def back() -> bool:
            try:
                pod = await cluster.get("pods", "store-0")
            except Exception:
                return False
            ready = any(
                c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or []
            )
            return pod["metadata"]["uid"] != first["metadata"]["uid"] and ready

        await eventually(back, timeout=30, message="store-0 back and ready")
        assert (await kubectl.ok("exec", "store-0", "--", "cat", "/data/note")) == "kept\n"
        assert (await kubectl.ok("exec", "store-0", "--", "cat", "/data/first")) == "store-0\n"
        again = await cluster.get("persistentvolumeclaims", "data-store-0")
        assert again["metadata"]["uid"] == claim["metadata"]["uid"]

        row = (await kubectl.ok("get", "pvc", "data-store-0", "--no-headers")).split()
        assert row[:6] == ["data-store-0", "Bound", volume["metadata"]["name"], "10Mi", "RWO", "standard"]

        await kubectl.ok("delete", "statefulset", "store", "--wait=true")
        await kubectl.ok("delete", "pvc", "data-store-0", "--wait=true", "--timeout=30s")
        await eventually(lambda: not folder.exists(), timeout=15, message="volume folder removed")
