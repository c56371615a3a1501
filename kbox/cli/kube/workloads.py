"""kubectl's ``describe`` layouts for the objects people describe most after pods: Deployments (the
rollout at a glance: replicas, strategy, pod template, conditions, old and new ReplicaSets),
ReplicaSets (replicas and the phases of their pods) and Services (selector, addresses, ports and the
ready endpoints behind each port).
"""

from __future__ import annotations

import datetime
from typing import Any

from kbox.cli.kube.describe import (
    Writer,
    rfc1123z,
    write_annotations,
    write_controlled_by,
    write_events,
    write_labels,
    write_metadata,
    write_set,
)
from kbox.cli.kube.describers import write_containers, write_tolerations, write_volumes
from kbox.cli.kube.output import format_labels
from kbox.cli.kube.session import Api

Obj = dict[str, Any]
MAX_ENDPOINTS = 3


def format_selector(selector: Obj | None) -> str:
    """A LabelSelector as kubectl prints it: requirements sorted by key (``app=web,tier in (a,b)``)."""
    if not selector:
        return ""
    parts: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        parts.append((key, f"{key}={value}"))
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = ",".join(sorted(expression.get("values") or []))
        if operator == "In":
            parts.append((key, f"{key} in ({values})"))
        elif operator == "NotIn":
            parts.append((key, f"{key} notin ({values})"))
        elif operator == "Exists":
            parts.append((key, key))
        elif operator == "DoesNotExist":
            parts.append((key, f"!{key}"))
    return ",".join(text for _, text in sorted(parts, key=lambda p: p[0]))


def write_pod_template(w: Writer, template: Obj | None) -> None:
    w.write(0, "Pod Template:\n")
    if template is None:
        w.write(1, "<unset>")
        return
    metadata = template.get("metadata") or {}
    spec = template.get("spec") or {}
    write_labels(w, "  Labels", metadata.get("labels"))
    if metadata.get("annotations"):
        write_annotations(w, "  Annotations", metadata["annotations"])
    write_set(w, "Service Account", spec.get("serviceAccountName"), level=1)
    if spec.get("initContainers"):
        write_containers(w, "Init Containers", spec["initContainers"], None, {}, space="  ")
    write_containers(w, "Containers", spec.get("containers") or [], None, {}, space="  ")
    write_volumes(w, spec.get("volumes") or [], space="  ")
    write_set(w, "Priority Class Name", spec.get("priorityClassName"), level=1)
    write_labels(w, "  Node-Selectors", spec.get("nodeSelector"))
    write_tolerations(w, spec.get("tolerations") or [], title="  Tolerations")


def _without_hash(template: Obj | None) -> Obj:
    """A pod template with the ReplicaSet's pod-template-hash label taken out, for comparison."""
    copy = dict(template or {})
    metadata = dict(copy.get("metadata") or {})
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != "pod-template-hash"}
    metadata["labels"] = labels
    metadata.pop("creationTimestamp", None)
    copy["metadata"] = metadata
    return copy


async def _replica_sets(api: Api, deployment: Obj) -> tuple[list[Obj], list[Obj]]:
    """The ReplicaSets the Deployment controls, oldest first: (old ones, the new one if any)."""
    metadata = deployment.get("metadata") or {}
    namespace, uid = metadata.get("namespace", ""), metadata.get("uid")
    selector = format_selector((deployment.get("spec") or {}).get("selector"))
    params = {"labelSelector": selector} if selector else {}
    listing = await api.request("GET", f"/apis/apps/v1/namespaces/{namespace}/replicasets", params=params)
    owned = [
        rs
        for rs in listing.get("items") or []
        if any(
            o.get("uid") == uid and o.get("controller") for o in rs["metadata"].get("ownerReferences") or []
        )
    ]
    owned.sort(key=lambda rs: (rs["metadata"].get("creationTimestamp", ""), rs["metadata"].get("name", "")))
    wanted = _without_hash((deployment.get("spec") or {}).get("template"))
    new = [rs for rs in owned if _without_hash((rs.get("spec") or {}).get("template")) == wanted][:1]
    old = [rs for rs in owned if rs not in new]
    return old, new


def _replica_set_list(replica_sets: list[Obj]) -> str:
    texts = [
        f"{rs['metadata'].get('name', '')} ({(rs.get('status') or {}).get('replicas', 0)}/"
        f"{(rs.get('spec') or {}).get('replicas', 0)} replicas created)"
        for rs in replica_sets
    ]
    return ", ".join(texts) or "<none>"


