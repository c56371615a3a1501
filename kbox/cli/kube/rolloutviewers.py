"""``kbox rollout`` for DaemonSets and StatefulSets: their status lines, and history kept in
ControllerRevisions.

Deployments keep their history in ReplicaSets (``rollout.py``); DaemonSets and StatefulSets keep it in
ControllerRevisions they own, each holding the pod template as a strategic merge patch that replaces the
whole template. ``history`` lists those revisions, ``undo`` sends the chosen revision's ``data`` back as
that patch (kubectl does exactly this), and a rollback to the template already running is skipped.
The status lines are kubectl's (its DaemonSet and StatefulSet status viewers), so scripts that parse
``kubectl rollout status`` read kbox's the same way.
"""

from __future__ import annotations

from typing import Any

from kbox.api.errors import StatusError
from kbox.cli.kube import session, workloads
from kbox.cli.kube.describe import Writer
from kbox.cli.kube.manifests import CommandError
from kbox.client.interface import CONTROLLERREVISIONS, STRATEGIC_PATCH

Obj = dict[str, Any]
CHANGE_CAUSE = "kubernetes.io/change-cause"
ROLLING = "RollingUpdate"


def daemon_set_status(ds: Obj) -> tuple[str, bool]:
    """kubectl's status line for a DaemonSet and whether its rollout is done (OnDelete raises)."""
    meta, spec, status = ds.get("metadata") or {}, ds.get("spec") or {}, ds.get("status") or {}
    name = meta.get("name", "")
    if ((spec.get("updateStrategy") or {}).get("type") or ROLLING) != ROLLING:
        raise CommandError(f"rollout status is only available for {ROLLING} strategy type")
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return "Waiting for daemon set spec update to be observed...", False
    updated = int(status.get("updatedNumberScheduled") or 0)
    desired = int(status.get("desiredNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    waiting = f'Waiting for daemon set "{name}" rollout to finish: '
    if updated < desired:
        return f"{waiting}{updated} out of {desired} new pods have been updated...", False
    if available < desired:
        return f"{waiting}{available} of {desired} updated pods are available...", False
    return f'daemon set "{name}" successfully rolled out', True


def stateful_set_status(sts: Obj) -> tuple[str, bool]:
    """kubectl's status line for a StatefulSet and whether its rollout is done (OnDelete raises)."""
    meta, spec, status = sts.get("metadata") or {}, sts.get("spec") or {}, sts.get("status") or {}
    strategy = spec.get("updateStrategy") or {}
    if (strategy.get("type") or ROLLING) != ROLLING:
        raise CommandError(f"rollout status is only available for {ROLLING} strategy type")
    observed = int(status.get("observedGeneration") or 0)
    if observed == 0 or int(meta.get("generation") or 0) > observed:
        return "Waiting for statefulset spec update to be observed...", False
    replicas = spec.get("replicas")
    ready = int(status.get("readyReplicas") or 0)
    if replicas is not None and ready < int(replicas):
        return f"Waiting for {int(replicas) - ready} pods to be ready...", False
    updated = int(status.get("updatedReplicas") or 0)
    rolling = strategy.get("rollingUpdate")
    if rolling is not None:
        partition = rolling.get("partition")
        if replicas is not None and partition is not None:
            wanted = int(replicas) - int(partition)
            if updated < wanted:
                return (
                    f"Waiting for partitioned roll out to finish: {updated} out of {wanted} "
                    "new pods have been updated...",
                    False,
                )
        return f"partitioned roll out complete: {updated} new pods have been updated...", True
    update_revision = status.get("updateRevision", "")
    current_revision = status.get("currentRevision", "")
    if update_revision != current_revision:
        return (
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{update_revision}...",
            False,
        )
    current = int(status.get("currentReplicas") or 0)
    return f"statefulset rolling update complete {current} pods at revision {current_revision}...", True


async def revisions(api: session.Api, owner: Obj) -> dict[int, Obj]:
    """The ControllerRevisions ``owner`` controls, by revision number (listed by its selector, as
    kubectl lists them)."""
    meta = owner.get("metadata") or {}
    selector = workloads.format_selector((owner.get("spec") or {}).get("selector"))
    listing = await api.client.list(
        CONTROLLERREVISIONS, namespace=meta.get("namespace"), label_selector=selector or None
    )
    found: dict[int, Obj] = {}
    for item in listing.get("items") or ():
        owners = (item.get("metadata") or {}).get("ownerReferences") or ()
        if any(o.get("uid") == meta.get("uid") and o.get("controller") for o in owners):
            found[int(item.get("revision") or 0)] = item
    return found


def template_of(revision: Obj) -> Obj:
    """The pod template a revision restores (its data is a replace-the-template patch)."""
    template = dict(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def template_text(template: Obj) -> str:
    """A pod template as kubectl's history and undo print it: describe's layout, tabs left raw (kubectl
    writes it without a tabwriter)."""
    w = Writer()
    workloads.write_pod_template(w, template)
    return "".join(w.parts)


def history_table(found: dict[int, Obj]) -> str:
    """``REVISION  CHANGE-CAUSE`` and one row per revision, as kubectl aligns them."""
    rows = [("REVISION", "CHANGE-CAUSE")]
    for number in sorted(found):
        annotations = (found[number].get("metadata") or {}).get("annotations") or {}
        rows.append((str(number), annotations.get(CHANGE_CAUSE) or "<none>"))
    width = max(len(r[0]) for r in rows) + 2
    return "".join(f"{first.ljust(width)}{second}\n" for first, second in rows)


async def undo(api: session.Api, path: str, owner: Obj, to_revision: int, dry_run: str) -> str:
    """Roll a DaemonSet or StatefulSet back to a revision (default: the one before the newest); what
    kubectl prints after the object's name."""
    found = await revisions(api, owner)
    if to_revision == 0 and len(found) <= 1:
        raise CommandError("no last revision to roll back to")
    if to_revision:
        if to_revision not in found:
            raise CommandError(f"unable to find specified revision {to_revision} in history")
        chosen = found[to_revision]
    else:
        chosen = found[sorted(found)[-2]]
    if dry_run == "client":
        return "will roll back to " + template_text(template_of(chosen))
    current = dict((owner.get("spec") or {}).get("template") or {})
    if current == template_of(chosen):
        return f"skipped rollback (current template already matches revision {to_revision})"
    params = {"dryRun": "All"} if dry_run == "server" else None
    try:
        body = chosen.get("data") or {}
        await api.request("PATCH", path, params=params, body=body, content_type=STRATEGIC_PATCH)
    except StatusError as exc:
        raise CommandError(f"failed restoring revision {to_revision}: {exc.message}") from None
    return "rolled back"
