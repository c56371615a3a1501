"""What the Job controller reads from and writes into pods, as pure functions: which pods count as
active, succeeded or failed, the completion index of Indexed Jobs and its interval notation
(``"0-2,5"``), the pod made from a Job's template, matching ``podFailurePolicy`` rules, and the
exponential back-off before a failed pod is replaced (pkg/controller/job's helpers, in shape).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kbox.controllers import meta
from kbox.controllers.meta import epoch
from kbox.controllers.podutil import is_active as is_active

Obj = dict[str, Any]

KIND = "Job"
API_VERSION = "batch/v1"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
"""Annotation and label carrying an Indexed Job pod's index."""
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"


# -- pod states --------------------------------------------------------------------------------


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_terminating(pod: Obj) -> bool:
    """Deleted but still running: counted in ``status.terminating``."""
    return (
        bool(pod["metadata"].get("deletionTimestamp"))
        and phase(pod) not in ("Succeeded", "Failed")
        and not is_released(pod)
    )


def is_released(pod: Obj) -> bool:
    """Deleted with no grace left: its kubelet stopped the containers and let go of it (or it was
    force-deleted), and only finalizers keep it. kbox's kubelet does not write the Failed phase a
    Kubernetes kubelet gives such a pod, so this stands in for it."""
    metadata = pod["metadata"]
    return bool(metadata.get("deletionTimestamp")) and metadata.get("deletionGracePeriodSeconds") == 0


def is_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def is_failed(pod: Obj, job: Obj) -> bool:
    """A failed pod; with ``podReplacementPolicy: TerminatingOrFailed`` a deleted, unfinished pod is
    one too, as it may never get the chance to reach the Failed phase."""
    if phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return is_released(pod) and phase(pod) != "Succeeded"
    return bool(pod["metadata"].get("deletionTimestamp")) and phase(pod) != "Succeeded"


def only_replace_failed(job: Obj) -> bool:
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def has_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or [])


def finished_at(pod: Obj) -> float | None:
    """When the pod's last container terminated (epoch seconds), if it says."""
    latest: float | None = None
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or {}
        moment = epoch(terminated.get("finishedAt"))
        if moment is not None and (latest is None or moment > latest):
            latest = moment
    return latest


def restarts(pod: Obj) -> int:
    status = pod.get("status") or {}
    return sum(
        int(c.get("restartCount") or 0)
        for key in ("initContainerStatuses", "containerStatuses")
        for c in status.get(key) or []
    )


# -- completion indexes ------------------------------------------------------------------------


def completion_index(pod: Obj) -> int | None:
    """The pod's index from its annotation (or label), or None when missing or malformed."""
    metadata = pod["metadata"]
    text = (metadata.get("annotations") or {}).get(COMPLETION_INDEX)
    if text is None:
        text = (metadata.get("labels") or {}).get(COMPLETION_INDEX)
    try:
        index = int(text) if text is not None else -1
    except ValueError:
        return None
    return index if index >= 0 else None


def parse_indexes(text: str | None, limit: int) -> set[int]:
    """``"1,3-5,7"`` → {1, 3, 4, 5, 7}, ignoring what is malformed or not below ``limit``."""
    found: set[int] = set()
    for part in (text or "").split(","):
        first, _, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if last else low
        except ValueError:
            continue
        found.update(range(max(low, 0), min(high, limit - 1) + 1))
    return found


def format_indexes(indexes: set[int]) -> str:
    """{1, 3, 4, 5, 7} → ``"1,3-5,7"``: consecutive runs as intervals, as status.completedIndexes."""
    parts: list[str] = []
    ordered = sorted(indexes)
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        low, high = ordered[start], ordered[end]
        parts.append(str(low) if low == high else f"{low}-{high}")
        start = end + 1
    return ",".join(parts)


# -- the pod of a Job --------------------------------------------------------------------------


def owner_reference(job: Obj) -> Obj:
    return meta.owner_reference(job, api_version=API_VERSION, kind=KIND)