def _write_conditions(w: Writer, status: Obj) -> None:
    """A controller's ``Conditions:`` table (type, status, reason), left out when it has none."""
    conditions = status.get("conditions") or []
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
        w.write(1, "----\t------\t------\n")
        for c in conditions:
            w.write(1, f"{c.get('type', '')} \t{c.get('status', '')}\t{c.get('reason', '')}\n")


async def describe_deployment(
    api: Api, deployment: Obj, events: list[Obj] | None, now: datetime.datetime
) -> str:
    w = Writer()
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    w.write(0, f"Name:\t{metadata.get('name', '')}\n")
    w.write(0, f"Namespace:\t{metadata.get('namespace', '')}\n")
    w.write(0, f"CreationTimestamp:\t{rfc1123z(metadata.get('creationTimestamp'))}\n")
    write_labels(w, "Labels", metadata.get("labels"))
    write_annotations(w, "Annotations", metadata.get("annotations"))
    w.write(0, f"Selector:\t{format_selector(spec.get('selector'))}\n")
    w.write(
        0,
        f"Replicas:\t{spec.get('replicas', 0)} desired | {status.get('updatedReplicas', 0)} updated | "
        f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
        f"{status.get('unavailableReplicas', 0)} unavailable\n",
    )
    strategy = spec.get("strategy") or {}
    w.write(0, f"StrategyType:\t{strategy.get('type', '')}\n")
    w.write(0, f"MinReadySeconds:\t{spec.get('minReadySeconds', 0)}\n")
    rolling = strategy.get("rollingUpdate")
    if rolling is not None:
        w.write(
            0,
            f"RollingUpdateStrategy:\t{rolling.get('maxUnavailable', 0)} max unavailable, "
            f"{rolling.get('maxSurge', 0)} max surge\n",
        )
    write_pod_template(w, spec.get("template"))
    _write_conditions(w, status)
    old, new = await _replica_sets(api, deployment)
    if old or new:
        w.write(0, f"OldReplicaSets:\t{_replica_set_list(old)}\n")
        w.write(0, f"NewReplicaSet:\t{_replica_set_list(new)}\n")
    write_events(w, events, now)
    return w.text()


async def _pods_status(api: Api, owner: Obj) -> str:
    """``Pods Status:`` of a controller: its pods (by selector and controller reference) by phase."""
    metadata = owner.get("metadata") or {}
    selector = format_selector((owner.get("spec") or {}).get("selector"))
    params = {"labelSelector": selector} if selector else {}
    pods = await api.request("GET", f"/api/v1/namespaces/{metadata.get('namespace', '')}/pods", params=params)
    phases = [
        (pod.get("status") or {}).get("phase")
        for pod in pods.get("items") or []
        if any(
            o.get("controller") and o.get("uid") == metadata.get("uid")
            for o in (pod.get("metadata") or {}).get("ownerReferences") or []
        )
    ]
    counts = [phases.count(p) for p in ("Running", "Pending", "Succeeded", "Failed")]
    return "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed\n".format(*counts)


async def describe_daemon_set(
    api: Api, daemon_set: Obj, events: list[Obj] | None, now: datetime.datetime
) -> str:
    w = Writer()
    metadata = daemon_set.get("metadata") or {}
    spec = daemon_set.get("spec") or {}
    status = daemon_set.get("status") or {}
    template_spec = (spec.get("template") or {}).get("spec") or {}
    w.write(0, f"Name:\t{metadata.get('name', '')}\n")
    w.write(0, f"Selector:\t{format_selector(spec.get('selector'))}\n")
    w.write(0, f"Node-Selector:\t{format_labels(template_spec.get('nodeSelector'))}\n")
    write_labels(w, "Labels", metadata.get("labels"))
    write_annotations(w, "Annotations", metadata.get("annotations"))
    for label, key in (
        ("Desired Number of Nodes Scheduled", "desiredNumberScheduled"),
        ("Current Number of Nodes Scheduled", "currentNumberScheduled"),
        ("Number of Nodes Scheduled with Up-to-date Pods", "updatedNumberScheduled"),
        ("Number of Nodes Scheduled with Available Pods", "numberAvailable"),
        ("Number of Nodes Misscheduled", "numberMisscheduled"),
    ):
        w.write(0, f"{label}: {status.get(key, 0)}\n")
    w.write(0, await _pods_status(api, daemon_set))
    write_pod_template(w, spec.get("template"))
    write_events(w, events, now)
    return w.text()


