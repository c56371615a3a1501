"""Job spec helpers for :class:`kbox.resources.batch.JobStrategy` (as podspec.py is for pod specs): the
labels a generated selector puts on the template, the template fields a never-started suspended Job may
still change, and kube-apiserver's checks of podFailurePolicy and successPolicy (pkg/apis/batch/validation,
with its wording)."""

from __future__ import annotations

import copy
import re
from typing import Any

from kbox.api import errors
from kbox.api.errors import FieldError

Obj = dict[str, Any]

JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
JOB_MANAGED_BY = "kubernetes.io/job-controller"
MAX_INT32 = 2**31 - 1
_FAILURE_ACTIONS = ["Count", "FailIndex", "FailJob", "Ignore"]
_SCHEDULING_FIELDS = ("nodeSelector", "tolerations", "schedulingGates")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def default_labels(job: Obj) -> None:
    """A Job without labels takes its template's (Kubernetes' defaulting, which also runs when the
    stored object is read back, so the generated labels show on the Job too)."""
    metadata = job.get("metadata")
    template = (job.get("spec") or {}).get("template")
    if not isinstance(metadata, dict) or not isinstance(template, dict):
        return
    labels = (
        (template.get("metadata") or {}).get("labels") if isinstance(template.get("metadata"), dict) else None
    )
    if isinstance(labels, dict) and labels and not metadata.get("labels"):
        metadata["labels"] = dict(labels)


def without_scheduling(template: Any) -> Any:
    """The template without what a never-started suspended Job may still change (mutable scheduling
    directives): labels, annotations, nodeSelector, tolerations, schedulingGates."""
    if not isinstance(template, dict):
        return template
    stripped = copy.deepcopy(template)
    metadata = stripped.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("labels", None)
        metadata.pop("annotations", None)
    spec = stripped.get("spec")
    if isinstance(spec, dict):
        for field in _SCHEDULING_FIELDS:
            spec.pop(field, None)
    return stripped


_INDEXES = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_index_list(text: str) -> list[tuple[int, int]] | str:
    """``"0,2-4"`` → [(0, 0), (2, 4)]; a reason why not for a malformed or unordered list."""
    intervals: list[tuple[int, int]] = []
    for part in text.split(","):
        match = _INDEXES.match(part)
        if match is None:
            return "must be a comma-separated list of indexes and ranges such as 0,2-4"
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            return f"range {part} must not end before it starts"
        if intervals and low <= intervals[-1][1]:
            return "indexes and ranges must be in increasing order, without overlaps"
        intervals.append((low, high))
    return intervals


def validate_success_policy(policy: Any, spec: Obj) -> list[FieldError]:
    path = "spec.successPolicy"
    if spec.get("completionMode") != "Indexed":
        return [errors.invalid(path, spec.get("completionMode"), "requires indexed completion mode")]
    rules = policy.get("rules") if isinstance(policy, dict) else None
    if not isinstance(rules, list) or not rules:
        return [errors.required(f"{path}.rules")]
    problems: list[FieldError] = []
    if len(rules) > 20:
        problems.append(errors.invalid(f"{path}.rules", len(rules), "must have at most 20 items"))
    completions: int = spec["completions"] if is_int(spec.get("completions")) else 0
    for n, rule in enumerate(rules):
        where = f"{path}.rules[{n}]"
        if not isinstance(rule, dict):
            problems.append(errors.invalid(where, rule, "must be an object"))
            continue
        indexes, count = rule.get("succeededIndexes"), rule.get("succeededCount")
        if indexes is None and count is None:
            problems.append(
                errors.required(where, "at least one of succeededCount or succeededIndexes must be specified")
            )
        total: int | None = None
        if indexes is not None:
            parsed = parse_index_list(indexes) if isinstance(indexes, str) else "must be a string"
            if isinstance(parsed, str):
                problems.append(errors.invalid(f"{where}.succeededIndexes", indexes, parsed))
            elif parsed[-1][1] >= completions:
                problems.append(
                    errors.invalid(f"{where}.succeededIndexes", indexes, "must be less than completions")
                )
            else:
                total = sum(high - low + 1 for low, high in parsed)
        if count is not None:
            if not is_int(count) or count < 0:
                problems.append(
                    errors.invalid(f"{where}.succeededCount", count, "must be greater than or equal to 0")
                )
            elif count > completions:
                why = f"must be less than or equal to {completions} (the number of specified completions)"
                problems.append(errors.invalid(f"{where}.succeededCount", count, why))
            elif total is not None and count > total:
                why = (
                    f"must be smaller or equal to {total} "
                    "(the number of indexes in the specified succeededIndexes field)"
                )
                problems.append(errors.invalid(f"{where}.succeededCount", count, why))
    return problems


