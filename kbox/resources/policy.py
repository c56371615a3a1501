"""The ``policy/v1`` group: PodDisruptionBudgets.

A budget says how many of a set of pods must stay available (``minAvailable``) or may be missing
(``maxUnavailable``) during voluntary disruptions. The disruption controller keeps its status (how many
disruptions are allowed now); the ``pods/eviction`` subresource reads and decrements it, which is how
``kubectl drain`` is held back. Deleting a pod directly ignores budgets, as in Kubernetes.
"""

from __future__ import annotations

import re
from typing import Any

from kbox.api import errors, validation
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef, SubresourceDef
from kbox.api.strategy import StatusStrategy, Strategy

Obj = dict[str, Any]

EVICTION_POLICIES = ["IfHealthyBudget", "AlwaysAllow"]
_PERCENT = re.compile(r"^[0-9]+%$")


def _int_or_percent(value: Any, path: str) -> list[FieldError]:
    """ValidatePositiveIntOrPercent plus IsNotMoreThan100Percent, with their words."""
    if isinstance(value, bool):
        return [errors.invalid(path, value, "must be an integer or percentage (e.g '5%')")]
    if isinstance(value, int):
        return [] if value >= 0 else [errors.invalid(path, value, "must be greater than or equal to 0")]
    if isinstance(value, str) and _PERCENT.match(value):
        if int(value[:-1]) > 100:
            return [errors.invalid(path, value, "must not be greater than 100%")]
        return []
    return [errors.invalid(path, value, "must be an integer or percentage (e.g '5%')")]


class PodDisruptionBudgetStrategy(Strategy):
    status_subresource = True
    tracks_generation = True

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        # The four counts are required fields of the v1 status: a new budget shows them as zeros.
        obj["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if spec is None:
            return []
        if not isinstance(spec, dict):
            return [errors.invalid("spec", spec, "must be an object")]
        problems: list[FieldError] = []
        if "minAvailable" in spec and "maxUnavailable" in spec:
            problems.append(
                errors.FieldError(
                    "FieldValueInvalid", "spec", "minAvailable and maxUnavailable cannot be both set"
                )
            )
        for field in ("minAvailable", "maxUnavailable"):
            if field in spec:
                problems += _int_or_percent(spec[field], f"spec.{field}")
        problems += validation.validate_label_selector(spec.get("selector"), "spec.selector")
        policy = spec.get("unhealthyPodEvictionPolicy")
        if policy is not None and policy not in EVICTION_POLICIES:
            problems.append(
                errors.not_supported("spec.unhealthyPodEvictionPolicy", policy, EVICTION_POLICIES)
            )
        return problems


class PodDisruptionBudgetStatusStrategy(StatusStrategy):
    def validate_status(self, new: Obj, old: Obj) -> list[FieldError]:
        status = new.get("status") or {}
        problems: list[FieldError] = []
        for field in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
            value = status.get(field, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(
                    errors.invalid(f"status.{field}", value, "must be greater than or equal to 0")
                )
        return problems


_STRATEGY = PodDisruptionBudgetStrategy()

RESOURCES = [
    ResourceDef(
        group="policy",
        version="v1",
        kind="PodDisruptionBudget",
        plural="poddisruptionbudgets",
        namespaced=True,
        strategy=_STRATEGY,
        short_names=("pdb",),
        subresources=(SubresourceDef("status", "PodDisruptionBudget", ("get", "patch", "update")),),
        status_strategy=PodDisruptionBudgetStatusStrategy(_STRATEGY),
    ),
]
