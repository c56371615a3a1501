"""Service account tokens through the paths users take, on an embedded cluster (fake runtime): the real
kubectl's ``create token`` and ``--token``, ``auth whoami``, refusals worded as kube-apiserver words
them; a pod's kube-api-access volume as the kubelet writes it (token, ca.crt, namespace) used by the
official Python client's in-cluster configuration; the token dying with its pod; the kubelet renewing
a stale token; the kube-root-ca.crt publisher restoring a deleted or edited copy; and the issuer's
published keys verifying a token outside kbox. On Docker, from inside a container:
tests/e2e/test_incluster_docker.py."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from kubernetes.config.incluster_config import InClusterConfigLoader

from kbox.api.errors import StatusError
from kbox.client.interface import CONFIGMAPS, PODS
from kbox.kubelet import memoryfs, volumes
from kbox.testing import AsyncCluster
from tests.support.apiserver import Kubectl
from tests.support.wait import eventually

Obj = dict[str, Any]
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
LOGGED_OUT = "error: You must be logged in to the server"  # how kubectl reports a 401


@pytest.fixture
async def cluster() -> AsyncIterator[AsyncCluster]:
    async with AsyncCluster() as c:
        yield c


@pytest.fixture
def kubectl(cluster: AsyncCluster, tmp_path: Path) -> Kubectl:
    return Kubectl(cluster.kubeconfig_path, tmp_path / "cache")


def _claims(token: str) -> Obj:
    part = token.split(".")[1]
    decoded: Obj = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


async def test_create_token_and_use_it(kubectl: Kubectl) -> None:
    token = (await kubectl.ok("create", "token", "default")).strip()
    claims = _claims(token)
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert claims["exp"] - claims["iat"] == 3600
    whoami = json.loads(await kubectl.ok("--token", token, "auth", "whoami", "-o", "json"))
    assert whoami["status"]["userInfo"]["username"] == "system:serviceaccount:default:default"
    assert whoami["status"]["userInfo"]["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated",
    ]
    assert "kube-root-ca.crt" in await kubectl.ok("--token", token, "get", "configmaps", "-o", "name")
    assert (await kubectl.ok("--token", token, "auth", "can-i", "create", "pods")).strip() == "yes"
    admin = json.loads(await kubectl.ok("auth", "whoami", "-o", "json"))
    assert admin["status"]["userInfo"]["username"] == "kubernetes-admin"
    # Deleting the ServiceAccount ends its tokens.
    await kubectl.ok("delete", "serviceaccount", "default")
    assert LOGGED_OUT in await kubectl.fails("--token", token, "get", "pods")


async def test_token_subresource_is_discoverable(kubectl: Kubectl) -> None:
    resources = json.loads(await kubectl.ok("get", "--raw", "/api/v1"))["resources"]
    [token] = [r for r in resources if r["name"] == "serviceaccounts/token"]
    assert (token["group"], token["version"], token["kind"], token["verbs"]) == (
        "authentication.k8s.io",
        "v1",
        "TokenRequest",
        ["create"],
    )
    assert "selfsubjectreviews" in await kubectl.ok("api-resources", "--api-group=authentication.k8s.io")


async def test_create_token_options_and_refusals(kubectl: Kubectl) -> None:
    await kubectl.ok("create", "serviceaccount", "robot")
    token = (
        await kubectl.ok(
            "create", "token", "robot", "--duration", "20m", "--audience", "vault", "--audience", "x"
        )
    ).strip()
    claims = _claims(token)
    assert claims["aud"] == ["vault", "x"]
    assert claims["exp"] - claims["iat"] == 1200
    # Not for the apiserver's audience: refused.
    assert LOGGED_OUT in await kubectl.fails("--token", token, "get", "pods")
    err = await kubectl.fails("create", "token", "nobody")
    assert 'serviceaccounts "nobody" not found' in err
    err = await kubectl.fails("create", "token", "robot", "--duration", "1m")
    assert "may not specify a duration less than 10 minutes" in err
    assert LOGGED_OUT in await kubectl.fails("--token", "a.b.c", "get", "pods")
    assert LOGGED_OUT in await kubectl.fails("--token", "not-a-jwt", "get", "pods")


async def test_pod_gets_a_token_the_official_client_uses(
    cluster: AsyncCluster, kubectl: Kubectl, tmp_path: Path
) -> None:
    await kubectl.ok("run", "app", "--image=busybox", "--", "sleep", "3600")
    pod = await cluster.wait_for("Pod", "app", condition="Running", timeout=20)
    [volume] = pod["spec"]["volumes"]
    assert volume["name"].startswith("kube-api-access-")
    assert pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] == TOKEN_DIR
    folder = memoryfs.api_volume_dir(cluster.state_dir / "kubelet", pod["metadata"]["uid"], volume)
    written = await eventually(lambda: volumes.read(folder), timeout=10)
    assert sorted(written) == ["ca.crt", "namespace", "token"]
    assert written["namespace"].data == b"default"
    assert written["ca.crt"].data == cluster.ca_path.read_bytes()
    token = written["token"].data.decode()
    claims = _claims(token)
    assert claims["kubernetes.io"]["pod"] == {"name": "app", "uid": pod["metadata"]["uid"]}
    assert claims["kubernetes.io"]["node"]["name"] == cluster.node_names[0]
    assert claims["exp"] - claims["iat"] == 3607
    assert all((folder / name).is_symlink() for name in ("token", "ca.crt", "namespace"))

    # What a client library in the pod does: in-cluster config from the volume's files and the env.
    # (From copies: the kubelet removes the volume with the pod, and the client reads the CA file late.)
    port = cluster.url.rsplit(":", 1)[1]
    for name in ("token", "ca.crt"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    loader = InClusterConfigLoader(
        token_filename=str(tmp_path / "token"),
        cert_filename=str(tmp_path / "ca.crt"),
        environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port},
    )
    configuration = k8s.Configuration()
    loader.load_and_set(configuration)

    def in_pod() -> tuple[list[str], Obj]:
        with k8s.ApiClient(configuration) as api:
            names = [p.metadata.name for p in k8s.CoreV1Api(api).list_namespaced_pod("default").items]
            review = k8s.AuthenticationV1Api(api).create_self_subject_review(
                k8s.V1SelfSubjectReview(metadata=k8s.V1ObjectMeta())
            )
            access = k8s.AuthorizationV1Api(api).create_self_subject_access_review(
                k8s.V1SelfSubjectAccessReview(
                    spec=k8s.V1SelfSubjectAccessReviewSpec(
                        resource_attributes=k8s.V1ResourceAttributes(verb="delete", resource="nodes")
                    )
                )
            )
            return names, review.status.user_info.to_dict(), access.status.to_dict()

    names, user, access = await asyncio.to_thread(in_pod)
    assert "app" in names
    assert user["username"] == "system:serviceaccount:default:default"
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["app"]
    assert access["allowed"] is True  # no RBAC
    assert access["reason"] == "kbox has no RBAC: system:serviceaccount:default:default may do everything"

    # The token dies with its pod.
    await kubectl.ok("delete", "pod", "app", "--wait=true")

    def refused() -> int:
        with k8s.ApiClient(configuration) as api:
            try:
                k8s.CoreV1Api(api).list_namespaced_pod("default")
            except ApiException as exc:
                return int(exc.status)
            return 200

    assert await asyncio.to_thread(refused) == 401


async def test_kubelet_renews_a_stale_token(cluster: AsyncCluster, kubectl: Kubectl) -> None:
    await kubectl.ok("run", "app", "--image=busybox", "--", "sleep", "3600")
    pod = await cluster.wait_for("Pod", "app", condition="Running", timeout=20)
    [volume] = pod["spec"]["volumes"]
    folder = memoryfs.api_volume_dir(cluster.state_dir / "kubelet", pod["metadata"]["uid"], volume)
    written = await eventually(lambda: volumes.read(folder), timeout=10)
    fresh = written["token"].data
    # A token past 80% of its lifetime (as if an hour had gone by), then any sync of the pod renews it.
    now = int(time.time())
    header = fresh.decode().split(".")[0]
    stale_claims = {**_claims(fresh.decode()), "iat": now - 3000, "nbf": now - 3000, "exp": now + 600}
    encoded = base64.urlsafe_b64encode(json.dumps(stale_claims).encode()).decode().rstrip("=")
    stale = f"{header}.{encoded}.c2ln".encode()
    volumes.write(folder, {**written, "token": volumes.File(stale, written["token"].mode)})
    assert volumes.read(folder)["token"].data == stale  # type: ignore[index]
    await kubectl.ok("label", "pod", "app", "touched=yes")

    def renewed() -> bytes | None:
        token = (volumes.read(folder) or {}).get("token")
        return token.data if token is not None and token.data not in (stale, fresh) else None

    new = await eventually(renewed, timeout=10)
    assert _claims(new.decode())["iat"] >= now - 5
    assert "app" in await kubectl.ok("--token", new.decode(), "get", "pods", "-o", "name")


async def test_root_ca_configmap_is_published_and_restored(cluster: AsyncCluster, kubectl: Kubectl) -> None:
    ca = cluster.ca_path.read_text()

    async def published(namespace: str) -> Obj | None:
        try:
            found = await cluster.client.get(CONFIGMAPS, "kube-root-ca.crt", namespace=namespace)
        except StatusError:
            return None
        return found if found.get("data") == {"ca.crt": ca} else None

    first = await eventually(lambda: published("default"), timeout=10)
    assert "kube-apiserver" in first["metadata"]["annotations"]["kubernetes.io/description"]
    await kubectl.ok("create", "namespace", "team")
    await eventually(lambda: published("team"), timeout=10)
    await kubectl.ok("delete", "configmap", "kube-root-ca.crt")
    back = await eventually(lambda: published("default"), timeout=10)
    assert back["metadata"]["uid"] != first["metadata"]["uid"]
    await kubectl.ok("patch", "configmap", "kube-root-ca.crt", "-p", '{"data":{"ca.crt":"forged"}}')
    await eventually(lambda: published("default"), timeout=10)
    listing = await cluster.client.list(PODS, namespace="team")
    assert listing["items"] == []


async def test_server_side_apply_creates_a_pod_with_its_token_volume(kubectl: Kubectl) -> None:
    manifest = """apiVersion: v1