async def describe_stateful_set(
    api: Api, stateful_set: Obj, events: list[Obj] | None, now: datetime.datetime
) -> str:
    w = Writer()
    metadata = stateful_set.get("metadata") or {}
    spec = stateful_set.get("spec") or {}
    status = stateful_set.get("status") or {}
    w.write(0, f"Name:\t{metadata.get('name', '')}\n")
    w.write(0, f"Namespace:\t{metadata.get('namespace', '')}\n")
    w.write(0, f"CreationTimestamp:\t{rfc1123z(metadata.get('creationTimestamp'))}\n")
    w.write(0, f"Selector:\t{format_selector(spec.get('selector'))}\n")
    write_labels(w, "Labels", metadata.get("labels"))
    write_annotations(w, "Annotations", metadata.get("annotations"))
    w.write(0, f"Replicas:\t{spec.get('replicas', 0)} desired | {status.get('replicas', 0)} total\n")
    strategy = spec.get("updateStrategy") or {}
    w.write(0, f"Update Strategy:\t{strategy.get('type', '')}\n")
    rolling = strategy.get("rollingUpdate") or {}
    if rolling.get("partition") is not None:
        w.write(1, f"Partition:\t{rolling['partition']}\n")
        write_set(w, "MaxUnavailable", rolling.get("maxUnavailable"), level=1, zero=True)
    w.write(0, await _pods_status(api, stateful_set))
    write_pod_template(w, spec.get("template"))
    claims = spec.get("volumeClaimTemplates") or []
    if not claims:
        w.write(0, "Volume Claims:\t<none>\n")
    else:
        w.write(0, "Volume Claims:\n")
        for claim in claims:
            claim_meta = claim.get("metadata") or {}
            claim_spec = claim.get("spec") or {}
            storage_class = (claim_meta.get("annotations") or {}).get(
                "volume.beta.kubernetes.io/storage-class", claim_spec.get("storageClassName", "")
            )
            w.write(1, f"Name:\t{claim_meta.get('name', '')}\n")
            w.write(1, f"StorageClass:\t{storage_class}\n")
            write_labels(w, "Labels", claim_meta.get("labels"), indent="  ")
            write_labels(w, "Annotations", claim_meta.get("annotations"), indent="  ")
            capacity = ((claim_spec.get("resources") or {}).get("requests") or {}).get("storage")
            w.write(1, f"Capacity:\t{capacity or '<default>'}\n")
            w.write(1, f"Access Modes:\t[{' '.join(claim_spec.get('accessModes') or [])}]\n")
    write_events(w, events, now)
    return w.text()


def _indexes(indexes: str, soft_limit: int = 50) -> str:
    """Completed indexes, cut after the first comma past ``soft_limit`` characters."""
    if not indexes:
        return "<none>"
    cut = indexes.find(",", soft_limit)
    return indexes if cut < 0 else indexes[:cut] + ",..."


