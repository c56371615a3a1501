"""Service account tokens without HTTP: the claims Kubernetes puts in a bound token, RS256 signing with a
persisted key and its key id, verification (audience, expiry, signature, issuer), the TokenRequest
subresource's validation and bound objects, and authentication against the objects a token names (a
deleted or re-created ServiceAccount or pod ends the token). HTTP, kubectl and the kubelet are in
tests/component/api/test_service_account_tokens.py."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kbox.api import authn, serviceaccounts, subresources
from kbox.api.catalog import Catalog
from kbox.api.errors import StatusError
from kbox.api.registry import GenericStore
from kbox.api.requestinfo import RequestInfo
from kbox.api.serviceaccounts import Ref, TokenIssuer
from kbox.resources import registry
from kbox.store.memory import MemoryStore

Obj = dict[str, Any]
NOW = datetime.datetime(2026, 11, 29, 12, 0, 0, tzinfo=datetime.UTC)


def _payload(token: str) -> Obj:
    part = token.split(".")[1]
    decoded: Obj = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def test_claims_have_kubernetes_shape() -> None:
    claims = serviceaccounts.claims(
        namespace="team",
        account=Ref("robot", "sa-uid"),
        audiences=["https://kubernetes.default.svc.cluster.local"],
        expiration_seconds=3607,
        now=NOW,
        pod=Ref("web-0", "pod-uid"),
        node=Ref("node-1", "node-uid"),
        token_id="jti-1",
    )
    issued = int(NOW.timestamp())
    assert claims == {
        "aud": ["https://kubernetes.default.svc.cluster.local"],
        "exp": issued + 3607,
        "iat": issued,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "jti": "jti-1",
        "kubernetes.io": {
            "namespace": "team",
            "serviceaccount": {"name": "robot", "uid": "sa-uid"},
            "pod": {"name": "web-0", "uid": "pod-uid"},
            "node": {"name": "node-1", "uid": "node-uid"},
        },
        "nbf": issued,
        "sub": "system:serviceaccount:team:robot",
    }


def test_user_of_a_pod_bound_token() -> None:
    claims = serviceaccounts.claims(
        namespace="team",
        account=Ref("robot", "sa-uid"),
        audiences=["x"],
        expiration_seconds=600,
        now=NOW,
        pod=Ref("web-0", "pod-uid"),
        token_id="jti-1",
    )
    who = serviceaccounts.user_info(claims)
    assert who.username == "system:serviceaccount:team:robot"
    assert who.uid == "sa-uid"
    assert who.groups == ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated")
    assert who.to_json()["extra"] == {
        "authentication.kubernetes.io/credential-id": ["JTI=jti-1"],
        "authentication.kubernetes.io/pod-name": ["web-0"],
        "authentication.kubernetes.io/pod-uid": ["pod-uid"],
    }


async def test_signed_with_a_persisted_ecdsa_key(tmp_path: Path) -> None:
    issuer = TokenIssuer(tmp_path)
    now = datetime.datetime.now(datetime.UTC)
    claims = serviceaccounts.claims(
        namespace="default", account=Ref("default", "u"), audiences=list(serviceaccounts.API_AUDIENCES),
        expiration_seconds=600, now=now,
    )  # fmt: skip
    token = await issuer.sign(claims)
    header = jwt.get_unverified_header(token)
    key_file = tmp_path / "sa.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    public = serialization.load_pem_public_key((tmp_path / "sa.pub").read_bytes())
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert header["alg"] == "ES256"
    assert header["kid"] == base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    assert _payload(token) == claims
    # Another issuer over the same directory (a restarted apiserver) verifies it.
    assert await TokenIssuer(tmp_path).verify(token) == claims


async def test_a_profiles_rsa_key_keeps_signing_rs256(tmp_path: Path) -> None:
    """A profile made before kbox switched to ECDSA keys keeps its RSA key, so its tokens stay valid."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "sa.key").write_bytes(pem)
    issuer = TokenIssuer(tmp_path)
    now = datetime.datetime.now(datetime.UTC)
    claims = serviceaccounts.claims(
        namespace="default", account=Ref("default", "u"), audiences=list(serviceaccounts.API_AUDIENCES),
        expiration_seconds=600, now=now,
    )  # fmt: skip
    token = await issuer.sign(claims)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert jwt.decode(token, key.public_key(), algorithms=["RS256"], audience=claims["aud"]) == claims
    assert (await issuer.jwks())["keys"][0]["alg"] == "RS256"
    assert (await issuer.openid_configuration())["id_token_signing_alg_values_supported"] == ["RS256"]


