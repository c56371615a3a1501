"""The core group (``/api/v1``): declarations and strategies.

Each kind is a ``ResourceDef`` entry; most strategies are a few lines of defaults and validation.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kbox.api import errors, validation
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef, SubresourceDef
from kbox.api.strategy import StatusStrategy, Strategy
from kbox.resources import podspec

Obj = dict[str, Any]

STATUS = SubresourceDef("status", "", ("get", "patch", "update"))


def _status(kind: str) -> SubresourceDef:
    return SubresourceDef("status", kind, ("get", "patch", "update"))


class NamespaceStrategy(Strategy):
    status_subresource = True

    def name_errors(self, name: str) -> list[str]:
        return validation.is_dns1123_label(name)

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Active"}
        spec = obj.setdefault("spec", {})
        spec.setdefault("finalizers", ["kubernetes"])
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")

    def deletion_waits(self, obj: Obj) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))

    def prepare_for_delete(self, obj: Obj) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        # spec.finalizers only change through the finalize subresource.
        new["spec"] = old.get("spec", {})
        new.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = old[
            "metadata"
        ]["name"]


class PodStrategy(Strategy):
    status_subresource = True

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj.get("spec") or {})}

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            podspec.default_pod_spec(spec)
            spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
            spec.setdefault("serviceAccount", spec["serviceAccountName"])
            spec.setdefault(
                "tolerations",
                [
                    {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
                    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
                ],
            )
            spec.setdefault("priority", 0)

    def validate(self, obj: Obj) -> list[FieldError]:
        return podspec.validate_pod_spec(obj.get("spec"), "spec")

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        if _mutable_pod_spec(new.get("spec")) != _mutable_pod_spec(old.get("spec")):
            problems.append(
                errors.forbidden(
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                    "(allow it to be set to 1 if it was previously negative)",
                )
            )
        return problems

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Unscheduled pods go at once; scheduled ones give their kubelet the grace period."""
        if not (obj.get("spec") or {}).get("nodeName"):
            return 0
        if requested is not None:
            return max(requested, 0)
        grace: int = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        return grace


def _mutable_pod_spec(spec: Any) -> Any:
    """A pod spec without the fields an update may change."""
    if not isinstance(spec, dict):
        return spec
    rest = {k: v for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations")}
    for kind in ("containers", "initContainers"):
        if isinstance(rest.get(kind), list):
            rest[kind] = [
                {k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c for c in rest[kind]
            ]
    rest.pop("terminationGracePeriodSeconds", None)
    return rest


def _qos_class(spec: Obj) -> str:
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    requests_any = False
    guaranteed = bool(containers)
    for container in containers:
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or {}
        if limits or requests:
            requests_any = True
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits.get(res)) != limits.get(res):
                guaranteed = False
    if guaranteed:
        return "Guaranteed"
    return "Burstable" if requests_any else "BestEffort"


class PodBindingStrategy(Strategy):
    """``pods/binding``: the one write that may set ``spec.nodeName`` (and the PodScheduled condition)."""

    def name_errors(self, name: str) -> list[str]:
        return _pod.name_errors(name)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return []


class NamespaceFinalizeStrategy(Strategy):
    """``namespaces/finalize``: only ``spec.finalizers`` changes."""

    def name_errors(self, name: str) -> list[str]:
        return validation.is_dns1123_label(name)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        finalizers = (new.get("spec") or {}).get("finalizers", [])
        new.clear()
        new.update(old)
        new["metadata"] = dict(old["metadata"])
        new["spec"] = {**old.get("spec", {}), "finalizers": finalizers}


class PodStatusStrategy(StatusStrategy):
    def validate_status(self, new: Obj, old: Obj) -> list[FieldError]:
        phase = (new.get("status") or {}).get("phase")
        allowed = ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
        if phase is not None and phase not in allowed:
            return [errors.not_supported("status.phase", phase, allowed)]
        return []


class ServiceStrategy(Strategy):
    status_subresource = True

    def name_errors(self, name: str) -> list[str]:
        return validation.is_dns1035_label(name)

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("ipFamilies", ["IPv4"])
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"loadBalancer": {}}

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        problems: list[FieldError] = []
        types = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
        if spec.get("type") not in types:
            problems.append(errors.not_supported("spec.type", spec.get("type"), types))
        ports = spec.get("ports") or []
        if not ports and spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None":
            problems.append(errors.required("spec.ports"))
        seen: set[tuple[Any, Any]] = set()
        names: set[str] = set()
        for index, port in enumerate(ports):
            path = f"spec.ports[{index}]"
            if not isinstance(port, dict):
                problems.append(errors.invalid(path, port, "must be an object"))
                continue
            number = port.get("port")
            problems += podspec.validate_port(port, "port", path)
            if len(ports) > 1 and not port.get("name"):
                problems.append(errors.required(f"{path}.name"))
            name = port.get("name")
            if name:
                if name in names:
                    problems.append(errors.duplicate(f"{path}.name", name))
                names.add(name)
            key = (number, port.get("protocol"))
            if key in seen:
                problems.append(errors.duplicate(path, {"port": number, "protocol": port.get("protocol")}))
            seen.add(key)
        selector = spec.get("selector")
        if selector is not None:
            problems += validation.validate_labels(selector, "spec.selector")
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        old_ip = (old.get("spec") or {}).get("clusterIP")
        new_ip = (new.get("spec") or {}).get("clusterIP")
        if old_ip and new_ip != old_ip and (new.get("spec") or {}).get("type") != "ExternalName":
            problems.append(errors.invalid("spec.clusterIPs[0]", new_ip, "may not change once set"))
        return problems

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        spec = new.get("spec")
        old_spec = old.get("spec") or {}
        if isinstance(spec, dict) and not spec.get("clusterIP") and old_spec.get("clusterIP"):
            # kubectl apply of a manifest without clusterIP keeps the allocated one.
            spec["clusterIP"] = old_spec["clusterIP"]
            spec["clusterIPs"] = old_spec.get("clusterIPs", [old_spec["clusterIP"]])
        if isinstance(spec, dict):
            old_ports = {
                (p.get("port"), p.get("protocol")): p.get("nodePort") for p in old_spec.get("ports") or []
            }
            for port in spec.get("ports") or []:
                if isinstance(port, dict) and not port.get("nodePort"):
                    node_port = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                    if node_port and spec.get("type") in ("NodePort", "LoadBalancer"):
                        port["nodePort"] = node_port


