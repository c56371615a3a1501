"""What a StatefulSet's pods and claims look like, as pure functions (pkg/controller/statefulset's
stateful_set_utils in shape): identities, ordinals, the pod a revision makes, the claims of an ordinal
and their owner references under the retention policy, and the status counts.

A pod of set ``web`` with ordinal 2 is named ``web-2``, carries the labels
``statefulset.kubernetes.io/pod-name: web-2``, ``apps.kubernetes.io/pod-index: "2"`` and
``controller-revision-hash: <revision name>``, has ``hostname: web-2`` and ``subdomain: <serviceName>`` (so
the cluster DNS answers ``web-2.<service>.<namespace>.svc``), and mounts the claim ``<template>-web-2`` for
each of the set's volumeClaimTemplates.
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any

from kbox.controllers import history, meta, podutil
from kbox.controllers.podutil import ready_since

Obj = dict[str, Any]

KIND = "StatefulSet"
API_VERSION = "apps/v1"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = history.REVISION_HASH_LABEL

_ORDINAL = re.compile(r"^(.*)-(\d+)$")


def owner_reference(sts: Obj, *, controller: bool = True) -> Obj:
    return meta.owner_reference(sts, api_version=API_VERSION, kind=KIND, controller=controller)


def ordinal_of(sts_name: str, pod: Obj) -> int | None:
    """The ordinal in ``<set>-<ordinal>``, or None when the pod's name is not one of the set's."""
    match = _ORDINAL.match(pod["metadata"].get("name", ""))
    if match is None or match.group(1) != sts_name:
        return None
    return int(match.group(2))


def start_ordinal(sts: Obj) -> int:
    ordinals = (sts.get("spec") or {}).get("ordinals") or {}
    return int(ordinals.get("start") or 0)


def replicas_of(sts: Obj) -> int:
    replicas = (sts.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def partition_of(sts: Obj) -> int:
    strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
    return int((strategy.get("rollingUpdate") or {}).get("partition") or 0)


def update_type(sts: Obj) -> str:
    return str(((sts.get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate")


def claim_name(template: Obj, sts_name: str, ordinal: int) -> str:
    return f"{(template.get('metadata') or {}).get('name', '')}-{sts_name}-{ordinal}"


def claim_templates(sts: Obj) -> list[Obj]:
    return [t for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or [] if isinstance(t, dict)]


def is_terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_running_and_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and ready_since(pod) is not None


def is_healthy(pod: Obj) -> bool:
    """Running, Ready and not terminating: what OrderedReady waits for before the next ordinal."""
    return is_running_and_ready(pod) and not is_terminating(pod)


def is_available(pod: Obj, min_ready: int, now: float) -> bool:
    """Running and Ready for ``min_ready`` seconds (a StatefulSet counts only Running pods)."""
    return (pod.get("status") or {}).get("phase") == "Running" and podutil.is_available(pod, min_ready, now)


def revision_of(pod: Obj) -> str:
    return str((pod["metadata"].get("labels") or {}).get(REVISION_LABEL, ""))


def new_pod(sts: Obj, template: Obj, ordinal: int, revision_name: str) -> Obj:
    """The pod for ``ordinal`` from ``template`` (the revision's pod template)."""
    metadata = sts["metadata"]
    spec = sts.get("spec") or {}
    name = f"{metadata['name']}-{ordinal}"
    template_meta = template.get("metadata") or {}
    labels = dict(template_meta.get("labels") or {})
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    labels[REVISION_LABEL] = revision_name
    pod_meta: Obj = {"name": name, "namespace": metadata["namespace"], "labels": labels}
    for key in ("annotations", "finalizers"):
        if template_meta.get(key):
            pod_meta[key] = copy.deepcopy(template_meta[key])
    pod_meta["ownerReferences"] = [owner_reference(sts)]
    pod_spec = copy.deepcopy(template.get("spec") or {})
    pod_spec["hostname"] = name
    if spec.get("serviceName"):
        pod_spec["subdomain"] = spec["serviceName"]
    claims = {
        (t.get("metadata") or {}).get("name", ""): claim_name(t, metadata["name"], ordinal)
        for t in claim_templates(sts)
    }
    volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claims]
    volumes += [{"name": v, "persistentVolumeClaim": {"claimName": c}} for v, c in claims.items()]
    if volumes:
        pod_spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}


