"""API approval of CRDs in Kubernetes' own groups (``*.k8s.io``, ``*.kubernetes.io``), as upstream.

Such a CRD must carry the ``api-approved.kubernetes.io`` annotation: a URL (the approving pull
request) or a reason starting with ``unapproved``. Validation refuses a missing or malformed one when
it changes (so a CRD written before the rule can still be updated); the
``KubernetesAPIApprovalPolicyConformant`` condition reports the state.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from kbox.api import errors
from kbox.api.errors import FieldError

Obj = dict[str, Any]

ANNOTATION = "api-approved.kubernetes.io"
CONDITION = "KubernetesAPIApprovalPolicyConformant"
_SEE = "see https://github.com/kubernetes/enhancements/pull/1111"

APPROVED, BYPASSED, MISSING, INVALID = "approved", "bypassed", "missing", "invalid"


def protected(group: str) -> bool:
    return group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))


def state(annotations: Any) -> tuple[str, str]:
    """The approval state of a CRD's annotations and upstream's words for it."""
    value = str((annotations or {}).get(ANNOTATION) or "")
    if not value:
        return MISSING, f'protected groups must have approval annotation "{ANNOTATION}", {_SEE}'
    if value.startswith("unapproved"):
        return BYPASSED, f'not approved: "{value}"'
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme and parsed.netloc:
        return APPROVED, f"approved in {value}"
    return INVALID, (
        f'protected groups must have approval annotation "{ANNOTATION}" with either a URL or a reason '
        f'starting with "unapproved", {_SEE}'
    )


def _annotations(crd: Obj) -> Any:
    return (crd.get("metadata") or {}).get("annotations")


def validate(new: Obj, old: Obj | None) -> list[FieldError]:
    group = str((new.get("spec") or {}).get("group") or "")
    if not protected(group):
        return []
    current, reason = state(_annotations(new))
    if old is not None and state(_annotations(old))[0] == current:
        return []  # unchanged: a CRD from before the rule stays writable
    path = f"metadata.annotations[{ANNOTATION}]"
    if current == MISSING:
        return [errors.required(path, reason)]
    if current == INVALID:
        return [errors.invalid(path, (_annotations(new) or {}).get(ANNOTATION), reason)]
    return []


def condition(crd: Obj) -> tuple[str, str, str] | None:
    """(status, reason, message) of the approval condition, or None outside the protected groups."""
    group = str((crd.get("spec") or {}).get("group") or "")
    if not protected(group):
        return None
    current, reason = state(_annotations(crd))
    return {
        APPROVED: ("True", "ApprovedAnnotation", reason),
        BYPASSED: ("False", "UnapprovedAnnotation", reason),
        MISSING: ("False", "MissingAnnotation", reason),
        INVALID: ("False", "InvalidAnnotation", reason),
    }[current]