class SecretStrategy(Strategy):
    def default(self, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()

    def validate(self, obj: Obj) -> list[FieldError]:
        problems: list[FieldError] = []
        data = obj.get("data") or {}
        if not isinstance(data, dict):
            return [errors.invalid("data", data, "must be a map")]
        for key, value in data.items():
            for message in validation.is_config_map_key(key):
                problems.append(errors.invalid(f"data[{key}]", key, message))
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                problems.append(
                    errors.invalid(f"data[{key}]", "<secret contents redacted>", "illegal base64 data")
                )
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        if new.get("type") != old.get("type"):
            problems.append(errors.invalid("type", new.get("type"), "field is immutable"))
        if old.get("immutable") and new.get("data") != old.get("data"):
            problems.append(errors.forbidden("data", "field is immutable when `immutable` is set"))
        return problems


class ConfigMapStrategy(Strategy):
    def validate(self, obj: Obj) -> list[FieldError]:
        problems: list[FieldError] = []
        for section in ("data", "binaryData"):
            values = obj.get(section) or {}
            if not isinstance(values, dict):
                problems.append(errors.invalid(section, values, "must be a map"))
                continue
            for key in values:
                for message in validation.is_config_map_key(key):
                    problems.append(errors.invalid(f"{section}[{key}]", key, message))
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        if old.get("immutable") and (
            new.get("data") != old.get("data") or new.get("binaryData") != old.get("binaryData")
        ):
            problems.append(errors.forbidden("data", "field is immutable when `immutable` is set"))
        return problems


class NodeStrategy(Strategy):
    status_subresource = True
    reset_status_on_create = False  # a kubelet registers its node with its status

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)


class EventStrategy(Strategy):
    def name_errors(self, name: str) -> list[str]:
        return validation.path_segment_name(name)

    def validate(self, obj: Obj) -> list[FieldError]:
        if not isinstance(obj.get("involvedObject"), dict):
            return [errors.required("involvedObject")]
        return []


class PlainStrategy(Strategy):
    """Kinds with no rules beyond the metadata checks every object gets."""


def _def(kind: str, plural: str, strategy: Strategy, **kwargs: Any) -> ResourceDef:
    return ResourceDef(group="", version="v1", kind=kind, plural=plural, strategy=strategy, **kwargs)


_pod = PodStrategy()
_namespace = NamespaceStrategy()
_service = ServiceStrategy()
_node = NodeStrategy()

RESOURCES = [
    _def(
        "Namespace",
        "namespaces",
        _namespace,
        namespaced=False,
        short_names=("ns",),
        subresources=(_status("Namespace"), SubresourceDef("finalize", "Namespace", ("update",))),
        status_strategy=StatusStrategy(_namespace),
        extra={"strategy:finalize": NamespaceFinalizeStrategy()},
    ),
    _def(
        "Pod",
        "pods",
        _pod,
        namespaced=True,
        short_names=("po",),
        categories=("all",),
        subresources=(
            _status("Pod"),
            SubresourceDef("binding", "Binding", ("create",)),
            SubresourceDef("eviction", "Eviction", ("create",), group="policy", version="v1"),
            SubresourceDef("log", "Pod", ("get",)),
            SubresourceDef("exec", "PodExecOptions", ("create", "get")),
            SubresourceDef("attach", "PodAttachOptions", ("create", "get")),
            SubresourceDef("portforward", "PodPortForwardOptions", ("create", "get")),
        ),
        status_strategy=PodStatusStrategy(_pod),
        extra={"strategy:binding": PodBindingStrategy()},
    ),
    _def(
        "Service",
        "services",
        _service,
        namespaced=True,
        short_names=("svc",),
        categories=("all",),
        subresources=(_status("Service"),),
        status_strategy=StatusStrategy(_service),
    ),
    _def(
        "Endpoints", "endpoints", PlainStrategy(), namespaced=True, short_names=("ep",), singular="endpoints"
    ),
    _def("ConfigMap", "configmaps", ConfigMapStrategy(), namespaced=True, short_names=("cm",)),
    _def("Secret", "secrets", SecretStrategy(), namespaced=True),
    _def(
        "ServiceAccount",
        "serviceaccounts",
        PlainStrategy(),
        namespaced=True,
        short_names=("sa",),
        subresources=(
            SubresourceDef("token", "TokenRequest", ("create",), group="authentication.k8s.io", version="v1"),
        ),
    ),
    _def(
        "Node",
        "nodes",
        _node,
        namespaced=False,
        short_names=("no",),
        subresources=(_status("Node"),),
        status_strategy=StatusStrategy(_node),
    ),
    _def("Event", "events", EventStrategy(), namespaced=True, short_names=("ev",)),
]