kind: Pod
metadata: {name: applied}
spec:
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
"""
    await kubectl.ok("apply", "--server-side", "-f", "-", stdin=manifest)
    pod = json.loads(await kubectl.ok("get", "pod", "applied", "-o", "json"))
    [volume] = pod["spec"]["volumes"]
    assert volume["name"].startswith("kube-api-access-")
    assert pod["spec"]["serviceAccountName"] == "default"
    # The admission's additions are not the applier's: applying the same manifest again keeps them.
    assert "serverside-applied" in await kubectl.ok("apply", "--server-side", "-f", "-", stdin=manifest)
    again = json.loads(await kubectl.ok("get", "pod", "applied", "-o", "json", "--show-managed-fields"))
    assert again["spec"]["volumes"] == pod["spec"]["volumes"]
    owned = json.dumps([m for m in again["metadata"]["managedFields"] if m["manager"] == "kubectl"])
    assert "kube-api-access" not in owned


async def test_tokens_verify_with_the_published_keys(kubectl: Kubectl) -> None:
    """What a verifier outside the cluster does: the issuer's discovery document, then its keys."""
    discovery = json.loads(await kubectl.ok("get", "--raw", "/.well-known/openid-configuration"))
    assert discovery["issuer"] == "https://kubernetes.default.svc.cluster.local"
    assert discovery["jwks_uri"] == "https://kubernetes.default.svc.cluster.local/openid/v1/jwks"
    keys = json.loads(await kubectl.ok("get", "--raw", "/openid/v1/jwks"))["keys"]
    token = (await kubectl.ok("create", "token", "default", "--audience", "vault")).strip()
    [key] = keys
    assert key["kid"] == jwt.get_unverified_header(token)["kid"]
    public = jwt.PyJWK.from_dict(key).key
    [algorithm] = discovery["id_token_signing_alg_values_supported"]
    assert algorithm == key["alg"] == "ES256"
    claims = jwt.decode(token, public, algorithms=[algorithm], audience="vault", issuer=discovery["issuer"])
    assert claims["sub"] == "system:serviceaccount:default:default"


