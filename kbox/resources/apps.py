"""The ``apps/v1`` group: Deployments, ReplicaSets, StatefulSets, DaemonSets, ControllerRevisions.

Spec and status are two strategies (the status one keeps the spec, the main one keeps the status);
generation counts spec changes, which ``kubectl rollout status`` compares with status.observedGeneration.
"""

from __future__ import annotations

import re
from typing import Any

from kbox.api import errors, validation
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef, SubresourceDef
from kbox.api.strategy import StatusStrategy, Strategy
from kbox.resources import podspec, storage

Obj = dict[str, Any]

SCALE = SubresourceDef("scale", "Scale", ("get", "patch", "update"), group="autoscaling", version="v1")


class WorkloadStrategy(Strategy):
    """What every apps/v1 workload shares: a selector, a pod template, generation tracking."""

    status_subresource = True
    tracks_generation = True
    has_replicas = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        if self.has_replicas:
            spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        template = spec.get("template")
        if isinstance(template, dict):
            template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
            if isinstance(template.get("spec"), dict):
                podspec.default_pod_spec(template["spec"])

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {}

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        problems: list[FieldError] = []
        selector = spec.get("selector")
        match_labels: dict[str, str] | None = None
        if not isinstance(selector, dict) or not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        ):
            problems.append(errors.required("spec.selector"))
        else:
            match_labels = selector.get("matchLabels") or {}
            problems += _validate_selector(selector, "spec.selector")
        if self.has_replicas:
            replicas = spec.get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                problems.append(
                    errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
                )
        problems += podspec.validate_pod_template(spec.get("template"), "spec.template", match_labels)
        template_spec = (spec.get("template") or {}).get("spec") or {}
        if isinstance(template_spec, dict) and template_spec.get("restartPolicy", "Always") != "Always":
            problems.append(
                errors.not_supported(
                    "spec.template.spec.restartPolicy", template_spec.get("restartPolicy"), ["Always"]
                )
            )
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        if (new.get("spec") or {}).get("selector") != (old.get("spec") or {}).get("selector"):
            problems.append(
                errors.invalid("spec.selector", (new.get("spec") or {}).get("selector"), "field is immutable")
            )
        return problems


def _validate_selector(selector: Obj, path: str) -> list[FieldError]:
    problems = validation.validate_labels(selector.get("matchLabels") or {}, f"{path}.matchLabels")
    for index, expr in enumerate(selector.get("matchExpressions") or []):
        operators = ["In", "NotIn", "Exists", "DoesNotExist"]
        if not isinstance(expr, dict) or expr.get("operator") not in operators:
            op = expr.get("operator") if isinstance(expr, dict) else expr
            problems.append(errors.not_supported(f"{path}.matchExpressions[{index}].operator", op, operators))
    return problems