async def test_verification_refuses_bad_tokens(tmp_path: Path) -> None:
    issuer = TokenIssuer(tmp_path)
    now = datetime.datetime.now(datetime.UTC)

    def claims(**changes: Any) -> Obj:
        base = serviceaccounts.claims(
            namespace="default", account=Ref("default", "u"), audiences=list(serviceaccounts.API_AUDIENCES),
            expiration_seconds=600, now=now,
        )  # fmt: skip
        return {**base, **changes}

    good = await issuer.sign(claims())
    assert (await issuer.verify(good))["sub"] == "system:serviceaccount:default:default"
    bad = [
        await issuer.sign(claims(aud=["https://somewhere.else"])),
        await issuer.sign(claims(exp=int(now.timestamp()) - 10, iat=int(now.timestamp()) - 700)),
        await issuer.sign(claims(nbf=int(now.timestamp()) + 600)),
        await issuer.sign(claims(iss="kubernetes/serviceaccount")),
        await issuer.sign(claims(sub="admin")),
        await TokenIssuer(None).sign(claims()),  # another key
        good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),  # a tampered signature
    ]
    for token in bad:
        with pytest.raises(jwt.InvalidTokenError):
            await issuer.verify(token)


# -- TokenRequest and authentication against the objects ---------------------------------------------


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[Catalog]:
    store = MemoryStore()
    await store.start()
    catalog = Catalog(store, registry.builtin())
    catalog.tokens = TokenIssuer(tmp_path)
    await _generic(catalog, "namespaces").create(
        None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}
    )
    await _generic(catalog, "serviceaccounts").create(
        "default", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}
    )
    yield catalog
    await store.close()


def _generic(catalog: Catalog, plural: str) -> GenericStore:
    found = catalog.lookup("", "v1", plural)
    assert found is not None
    return found


async def _request(catalog: Catalog, name: str, spec: Obj) -> Obj:
    info = RequestInfo("create", "", "v1", "serviceaccounts", "default", name, "token")
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    return await subresources.token(catalog, _generic(catalog, "serviceaccounts"), info, body)


async def _pod(catalog: Catalog, name: str, account: str = "robot") -> Obj:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"serviceAccountName": account, "containers": [{"name": "c", "image": "busybox"}]},
    }
    return await _generic(catalog, "pods").create("default", pod)


