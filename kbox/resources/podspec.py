"""Defaults and validation of PodSpec, shared by Pods and every workload's pod template.

Defaults are the ones kube-apiserver fills (``kubectl get -o yaml`` on a real cluster shows them);
validation covers the fields the rest of kbox reads (names, images, ports, restart policy, resources),
worded as Kubernetes words its field errors.
"""

from __future__ import annotations

import re
from typing import Any

from kbox.api import errors, validation
from kbox.api.errors import FieldError

Obj = dict[str, Any]

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
PROTOCOLS = ["TCP", "UDP", "SCTP"]
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def default_pod_spec(spec: Obj, *, restart_policy: str = "Always") -> None:
    """Fill what kube-apiserver defaults in a PodSpec."""
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            if isinstance(container, dict):
                _default_container(container)
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict) and not any(k != "name" for k in volume):
            volume["emptyDir"] = {}
    if spec.get("tolerations") is None:
        spec.pop("tolerations", None)


def _default_container(container: Obj) -> None:
    image = str(container.get("image") or "")
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(container.get(probe), dict):
            p = container[probe]
            p.setdefault("timeoutSeconds", 1)
            p.setdefault("periodSeconds", 10)
            p.setdefault("successThreshold", 1)
            p.setdefault("failureThreshold", 3)


def validate_pod_spec(spec: Any, path: str) -> list[FieldError]:
    if not isinstance(spec, dict):
        return [errors.required(path)]
    problems: list[FieldError] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        problems.append(errors.required(f"{path}.containers"))
        containers = []
    names: set[str] = set()
    for kind, items in (("initContainers", spec.get("initContainers") or []), ("containers", containers)):
        if not isinstance(items, list):
            problems.append(errors.invalid(f"{path}.{kind}", items, "must be a list"))
            continue
        for index, container in enumerate(items):
            problems += _validate_container(container, f"{path}.{kind}[{index}]", names)
    policy = spec.get("restartPolicy")
    if policy not in RESTART_POLICIES:
        problems.append(errors.not_supported(f"{path}.restartPolicy", policy, RESTART_POLICIES))
    if spec.get("dnsPolicy") not in DNS_POLICIES:
        problems.append(errors.not_supported(f"{path}.dnsPolicy", spec.get("dnsPolicy"), DNS_POLICIES))
    grace = spec.get("terminationGracePeriodSeconds")
    if not isinstance(grace, int) or grace < 0:
        problems.append(errors.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be >= 0"))
    node_selector = spec.get("nodeSelector")
    if node_selector is not None:
        problems += validation.validate_labels(node_selector, f"{path}.nodeSelector")
    volumes: set[str] = set()
    for index, volume in enumerate(spec.get("volumes") or []):
        vpath = f"{path}.volumes[{index}]"
        name = volume.get("name") if isinstance(volume, dict) else None
        if not name:
            problems.append(errors.required(f"{vpath}.name"))
        elif name in volumes:
            problems.append(errors.duplicate(f"{vpath}.name", name))
        else:
            volumes.add(name)
            for message in validation.is_dns1123_label(name):
                problems.append(errors.invalid(f"{vpath}.name", name, message))
    return problems


def _validate_container(container: Any, path: str, names: set[str]) -> list[FieldError]:
    if not isinstance(container, dict):
        return [errors.invalid(path, container, "must be an object")]
    problems: list[FieldError] = []
    name = container.get("name")
    if not name:
        problems.append(errors.required(f"{path}.name"))
    elif not isinstance(name, str):
        problems.append(errors.invalid(f"{path}.name", name, "must be a string"))
    else:
        for message in validation.is_dns1123_label(name):
            problems.append(errors.invalid(f"{path}.name", name, message))
        if name in names:
            problems.append(errors.duplicate(f"{path}.name", name))
        names.add(name)
    image = container.get("image")
    if not image or not isinstance(image, str) or image != image.strip():
        problems.append(errors.required(f"{path}.image"))
    if container.get("imagePullPolicy") not in PULL_POLICIES:
        problems.append(
            errors.not_supported(f"{path}.imagePullPolicy", container.get("imagePullPolicy"), PULL_POLICIES)
        )
    ports = container.get("ports") or []
    if not isinstance(ports, list):
        problems.append(errors.invalid(f"{path}.ports", ports, "must be a list"))
        ports = []
    for index, port in enumerate(ports):
        ppath = f"{path}.ports[{index}]"
        if not isinstance(port, dict):
            problems.append(errors.invalid(ppath, port, "must be an object"))
            continue
        problems += validate_port(port, "containerPort", ppath)
    resources = container.get("resources") or {}
    for section in ("requests", "limits"):
        for resource, quantity in (resources.get(section) or {}).items():
            if not _QUANTITY.match(str(quantity)):
                problems.append(
                    errors.invalid(
                        f"{path}.resources.{section}[{resource}]",
                        quantity,
                        "must match the regex ^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$",
                    )
                )
    for index, env in enumerate(container.get("env") or []):
        if not isinstance(env, dict) or not env.get("name"):
            problems.append(errors.required(f"{path}.env[{index}].name"))
    return problems


def validate_port(port: Obj, field: str, path: str) -> list[FieldError]:
    """A port number in 1-65535 and a known protocol (container ports and Service ports alike)."""
    problems: list[FieldError] = []
    number = port.get(field)
    if not isinstance(number, int) or not 0 < number < 65536:
        problems.append(errors.invalid(f"{path}.{field}", number, "must be between 1 and 65535, inclusive"))
    if port.get("protocol") not in PROTOCOLS:
        problems.append(errors.not_supported(f"{path}.protocol", port.get("protocol"), PROTOCOLS))
    return problems


def validate_pod_template(
    template: Any, path: str, selector_labels: dict[str, str] | None
) -> list[FieldError]:
    """A workload's pod template: labels, spec, and labels matching the workload's selector."""
    if not isinstance(template, dict):
        return [errors.required(path)]
    problems: list[FieldError] = []
    metadata = template.get("metadata") or {}
    labels = metadata.get("labels") or {}
    problems += validation.validate_labels(labels, f"{path}.metadata.labels")
    if selector_labels is not None and any(labels.get(k) != v for k, v in selector_labels.items()):
        problems.append(
            errors.invalid(f"{path}.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    problems += validate_pod_spec(template.get("spec"), f"{path}.spec")
    return problems
