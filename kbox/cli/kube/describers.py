"""kubectl's richer ``describe`` layouts for Pods and Nodes; other kinds use the generic describer.

The Pod layout is the one people read when a pod misbehaves: where it runs, each container's image,
state, readiness and restart count, probes, environment and mounts, the pod conditions, volumes, QoS
class, tolerations and events. The Node layout adds conditions with heartbeats, addresses, capacity,
the lease, the pods on it and what they request. Both follow kubectl's wording and order, so output
reads (and diffs) like kubectl's.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from kbox.api import quantity
from kbox.api.errors import StatusError
from kbox.cli.kube import nodesummary
from kbox.cli.kube.describe import (
    Writer,
    rfc1123z,
    since,
    write_annotations,
    write_controlled_by,
    write_events,
    write_labels,
    write_lines,
    write_set,
)
from kbox.cli.kube.session import Api

Obj = dict[str, Any]
Describer = Callable[[Api, Obj, "list[Obj] | None", datetime.datetime], Awaitable[str]]


def for_kind(group: str, kind: str) -> Describer | None:
    """The special describer of a kind, or None for the generic one."""
    from kbox.cli.kube import basics, storage, workloads

    special: dict[tuple[str, str], Describer] = {
        ("", "Pod"): describe_pod,
        ("", "Node"): describe_node,
        ("", "Service"): workloads.describe_service,
        ("", "ConfigMap"): basics.describe_config_map,
        ("", "Secret"): basics.describe_secret,
        ("", "Namespace"): basics.describe_namespace,
        ("apps", "Deployment"): workloads.describe_deployment,
        ("apps", "ReplicaSet"): workloads.describe_replica_set,
        ("apps", "DaemonSet"): workloads.describe_daemon_set,
        ("apps", "StatefulSet"): workloads.describe_stateful_set,
        ("batch", "Job"): workloads.describe_job,
        ("batch", "CronJob"): workloads.describe_cron_job,
        ("", "PersistentVolume"): storage.describe_persistent_volume,
        ("", "PersistentVolumeClaim"): storage.describe_persistent_volume_claim,
        ("storage.k8s.io", "StorageClass"): storage.describe_storage_class,
        ("policy", "PodDisruptionBudget"): storage.describe_pod_disruption_budget,
    }
    return special.get((group, kind))


# -- Pod ----------------------------------------------------------------------------------------------


async def describe_pod(api: Api, pod: Obj, events: list[Obj] | None, now: datetime.datetime) -> str:
    w = Writer()
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    w.write(0, f"Name:\t{metadata.get('name', '')}\n")
    w.write(0, f"Namespace:\t{metadata.get('namespace', '')}\n")
    write_set(w, "Priority", spec.get("priority"), zero=True)
    write_set(w, "Priority Class Name", spec.get("priorityClassName"))
    write_set(w, "Runtime Class Name", spec.get("runtimeClassName"))
    write_set(w, "Service Account", spec.get("serviceAccountName"))
    if spec.get("nodeName"):
        w.write(0, f"Node:\t{spec['nodeName']}/{status.get('hostIP', '')}\n")
    else:
        w.write(0, "Node:\t<none>\n")
    if status.get("startTime"):
        w.write(0, f"Start Time:\t{rfc1123z(status['startTime'])}\n")
    write_labels(w, "Labels", metadata.get("labels"))
    write_annotations(w, "Annotations", metadata.get("annotations"))
    phase = status.get("phase", "")
    if metadata.get("deletionTimestamp") and phase not in ("Failed", "Succeeded"):
        w.write(0, f"Status:\tTerminating (lasts {since(metadata['deletionTimestamp'], now)})\n")
        w.write(0, f"Termination Grace Period:\t{metadata.get('deletionGracePeriodSeconds', 0)}s\n")
    else:
        w.write(0, f"Status:\t{phase}\n")
    write_set(w, "Reason", status.get("reason"))
    write_set(w, "Message", status.get("message"))
    w.write(0, f"IP:\t{status.get('podIP', '')}\n")
    pod_ips = status.get("podIPs") or []
    if pod_ips:
        w.write(0, "IPs:\n")
        for entry in pod_ips:
            w.write(1, f"IP:\t{entry.get('ip', '')}\n")
    else:
        w.write(0, "IPs:\t<none>\n")
    write_controlled_by(w, metadata)
    write_set(w, "NominatedNodeName", status.get("nominatedNodeName"))
    if spec.get("initContainers"):
        write_containers(
            w, "Init Containers", spec["initContainers"], status.get("initContainerStatuses"), pod
        )
    write_containers(w, "Containers", spec.get("containers") or [], status.get("containerStatuses"), pod)
    gates = spec.get("readinessGates") or []
    conditions = status.get("conditions") or []
    if gates:
        w.write(0, "Readiness Gates:\n  Type\tStatus\n")
        for gate in gates:
            kind = gate.get("conditionType")
            value = next((c.get("status") for c in conditions if c.get("type") == kind), "<none>")
            w.write(1, f"{kind} \t{value} \n")
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\n")
        for condition in conditions:
            w.write(1, f"{condition.get('type', '')} \t{condition.get('status', '')} \n")
    write_volumes(w, spec.get("volumes") or [])
    w.write(0, f"QoS Class:\t{status.get('qosClass') or qos_class(spec)}\n")
    write_labels(w, "Node-Selectors", spec.get("nodeSelector"))
    write_tolerations(w, spec.get("tolerations") or [])
    write_events(w, events, now)
    return w.text()


def write_containers(
    w: Writer, label: str, containers: list[Obj], statuses: list[Obj] | None, pod: Obj, *, space: str = ""
) -> None:
    """Each container: image, ports, command, state, resources, probes, environment, mounts. With a
    ``space`` (a pod template) the section is indented and there are no statuses."""
    by_name = {s.get("name"): s for s in statuses or []}
    w.write(0, f"{space}{label}:{' <none>' if not containers else ''}\n")
    for container in containers:
        found = by_name.get(container.get("name"))
        w.write(1, f"{' ' if space else ''}{container.get('name', '')}:\n")
        if found is not None:
            w.write(2, f"Container ID:\t{found.get('containerID', '')}\n")
        w.write(2, f"Image:\t{container.get('image', '')}\n")
        if found is not None:
            w.write(2, f"Image ID:\t{found.get('imageID', '')}\n")
        ports = container.get("ports") or []
        for title, field in (("Port", "containerPort"), ("Host Port", "hostPort")):
            text = ", ".join(_port(p, field) for p in ports)
            if "," in text:
                w.write(2, f"{title}s:\t{text}\n")
            else:
                w.write(2, f"{title}:\t{text or '<none>'}\n")
        for title, field in (("Command", "command"), ("Args", "args")):
            if container.get(field):
                w.write(2, f"{title}:\n")
                for item in container[field]:
                    for line in str(item).split("\n"):
                        w.write(3, f"{line}\n")
        if found is not None:
            _state(w, "State", found.get("state") or {})
            last = found.get("lastState") or {}
            if last.get("terminated"):
                _state(w, "Last State", last)
            w.write(2, f"Ready:\t{'True' if found.get('ready') else 'False'}\n")
            w.write(2, f"Restart Count:\t{found.get('restartCount', 0)}\n")
        _resources(w, container.get("resources") or {}, 2)
        for title, field in (
            ("Liveness", "livenessProbe"),
            ("Readiness", "readinessProbe"),
            ("Startup", "startupProbe"),
        ):
            if container.get(field):
                w.write(2, f"{title}:\t{describe_probe(container[field])}\n")
        if container.get("envFrom"):
            w.write(2, "Environment Variables from:\n")
            for source in container["envFrom"]:
                ref = source.get("configMapRef") or source.get("secretRef") or {}
                kind = "ConfigMap" if source.get("configMapRef") else "Secret"
                prefix = f" with prefix '{source['prefix']}'" if source.get("prefix") else ""
                w.write(3, f"{ref.get('name', '')}\t{kind}{prefix}\tOptional: {_bool(ref.get('optional'))}\n")
        _environment(w, container.get("env") or [], pod, container)
        mounts = sorted(container.get("volumeMounts") or [], key=lambda m: m.get("mountPath", ""))
        w.write(2, f"Mounts:{'' if mounts else chr(9) + '<none>'}\n")
        for mount in mounts:
            flags = ["ro" if mount.get("readOnly") else "rw"]
            if mount.get("subPath"):
                flags.append(f'path="{mount["subPath"]}"')
            w.write(3, f"{mount.get('mountPath', '')} from {mount.get('name', '')} ({','.join(flags)})\n")


def _port(port: Obj, field: str) -> str:
    return f"{port.get(field, 0)}/{port.get('protocol', '')}"


def _bool(value: Any) -> str:
    return "true" if value else "false"


def _optional(source: Obj) -> str:
    return "<nil>" if source.get("optional") is None else _bool(source["optional"])


def _state(w: Writer, title: str, state: Obj) -> None:
    if state.get("running") is not None:
        w.write(2, f"{title}:\tRunning\n")
        w.write(3, f"Started:\t{rfc1123z(state['running'].get('startedAt'))}\n")
    elif state.get("terminated") is not None:
        done = state["terminated"]
        w.write(2, f"{title}:\tTerminated\n")
        write_set(w, "Reason", done.get("reason"), level=3)
        write_set(w, "Message", done.get("message"), level=3)
        w.write(3, f"Exit Code:\t{done.get('exitCode', 0)}\n")
        write_set(w, "Signal", done.get("signal"), level=3)
        w.write(3, f"Started:\t{rfc1123z(done.get('startedAt'))}\n")
        w.write(3, f"Finished:\t{rfc1123z(done.get('finishedAt'))}\n")
    else:
        w.write(2, f"{title}:\tWaiting\n")
        reason = (state.get("waiting") or {}).get("reason")
        if reason:
            w.write(3, f"Reason:\t{reason}\n")


def _resources(w: Writer, resources: Obj, level: int) -> None:
    for title in ("limits", "requests"):
        values = resources.get(title) or {}
        if values:
            w.write(level, f"{title.capitalize()}:\n")
        for name in sorted(values):
            w.write(level + 1, f"{name}:\t{values[name]}\n")


def describe_probe(probe: Obj) -> str:
    """A probe in one line, as kubectl 1.32 shows it: ``http-get http://:80/ delay=0s ... #failure=3``."""
    attrs = (
        f"delay={probe.get('initialDelaySeconds', 0)}s timeout={probe.get('timeoutSeconds', 0)}s "
        f"period={probe.get('periodSeconds', 0)}s #success={probe.get('successThreshold', 0)} "
        f"#failure={probe.get('failureThreshold', 0)}"
    )
    if probe.get("exec") is not None:
        return f"exec [{' '.join(str(c) for c in probe['exec'].get('command') or [])}] {attrs}"
    if probe.get("httpGet") is not None:
        get = probe["httpGet"]
        scheme = str(get.get("scheme") or "").lower()
        host, port = str(get.get("host", "")), str(get.get("port", ""))
        where = (f"[{host}]:{port}" if ":" in host else f"{host}:{port}") if port else host
        return f"http-get {scheme + ':' if scheme else ''}//{where}{get.get('path', '')} {attrs}"
    if probe.get("tcpSocket") is not None:
        sock = probe["tcpSocket"]
        return f"tcp-socket {sock.get('host', '')}:{sock.get('port', '')} {attrs}"
    if probe.get("grpc") is not None:
        grpc = probe["grpc"]
        return f"grpc <pod>:{grpc.get('port', '')} {grpc.get('service', '')} {attrs}"
    return f"unknown {attrs}"


