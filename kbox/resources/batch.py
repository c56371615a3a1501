"""The ``batch/v1`` group: Jobs and CronJobs."""

from __future__ import annotations

from typing import Any

from kbox.api import errors
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef, SubresourceDef
from kbox.api.strategy import StatusStrategy, Strategy
from kbox.resources import podspec

Obj = dict[str, Any]


class JobStrategy(Strategy):
    status_subresource = True
    tracks_generation = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("manualSelector", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        template = spec.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            podspec.default_pod_spec(template["spec"], restart_policy="Never")

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {}
        spec = obj.get("spec")
        if isinstance(spec, dict) and not spec.get("manualSelector"):
            # Like Kubernetes, a Job selects its pods by its own uid, and labels its template with it.
            uid = obj["metadata"]["uid"]
            name = obj["metadata"].get("name", "")
            labels = {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            }
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            template = spec.setdefault("template", {})
            if isinstance(template, dict):
                template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        selector = (spec.get("selector") or {}).get("matchLabels")
        problems = podspec.validate_pod_template(spec.get("template"), "spec.template", selector)
        policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
        if policy not in ("OnFailure", "Never"):
            problems.append(
                errors.not_supported("spec.template.spec.restartPolicy", policy, ["OnFailure", "Never"])
            )
        for field in ("parallelism", "completions", "backoffLimit"):
            value = spec.get(field)
            if value is not None and (not isinstance(value, int) or value < 0):
                problems.append(errors.invalid(f"spec.{field}", value, "must be greater than or equal to 0"))
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        for field in ("selector", "template", "completions"):
            if new_spec.get(field) != old_spec.get(field):
                problems.append(errors.invalid(f"spec.{field}", new_spec.get(field), "field is immutable"))
        return problems


class CronJobStrategy(Strategy):
    status_subresource = True
    tracks_generation = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job_spec = (spec.get("jobTemplate") or {}).get("spec")
        if isinstance(job_spec, dict):
            job_spec.setdefault("backoffLimit", 6)
            template = job_spec.get("template")
            if isinstance(template, dict) and isinstance(template.get("spec"), dict):
                podspec.default_pod_spec(template["spec"], restart_policy="Never")

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {}

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        problems: list[FieldError] = []
        schedule = spec.get("schedule")
        if not isinstance(schedule, str) or not schedule.strip():
            problems.append(errors.required("spec.schedule"))
        elif len(schedule.split()) != 5 and not schedule.startswith("@"):
            problems.append(errors.invalid("spec.schedule", schedule, "unparseable schedule"))
        policies = ["Allow", "Forbid", "Replace"]
        if spec.get("concurrencyPolicy") not in policies:
            problems.append(
                errors.not_supported("spec.concurrencyPolicy", spec.get("concurrencyPolicy"), policies)
            )
        job_spec = (spec.get("jobTemplate") or {}).get("spec")
        if not isinstance(job_spec, dict):
            problems.append(errors.required("spec.jobTemplate.spec"))
        else:
            problems += podspec.validate_pod_template(
                job_spec.get("template"), "spec.jobTemplate.spec.template", None
            )
        return problems


def _def(kind: str, plural: str, strategy: Strategy, short: tuple[str, ...]) -> ResourceDef:
    return ResourceDef(
        group="batch",
        version="v1",
        kind=kind,
        plural=plural,
        namespaced=True,
        strategy=strategy,
        short_names=short,
        categories=("all",),
        subresources=(SubresourceDef("status", kind, ("get", "patch", "update")),),
        status_strategy=StatusStrategy(strategy),
    )


RESOURCES = [
    _def("Job", "jobs", JobStrategy(), ()),
    _def("CronJob", "cronjobs", CronJobStrategy(), ("cj",)),
]