def validate_failure_policy(policy: Any, restart: Any, pod_spec: Any) -> list[FieldError]:
    path = "spec.podFailurePolicy"
    if not isinstance(policy, dict):
        return [errors.invalid(path, policy, "must be an object")]
    problems: list[FieldError] = []
    if restart != "Never":
        problems.append(
            errors.invalid("spec.template.spec.restartPolicy", restart,
                           'only "Never" is supported when podFailurePolicy is specified')
        )  # fmt: skip
    rules = policy.get("rules")
    if not isinstance(rules, list):
        return [*problems, errors.required(f"{path}.rules")]
    if len(rules) > 20:
        problems.append(errors.invalid(f"{path}.rules", len(rules), "must have at most 20 items"))
    containers = {
        c["name"]
        for key in ("containers", "initContainers")
        for c in ((pod_spec.get(key) if isinstance(pod_spec, dict) else None) or [])
        if isinstance(c, dict) and isinstance(c.get("name"), str)
    }
    for index, rule in enumerate(rules):
        where = f"{path}.rules[{index}]"
        if not isinstance(rule, dict):
            problems.append(errors.invalid(where, rule, "must be an object"))
            continue
        action = rule.get("action")
        if action not in _FAILURE_ACTIONS:
            problems.append(errors.not_supported(f"{where}.action", action, _FAILURE_ACTIONS))
        elif action == "FailIndex":
            problems.append(
                errors.forbidden(
                    f"{where}.action", "FailIndex needs backoffLimitPerIndex, which kbox does not support"
                )
            )
        on_codes, on_conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if (on_codes is None) == (on_conditions is None):
            problems.append(
                errors.invalid(where, rule, "specifying one of OnExitCodes and OnPodConditions is required")
            )
        if on_codes is not None:
            problems += _validate_exit_codes(on_codes, f"{where}.onExitCodes", containers)
        if on_conditions is not None:
            if not isinstance(on_conditions, list):
                problems.append(errors.invalid(f"{where}.onPodConditions", on_conditions, "must be a list"))
                continue
            for n, pattern in enumerate(on_conditions):
                at = f"{where}.onPodConditions[{n}]"
                if (
                    not isinstance(pattern, dict)
                    or not isinstance(pattern.get("type"), str)
                    or not pattern["type"]
                ):
                    problems.append(errors.required(f"{at}.type"))
                elif pattern.get("status") not in ("True", "False", "Unknown"):
                    problems.append(
                        errors.not_supported(
                            f"{at}.status", pattern.get("status"), ["True", "False", "Unknown"]
                        )
                    )
    return problems


def _validate_exit_codes(requirement: Any, path: str, containers: set[Any]) -> list[FieldError]:
    if not isinstance(requirement, dict):
        return [errors.invalid(path, requirement, "must be an object")]
    problems: list[FieldError] = []
    name = requirement.get("containerName")
    if name is not None and (not isinstance(name, str) or name not in containers):
        problems.append(
            errors.invalid(
                f"{path}.containerName",
                name,
                "must be one of the container or initContainer names in the pod template",
            )
        )
    operator = requirement.get("operator")
    if operator not in ("In", "NotIn"):
        problems.append(errors.not_supported(f"{path}.operator", operator, ["In", "NotIn"]))
    values = requirement.get("values")
    if not isinstance(values, list) or not values:
        problems.append(errors.required(f"{path}.values"))
        return problems
    if len(values) > 255:
        problems.append(errors.invalid(f"{path}.values", len(values), "must have at most 255 items"))
    previous: int | None = None
    for n, value in enumerate(values):
        if not is_int(value):
            problems.append(errors.invalid(f"{path}.values[{n}]", value, "must be an integer"))
            continue
        if operator == "In" and value == 0:
            problems.append(errors.invalid(f"{path}.values[{n}]", value, "must not be 0 for the In operator"))
        if previous is not None and value == previous:
            problems.append(errors.duplicate(f"{path}.values[{n}]", value))
        elif previous is not None and value < previous:
            problems.append(errors.invalid(f"{path}.values[{n}]", value, "must be ordered"))
        previous = value
    return problems
