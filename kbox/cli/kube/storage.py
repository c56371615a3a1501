"""kubectl's ``describe`` layouts for storage and disruption budgets: PersistentVolumes (class, phase,
claim, capacity, node affinity and the volume source), PersistentVolumeClaims (the bound volume, its
capacity and modes, the pods using the claim, conditions), StorageClasses and PodDisruptionBudgets
(what the budget allows right now, as its controller last counted).
"""

from __future__ import annotations

import datetime
from typing import Any

from kbox.cli.kube.describe import (
    Writer,
    rfc1123z,
    since,
    write_annotations,
    write_events,
    write_labels,
)
from kbox.cli.kube.session import Api
from kbox.cli.kube.workloads import format_selector

Obj = dict[str, Any]
BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
DEFAULT_CLASS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)
GO_ZERO_TIME = "Mon, 01 Jan 0001 00:00:00 +0000"
MAX_ATTRIBUTE_LENGTH = 140


def access_modes(modes: list[str] | None) -> str:
    """``RWO,RWX``: the modes in kubectl's fixed order, each once."""
    given = set(modes or [])
    return ",".join(short for mode, short in MODES if mode in given)


def go_list(values: list[Any] | None) -> str:
    """A string slice as Go's ``%v`` prints it: ``[a b]``."""
    return "[" + " ".join(str(v) for v in values or []) + "]"


def format_map(values: dict[str, Any] | None) -> str:
    """``a=b,c=d`` sorted by key, ``<none>`` when empty (kubectl's labels.FormatLabels)."""
    if not values:
        return "<none>"
    return ",".join(f"{key}={values[key]}" for key in sorted(values))


def go_bool_pointer(value: Any) -> str:
    return "<unset>" if value is None else ("True" if value else "False")


def _status_line(metadata: Obj, phase: Any, now: datetime.datetime) -> str:
    if metadata.get("deletionTimestamp"):
        return f"Status:\tTerminating (lasts {since(metadata['deletionTimestamp'], now)})\n"
    return f"Status:\t{phase or ''}\n"


# -- PersistentVolume ------------------------------------------------------------------------------


def _node_affinity(w: Writer, affinity: Obj | None) -> None:
    required = (affinity or {}).get("required")
    w.write(0, "Node Affinity:\t")
    if required is None:
        w.write(0, "<none>\n")
        return
    w.write(0, "\n")
    w.write(1, "Required Terms:\t")
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        w.write(0, "<none>\n")
        return
    w.write(0, "\n")
    for index, term in enumerate(terms):
        w.write(2, f"Term {index}:\t")
        expressions = term.get("matchExpressions") or []
        if not expressions:
            w.write(0, "<none>\n")
        for position, req in enumerate(expressions):
            if position:
                w.write(2, "\t")
            text = f"{req.get('key', '')} {str(req.get('operator', '')).lower()}"
            if req.get("values"):
                text += f" [{', '.join(req['values'])}]"
            w.write(0, f"{text}\n")


def _source(w: Writer, spec: Obj) -> None:
    """The volume source of a PersistentVolume, for the kinds kbox provisions or users write most."""
    if "hostPath" in spec:
        source = spec["hostPath"] or {}
        w.write(
            2,
            "Type:\tHostPath (bare host directory volume)\n"
            f"    Path:\t{source.get('path', '')}\n"
            f"    HostPathType:\t{'<none>' if source.get('type') is None else source['type']}\n",
        )
    elif "local" in spec:
        source = spec["local"] or {}
        w.write(
            2,
            "Type:\tLocalVolume (a persistent volume backed by local storage on a node)\n"
            f"    Path:\t{source.get('path', '')}\n",
        )
    elif "nfs" in spec:
        source = spec["nfs"] or {}
        w.write(
            2,
            "Type:\tNFS (an NFS mount that lasts the lifetime of a pod)\n"
            f"    Server:\t{source.get('server', '')}\n"
            f"    Path:\t{source.get('path', '')}\n"
            f"    ReadOnly:\t{'true' if source.get('readOnly') else 'false'}\n",
        )
    elif "csi" in spec:
        source = spec["csi"] or {}
        w.write(
            2,
            "Type:\tCSI (a Container Storage Interface (CSI) volume source)\n"
            f"    Driver:\t{source.get('driver', '')}\n"
            f"    FSType:\t{source.get('fsType', '')}\n"
            f"    VolumeHandle:\t{source.get('volumeHandle', '')}\n"
            f"    ReadOnly:\t{'true' if source.get('readOnly') else 'false'}\n",
        )
        attributes = source.get("volumeAttributes") or {}
        w.write(2, "VolumeAttributes:\t")
        if not attributes:
            w.write(0, "<none>\n")
        for index, key in enumerate(sorted(attributes)):
            if index:
                w.write(2, "\t")
            line = f"{key}={attributes[key]}"
            w.write(
                2, f"{line[:MAX_ATTRIBUTE_LENGTH]}...\n" if len(line) > MAX_ATTRIBUTE_LENGTH else f"{line}\n"
            )
    else:
        w.write(1, "<unknown>\n")