def new_claim(sts: Obj, template: Obj, ordinal: int) -> Obj:
    """The claim of one volumeClaimTemplate for ``ordinal``: the template, named for the ordinal, with
    the set's selector labels added (as Kubernetes does)."""
    metadata = sts["metadata"]
    template_meta = template.get("metadata") or {}
    labels = dict(template_meta.get("labels") or {})
    labels.update(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    claim_meta: Obj = {
        "name": claim_name(template, metadata["name"], ordinal),
        "namespace": metadata["namespace"],
        "labels": labels,
    }
    if template_meta.get("annotations"):
        claim_meta["annotations"] = dict(template_meta["annotations"])
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": claim_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def retention(sts: Obj) -> tuple[str, str]:
    """``(whenDeleted, whenScaled)``, each Retain or Delete."""
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return str(policy.get("whenDeleted") or "Retain"), str(policy.get("whenScaled") or "Retain")


def claim_owner_refs(claim: Obj, sts: Obj, pod: Obj | None, *, condemned: bool) -> list[Obj] | None:
    """The claim's owner references as the retention policy wants them, or None when they are right:
    whenDeleted=Delete → the set owns the claim (the garbage collector deletes it with the set);
    whenScaled=Delete → a pod being scaled away owns its claims instead (they go with it). Other owners
    stay."""
    when_deleted, when_scaled = retention(sts)
    set_uid = sts["metadata"]["uid"]
    refs = [dict(r) for r in claim["metadata"].get("ownerReferences") or []]
    pod_uid = pod["metadata"]["uid"] if pod is not None else None
    kept = [
        r
        for r in refs
        if r.get("uid") != set_uid
        and not (r.get("kind") == "Pod" and r.get("name") == (pod or {}).get("metadata", {}).get("name"))
    ]
    wanted = list(kept)
    scaled_away = when_scaled == "Delete" and condemned and pod is not None and bool(pod_uid)
    if when_deleted == "Delete" and not scaled_away:
        # A claim with both owners would outlive its pod (the garbage collector only drops the dangling
        # reference while another owner exists), so a pod scaled away is its only owner.
        wanted.append(owner_reference(sts, controller=False))
    if scaled_away and pod is not None:
        wanted.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod["metadata"]["name"],
                "uid": pod_uid,
                "controller": False,
                "blockOwnerDeletion": True,
            }
        )

    def norm(items: list[Obj]) -> list[tuple[str, str]]:
        return sorted((str(r.get("uid")), str(r.get("kind"))) for r in items)

    return None if norm(wanted) == norm(refs) else wanted


def status_of(
    sts: Obj, pods: list[Obj], *, current: str, update: str, collision_count: int, now: float | None = None
) -> Obj:
    """The status the pods make (pods created and not terminating count)."""
    now = time.time() if now is None else now
    min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
    replicas = ready = available = current_count = updated = 0
    for pod in pods:
        if is_terminating(pod):
            continue
        replicas += 1
        if is_running_and_ready(pod):
            ready += 1
            if is_available(pod, min_ready, now):
                available += 1
        revision = revision_of(pod)
        if revision == current:
            current_count += 1
        if revision == update:
            updated += 1
    status: Obj = {
        "observedGeneration": sts["metadata"].get("generation", 1),
        "replicas": replicas,
        "readyReplicas": ready,
        "currentReplicas": current_count,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "currentRevision": current,
        "updateRevision": update,
        "collisionCount": collision_count,
    }
    if update_type(sts) == "RollingUpdate" and updated == replicas and ready == replicas:
        # The rollout is complete: the update revision becomes the current one.
        status["currentReplicas"] = updated
        status["currentRevision"] = update
    for name in ("readyReplicas", "currentReplicas", "updatedReplicas"):
        if not status[name]:
            del status[name]  # omitempty in the Go type
    return status
