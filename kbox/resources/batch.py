"""The ``batch/v1`` group: Jobs and CronJobs."""

from __future__ import annotations

import re
from typing import Any

from kbox.api import errors, validation
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef, SubresourceDef
from kbox.api.strategy import StatusStrategy, Strategy
from kbox.controllers import cronschedule
from kbox.resources import jobspec, podspec

Obj = dict[str, Any]


class JobStrategy(Strategy):
    """kube-apiserver's Job rules: defaults, a selector generated from the Job's uid (unless
    ``manualSelector``), and what may change once the Job exists (pkg/registry/batch/job)."""

    status_subresource = True
    tracks_generation = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        if spec.get("completions") is None and spec.get("parallelism") is None:
            spec["completions"] = 1
            spec["parallelism"] = 1
        spec.setdefault("parallelism", 1)
        if spec.get("backoffLimit") is None:
            spec["backoffLimit"] = jobspec.MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("manualSelector", False)
        policy = spec.get("podFailurePolicy")
        if spec.get("podReplacementPolicy") is None:
            spec["podReplacementPolicy"] = "Failed" if policy is not None else "TerminatingOrFailed"
        if isinstance(policy, dict) and isinstance(policy.get("rules"), list):
            for rule in policy["rules"]:
                patterns = rule.get("onPodConditions") if isinstance(rule, dict) else None
                for pattern in patterns if isinstance(patterns, list) else []:
                    if isinstance(pattern, dict) and not pattern.get("status"):
                        pattern["status"] = "True"
        template = spec.get("template")
        pod_spec = template.get("spec") if isinstance(template, dict) else None
        if isinstance(pod_spec, dict) and all(
            isinstance(pod_spec.get(key, []), list) for key in ("containers", "initContainers", "volumes")
        ):
            # Kubernetes defaults restartPolicy to Always here, which validation then refuses.
            podspec.default_pod_spec(pod_spec)
        jobspec.default_labels(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {}
        spec = obj.get("spec")
        if isinstance(spec, dict) and spec.get("manualSelector") is not True:
            # Like Kubernetes, a Job selects its pods by its own uid, and labels its template with it.
            uid = obj["metadata"]["uid"]
            name = obj["metadata"].get("name", "")
            template = spec.setdefault("template", {})
            if isinstance(template, dict):
                metadata = template.setdefault("metadata", {})
                if isinstance(metadata, dict):
                    labels = metadata.setdefault("labels", {})
                    if isinstance(labels, dict):
                        for key, value in (
                            (jobspec.LEGACY_CONTROLLER_UID_LABEL, uid),
                            (jobspec.LEGACY_JOB_NAME_LABEL, name),
                            (jobspec.CONTROLLER_UID_LABEL, uid),
                            (jobspec.JOB_NAME_LABEL, name),
                        ):
                            labels.setdefault(key, value)
            if spec.get("selector") is None:
                spec["selector"] = {"matchLabels": {jobspec.CONTROLLER_UID_LABEL: uid}}
        jobspec.default_labels(obj)

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        problems: list[FieldError] = []
        for field in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds",
                      "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes"):  # fmt: skip
            value = spec.get(field)
            if value is not None and (not jobspec.is_int(value) or value < 0):
                problems.append(errors.invalid(f"spec.{field}", value, "must be greater than or equal to 0"))
        selector = spec.get("selector")
        match_labels: dict[str, str] | None = None
        if selector is None:
            problems.append(errors.required("spec.selector"))
        elif not isinstance(selector, dict):
            problems.append(errors.invalid("spec.selector", selector, "must be a label selector"))
        else:
            raw = selector.get("matchLabels")
            match_labels = raw if isinstance(raw, dict) else None
            if spec.get("manualSelector") is not True:
                uid = (obj.get("metadata") or {}).get("uid", "")
                if selector != {"matchLabels": {jobspec.CONTROLLER_UID_LABEL: uid}}:
                    problems.append(
                        errors.invalid("spec.selector", selector, "`selector` not auto-generated")
                    )
        template: Any = spec.get("template")
        template_meta = template.get("metadata") if isinstance(template, dict) else None
        if template_meta is not None and not isinstance(template_meta, dict):
            problems.append(errors.invalid("spec.template.metadata", template_meta, "must be an object"))
            template = {**template, "metadata": {}}  # the rest of the template is still checked
        elif isinstance(template_meta, dict) and not isinstance(template_meta.get("labels") or {}, dict):
            labels = template_meta["labels"]
            problems.append(errors.invalid("spec.template.metadata.labels", labels, "must be an object"))
            template = {**template, "metadata": {**template_meta, "labels": {}}}
        template_spec = template.get("spec") if isinstance(template, dict) else None
        if isinstance(template_spec, dict):
            # Lists that are not lists get one error here; the pod spec's own checks expect lists.
            for key in ("containers", "initContainers", "volumes"):
                if key in template_spec and not isinstance(template_spec[key], list):
                    problems.append(
                        errors.invalid(f"spec.template.spec.{key}", template_spec[key], "must be a list")
                    )
                    template = {**template, "spec": {**template_spec, key: []}}
                    template_spec = template["spec"]
        problems += podspec.validate_pod_template(template, "spec.template", match_labels)
        pod_spec = (template.get("spec") if isinstance(template, dict) else None) or {}
        restart = pod_spec.get("restartPolicy") if isinstance(pod_spec, dict) else None
        if restart in ("Always", "", None):
            problems.append(
                errors.required("spec.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"')
            )
        elif restart not in ("OnFailure", "Never"):
            problems.append(
                errors.not_supported("spec.template.spec.restartPolicy", restart, ["OnFailure", "Never"])
            )
        mode = spec.get("completionMode")
        if mode not in ("NonIndexed", "Indexed"):
            problems.append(errors.not_supported("spec.completionMode", mode, ["NonIndexed", "Indexed"]))
        if mode == "Indexed" and spec.get("completions") is None:
            problems.append(errors.required("spec.completions", "when completion mode is Indexed"))
        replacement = spec.get("podReplacementPolicy")
        if replacement not in ("Failed", "TerminatingOrFailed"):
            problems.append(
                errors.not_supported(
                    "spec.podReplacementPolicy", replacement, ["Failed", "TerminatingOrFailed"]
                )
            )
        elif spec.get("podFailurePolicy") is not None and replacement != "Failed":
            problems.append(errors.not_supported("spec.podReplacementPolicy", replacement, ["Failed"]))
        managed_by = spec.get("managedBy")
        if managed_by is not None and (not isinstance(managed_by, str) or not managed_by):
            problems.append(errors.invalid("spec.managedBy", managed_by, "must be a domain-prefixed path"))
        if spec.get("successPolicy") is not None:
            problems += jobspec.validate_success_policy(spec["successPolicy"], spec)
        for unsupported in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(unsupported) is not None:
                problems.append(
                    errors.forbidden(f"spec.{unsupported}", "not supported by kbox's Job controller")
                )
        if spec.get("podFailurePolicy") is not None:
            problems += jobspec.validate_failure_policy(spec["podFailurePolicy"], restart, pod_spec)
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
            return problems
        for field in ("selector", "completionMode", "podFailurePolicy", "backoffLimitPerIndex",
                      "managedBy", "successPolicy"):  # fmt: skip
            if new_spec.get(field) != old_spec.get(field):
                problems.append(errors.invalid(f"spec.{field}", new_spec.get(field), "field is immutable"))
        completions = new_spec.get("completions")
        if completions != old_spec.get("completions"):
            elastic = new_spec.get("completionMode") == "Indexed" and old_spec.get("completions") is not None
            if not elastic or completions is None:
                problems.append(errors.invalid("spec.completions", completions, "field is immutable"))
            elif completions != new_spec.get("parallelism"):
                problems.append(
                    errors.invalid(
                        "spec.completions",
                        completions,
                        "can only be modified in tandem with spec.parallelism",
                    )
                )
        template, old_template = new_spec.get("template"), old_spec.get("template")
        if template != old_template:
            never_started = old_spec.get("suspend") is True and not (old.get("status") or {}).get("startTime")
            if not never_started or jobspec.without_scheduling(template) != jobspec.without_scheduling(
                old_template
            ):
                problems.append(errors.invalid("spec.template", template, "field is immutable"))
        return problems


class CronJobStrategy(Strategy):
    """CronJobs validated as kube-apiserver does: the schedule parsed by the controller's own parser
    (so a schedule the API accepts is one the controller can run), the time zone loaded, the job
    template checked as a Job's spec would be, and names short enough for the Jobs' names."""

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
            template = job_spec.get("template")
            if isinstance(template, dict) and isinstance(template.get("spec"), dict):
                # Always, as Kubernetes defaults it; validation then asks for OnFailure or Never.
                podspec.default_pod_spec(template["spec"])

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {}

    def validate(self, obj: Obj) -> list[FieldError]:
        problems = self._validate_spec(obj.get("spec"), None)
        name = (obj.get("metadata") or {}).get("name")
        if isinstance(name, str) and len(name) > MAX_CRONJOB_NAME:
            # Job names are <cronjob>-<minutes since epoch> (11 characters) and label values of the
            # pods: at most 63 characters.
            problems.append(
                errors.invalid("metadata.name", name, f"must be no more than {MAX_CRONJOB_NAME} characters")
            )
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        old_spec = old.get("spec")
        return self._validate_spec(new.get("spec"), old_spec if isinstance(old_spec, dict) else {})

    def _validate_spec(self, spec: Any, old_spec: Obj | None) -> list[FieldError]:
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        problems: list[FieldError] = []
        time_zone = spec.get("timeZone")
        schedule = spec.get("schedule")
        if not isinstance(schedule, str) or not schedule:
            problems.append(errors.required("spec.schedule"))
        else:
            problems += _validate_schedule(schedule, time_zone, old_spec)
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and (not isinstance(deadline, int) or deadline < 0):
            problems.append(errors.invalid("spec.startingDeadlineSeconds", deadline, NON_NEGATIVE))
        if old_spec is None or old_spec.get("timeZone") != time_zone:
            problems += _validate_time_zone(time_zone)
        policies = ["Allow", "Forbid", "Replace"]
        policy = spec.get("concurrencyPolicy")
        if not policy:
            problems.append(errors.required("spec.concurrencyPolicy"))
        elif policy not in policies:
            problems.append(errors.not_supported("spec.concurrencyPolicy", policy, policies))
        problems += _validate_job_template(spec.get("jobTemplate"))
        for field in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
            value = spec.get(field)
            if value is not None and (not isinstance(value, int) or value < 0):
                problems.append(errors.invalid(f"spec.{field}", value, NON_NEGATIVE))
        return problems


MAX_CRONJOB_NAME = 52
NON_NEGATIVE = "must be greater than or equal to 0"
# IANA zone name components (digits and '+' tolerated for legacy names), as kube-apiserver checks them.
_TIME_ZONE_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")


def _validate_schedule(schedule: str, time_zone: Any, old_spec: Obj | None) -> list[FieldError]:
    problems: list[FieldError] = []
    try:
        cronschedule.parse(schedule, cronschedule.UTC)
    except cronschedule.ScheduleError as exc:
        problems.append(errors.invalid("spec.schedule", schedule, str(exc)))
    # A TZ in the schedule is kept on objects that already had one, never accepted anew.
    allowed = old_spec is not None and "TZ" in str(old_spec.get("schedule") or "")
    if allowed and "TZ" in schedule and time_zone is not None:
        problems.append(
            errors.invalid(
                "spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"
            )
        )
    elif not allowed and "TZ" in schedule:
        problems.append(
            errors.invalid(
                "spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            )
        )
    return problems


def _validate_time_zone(time_zone: Any) -> list[FieldError]:
    if time_zone is None:
        return []
    path = "spec.timeZone"
    if not isinstance(time_zone, str) or not time_zone:
        return [errors.invalid(path, time_zone, "timeZone must be nil or non-empty string")]
    for part in time_zone.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TIME_ZONE_PART.fullmatch(part):
            return [errors.invalid(path, time_zone, f"unknown time zone {time_zone}")]
    problems: list[FieldError] = []
    if time_zone.lower() == "local":
        problems.append(
            errors.invalid(
                path,
                time_zone,
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            )
        )
    try:
        cronschedule.load_zone(time_zone)
    except cronschedule.ScheduleError as exc:
        problems.append(errors.invalid(path, time_zone, str(exc)))
    return problems


def _validate_job_template(job_template: Any) -> list[FieldError]:
    """``spec.jobTemplate``: a Job's spec without the selector (the Job gets its own when created)."""
    path = "spec.jobTemplate.spec"
    job_spec = job_template.get("spec") if isinstance(job_template, dict) else None
    if not isinstance(job_spec, dict):
        return [errors.required(path)]
    problems = podspec.validate_pod_template(job_spec.get("template"), f"{path}.template", None)
    metadata = job_template.get("metadata") or {}
    if isinstance(metadata, dict):
        problems += validation.validate_labels(
            metadata.get("labels") or {}, "spec.jobTemplate.metadata.labels"
        )
    policy = ((job_spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    if policy in ("Always", "", None):
        problems.append(
            errors.required(f"{path}.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"')
        )
    elif policy not in ("OnFailure", "Never"):
        problems.append(
            errors.not_supported(f"{path}.template.spec.restartPolicy", policy, ["OnFailure", "Never"])
        )
    for field in (
        "parallelism",
        "completions",
        "backoffLimit",
        "activeDeadlineSeconds",
        "ttlSecondsAfterFinished",
    ):
        value = job_spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0):
            problems.append(errors.invalid(f"{path}.{field}", value, NON_NEGATIVE))
    if job_spec.get("selector") is not None:
        problems.append(
            errors.invalid(f"{path}.selector", job_spec["selector"], "`selector` will be auto-generated")
        )
    if job_spec.get("manualSelector"):
        problems.append(errors.not_supported(f"{path}.manualSelector", True, ["nil", "false"]))
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