# The paths kubectl resolves for ``fieldRef`` env values: the v1 Pod field labels, or only name and
# namespace when the reference names no version (kubectl's default field-label conversion).
_V1_FIELD_LABELS = frozenset(
    {
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.serviceAccountName",
        "spec.schedulerName",
        "status.phase",
        "status.hostIP",
        "status.podIP",
    }
)


def _field_value(pod: Obj, api_version: str, path: str) -> str:
    """The value kubectl shows for a downward-API ``fieldRef`` env var ("" where it shows none)."""
    allowed = _V1_FIELD_LABELS if api_version == "v1" else {"metadata.name", "metadata.namespace"}
    if path not in allowed:
        return ""
    section, _, key = path.partition(".")
    value = (pod.get(section) or {}).get(key, "")
    return value if isinstance(value, str) else ""


def _resource_value(container: Obj, ref: Obj) -> str:
    """The value a ``resourceFieldRef`` gives: the container's request or limit over the divisor."""
    kind, _, name = str(ref.get("resource", "")).partition(".")
    raw = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if raw is None:
        return "node allocatable" if kind == "limits" and name in ("cpu", "memory") else "0"
    try:
        value = quantity.parse(raw) / quantity.parse(ref.get("divisor") or "1")
    except (ValueError, ArithmeticError):
        return ""
    return str(int(value.to_integral_value(rounding="ROUND_CEILING")))


