"""Service account tokens: the JWTs the TokenRequest API issues, and their verification.

A token is a JWT signed with the cluster's service-account key (``pki/sa.key`` next to the CA, made on
first use: ECDSA P-256, so ES256 — signing costs a sixth of RS256's, which counts when thousands of pods
each get a token; a profile made with an RSA key keeps it and RS256, as kube-apiserver takes either)
with the claims kube-apiserver puts in a bound token: ``iss``
(https://kubernetes.default.svc.cluster.local), ``sub`` (``system:serviceaccount:NS:NAME``), ``aud``,
``exp``, ``iat``, ``nbf``, ``jti`` and the private ``kubernetes.io`` claim naming the namespace, the
ServiceAccount (name and uid) and the object the token is bound to (a pod and its node, or a secret).
The header's ``kid`` is derived from the public key, as Kubernetes derives it.

Verification is what the apiserver's service-account authenticator does: signature, issuer, expiry
and not-before, an audience the apiserver accepts, and then the objects behind the claims: the
ServiceAccount must still exist with the same uid, and so must a bound pod or secret. So deleting a
ServiceAccount or the pod a token was issued for ends that token at once.

:func:`review` answers TokenReviews the same way (and knows the cluster's own token), and the issuer's
discovery document and key set (``/openid/v1/jwks``) let services outside kbox verify tokens alone.

The key is made or read off the event loop and only when a token
is first issued or checked, so a cluster that never uses service account tokens pays nothing.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kbox.api import errors
from kbox.api.authn import ADMIN, UserInfo

if TYPE_CHECKING:
    from kbox.api.catalog import Catalog

Obj = dict[str, Any]

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = (ISSUER,)
"""The audiences the apiserver accepts (kube-apiserver's default: the issuer)."""
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 2**32
KEY_FILE = "sa.key"
PUBLIC_KEY_FILE = "sa.pub"
PREFIX = "system:serviceaccount:"
_PRIVATE = "kubernetes.io"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def algorithm(key: PrivateKey) -> str:
    """The JWT algorithm a key signs with: ES256 for the P-256 keys kbox makes, RS256 for RSA ones."""
    return "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"


@dataclass(frozen=True)
class Ref:
    """A named object with its uid, as the ``kubernetes.io`` claim records it."""

    name: str
    uid: str

    def to_json(self) -> Obj:
        return {"name": self.name, "uid": self.uid}


def username(namespace: str, name: str) -> str:
    return f"{PREFIX}{namespace}:{name}"


def claims(
    *,
    namespace: str,
    account: Ref,
    audiences: list[str],
    expiration_seconds: int,
    now: datetime.datetime,
    pod: Ref | None = None,
    secret: Ref | None = None,
    node: Ref | None = None,
    token_id: str | None = None,
) -> Obj:
    """The claims of a bound service account token (pkg/serviceaccount/claims.go in shape)."""
    issued = int(now.timestamp())
    private: Obj = {"namespace": namespace, "serviceaccount": account.to_json()}
    if pod is not None:
        private["pod"] = pod.to_json()
    if secret is not None:
        private["secret"] = secret.to_json()
    if node is not None:
        private["node"] = node.to_json()
    return {
        "aud": list(audiences),
        "exp": issued + expiration_seconds,
        "iat": issued,
        "iss": ISSUER,
        "jti": token_id or str(uuid.uuid4()),
        _PRIVATE: private,
        "nbf": issued,
        "sub": username(namespace, account.name),
    }


def user_info(token_claims: Obj) -> UserInfo:
    """The user a verified token stands for, with the extra fields Kubernetes adds for bound tokens."""
    private = token_claims.get(_PRIVATE) or {}
    namespace = str(private.get("namespace", ""))
    account = private.get("serviceaccount") or {}
    extra: dict[str, tuple[str, ...]] = {}
    if token_claims.get("jti"):
        extra["authentication.kubernetes.io/credential-id"] = (f"JTI={token_claims['jti']}",)
    for kind in ("pod", "node"):
        ref = private.get(kind)
        if isinstance(ref, dict):
            extra[f"authentication.kubernetes.io/{kind}-name"] = (str(ref.get("name", "")),)
            extra[f"authentication.kubernetes.io/{kind}-uid"] = (str(ref.get("uid", "")),)
    return UserInfo(
        username(namespace, str(account.get("name", ""))),
        uid=str(account.get("uid", "")),
        groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        extra=dict(sorted(extra.items())),
    )


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class TokenIssuer:
    """Signs and verifies service account tokens with the cluster's key.

    ``directory`` holds ``sa.key`` (made mode 0600 when missing) and ``sa.pub``; without one the key
    lives in memory for the life of the process (apiserver tests)."""

    def __init__(self, directory: Path | None = None, *, admin_token: str = "") -> None:
        self.directory = directory
        self.admin_token = admin_token  # the cluster's own token, which TokenReview recognises too
        self._key: PrivateKey | None = None
        self._kid = ""
        self._alg = "ES256"
        self._lock = asyncio.Lock()

    async def _private_key(self) -> PrivateKey:
        if self._key is None:
            async with self._lock:
                if self._key is None:
                    key = await asyncio.to_thread(self._load_or_create)
                    self._kid = key_id(key.public_key())
                    self._alg = algorithm(key)
                    self._key = key
        return self._key

    def _load_or_create(self) -> PrivateKey:
        if self.directory is None:
            return ec.generate_private_key(ec.SECP256R1())
        path = self.directory / KEY_FILE
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(loaded, rsa.RSAPrivateKey) or (
                isinstance(loaded, ec.EllipticCurvePrivateKey) and isinstance(loaded.curve, ec.SECP256R1)
            ):
                return loaded
            raise ValueError(f"{path} is neither an RSA nor an ECDSA P-256 private key")
        self.directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        _write(
            path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            0o600,
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write(self.directory / PUBLIC_KEY_FILE, public, 0o644)
        return key

    async def sign(self, token_claims: Obj) -> str:
        key = await self._private_key()
        return jwt.encode(token_claims, key, algorithm=self._alg, headers={"kid": self._kid})

    async def verify(self, token: str, *, audiences: tuple[str, ...] = API_AUDIENCES) -> Obj:
        """The claims of a token this issuer signed for one of ``audiences``, still in its validity
        window; ``jwt.InvalidTokenError`` otherwise."""
        key = await self._private_key()
        decoded: Obj = jwt.decode(
            token,
            key.public_key(),
            algorithms=[self._alg],
            audience=list(audiences),
            issuer=ISSUER,
            options={"require": ["exp", "iat", "nbf", "sub", "iss", "aud"]},
        )
        if not str(decoded.get("sub", "")).startswith(PREFIX):
            raise jwt.InvalidTokenError("not a service account token")
        return decoded

    async def jwks(self) -> Obj:
        """The public key as a JSON Web Key Set (``/openid/v1/jwks``), for verifiers outside kbox."""
        key = await self._private_key()
        public = key.public_key()
        jwk: Obj
        if isinstance(public, rsa.RSAPublicKey):
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
        return {"keys": [{"use": "sig", **jwk, "kid": self._kid, "alg": self._alg}]}

    async def openid_configuration(self) -> Obj:
        """``/.well-known/openid-configuration``: the issuer's discovery document, as kube-apiserver
        serves it when the jwks URI is derived from the issuer (with the algorithm of its key)."""
        await self._private_key()
        return {
            "issuer": ISSUER,
            "jwks_uri": f"{ISSUER}/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self._alg],
        }


def key_id(public: PublicKey) -> str:
    """Kubernetes' key id: the unpadded base64url SHA-256 of the DER public key."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


async def authenticate(catalog: Catalog, token: str) -> UserInfo:
    """The service account behind ``token``; 401 when the token is not valid (bad signature, expired,
    wrong audience) or the objects it names are gone or were replaced."""
    return user_info(await _verified(catalog, token, API_AUDIENCES))


async def review(catalog: Catalog, token: str, audiences: list[str]) -> tuple[UserInfo, list[str]]:
    """A TokenReview: the user behind ``token`` (the cluster token's administrator or a service
    account) and which of ``audiences`` it is valid for; 401 when it is not valid for any."""
    if catalog.tokens.admin_token and secrets.compare_digest(
        token.encode(), catalog.tokens.admin_token.encode()
    ):
        # Not audience-bound: valid for the apiserver's own audiences, as Kubernetes' static tokens.
        accepted = [a for a in audiences if a in API_AUDIENCES]
        if not accepted:
            raise errors.unauthorized()
        return ADMIN, accepted
    if not looks_like_jwt(token):
        raise errors.unauthorized()
    token_claims = await _verified(catalog, token, tuple(audiences))
    granted = token_claims.get("aud")
    granted = [granted] if isinstance(granted, str) else list(granted or [])
    return user_info(token_claims), [a for a in audiences if a in granted]


async def _verified(catalog: Catalog, token: str, audiences: tuple[str, ...]) -> Obj:
    try:
        token_claims = await catalog.tokens.verify(token, audiences=audiences)
    except jwt.InvalidTokenError:
        raise errors.unauthorized() from None
    private = token_claims.get(_PRIVATE)
    if not isinstance(private, dict):
        raise errors.unauthorized()
    namespace = str(private.get("namespace", ""))
    account = private.get("serviceaccount") or {}
    if not await _still_there(catalog, "serviceaccounts", namespace, account):
        raise errors.unauthorized()
    for plural, kind in (("pods", "pod"), ("secrets", "secret")):
        ref = private.get(kind)
        if ref is not None and not await _still_there(catalog, plural, namespace, ref):
            raise errors.unauthorized()
    return token_claims


async def _still_there(catalog: Catalog, plural: str, namespace: str, ref: Any) -> bool:
    """Whether the object a claim names exists with the uid the token recorded (and is not past its
    deletion time, as the apiserver's check of a bound pod has it)."""
    generic = catalog.lookup("", "v1", plural)
    if generic is None or not isinstance(ref, dict) or not ref.get("name"):
        return False
    try:
        obj = await generic.get(namespace, str(ref["name"]))
    except errors.StatusError:
        return False
    metadata = obj.get("metadata") or {}
    if metadata.get("uid") != ref.get("uid"):
        return False
    deleting = metadata.get("deletionTimestamp")
    if deleting:
        moment = datetime.datetime.fromisoformat(str(deleting).replace("Z", "+00:00"))
        if moment <= datetime.datetime.now(datetime.UTC):
            return False
    return True


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
