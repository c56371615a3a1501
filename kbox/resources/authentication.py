"""``authentication.k8s.io/v1`` SelfSubjectReview, so ``kubectl auth whoami`` answers.

Not stored: a create returns the review with ``status.userInfo``, the user the request was
authenticated as (the administrator for the cluster token, ``system:serviceaccount:NS:NAME`` for a
service account token; see :mod:`kbox.api.authn`). The TokenRequest API is the
``serviceaccounts/token`` subresource of the core group.
"""

from __future__ import annotations

from typing import Any

from kbox.api import authn
from kbox.api.resource import ResourceDef
from kbox.api.strategy import Strategy

Obj = dict[str, Any]


class SelfSubjectReviewStrategy(Strategy):
    pass


def review_self(review: Obj) -> Obj:
    """Evaluate a SelfSubjectReview: who the request's user is."""
    review["status"] = {"userInfo": authn.user().to_json()}
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
]
