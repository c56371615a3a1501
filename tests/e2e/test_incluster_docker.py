"""In-cluster API access from a pod on Docker, end to end through the installed ``kbox`` command: ``kbox
start`` a docker profile, run a pod of an image holding the real (static) kubectl, and from inside the
container let kubectl use in-cluster configuration, exactly what a client library in a pod does: the
KUBERNETES_SERVICE_HOST/PORT variables the kubelet set, the projected token, ca.crt and namespace under
/var/run/secrets/kubernetes.io/serviceaccount, HTTPS to the ``kubernetes`` Service's ClusterIP
(10.96.0.1:443 through kube-proxy) verified against the cluster CA, and by the name
kubernetes.default.svc through the cluster DNS. The host then checks the same token and CA on the same
ClusterIP, and that the token dies with its pod."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiodocker
import pytest

from tests.component.test_lifecycle import Env
from tests.e2e.conftest import BuiltImages
from tests.support.images import ensure_kubectl_image
from tests.support.wait import until

pytestmark = pytest.mark.docker

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


async def _build_kubectl_image() -> str:
    client = aiodocker.Docker()
    try:
        return await ensure_kubectl_image(client)
    finally:
        await client.close()


@pytest.fixture(scope="module")
def started(
    tmp_path_factory: pytest.TempPathFactory, docker_images: BuiltImages
) -> Iterator[tuple[Env, str, str]]:
    image = asyncio.run(_build_kubectl_image())
    root: Path = tmp_path_factory.mktemp("incluster-docker")
    env = Env(home=root / "home", kbox_home=root / "kbox-home")
    env.home.mkdir()
    profile = f"e2e-{uuid.uuid4().hex[:6]}"
    result = env.kbox("start", "-p", profile, "--runtime", "docker", "--port", "0", timeout=180)
    assert result.returncode == 0, (result.stdout, result.stderr)
    try:
        manifest = env.home / "client.yaml"
        manifest.write_text(
            f"""apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  containers:
  - name: client
    image: {image}
    imagePullPolicy: Never
    command: [sleep, "3600"]
    env: [{{name: HOME, value: /tmp}}]
"""
        )
        env.ok("apply", "-f", str(manifest), "-p", profile)
        env.ok("wait", "--for=condition=Ready", "pod/client", "-p", profile, "--timeout=90s")
        yield env, profile, image
    finally:
        env.kbox("delete", "--all", timeout=120)


def in_pod(env: Env, profile: str, *command: str) -> str:
    return env.ok("exec", "client", "-p", profile, "-q", "--", *command)


def test_pod_environment_and_files(started: tuple[Env, str, str]) -> None:
    env, profile, _ = started
    variables = dict(line.split("=", 1) for line in in_pod(env, profile, "env").splitlines() if "=" in line)
    assert variables["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert variables["KUBERNETES_SERVICE_PORT"] == "443"
    assert variables["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert variables["KUBERNETES_PORT_443_TCP"] == "tcp://10.96.0.1:443"
    assert sorted(in_pod(env, profile, "ls", TOKEN_DIR).split()) == ["ca.crt", "namespace", "token"]
    assert in_pod(env, profile, "cat", f"{TOKEN_DIR}/namespace") == "default"
    assert in_pod(env, profile, "cat", f"{TOKEN_DIR}/token").count(".") == 2
    assert "BEGIN CERTIFICATE" in in_pod(env, profile, "cat", f"{TOKEN_DIR}/ca.crt")
    # Read-only, as Kubernetes mounts it.
    result = env.kbox("exec", "client", "-p", profile, "-q", "--", "sh", "-c", f"echo x > {TOKEN_DIR}/x")
    assert result.returncode != 0


def test_kubectl_in_the_pod_uses_in_cluster_config(started: tuple[Env, str, str]) -> None:
    env, profile, _ = started
    assert "pod/client" in in_pod(env, profile, "kubectl", "get", "pods", "-o", "name").split()
    who = in_pod(env, profile, "kubectl", "auth", "whoami", "-o", "json")
    user = json.loads(who)["status"]["userInfo"]
    assert user["username"] == "system:serviceaccount:default:default"
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["client"]

    # By the Service's DNS name (cluster DNS), checked against the CA for that name. (kubectl uses
    # in-cluster config only without --server, so the token and CA files are named explicitly.)
    by_name_command = (
        f"kubectl --server=https://kubernetes.default.svc --certificate-authority={TOKEN_DIR}/ca.crt "
        f"--token=$(cat {TOKEN_DIR}/token) get namespace kube-system -o name"
    )

    def by_name() -> str:
        result = env.kbox("exec", "client", "-p", profile, "-q", "--", "sh", "-c", by_name_command)
        return result.stdout if result.returncode == 0 else ""

    assert until(by_name, 60).strip() == "namespace/kube-system"


def test_host_reaches_the_cluster_ip_with_the_pods_token(started: tuple[Env, str, str]) -> None:
    env, profile, image = started
    token = in_pod(env, profile, "cat", f"{TOKEN_DIR}/token")
    context = ssl.create_default_context(cadata=in_pod(env, profile, "cat", f"{TOKEN_DIR}/ca.crt"))

    def get(path: str, bearer: str) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            f"https://10.96.0.1{path}", headers={"Authorization": f"Bearer {bearer}"}
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    code, body = get("/api", token)
    assert code == 200 and body["kind"] == "APIVersions"
    code, body = get("/api", "x.y.z")
    assert code == 401 and body["reason"] == "Unauthorized"
    # The pod's token dies with the pod.
    env.ok("delete", "pod", "client", "-p", profile, "--wait")
    code, body = get("/api/v1/namespaces/default/pods", token)
    assert code == 401, body
    assert image