async def describe_persistent_volume(
    api: Api, pv: Obj, events: list[Obj] | None, now: datetime.datetime
) -> str:
    w = Writer()
    metadata = pv.get("metadata") or {}
    spec = pv.get("spec") or {}
    status = pv.get("status") or {}
    w.write(0, f"Name:\t{metadata.get('name', '')}\n")
    write_labels(w, "Labels", metadata.get("labels"))
    write_annotations(w, "Annotations", metadata.get("annotations"))
    w.write(0, f"Finalizers:\t{go_list(metadata.get('finalizers'))}\n")
    annotations = metadata.get("annotations") or {}
    storage_class = annotations[BETA_CLASS] if BETA_CLASS in annotations else spec.get("storageClassName", "")
    w.write(0, f"StorageClass:\t{storage_class}\n")
    w.write(0, _status_line(metadata, status.get("phase"), now))
    claim = spec.get("claimRef")
    w.write(0, f"Claim:\t{claim.get('namespace', '')}/{claim.get('name', '')}\n" if claim else "Claim:\t\n")
    w.write(0, f"Reclaim Policy:\t{spec.get('persistentVolumeReclaimPolicy', '')}\n")
    w.write(0, f"Access Modes:\t{access_modes(spec.get('accessModes'))}\n")
    if spec.get("volumeMode") is not None:
        w.write(0, f"VolumeMode:\t{spec['volumeMode']}\n")
    w.write(0, f"Capacity:\t{(spec.get('capacity') or {}).get('storage', '0')}\n")
    _node_affinity(w, spec.get("nodeAffinity"))
    w.write(0, f"Message:\t{status.get('message', '')}\n")
    w.write(0, "Source:\n")
    _source(w, spec)
    write_events(w, events, now)
    return w.text()


# -- PersistentVolumeClaim -------------------------------------------------------------------------


async def _pods_using(api: Api, claim: Obj) -> list[str]:
    """The names of the pods that mount the claim or own it (kubectl's "Used By")."""
    metadata = claim.get("metadata") or {}
    listing = await api.request("GET", f"/api/v1/namespaces/{metadata.get('namespace', '')}/pods")
    pods = listing.get("items") or []
    names: list[str] = []
    uids: set[str] = set()
    for pod in pods:
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            if (volume.get("persistentVolumeClaim") or {}).get("claimName") == metadata.get("name"):
                names.append(pod["metadata"]["name"])
                uids.add(pod["metadata"].get("uid", ""))
    for owner in metadata.get("ownerReferences") or []:
        if owner.get("kind") != "Pod" or owner.get("uid") in uids:
            continue
        for pod in pods:
            if pod["metadata"].get("uid") == owner.get("uid"):
                names.append(pod["metadata"]["name"])
                uids.add(owner["uid"])
    return sorted(names)


async def describe_persistent_volume_claim(
    api: Api, claim: Obj, events: list[Obj] | None, now: datetime.datetime
) -> str:
    w = Writer()
    metadata = claim.get("metadata") or {}
    spec = claim.get("spec") or {}
    status = claim.get("status") or {}
    annotations = metadata.get("annotations") or {}
    w.write(0, f"Name:\t{metadata.get('name', '')}\n")
    w.write(0, f"Namespace:\t{metadata.get('namespace', '')}\n")
    storage_class = (
        annotations[BETA_CLASS] if BETA_CLASS in annotations else spec.get("storageClassName") or ""
    )
    w.write(0, f"StorageClass:\t{storage_class}\n")
    w.write(0, _status_line(metadata, status.get("phase"), now))
    w.write(0, f"Volume:\t{spec.get('volumeName', '')}\n")
    write_labels(w, "Labels", metadata.get("labels"))
    write_annotations(w, "Annotations", metadata.get("annotations"))
    w.write(0, f"Finalizers:\t{go_list(metadata.get('finalizers'))}\n")
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes(status.get("accessModes"))
        capacity = (status.get("capacity") or {}).get("storage", "0")
    w.write(0, f"Capacity:\t{capacity}\n")
    w.write(0, f"Access Modes:\t{modes}\n")
    if spec.get("volumeMode") is not None:
        w.write(0, f"VolumeMode:\t{spec['volumeMode']}\n")
    source = spec.get("dataSource")
    if source is not None:
        w.write(0, "DataSource:\n")
        if source.get("apiGroup") is not None:
            w.write(1, f"APIGroup:\t{source['apiGroup']}\n")
        w.write(1, f"Kind:\t{source.get('kind', '')}\n")
        w.write(1, f"Name:\t{source.get('name', '')}\n")
    users = await _pods_using(api, claim)
    w.write(0, "Used By:\t")
    if not users:
        w.write(0, "<none>\n")
    for index, name in enumerate(users):
        w.write(0, f"{chr(9) if index else ''}{name}\n")
    conditions = status.get("conditions") or []
    if conditions:
        w.write(0, "Conditions:\n")
        w.write(1, "Type\tStatus\tLastProbeTime\tLastTransitionTime\tReason\tMessage\n")
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in conditions:
            probe = rfc1123z(c.get("lastProbeTime")) or GO_ZERO_TIME
            moved = rfc1123z(c.get("lastTransitionTime")) or GO_ZERO_TIME
            w.write(
                1,
                f"{c.get('type', '')} \t{c.get('status', '')} \t{probe} \t{moved} \t{c.get('reason', '')} \t"
                f"{c.get('message', '')}\n",
            )
    write_events(w, events, now)
    return w.text()


