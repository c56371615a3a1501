"""``authorization.k8s.io/v1`` self-reviews, so ``kubectl auth can-i`` answers.

They are not stored: a create evaluates the request and returns the review with its status. kbox has
no RBAC: every authenticated user (the cluster token's administrator, a service account) is allowed
everything; the reason says who asked. RBAC would replace ``review_access`` with a real decision.
"""

from __future__ import annotations

from typing import Any

from kbox.api import authn, errors
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef
from kbox.api.strategy import Strategy

Obj = dict[str, Any]
ADMIN_REASON = "kbox: the cluster token is an administrator"


class AccessReviewStrategy(Strategy):
    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        resource = spec.get("resourceAttributes")
        non_resource = spec.get("nonResourceAttributes")
        if bool(resource) == bool(non_resource):
            return [
                errors.invalid(
                    "spec.resourceAttributes",
                    resource,
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )
            ]
        return []


class RulesReviewStrategy(Strategy):
    pass


def review_access(review: Obj) -> Obj:
    """Evaluate a SelfSubjectAccessReview (returns it with status). kbox has no RBAC: every
    authenticated user (a service account too) is allowed; the reason names who asked."""
    who = authn.user()
    reason = ADMIN_REASON if who == authn.ADMIN else f"kbox has no RBAC: {who.username} may do everything"
    review["status"] = {"allowed": True, "reason": reason}
    return review


def review_rules(review: Obj) -> Obj:
    """Evaluate a SelfSubjectRulesReview: everything, everywhere."""
    review["status"] = {
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        "incomplete": False,
    }
    return review


RESOURCES = [
    ResourceDef(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        AccessReviewStrategy(),
        verbs=("create",),
        stored=False,
        extra={"evaluate": review_access},
    ),
    ResourceDef(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        False,
        RulesReviewStrategy(),
        verbs=("create",),
        stored=False,
        extra={"evaluate": review_rules},
    ),
]