def _environment(w: Writer, env: list[Obj], pod: Obj, container: Obj) -> None:
    w.write(2, f"Environment:{'' if env else chr(9) + '<none>'}\n")
    for var in env:
        name = var.get("name", "")
        source = var.get("valueFrom")
        if source is None:
            for index, line in enumerate(str(var.get("value", "")).split("\n")):
                w.write(3, f"{name}:\t{line}\n" if index == 0 else f"\t{line}\n")
        elif source.get("fieldRef"):
            ref = source["fieldRef"]
            version, path = ref.get("apiVersion", ""), ref.get("fieldPath", "")
            w.write(3, f"{name}:\t{_field_value(pod, version, path)} ({version}:{path})\n")
        elif source.get("resourceFieldRef"):
            ref = source["resourceFieldRef"]
            w.write(3, f"{name}:\t{_resource_value(container, ref)} ({ref.get('resource', '')})\n")
        elif source.get("secretKeyRef"):
            ref = source["secretKeyRef"]
            w.write(
                3,
                f"{name}:\t<set to the key '{ref.get('key', '')}' in secret '{ref.get('name', '')}'>\t"
                f"Optional: {_bool(ref.get('optional'))}\n",
            )
        elif source.get("configMapKeyRef"):
            ref = source["configMapKeyRef"]
            w.write(
                3,
                f"{name}:\t<set to the key '{ref.get('key', '')}' of config map '{ref.get('name', '')}'>\t"
                f"Optional: {_bool(ref.get('optional'))}\n",
            )