# -- StorageClass ----------------------------------------------------------------------------------


async def describe_storage_class(api: Api, sc: Obj, events: list[Obj] | None, now: datetime.datetime) -> str:
    w = Writer()
    metadata = sc.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    w.write(0, f"Name:\t{metadata.get('name', '')}\n")
    default = any(annotations.get(key) == "true" for key in DEFAULT_CLASS)
    w.write(0, f"IsDefaultClass:\t{'Yes' if default else 'No'}\n")
    w.write(0, f"Annotations:\t{format_map(annotations)}\n")
    w.write(0, f"Provisioner:\t{sc.get('provisioner', '')}\n")
    w.write(0, f"Parameters:\t{format_map(sc.get('parameters'))}\n")
    w.write(0, f"AllowVolumeExpansion:\t{go_bool_pointer(sc.get('allowVolumeExpansion'))}\n")
    options = sc.get("mountOptions") or []
    if not options:
        w.write(0, "MountOptions:\t<none>\n")
    else:
        w.write(0, "MountOptions:\n")
        for option in options:
            w.write(1, f"{option}\n")
    if sc.get("reclaimPolicy") is not None:
        w.write(0, f"ReclaimPolicy:\t{sc['reclaimPolicy']}\n")
    if sc.get("volumeBindingMode") is not None:
        w.write(0, f"VolumeBindingMode:\t{sc['volumeBindingMode']}\n")
    topologies = sc.get("allowedTopologies")
    if topologies is not None:
        w.write(0, "AllowedTopologies:\t")
        w.write(0, "<none>\n" if not topologies else "\n")
        for index, term in enumerate(topologies):
            w.write(1, f"Term {index}:\t")
            expressions = term.get("matchLabelExpressions") or []
            if not expressions:
                w.write(0, "<none>\n")
            for position, req in enumerate(expressions):
                if position:
                    w.write(1, "\t")
                text = f"{req.get('key', '')} in"
                if req.get("values"):
                    text += f" [{', '.join(req['values'])}]"
                w.write(0, f"{text}\n")
    write_events(w, events, now)
    return w.text()


# -- PodDisruptionBudget ---------------------------------------------------------------------------


async def describe_pod_disruption_budget(
    api: Api, pdb: Obj, events: list[Obj] | None, now: datetime.datetime
) -> str:
    w = Writer()
    metadata = pdb.get("metadata") or {}
    spec = pdb.get("spec") or {}
    status = pdb.get("status") or {}
    w.write(0, f"Name:\t{metadata.get('name', '')}\n")
    w.write(0, f"Namespace:\t{metadata.get('namespace', '')}\n")
    if spec.get("minAvailable") is not None:
        w.write(0, f"Min available:\t{spec['minAvailable']}\n")
    elif spec.get("maxUnavailable") is not None:
        w.write(0, f"Max unavailable:\t{spec['maxUnavailable']}\n")
    if spec.get("selector") is not None:
        w.write(0, f"Selector:\t{format_selector(spec['selector']) or '<none>'}\n")
    else:
        w.write(0, "Selector:\t<unset>\n")
    w.write(0, "Status:\n")
    w.write(2, f"Allowed disruptions:\t{int(status.get('disruptionsAllowed') or 0)}\n")
    w.write(2, f"Current:\t{int(status.get('currentHealthy') or 0)}\n")
    w.write(2, f"Desired:\t{int(status.get('desiredHealthy') or 0)}\n")
    w.write(2, f"Total:\t{int(status.get('expectedPods') or 0)}\n")
    write_events(w, events, now)
    return w.text()