async def describe_job(api: Api, job: Obj, events: list[Obj] | None, now: datetime.datetime) -> str:
    from kbox.api.tables import human_duration
    from kbox.cli.kube.describe import parse_time

    w = Writer()
    metadata = job.get("metadata") or {}
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    w.write(0, f"Name:\t{metadata.get('name', '')}\n")
    w.write(0, f"Namespace:\t{metadata.get('namespace', '')}\n")
    w.write(0, f"Selector:\t{format_selector(spec.get('selector'))}\n")
    write_labels(w, "Labels", metadata.get("labels"))
    write_annotations(w, "Annotations", metadata.get("annotations"))
    write_controlled_by(w, metadata)
    write_set(w, "Parallelism", spec.get("parallelism"), zero=True)
    completions = spec.get("completions")
    w.write(0, f"Completions:\t{'<unset>' if completions is None else completions}\n")
    write_set(w, "Completion Mode", spec.get("completionMode"), zero=True)
    if spec.get("suspend") is not None:
        w.write(0, f"Suspend:\t{'true' if spec['suspend'] else 'false'}\n")
    write_set(w, "Backoff Limit", spec.get("backoffLimit"), zero=True)
    write_set(w, "TTL Seconds After Finished", spec.get("ttlSecondsAfterFinished"), zero=True)
    started, completed = status.get("startTime"), status.get("completionTime")
    if started:
        w.write(0, f"Start Time:\t{rfc1123z(started)}\n")
    if completed:
        w.write(0, f"Completed At:\t{rfc1123z(completed)}\n")
    start_at, end_at = parse_time(started), parse_time(completed)
    if start_at is not None and end_at is not None:
        w.write(0, f"Duration:\t{human_duration(end_at - start_at)}\n")
    if spec.get("activeDeadlineSeconds") is not None:
        w.write(0, f"Active Deadline Seconds:\t{spec['activeDeadlineSeconds']}s\n")
    active, succeeded, failed = status.get("active", 0), status.get("succeeded", 0), status.get("failed", 0)
    if status.get("ready") is None:
        w.write(0, f"Pods Statuses:\t{active} Active / {succeeded} Succeeded / {failed} Failed\n")
    else:
        w.write(
            0,
            f"Pods Statuses:\t{active} Active ({status['ready']} Ready) / {succeeded} Succeeded / "
            f"{failed} Failed\n",
        )
    if spec.get("completionMode") == "Indexed":
        w.write(0, f"Completed Indexes:\t{_indexes(status.get('completedIndexes') or '')}\n")
    write_pod_template(w, spec.get("template"))
    write_events(w, events, now)
    return w.text()


def _go_bool_pointer(value: Any) -> str:
    return "<unset>" if value is None else ("True" if value else "False")


def _set_or_unset(value: Any, unit: str = "") -> str:
    return "<unset>" if value is None else f"{value}{unit}"


async def describe_cron_job(api: Api, cron_job: Obj, events: list[Obj] | None, now: datetime.datetime) -> str:
    w = Writer()
    metadata = cron_job.get("metadata") or {}
    spec = cron_job.get("spec") or {}
    status = cron_job.get("status") or {}
    write_metadata(w, metadata)
    w.write(0, f"Schedule:\t{spec.get('schedule', '')}\n")
    w.write(0, f"Concurrency Policy:\t{spec.get('concurrencyPolicy', '')}\n")
    w.write(0, f"Suspend:\t{_go_bool_pointer(spec.get('suspend'))}\n")
    # kubectl 1.32 (the version kbox matches) has no Time Zone line; later ones add it.
    w.write(0, f"Successful Job History Limit:\t{_set_or_unset(spec.get('successfulJobsHistoryLimit'))}\n")
    w.write(0, f"Failed Job History Limit:\t{_set_or_unset(spec.get('failedJobsHistoryLimit'))}\n")
    w.write(0, f"Starting Deadline Seconds:\t{_set_or_unset(spec.get('startingDeadlineSeconds'), 's')}\n")
    template = (spec.get("jobTemplate") or {}).get("spec") or {}
    selector = template.get("selector")
    w.write(0, f"Selector:\t{'<unset>' if selector is None else format_selector(selector)}\n")
    w.write(0, f"Parallelism:\t{_set_or_unset(template.get('parallelism'))}\n")
    w.write(0, f"Completions:\t{_set_or_unset(template.get('completions'))}\n")
    if template.get("activeDeadlineSeconds") is not None:
        w.write(0, f"Active Deadline Seconds:\t{template['activeDeadlineSeconds']}s\n")
    write_pod_template(w, template.get("template") or {})
    last = status.get("lastScheduleTime")
    w.write(0, f"Last Schedule Time:\t{rfc1123z(last) if last else '<unset>'}\n")
    active = [ref.get("name", "") for ref in status.get("active") or []]
    w.write(0, f"Active Jobs:\t{', '.join(active) if active else '<none>'}\n")
    write_events(w, events, now)
    return w.text()


async def describe_replica_set(
    api: Api, replica_set: Obj, events: list[Obj] | None, now: datetime.datetime
) -> str:
    w = Writer()
    metadata = replica_set.get("metadata") or {}
    spec = replica_set.get("spec") or {}
    status = replica_set.get("status") or {}
    namespace = metadata.get("namespace", "")
    w.write(0, f"Name:\t{metadata.get('name', '')}\n")
    w.write(0, f"Namespace:\t{namespace}\n")
    selector = format_selector(spec.get("selector"))
    w.write(0, f"Selector:\t{selector or '<none>'}\n")
    write_labels(w, "Labels", metadata.get("labels"))
    write_annotations(w, "Annotations", metadata.get("annotations"))
    write_controlled_by(w, metadata)
    w.write(0, f"Replicas:\t{status.get('replicas', 0)} current / {spec.get('replicas', 0)} desired\n")
    w.write(0, await _pods_status(api, replica_set))
    write_pod_template(w, spec.get("template"))
    _write_conditions(w, status)
    write_events(w, events, now)
    return w.text()