def pod_from_template(job: Obj, index: int | None) -> Obj:
    """A new pod for ``job``: the template's metadata and spec, the tracking finalizer, a controller
    reference, ``generateName: <job>-`` and, for index ``index``, the index annotation and label,
    ``<job>-<index>-`` as name prefix, ``<job>-<index>`` as hostname, and JOB_COMPLETION_INDEX in every
    container's environment (through the downward API, as Kubernetes does)."""
    metadata = job["metadata"]
    template = (job.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    name = metadata["name"]
    pod_meta: Obj = {"namespace": metadata["namespace"]}
    for key in ("labels", "annotations"):
        if template_meta.get(key):
            pod_meta[key] = copy.deepcopy(template_meta[key])
    finalizers = list(template_meta.get("finalizers") or [])
    if TRACKING_FINALIZER not in finalizers:
        finalizers.append(TRACKING_FINALIZER)
    pod_meta["finalizers"] = finalizers
    pod_meta["ownerReferences"] = [owner_reference(job)]
    spec: Obj = copy.deepcopy(template.get("spec") or {})
    if index is None:
        pod_meta["generateName"] = f"{name}-"
    else:
        pod_meta["generateName"] = f"{name}-{index}-"
        pod_meta.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
        pod_meta.setdefault("labels", {})[COMPLETION_INDEX] = str(index)
        spec["hostname"] = f"{name}-{index}"
        source = {
            "fieldRef": {"apiVersion": "v1", "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}
        }
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or []:
                env = container.setdefault("env", [])
                if not any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
                    env.append({"name": COMPLETION_INDEX_ENV, "valueFrom": copy.deepcopy(source)})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def removal_rank(pod: Obj) -> tuple[Any, ...]:
    """Sort key putting the pods cheapest to lose first: unscheduled, pending, not ready, newer."""
    created = epoch(pod["metadata"].get("creationTimestamp")) or 0.0
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        _PHASE_RANK.get(phase(pod), 0),
        is_ready(pod),
        -created,
        pod["metadata"].get("name", ""),
    )


# -- pod failure policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyMatch:
    """What a failed pod means under the Job's podFailurePolicy."""

    action: str | None
    """The matching rule's action (None: no rule matched, the failure counts)."""
    counts: bool
    """Whether the failure counts towards backoffLimit (not for Ignore)."""
    message: str | None = None
    """For FailJob: why the Job fails."""


def match_failure_policy(job: Obj, pod: Obj) -> PolicyMatch:
    """The first rule matching the failed ``pod`` (pkg/controller/job's matchPodFailurePolicy)."""
    policy = (job.get("spec") or {}).get("podFailurePolicy")
    if not isinstance(policy, dict):
        return PolicyMatch(None, True)
    metadata = pod["metadata"]
    status = pod.get("status") or {}
    for index, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        message: str | None = None
        if rule.get("onExitCodes") is not None:
            container = _matching_exit(status, rule["onExitCodes"])
            if container is None:
                continue
            code = container["state"]["terminated"].get("exitCode")
            message = (
                f"Container {container.get('name')} for pod {metadata['namespace']}/{metadata['name']} "
                f"failed with exit code {code} matching {action} rule at index {index}"
            )
        elif rule.get("onPodConditions") is not None:
            condition = _matching_condition(status, rule["onPodConditions"])
            if condition is None:
                continue
            message = (
                f"Pod {metadata['namespace']}/{metadata['name']} has condition {condition.get('type')} "
                f"matching {action} rule at index {index}"
            )
        else:
            continue
        if action == "Ignore":
            return PolicyMatch(action, False)
        if action == "FailJob":
            return PolicyMatch(action, True, message)
        return PolicyMatch(action, True)
    return PolicyMatch(None, True)


def _matching_exit(status: Obj, requirement: Obj) -> Obj | None:
    wanted = requirement.get("containerName")
    values = requirement.get("values") or []
    operator = requirement.get("operator")
    for key in ("containerStatuses", "initContainerStatuses"):
        for container in status.get(key) or []:
            terminated = (container.get("state") or {}).get("terminated")
            if not terminated or (wanted is not None and container.get("name") != wanted):
                continue
            code = terminated.get("exitCode")
            if not code:
                continue
            if (operator == "In" and code in values) or (operator == "NotIn" and code not in values):
                result: Obj = container
                return result
    return None


def _matching_condition(status: Obj, patterns: list[Obj]) -> Obj | None:
    for condition in status.get("conditions") or []:
        for pattern in patterns:
            if condition.get("type") == pattern.get("type") and condition.get("status") == pattern.get(
                "status", "True"
            ):
                result: Obj = condition
                return result
    return None


# -- back-off ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackoffRecord:
    """Failures since the Job's last success and when the latest happened (podBackoffStore's record)."""

    failures: int = 0
    last_failure: float = 0.0

    def after(self, succeeded: list[Obj], failed: list[Obj], now: float) -> BackoffRecord:
        """The record once the newly finished pods are counted: a success resets the count to the
        failures that finished after it."""
        failures, last = self.failures, self.last_failure
        if succeeded:
            latest_success = max((finished_at(p) or now) for p in succeeded)
            failures = sum(1 for p in failed if (finished_at(p) or now) > latest_success)
        else:
            failures += len(failed)
        if failed:
            # Counted from when this controller saw the failure (the same clock as ``now``), at most
            # a relist later than the container's own finish time.
            last = now
        return BackoffRecord(failures, last)

    def remaining(self, now: float, *, base: float, cap: float) -> float:
        """Seconds before a replacement pod may be created: base doubled per failure beyond the
        first, capped, counted from the latest failure."""
        if self.failures == 0:
            return 0.0
        delay = min(base * 2.0 ** (self.failures - 1), cap)
        return max(0.0, self.last_failure + delay - now)


def is_job_finished(job: Obj) -> bool:
    """Complete or Failed (util.IsJobFinished)."""
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )
