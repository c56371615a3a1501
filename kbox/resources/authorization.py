"""``authorization.k8s.io/v1`` self-reviews, so ``kubectl auth can-i`` answers.

They are not stored: a create evaluates the request and returns the review with its status. kbox has
one identity so far (the cluster's token, an administrator), so every request is allowed; RBAC will
replace ``_allowed`` with a real decision.
"""

from __future__ import annotations

from typing import Any

from kbox.api import errors
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
    """Evaluate a SelfSubjectAccessReview (returns it with status)."""
    review["status"] = {"allowed": True, "reason": ADMIN_REASON}
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