class DeploymentStrategy(WorkloadStrategy):
    def default(self, obj: Obj) -> None:
        super().default(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        if isinstance(strategy, dict):
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                rolling = strategy.setdefault("rollingUpdate", {})
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")

    def validate(self, obj: Obj) -> list[FieldError]:
        problems = super().validate(obj)
        strategy = (obj.get("spec") or {}).get("strategy") or {}
        types = ["Recreate", "RollingUpdate"]
        if isinstance(strategy, dict) and strategy.get("type") not in types:
            problems.append(errors.not_supported("spec.strategy.type", strategy.get("type"), types))
        return problems


class StatefulSetStrategy(WorkloadStrategy):
    def default(self, obj: Obj) -> None:
        super().default(obj)
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
            strategy = spec.get("updateStrategy")
            if isinstance(strategy, dict):
                strategy.setdefault("type", "RollingUpdate")
                if strategy["type"] == "RollingUpdate":
                    rolling = strategy.setdefault("rollingUpdate", {})
                    if isinstance(rolling, dict):
                        rolling.setdefault("partition", 0)
            spec.setdefault(
                "persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"}
            )
            for template in spec.get("volumeClaimTemplates") or []:
                if isinstance(template, dict):
                    template.setdefault("apiVersion", "v1")
                    template.setdefault("kind", "PersistentVolumeClaim")
                    if isinstance(template.get("spec"), dict):
                        template["spec"].setdefault("volumeMode", "Filesystem")

    def validate(self, obj: Obj) -> list[FieldError]:
        problems = super().validate(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return problems
        service = spec.get("serviceName")
        if service:
            problems += [
                errors.invalid("spec.serviceName", service, message)
                for message in validation.is_dns1123_label(str(service))
            ]
        policies = ["OrderedReady", "Parallel"]
        if spec.get("podManagementPolicy") not in policies:
            problems.append(
                errors.not_supported("spec.podManagementPolicy", spec.get("podManagementPolicy"), policies)
            )
        problems += _validate_sts_update_strategy(spec.get("updateStrategy"))
        retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        for name in ("whenDeleted", "whenScaled"):
            value = retention.get(name, "Retain") if isinstance(retention, dict) else retention
            if value not in ("Retain", "Delete"):
                path = f"spec.persistentVolumeClaimRetentionPolicy.{name}"
                problems.append(errors.not_supported(path, value, ["Retain", "Delete"]))
        for name in ("minReadySeconds",):
            value = spec.get(name, 0)
            if not isinstance(value, int) or value < 0:
                problems.append(errors.invalid(f"spec.{name}", value, "must be greater than or equal to 0"))
        start = (spec.get("ordinals") or {}).get("start", 0) if isinstance(spec.get("ordinals"), dict) else 0
        if not isinstance(start, int) or start < 0:
            problems.append(
                errors.invalid("spec.ordinals.start", start, "must be greater than or equal to 0")
            )
        names: set[str] = set()
        for index, template in enumerate(spec.get("volumeClaimTemplates") or []):
            path = f"spec.volumeClaimTemplates[{index}]"
            if not isinstance(template, dict):
                problems.append(errors.invalid(path, template, "must be an object"))
                continue
            claim_name = (template.get("metadata") or {}).get("name")
            if not claim_name:
                problems.append(errors.required(f"{path}.metadata.name"))
            elif claim_name in names:
                problems.append(errors.duplicate(f"{path}.metadata.name", claim_name))
            else:
                names.add(claim_name)
            claim_spec = template.get("spec")
            if not isinstance(claim_spec, dict):
                problems.append(errors.required(f"{path}.spec"))
            else:
                problems += storage.validate_claim_spec(claim_spec, f"{path}.spec")
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        mutable = (
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
            "revisionHistoryLimit",
        )
        new_spec = {k: v for k, v in (new.get("spec") or {}).items() if k not in mutable}
        old_spec = {k: v for k, v in (old.get("spec") or {}).items() if k not in mutable}
        if new_spec != old_spec:
            problems.append(
                errors.forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                    "'minReadySeconds' are forbidden",
                )
            )
        return problems


def _validate_sts_update_strategy(strategy: Any) -> list[FieldError]:
    if not isinstance(strategy, dict):
        return [errors.required("spec.updateStrategy")]
    types = ["RollingUpdate", "OnDelete"]
    kind = strategy.get("type")
    if kind not in types:
        return [errors.not_supported("spec.updateStrategy.type", kind, types)]
    rolling = strategy.get("rollingUpdate")
    if kind == "OnDelete" and rolling is not None:
        return [
            errors.invalid(
                "spec.updateStrategy.rollingUpdate",
                rolling,
                "only allowed for updateStrategy 'RollingUpdate'",
            )
        ]
    partition = (rolling or {}).get("partition", 0) if isinstance(rolling, dict) else 0
    if not isinstance(partition, int) or partition < 0:
        return [
            errors.invalid(
                "spec.updateStrategy.rollingUpdate.partition", partition, "must be greater than or equal to 0"
            )
        ]
    return []


