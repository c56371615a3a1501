"""``pods/<name>/eviction``: a pod deletion that PodDisruptionBudgets may refuse.

This is what ``kubectl drain`` calls. As kube-apiserver's eviction REST does:

- A pod that is not running (Pending, Succeeded, Failed) or already terminating is deleted without looking
  at budgets: evicting it disrupts nothing.
- Otherwise the budgets of the pod's namespace whose selector matches it are found. None: delete. More
  than one: a 500 (the eviction API does not support overlapping budgets). One: an unready pod is deleted
  without spending the budget when the budget is healthy anyway (``IfHealthyBudget``, the default) or the
  budget says ``AlwaysAllow``; a ready pod spends one of ``status.disruptionsAllowed`` — written back
  with the pod's name in ``status.disruptedPods``, so the disruption controller does not count it as
  healthy while it goes — or, when none are left (or the controller has not seen the budget's latest
  spec), a 429 ``TooManyRequests`` that drain retries.
- Before the deletion the pod gets the ``DisruptionTarget`` condition (reason ``EvictionByEvictionAPI``),
  so its controllers and its owner can tell an eviction from a crash.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kbox.api import errors, objects, selectors
from kbox.api.catalog import Catalog
from kbox.api.registry import DeleteOptions, GenericStore, Selection
from kbox.api.requestinfo import RequestInfo

Obj = dict[str, Any]

MAX_DISRUPTED_PODS = 2000
"""Evictions not yet confirmed by the disruption controller that one budget may hold (Kubernetes')."""

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
CAUSE = "DisruptionBudget"


def _too_many_requests(cause: str, retry_after: int) -> errors.StatusError:
    details: dict[str, Any] = {"causes": [{"reason": CAUSE, "message": cause}]}
    return errors.StatusError(VIOLATION, 429, "TooManyRequests", details, retry_after=retry_after or None)


def _forbidden(name: str, why: str) -> errors.StatusError:
    return errors.StatusError(
        f'poddisruptionbudget.policy "{name}" is forbidden: {why}',
        403,
        "Forbidden",
        {"name": name, "group": "policy", "kind": "poddisruptionbudget"},
    )


def _options(info: RequestInfo, body: Any) -> DeleteOptions:
    """The Eviction object's checks and its deleteOptions."""
    if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
        raise errors.bad_request("the body must be an Eviction object")
    if body.get("apiVersion") not in (None, "policy/v1", "policy/v1beta1"):
        raise errors.bad_request(f"unsupported Eviction apiVersion {body.get('apiVersion')}")
    name = (body.get("metadata") or {}).get("name")
    if name and name != info.name:
        raise errors.bad_request(f"name in URL does not match name in Eviction object: {info.name} != {name}")
    options = body.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise errors.bad_request("deleteOptions must be an object")
    grace = options.get("gracePeriodSeconds")
    preconditions = options.get("preconditions") or {}
    return DeleteOptions(
        grace_period_seconds=grace if isinstance(grace, int) and not isinstance(grace, bool) else None,
        propagation_policy=options.get("propagationPolicy"),
        preconditions={k: str(v) for k, v in preconditions.items() if v}
        if isinstance(preconditions, dict)
        else {},
        dry_run="All" in (options.get("dryRun") or []),
    )


def is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _can_ignore_budget(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


async def _budgets_for(catalog: Catalog, pod: Obj) -> list[Obj]:
    generic = catalog.for_kind("policy", "PodDisruptionBudget")
    if generic is None:
        return []
    page = await generic.list(pod["metadata"]["namespace"], selection=Selection())
    labels = pod["metadata"].get("labels") or {}
    matching = []
    for budget in page.items:
        selector = (budget.get("spec") or {}).get("selector")
        try:
            if selectors.from_label_selector(selector).matches(labels):
                matching.append(budget)
        except errors.StatusError:
            continue  # a selector the strategy would not admit today; it selects nothing
    return matching


def allowed_condition(status: Obj) -> None:
    """Set the ``DisruptionAllowed`` condition from ``disruptionsAllowed`` (a ``SyncFailed`` one stays)."""
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionAllowed"]
    old = next((c for c in status.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
    if old is not None and old.get("reason") == "SyncFailed":
        return
    allowed = status.get("disruptionsAllowed", 0) > 0
    condition = {
        "type": "DisruptionAllowed",
        "status": "True" if allowed else "False",
        "reason": "SufficientPods" if allowed else "InsufficientPods",
        "message": "",
        "observedGeneration": status.get("observedGeneration", 0),
        "lastTransitionTime": objects.timestamp(),
    }
    if old is not None and old.get("status") == condition["status"]:
        condition["lastTransitionTime"] = old.get("lastTransitionTime", condition["lastTransitionTime"])
    status["conditions"] = [*conditions, condition]


async def _spend(catalog: Catalog, budget: Obj, pod_name: str, *, dry_run: bool) -> None:
    """checkAndDecrement: take one allowed disruption from the budget, or refuse the eviction."""
    generic = catalog.for_kind("policy", "PodDisruptionBudget")
    assert generic is not None
    name = budget["metadata"]["name"]

    def spend(current: Obj | None) -> Obj:
        if current is None:
            raise errors.not_found("policy", "poddisruptionbudgets", name)
        status = current.setdefault("status", {})
        if status.get("observedGeneration", 0) < current["metadata"].get("generation", 0):
            raise _too_many_requests(
                f"The disruption budget {name} is still being processed by the server.", 10
            )
        allowed = status.get("disruptionsAllowed", 0)
        if allowed < 0:
            raise _forbidden(name, "pdb disruptions allowed is negative")
        if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
            raise _forbidden(
                name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
            )
        if allowed == 0:
            needs = status.get("desiredHealthy", 0)
            has = status.get("currentHealthy", 0)
            raise _too_many_requests(
                f"The disruption budget {name} needs {needs} healthy pods and has {has} currently", 0
            )
        status["disruptionsAllowed"] = allowed - 1
        if allowed == 1:
            allowed_condition(status)
        status.setdefault("disruptedPods", {})[pod_name] = objects.timestamp()
        return current

    await generic.update(budget["metadata"]["namespace"], name, spend, subresource="status", dry_run=dry_run)


async def _mark_and_delete(pods: GenericStore, pod: Obj, options: DeleteOptions) -> None:
    """Give the pod the DisruptionTarget condition, then delete it with the eviction's options."""
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    terminal = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    if not options.dry_run and not terminal:

        def mark(current: Obj | None) -> Obj:
            if current is None:
                raise errors.not_found("", "pods", name)
            expected = options.preconditions
            for field in ("uid", "resourceVersion"):
                if expected.get(field) and current["metadata"].get(field) != expected[field]:
                    return current  # unchanged: the delete below reports the failed precondition
            status = current.setdefault("status", {})
            status["conditions"] = objects.with_disruption_target(
                status.get("conditions"), "EvictionByEvictionAPI", "Eviction API: evicting"
            )
            return current

        before = options.preconditions.get("resourceVersion")
        updated, _ = await pods.update(namespace, name, mark, subresource="status")
        if before and before == pod["metadata"]["resourceVersion"]:
            # The precondition held when the condition was added; the delete compares with that write.
            revision = updated["metadata"]["resourceVersion"]
            options = dataclasses.replace(
                options, preconditions={**options.preconditions, "resourceVersion": revision}
            )
    await pods.delete(namespace, name, options)


async def evict(catalog: Catalog, pods: GenericStore, info: RequestInfo, body: Any) -> Obj:
    """Evict ``info.name``: budgets checked and spent, then the pod deleted (see the module's doc)."""
    assert info.name is not None
    options = _options(info, body)
    pod = await pods.get(info.namespace, info.name)
    if not _can_ignore_budget(pod):
        budgets = await _budgets_for(catalog, pod)
        if len(budgets) > 1:
            raise errors.internal(
                "This pod has more than one PodDisruptionBudget, "
                "which the eviction subresource does not support."
            )
        if budgets:
            budget = budgets[0]
            spec, status = budget.get("spec") or {}, budget.get("status") or {}
            unhealthy_free = not is_ready(pod) and (
                spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
                or (
                    status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0)
                    and status.get("desiredHealthy", 0) > 0
                )
            )
            if unhealthy_free:
                # Only if the pod is still the unready one looked at: a pod that became ready is guarded.
                options.preconditions.setdefault("resourceVersion", pod["metadata"]["resourceVersion"])
            else:
                await _spend(catalog, budget, info.name, dry_run=options.dry_run)
    await _mark_and_delete(pods, pod, options)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