# -- Service ------------------------------------------------------------------------------------------


def _endpoints(slices: list[Obj], port_name: str) -> str:
    """Ready endpoints serving the port named ``port_name``: at most three, then ``+ N more...``."""
    if not slices:
        return "<none>"
    shown: list[str] = []
    count = 0
    more = False
    for piece in slices:
        ports = piece.get("ports") or []
        endpoints = piece.get("endpoints") or []
        for port in ports or [None]:
            if port is not None and (port.get("name") or "") != port_name:
                continue
            for endpoint in endpoints:
                # As kubectl: once three are shown, any further endpoint (even a not-ready one) says "more".
                more = more or len(shown) == MAX_ENDPOINTS
                ready = (endpoint.get("conditions") or {}).get("ready")
                if ready is False or not endpoint.get("addresses"):
                    continue
                address = endpoint["addresses"][0]
                if not more:
                    if port is None:
                        shown.append(address)
                    else:
                        host = f"[{address}]" if ":" in address else address
                        shown.append(f"{host}:{port.get('port')}")
                count += 1
    text = ",".join(shown)
    return f"{text} + {count - MAX_ENDPOINTS} more..." if more else text


async def describe_service(api: Api, service: Obj, events: list[Obj] | None, now: datetime.datetime) -> str:
    w = Writer()
    metadata = service.get("metadata") or {}
    spec = service.get("spec") or {}
    status = service.get("status") or {}
    namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
    slices = (
        await api.request(
            "GET",
            f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
            params={"labelSelector": f"kubernetes.io/service-name={name}"},
        )
    ).get("items") or []
    write_metadata(w, metadata)
    w.write(0, f"Selector:\t{format_labels(spec.get('selector'))}\n")
    w.write(0, f"Type:\t{spec.get('type', '')}\n")
    write_set(w, "IP Family Policy", spec.get("ipFamilyPolicy"))
    w.write(0, f"IP Families:\t{','.join(spec.get('ipFamilies') or []) or '<none>'}\n")
    w.write(0, f"IP:\t{spec.get('clusterIP', '')}\n")
    w.write(0, f"IPs:\t{','.join(spec.get('clusterIPs') or []) or '<none>'}\n")
    if spec.get("externalIPs"):
        w.write(0, f"External IPs:\t{','.join(spec['externalIPs'])}\n")
    write_set(w, "Desired LoadBalancer IP", spec.get("loadBalancerIP"))
    write_set(w, "External Name", spec.get("externalName"))
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    if ingress:
        w.write(
            0, f"LoadBalancer Ingress:\t{', '.join(i.get('ip') or i.get('hostname', '') for i in ingress)}\n"
        )
    for port in spec.get("ports") or []:
        port_name = port.get("name") or "<unset>"
        protocol = port.get("protocol", "")
        w.write(0, f"Port:\t{port_name}\t{port.get('port', 0)}/{protocol}\n")
        w.write(0, f"TargetPort:\t{port.get('targetPort', '')}/{protocol}\n")
        if port.get("nodePort"):
            w.write(0, f"NodePort:\t{port_name}\t{port['nodePort']}/{protocol}\n")
        w.write(0, f"Endpoints:\t{_endpoints(slices, port.get('name') or '')}\n")
    w.write(0, f"Session Affinity:\t{spec.get('sessionAffinity', '')}\n")
    write_set(w, "External Traffic Policy", spec.get("externalTrafficPolicy"))
    write_set(w, "Internal Traffic Policy", spec.get("internalTrafficPolicy"))
    write_set(w, "HealthCheck NodePort", spec.get("healthCheckNodePort"))
    if spec.get("loadBalancerSourceRanges"):
        w.write(0, f"LoadBalancer Source Ranges:\t{','.join(spec['loadBalancerSourceRanges'])}\n")
    write_events(w, events, now)
    return w.text()