def write_volumes(w: Writer, volumes: list[Obj], *, space: str = "") -> None:
    if not volumes:
        w.write(0, f"{space}Volumes:\t<none>\n")
        return
    w.write(0, f"{space}Volumes:\n")
    for volume in volumes:
        w.write(1, f"{' ' if space else ''}{volume.get('name', '')}:\n")
        if "hostPath" in volume:
            source = volume["hostPath"]
            w.write(2, "Type:\tHostPath (bare host directory volume)\n")
            w.write(2, f"Path:\t{source.get('path', '')}\n")
            w.write(2, f"HostPathType:\t{source.get('type') or '<none>'}\n")
        elif "emptyDir" in volume:
            source = volume["emptyDir"] or {}
            w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
            w.write(2, f"Medium:\t{source.get('medium', '')}\n")
            w.write(2, f"SizeLimit:\t{source.get('sizeLimit') or '<unset>'}\n")
        elif "secret" in volume:
            source = volume["secret"]
            w.write(2, "Type:\tSecret (a volume populated by a Secret)\n")
            w.write(2, f"SecretName:\t{source.get('secretName', '')}\n")
            w.write(2, f"Optional:\t{_bool(source.get('optional'))}\n")
        elif "configMap" in volume:
            source = volume["configMap"]
            w.write(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
            w.write(2, f"Name:\t{source.get('name', '')}\n")
            w.write(2, f"Optional:\t{_bool(source.get('optional'))}\n")
        elif "projected" in volume:
            w.write(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
            for part in (volume["projected"] or {}).get("sources") or []:
                # kubectl prints the optional flag's pointer: <nil> when unset.
                if part.get("secret") is not None:
                    w.write(2, f"SecretName:\t{part['secret'].get('name', '')}\n")
                    w.write(2, f"SecretOptionalName:\t{_optional(part['secret'])}\n")
                elif part.get("downwardAPI") is not None:
                    w.write(2, "DownwardAPI:\ttrue\n")
                elif part.get("configMap") is not None:
                    w.write(2, f"ConfigMapName:\t{part['configMap'].get('name', '')}\n")
                    w.write(2, f"ConfigMapOptional:\t{_optional(part['configMap'])}\n")
                elif part.get("serviceAccountToken") is not None:
                    expiry = part["serviceAccountToken"].get("expirationSeconds", 3600)
                    w.write(2, f"TokenExpirationSeconds:\t{expiry}\n")
        elif "downwardAPI" in volume:
            w.write(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n")
            w.write(2, "Items:\n")
            for item in (volume["downwardAPI"] or {}).get("items") or []:
                ref = item.get("fieldRef") or {}
                res = item.get("resourceFieldRef") or {}
                what = ref.get("fieldPath") or res.get("resource", "")
                w.write(3, f"{what} -> {item.get('path', '')}\n")
        elif "persistentVolumeClaim" in volume:
            source = volume["persistentVolumeClaim"]
            w.write(
                2,
                "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same "
                "namespace)\n",
            )
            w.write(2, f"ClaimName:\t{source.get('claimName', '')}\n")
            w.write(2, f"ReadOnly:\t{_bool(source.get('readOnly'))}\n")
        else:
            w.write(1, "<unknown>\n")


def write_tolerations(w: Writer, tolerations: list[Obj], *, title: str = "Tolerations") -> None:
    write_lines(w, title, [_toleration(t) for t in sorted(tolerations, key=lambda t: t.get("key", ""))])


def _toleration(toleration: Obj) -> str:
    """``key=value:Effect op=Exists for 300s``, as kubectl prints a toleration."""
    text = nodesummary.taint_text(toleration)
    if toleration.get("operator") == "Exists" and not toleration.get("value"):
        text += " op=Exists" if toleration.get("key") or toleration.get("effect") else "op=Exists"
    if toleration.get("tolerationSeconds") is not None:
        text += f" for {toleration['tolerationSeconds']}s"
    return text


def qos_class(spec: Obj) -> str:
    """Guaranteed, Burstable or BestEffort from the containers' requests and limits."""
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        own_limits = {k: v for k, v in (resources.get("limits") or {}).items() if k in ("cpu", "memory")}
        own_requests = {k: v for k, v in (resources.get("requests") or {}).items() if k in ("cpu", "memory")}
        for name, value in own_requests.items():
            requests[name] = requests.get(name, Decimal(0)) + _amount(value)
        for name, value in own_limits.items():
            limits[name] = limits.get(name, Decimal(0)) + _amount(value)
        if set(own_limits) != {"cpu", "memory"} or any(
            _amount(own_requests.get(k, own_limits[k])) != _amount(own_limits[k]) for k in own_limits
        ):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _amount(value: Any) -> Decimal:
    try:
        return quantity.parse(value)
    except ValueError:
        return Decimal(0)


# -- Node ---------------------------------------------------------------------------------------------


async def describe_node(api: Api, node: Obj, events: list[Obj] | None, now: datetime.datetime) -> str:
    w = Writer()
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    name = metadata.get("name", "")
    w.write(0, f"Name:\t{name}\n")
    roles = sorted(
        k.removeprefix("node-role.kubernetes.io/")
        for k in metadata.get("labels") or {}
        if k.startswith("node-role.kubernetes.io/")
    )
    roles += [v for k, v in (metadata.get("labels") or {}).items() if k == "kubernetes.io/role" and v]
    w.write(0, f"Roles:\t{','.join(r for r in roles if r) or '<none>'}\n")
    write_labels(w, "Labels", metadata.get("labels"))
    write_annotations(w, "Annotations", metadata.get("annotations"))
    w.write(0, f"CreationTimestamp:\t{rfc1123z(metadata.get('creationTimestamp'))}\n")
    nodesummary.write_taints(w, spec.get("taints") or [])
    w.write(0, f"Unschedulable:\t{_bool(spec.get('unschedulable'))}\n")
    try:
        lease = await api.request(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        )
    except StatusError as exc:
        w.write(0, f"Lease:\tFailed to get lease: {exc.message}\n")
    else:
        lease_spec = lease.get("spec") or {}
        w.write(0, "Lease:\n")
        w.write(1, f"HolderIdentity:\t{lease_spec.get('holderIdentity') or '<unset>'}\n")
        w.write(1, f"AcquireTime:\t{rfc1123z(lease_spec.get('acquireTime')) or '<unset>'}\n")
        w.write(1, f"RenewTime:\t{rfc1123z(lease_spec.get('renewTime')) or '<unset>'}\n")
    conditions = status.get("conditions") or []
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in conditions:
            w.write(
                1,
                f"{c.get('type', '')} \t{c.get('status', '')} \t{rfc1123z(c.get('lastHeartbeatTime'))} \t"
                f"{rfc1123z(c.get('lastTransitionTime'))} \t{c.get('reason', '')} \t{c.get('message', '')}\n",
            )
    w.write(0, "Addresses:\n")
    for address in status.get("addresses") or []:
        w.write(1, f"{address.get('type', '')}:\t{address.get('address', '')}\n")
    for title in ("capacity", "allocatable"):
        values = status.get(title) or {}
        if values:
            w.write(0, f"{title.capitalize()}:\n")
            for key in sorted(values):
                w.write(0, f"  {key}:\t{values[key]}\n")
    info = status.get("nodeInfo") or {}
    w.write(0, "System Info:\n")
    for label, key in (
        ("Machine ID", "machineID"),
        ("System UUID", "systemUUID"),
        ("Boot ID", "bootID"),
        ("Kernel Version", "kernelVersion"),
        ("OS Image", "osImage"),
        ("Operating System", "operatingSystem"),
        ("Architecture", "architecture"),
        ("Container Runtime Version", "containerRuntimeVersion"),
        ("Kubelet Version", "kubeletVersion"),
        ("Kube-Proxy Version", "kubeProxyVersion"),
    ):
        w.write(0, f"  {label}:\t{info.get(key, '')}\n")
    write_set(w, "PodCIDR", spec.get("podCIDR"))
    if spec.get("podCIDRs"):
        w.write(0, f"PodCIDRs:\t{','.join(spec['podCIDRs'])}\n")
    write_set(w, "ProviderID", spec.get("providerID"))
    pods = await nodesummary.pods_on(api, name)
    nodesummary.write_resources(w, node, pods, now)
    write_events(w, events, now)
    return w.text()