class DaemonSetStrategy(WorkloadStrategy):
    """DaemonSets as kube-apiserver serves them: ``updateStrategy`` defaulted field by field
    (RollingUpdate, maxUnavailable 1, maxSurge 0) and validated, and the template generation kept in the
    ``deprecated.daemonset.template.generation`` annotation: 1 on create, +1 when the template changes,
    never set by a client (the controller labels pods with it, as upstream)."""

    has_replicas = False

    def default(self, obj: Obj) -> None:
        super().default(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        strategy = spec.setdefault("updateStrategy", {})
        if not isinstance(strategy, dict):
            return
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxUnavailable", 1)
                rolling.setdefault("maxSurge", 0)

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        annotations = obj.setdefault("metadata", {}).setdefault("annotations", {})
        if isinstance(annotations, dict):
            current = _template_generation(annotations)
            annotations[TEMPLATE_GENERATION] = str(max(current, 1))

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        generation = _template_generation((old.get("metadata") or {}).get("annotations") or {})
        if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
            generation += 1
        annotations = new.setdefault("metadata", {}).setdefault("annotations", {})
        if isinstance(annotations, dict) and generation > 0:
            annotations[TEMPLATE_GENERATION] = str(generation)

    def validate(self, obj: Obj) -> list[FieldError]:
        problems = super().validate(obj)
        spec = obj.get("spec") or {}
        if not isinstance(spec, dict):
            return problems
        for field in ("minReadySeconds", "revisionHistoryLimit"):
            value = spec.get(field)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                problems.append(errors.invalid(f"spec.{field}", value, "must be greater than or equal to 0"))
        strategy = spec.get("updateStrategy") or {}
        types = ["OnDelete", "RollingUpdate"]
        if not isinstance(strategy, dict) or strategy.get("type") not in types:
            kind = strategy.get("type") if isinstance(strategy, dict) else strategy
            problems.append(errors.not_supported("spec.updateStrategy.type", kind, types))
            return problems
        if strategy["type"] != "RollingUpdate":
            return problems
        rolling = strategy.get("rollingUpdate")
        path = "spec.updateStrategy.rollingUpdate"
        if not isinstance(rolling, dict):
            problems.append(errors.required(path))
            return problems
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        found = policy_int_or_percent(unavailable, f"{path}.maxUnavailable")
        found += policy_int_or_percent(surge, f"{path}.maxSurge")
        if not found and _is_zero(unavailable) and _is_zero(surge):
            found.append(
                errors.invalid(f"{path}.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0")
            )
        if not found and not _is_zero(unavailable) and not _is_zero(surge):
            found.append(
                errors.invalid(f"{path}.maxSurge", surge, "may not be set when maxUnavailable is non-zero")
            )
        return problems + found


TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
_PERCENT = re.compile(r"^[0-9]+%$")


def _template_generation(annotations: Obj) -> int:
    text = annotations.get(TEMPLATE_GENERATION)
    return int(text) if isinstance(text, str) and text.isdigit() else 0


def _is_zero(value: Any) -> bool:
    return value in (0, "0%")


def policy_int_or_percent(value: Any, path: str) -> list[FieldError]:
    """An int-or-string that is a non-negative integer or a percentage up to 100% (upstream's
    ValidatePositiveIntOrPercent and IsNotMoreThan100Percent, with their words)."""
    message = "a valid percent string must be a numeric string followed by an ending '%'"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return [errors.invalid(path, value, "must be an integer or percentage (e.g '5%')")]
    if isinstance(value, int):
        return [] if value >= 0 else [errors.invalid(path, value, "must be greater than or equal to 0")]
    if not _PERCENT.match(value):
        return [errors.invalid(path, value, message)]
    if int(value[:-1]) > 100:
        return [errors.invalid(path, value, "must not be greater than 100%")]
    return []


class ControllerRevisionStrategy(Strategy):
    """A snapshot of a DaemonSet's or StatefulSet's template: ``data`` and ``revision`` never change
    after creation (the controllers make a new revision instead), as in Kubernetes."""

    def validate(self, obj: Obj) -> list[FieldError]:
        revision = obj.get("revision")
        if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
            return [errors.invalid("revision", revision, "must be greater than or equal to 0")]
        return []

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        if new.get("data") != old.get("data"):
            problems.append(errors.invalid("data", "", "field is immutable"))
        return problems


def _def(
    kind: str, plural: str, strategy: WorkloadStrategy, short: tuple[str, ...], scale: bool
) -> ResourceDef:
    subresources = [SubresourceDef("status", kind, ("get", "patch", "update"))]
    if scale:
        subresources.append(SCALE)
    return ResourceDef(
        group="apps",
        version="v1",
        kind=kind,
        plural=plural,
        namespaced=True,
        strategy=strategy,
        short_names=short,
        categories=("all",),
        subresources=tuple(subresources),
        status_strategy=StatusStrategy(strategy),
    )


RESOURCES = [
    _def("Deployment", "deployments", DeploymentStrategy(), ("deploy",), scale=True),
    _def("ReplicaSet", "replicasets", WorkloadStrategy(), ("rs",), scale=True),
    _def("StatefulSet", "statefulsets", StatefulSetStrategy(), ("sts",), scale=True),
    _def("DaemonSet", "daemonsets", DaemonSetStrategy(), ("ds",), scale=False),
    ResourceDef(
        "apps", "v1", "ControllerRevision", "controllerrevisions", True, ControllerRevisionStrategy()
    ),
]