async def test_token_request_defaults(catalog: Catalog) -> None:
    answer = await _request(catalog, "robot", {})
    account = await _generic(catalog, "serviceaccounts").get("default", "robot")
    claims = _payload(answer["status"]["token"])
    assert answer["kind"] == "TokenRequest"
    assert answer["spec"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    assert answer["spec"]["expirationSeconds"] == 3600
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"]["serviceaccount"] == {"name": "robot", "uid": account["metadata"]["uid"]}
    expires = datetime.datetime.fromtimestamp(claims["exp"], datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert answer["status"]["expirationTimestamp"] == expires
    who = await serviceaccounts.authenticate(catalog, answer["status"]["token"])
    assert who.username == "system:serviceaccount:default:robot"


async def test_token_request_refusals(catalog: Catalog) -> None:
    with pytest.raises(StatusError) as missing:
        await _request(catalog, "nobody", {})
    assert (missing.value.code, missing.value.message) == (404, 'serviceaccounts "nobody" not found')
    with pytest.raises(StatusError) as short:
        await _request(catalog, "robot", {"expirationSeconds": 60})
    assert short.value.code == 422
    assert "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes" in (
        short.value.message
    )
    with pytest.raises(StatusError) as kind:
        await _request(
            catalog, "robot", {"boundObjectRef": {"kind": "Node", "apiVersion": "v1", "name": "n"}}
        )
    assert (kind.value.code, kind.value.message) == (
        400,
        "cannot bind token to object of type /v1, Kind=Node",
    )
    await _pod(catalog, "other", account="default")
    with pytest.raises(StatusError) as wrong_account:
        await _request(
            catalog, "robot", {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "other"}}
        )
    assert wrong_account.value.code == 400
    pod = await _pod(catalog, "web")
    with pytest.raises(StatusError) as stale:
        await _request(
            catalog,
            "robot",
            {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "x"}},
        )
    assert stale.value.code == 409
    with pytest.raises(StatusError) as gone:
        await _request(
            catalog, "robot", {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "nope"}}
        )
    assert gone.value.code == 404
    assert pod["metadata"]["uid"]


async def test_pod_bound_token_dies_with_the_pod(catalog: Catalog) -> None:
    pod = await _pod(catalog, "web")
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": pod["metadata"]["uid"]}
    token = (await _request(catalog, "robot", {"boundObjectRef": ref}))["status"]["token"]
    claims = _payload(token)
    assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": pod["metadata"]["uid"]}
    who = await serviceaccounts.authenticate(catalog, token)
    assert who.extra["authentication.kubernetes.io/pod-name"] == ("web",)
    await _generic(catalog, "pods").delete("default", "web")
    with pytest.raises(StatusError) as refused:
        await serviceaccounts.authenticate(catalog, token)
    assert refused.value.code == 401
    await _pod(catalog, "web")  # the same name again is another pod: the token stays dead
    with pytest.raises(StatusError):
        await serviceaccounts.authenticate(catalog, token)


async def test_token_dies_with_its_service_account(catalog: Catalog) -> None:
    token = (await _request(catalog, "robot", {}))["status"]["token"]
    accounts = _generic(catalog, "serviceaccounts")
    await accounts.delete("default", "robot")
    await accounts.create(
        "default", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}
    )
    with pytest.raises(StatusError) as refused:
        await serviceaccounts.authenticate(catalog, token)
    assert refused.value.code == 401


async def test_a_token_for_another_audience_does_not_authenticate(catalog: Catalog) -> None:
    token = (await _request(catalog, "robot", {"audiences": ["vault"]}))["status"]["token"]
    assert _payload(token)["aud"] == ["vault"]
    with pytest.raises(StatusError) as refused:
        await serviceaccounts.authenticate(catalog, token)
    assert refused.value.code == 401


def test_the_default_user_is_the_administrator() -> None:
    assert authn.user() == authn.ADMIN
    robot = authn.UserInfo("system:serviceaccount:default:robot")
    with authn.acting_as(robot):
        assert authn.user() is robot
    assert authn.user() == authn.ADMIN


async def test_review_of_the_cluster_token(catalog: Catalog) -> None:
    catalog.tokens.admin_token = "cluster-secret"
    who, audiences = await serviceaccounts.review(
        catalog, "cluster-secret", ["https://kubernetes.default.svc.cluster.local", "x"]
    )
    assert who == authn.ADMIN
    assert audiences == ["https://kubernetes.default.svc.cluster.local"]
    for token, wanted in (
        ("cluster-secret", ["vault"]),
        ("cluster-secreT", list(serviceaccounts.API_AUDIENCES)),
    ):
        with pytest.raises(StatusError) as refused:
            await serviceaccounts.review(catalog, token, wanted)
        assert refused.value.code == 401
