"""``authentication.k8s.io/v1`` reviews: SelfSubjectReview, so ``kubectl auth whoami`` answers, and
TokenReview, so services in the cluster (Vault's Kubernetes auth, webhook authenticators) can ask the
apiserver who holds a token.

Neither is stored. A SelfSubjectReview returns ``status.userInfo``, the user the request was
authenticated as (the administrator for the cluster token, ``system:serviceaccount:NS:NAME`` for a
service account token; see :mod:`kbox.api.authn`). A TokenReview checks ``spec.token`` for
``spec.audiences`` (default: the apiserver's) as the apiserver's authentication would, and answers
``status.authenticated``, ``user`` and ``audiences``, or ``error``. The TokenRequest API is the
``serviceaccounts/token`` subresource of the core group.
"""

from __future__ import annotations

from typing import Any

from kbox.api import authn, errors, serviceaccounts
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef
from kbox.api.strategy import Strategy

Obj = dict[str, Any]


class SelfSubjectReviewStrategy(Strategy):
    pass


def review_self(review: Obj) -> Obj:
    """Evaluate a SelfSubjectReview: who the request's user is."""
    review["status"] = {"userInfo": authn.user().to_json()}
    return review


class TokenReviewStrategy(Strategy):
    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        audiences = spec.get("audiences")
        if audiences is not None and (
            not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences)
        ):
            return [errors.invalid("spec.audiences", audiences, "must be a list of strings")]
        return []


async def review_token(catalog: Any, review: Obj) -> Obj:
    """Evaluate a TokenReview (``catalog``: the apiserver's, to check the objects a token names)."""
    spec = review["spec"]
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise errors.bad_request("token is required for TokenReview in authentication")
    wanted = list(spec.get("audiences") or serviceaccounts.API_AUDIENCES)
    try:
        who, audiences = await serviceaccounts.review(catalog, token, wanted)
    except errors.StatusError as exc:
        if exc.code != 401:
            raise
        review["status"] = {"user": {}, "error": "[invalid bearer token, token lookup failed]"}
        return review
    review["status"] = {"authenticated": True, "user": who.to_json(), "audiences": audiences}
    return review


RESOURCES = [
    ResourceDef(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        False,
        SelfSubjectReviewStrategy(),
        verbs=("create",),
        stored=False,
        extra={"evaluate": review_self},
    ),
    ResourceDef(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        False,
        TokenReviewStrategy(),
        verbs=("create",),
        stored=False,
        extra={"review": review_token},
    ),
]