async def test_token_review(cluster: AsyncCluster, kubectl: Kubectl) -> None:
    """What a service in the cluster does to check a caller's token (Vault's Kubernetes auth, say)."""
    plain = (await kubectl.ok("create", "token", "default")).strip()
    for_vault = (await kubectl.ok("create", "token", "default", "--audience", "vault")).strip()
    configuration = k8s.Configuration(host=cluster.url, api_key={"authorization": f"Bearer {cluster.token}"})
    configuration.ssl_ca_cert = str(cluster.ca_path)

    def reviews() -> list[Obj]:
        cases = [(plain, None), (for_vault, ["vault", "other"]), (for_vault, None), ("x.y.z", None)]
        cases.append((cluster.token, None))
        with k8s.ApiClient(configuration) as api:
            authentication = k8s.AuthenticationV1Api(api)
            return [
                authentication.create_token_review(
                    k8s.V1TokenReview(spec=k8s.V1TokenReviewSpec(token=token, audiences=audiences))
                ).status.to_dict()
                for token, audiences in cases
            ]

    plain_review, vault_review, wrong_audience, garbage, admin = await asyncio.to_thread(reviews)
    assert plain_review["authenticated"] is True
    assert plain_review["user"]["username"] == "system:serviceaccount:default:default"
    assert plain_review["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    assert vault_review["authenticated"] is True and vault_review["audiences"] == ["vault"]
    for refused in (wrong_audience, garbage):
        assert not refused["authenticated"]
        assert "invalid bearer token" in refused["error"]
    assert admin["authenticated"] is True and admin["user"]["username"] == "kubernetes-admin"
    err = await kubectl.fails(
        "create", "-f", "-", stdin='{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{}}'
    )
    assert "token is required for TokenReview in authentication" in err
