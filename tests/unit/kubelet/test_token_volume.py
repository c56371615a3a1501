"""The kubelet's projected serviceAccountToken source: the TokenRequest it sends (bound to the pod, the
source's audience and lifetime), reuse of the written token until 80% of its lifetime has passed (or a
day), a fresh token after that or when the pod, account or audience changed, API errors as the volume's
mount error, and when the pod's next sync is due. The whole path (kubelet, API, files) is in
tests/component/api/test_service_account_tokens.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.kubelet import volumes
from kbox.kubelet.runtime.interface import ContainerRuntimeError

Obj = dict[str, Any]
POD = {
    "metadata": {"name": "web", "namespace": "team", "uid": "pod-uid"},
    "spec": {"serviceAccountName": "robot"},
}


def _jwt(claims: Obj) -> str:
    def part(value: Obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def _claims(iat: float, exp: float, *, uid: str = "pod-uid", account: str = "robot", aud: Any = None) -> Obj:
    return {
        "iat": iat,
        "exp": exp,
        "aud": aud or ["https://kubernetes.default.svc.cluster.local"],
        "kubernetes.io": {"pod": {"name": "web", "uid": uid}, "serviceaccount": {"name": account}},
    }


class FakeTokens:
    """Answers TokenRequests with tokens issued at ``now``; records what was asked."""

    def __init__(self, now: float, error: StatusError | None = None) -> None:
        self.now = now
        self.error = error
        self.asked: list[tuple[str, Obj, str]] = []

    async def request_token(self, service_account: str, spec: Obj, *, namespace: str) -> Obj:
        self.asked.append((service_account, spec, namespace))
        if self.error is not None:
            raise self.error
        lifetime = spec["expirationSeconds"]
        return {"status": {"token": _jwt(_claims(self.now, self.now + lifetime, aud=spec["audiences"]))}}


async def _token(client: FakeTokens, source: Obj, previous: volumes.Payload | None, now: float) -> bytes:
    payload = await volumes.service_account_token(
        client, "kube-api-access-x", source, POD, 0o644, previous, now=now
    )  # type: ignore[arg-type]
    return payload[source.get("path") or "token"].data


async def test_request_is_bound_to_the_pod() -> None:
    client = FakeTokens(now=1000.0)
    data = await _token(client, {"path": "token", "expirationSeconds": 3607}, None, now=1000.0)
    assert volumes.token_claims(data) == _claims(1000.0, 4607.0, aud=[])
    assert client.asked == [
        (
            "robot",
            {
                "audiences": [],
                "expirationSeconds": 3607,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "pod-uid"},
            },
            "team",
        )
    ]
    await _token(client, {"path": "t", "audience": "vault"}, None, now=1000.0)
    assert client.asked[-1][1]["audiences"] == ["vault"]
    assert client.asked[-1][1]["expirationSeconds"] == 3600


async def test_written_token_is_reused_until_80_percent() -> None:
    client = FakeTokens(now=0.0)
    source = {"path": "token", "expirationSeconds": 1000}
    written = {"token": volumes.File(_jwt(_claims(0.0, 1000.0)).encode())}
    assert await _token(client, source, written, now=799.0) == written["token"].data
    assert client.asked == []
    client.now = 800.0
    renewed = await _token(client, source, written, now=800.0)
    assert renewed != written["token"].data
    assert len(client.asked) == 1


@pytest.mark.parametrize(
    "claims",
    [
        _claims(0.0, 1000.0, uid="another-pod"),
        _claims(0.0, 1000.0, account="default"),
        _claims(0.0, 1000.0, aud=["https://kubernetes.default.svc.cluster.local"]),  # source wants "vault"
        None,
    ],
)
async def test_a_token_for_something_else_is_replaced(claims: Obj | None) -> None:
    client = FakeTokens(now=10.0)
    old = _jwt(claims).encode() if claims else b"not a token"
    await _token(client, {"audience": "vault"}, {"token": volumes.File(old)}, now=10.0)
    assert len(client.asked) == 1


def test_renewal_time() -> None:
    assert volumes.token_fresh_for(_claims(0.0, 1000.0), now=0.0) == 800.0
    assert volumes.token_fresh_for(_claims(0.0, 1000.0), now=900.0) == -100.0
    year = 365 * 24 * 3600
    assert volumes.token_fresh_for(_claims(0.0, year), now=0.0) == 24 * 3600  # renewed daily
    assert volumes.token_fresh_for(None, now=0.0) == 0.0
    assert volumes.token_fresh_for({"iat": "x"}, now=0.0) == 0.0


def test_next_sync_for_renewal() -> None:
    pod = {
        "spec": {
            "volumes": [
                {"name": "cm", "configMap": {"name": "x"}},
                {"name": "a", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
                {"name": "b", "projected": {"sources": [{"serviceAccountToken": {"path": "t2"}}]}},
            ]
        }
    }
    written = {
        "a": {"token": volumes.File(_jwt(_claims(0.0, 1000.0)).encode())},
        "b": {"t2": volumes.File(_jwt(_claims(0.0, 500.0)).encode())},
    }
    assert volumes.token_refresh_in(pod, lambda v: written.get(v["name"]), now=100.0) == 300.0
    assert volumes.token_refresh_in(pod, lambda v: None, now=100.0) is None
    # Overdue: soon, never a busy loop.
    assert volumes.token_refresh_in(pod, lambda v: written.get(v["name"]), now=10_000.0) == 1.0


async def test_api_errors_fail_the_mount() -> None:
    client = FakeTokens(now=0.0, error=StatusError('serviceaccounts "robot" not found', 404, "NotFound"))
    with pytest.raises(ContainerRuntimeError) as failed:
        await _token(client, {}, None, now=0.0)
    assert failed.value.reason == "CreateContainerConfigError"
    assert 'MountVolume.SetUp failed for volume "kube-api-access-x"' in str(failed.value)
    assert 'serviceaccounts "robot" not found' in str(failed.value)
