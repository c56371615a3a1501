"""``kbox rollout status|history|undo|restart|pause|resume`` for deployments, daemon sets and stateful
sets, as kubectl does them (``rolloutviewers`` holds what differs for the last two: ControllerRevisions
instead of ReplicaSets, their own status lines; ``pause``/``resume`` refuse them, as kubectl does).

- ``status`` watches the deployment and prints kubectl's progress lines until the rollout is complete
  (``deployment "web" successfully rolled out``), its progress deadline passes, or ``--timeout`` ends;
  ``--watch=false`` prints the current line once. Consecutive repeats of a line are printed once.
- ``history`` lists the revisions recorded on the deployment's ReplicaSets
  (``deployment.kubernetes.io/revision``) with their ``kubernetes.io/change-cause``; ``--revision=N``
  shows that revision's pod template (in describe's layout, as kubectl prints it).
- ``undo`` copies a ReplicaSet's pod template (the previous revision, or ``--to-revision``) back into the
  deployment with a JSON patch, together with the ReplicaSet's annotations, as kubectl does; the
  deployment controller then rolls to it.
- ``restart`` stamps ``kubectl.kubernetes.io/restartedAt`` into the pod template, which rolls every pod.
- ``pause`` / ``resume`` set ``spec.paused``.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import click

from kbox.cli.kube import manifests, rolloutviewers, session, targets, wait
from kbox.cli.kube.manifests import CommandError
from kbox.client.interface import JSON_PATCH, MERGE_PATCH, REPLICASETS, STRATEGIC_PATCH

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
HASH_LABEL = "pod-template-hash"
# Annotations a rollback keeps from the deployment instead of taking them from the ReplicaSet.
KEPT_ON_ROLLBACK = (
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
)

EXAMPLES = """
\b
Examples:
  kbox rollout status deployment/web --timeout=2m
  kbox rollout history deployment/web
  kbox rollout undo deployment/web --to-revision=1
  kbox rollout restart deployment/web
"""


@click.group("rollout", epilog=EXAMPLES)
def rollout() -> None:
    """Follow, list, undo and restart rollouts of deployments, daemon sets and stateful sets."""


def _object_options(f: Any) -> Any:
    """The workloads a rollout command acts on (TYPE/NAME, TYPE NAME, -l, -f), handed to the
    command as one ``named`` argument."""

    @functools.wraps(f)
    def command(
        *,
        args: tuple[str, ...],
        selector: str | None,
        filenames: tuple[str, ...],
        namespace: str | None,
        all_namespaces: bool,
        **rest: Any,
    ) -> Any:
        named = targets.Named(args, namespace, all_namespaces, selector, filenames=filenames)
        return f(named, **rest)

    decorated = click.argument("args", nargs=-1)(command)
    decorated = click.option("-l", "--selector", default=None, help="Objects matching this label selector.")(
        decorated
    )
    decorated = click.option(
        "-f", "--filename", "filenames", multiple=True, metavar="FILE", help="Objects in manifests."
    )(decorated)
    decorated = session.namespace_options(decorated)
    return session.profile_option(decorated)


Action = Callable[[session.Api, targets.Target, dict[str, Any]], Awaitable[bool | None]]


ALL_KINDS = ("Deployment", "DaemonSet", "StatefulSet")


def _each_workload(
    named: targets.Named, profile: str | None, act: Action, kinds: tuple[str, ...] = ALL_KINDS
) -> None:
    """Read each named object and ``act`` on it; exit 1 if any act returned True (it failed)."""

    async def main() -> bool:
        failed = False
        async with session.connect(profile) as api:
            found = await named.find(api)
            if not found:
                raise CommandError("no objects found")
            for target in found:
                if target.info.group != "apps" or target.info.kind not in kinds:
                    raise CommandError(
                        "kbox rollout handles deployments, daemonsets and statefulsets only, "
                        f"not {target.info.qualified}"
                    )
            for target in found:
                deployment: dict[str, Any] = await api.request("GET", target.path())
                failed = bool(await act(api, target, deployment)) or failed
        return failed

    if manifests.run(main()):
        raise click.exceptions.Exit(1)


# --- status --------------------------------------------------------------------------------------------


def status_line(deployment: dict[str, Any], revision: int = 0) -> tuple[str, bool]:
    """kubectl's status message for a deployment and whether the rollout is done; a failed rollout raises."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    name = meta.get("name", "")
    if revision > 0:
        current = int((meta.get("annotations") or {}).get(REVISION) or 0)
        if current != revision:
            raise CommandError(
                f"desired revision ({revision}) is different from the running revision ({current})"
            )
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return "Waiting for deployment spec update to be observed...", False
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            raise CommandError(f'deployment "{name}" exceeded its progress deadline')
    desired = spec.get("replicas")
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if desired is not None and updated < int(desired):
        return f"{waiting}{updated} out of {desired} new replicas have been updated...", False
    if replicas > updated:
        return f"{waiting}{replicas - updated} old replicas are pending termination...", False
    if available < updated:
        return f"{waiting}{available} of {updated} updated replicas are available...", False
    return f'deployment "{name}" successfully rolled out', True


def workload_status(obj: dict[str, Any], revision: int = 0) -> tuple[str, bool]:
    """kubectl's status line for a Deployment, DaemonSet or StatefulSet, and whether it is done.
    kubectl ignores ``--revision`` for the latter two (they have no revision annotation to check)."""
    kind = obj.get("kind")
    if kind == "DaemonSet":
        return rolloutviewers.daemon_set_status(obj)
    if kind == "StatefulSet":
        return rolloutviewers.stateful_set_status(obj)
    return status_line(obj, revision)


@rollout.command(
    "status",
    epilog=manifests.examples(
        "kbox rollout status deployment/web",
        "kbox rollout status deploy/web --timeout=2m -n shop",
        "kbox rollout status deploy/web --watch=false",
    ),
)
@_object_options
@session.bool_option(
    "-w",
    "--watch",
    default=True,
    help="Watch until the rollout is done (--watch=false: print the status once).",
)
@click.option("--timeout", default="0s", show_default=True, help="How long to wait (0: no limit).")
@click.option("--revision", type=int, default=0, help="Fail unless the rollout is at this revision.")
def status(named: targets.Named, profile: str | None, watch: bool, timeout: str, revision: int) -> None:
    """Show a rollout's progress, waiting until it completes."""
    if revision < 0:
        raise CommandError(f"revision must be a positive integer: {revision}")
    seconds = wait.parse_duration(timeout)

    async def follow(api: session.Api, target: targets.Target, deployment: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(seconds or None):
                await _follow(api, target, deployment, watch=watch, revision=revision)
        except TimeoutError:
            raise CommandError("timed out waiting for the condition") from None

    _each_workload(named, profile, follow)


async def _follow(
    api: session.Api, target: targets.Target, deployment: dict[str, Any], *, watch: bool, revision: int
) -> None:
    """Print the deployment's status line each time it changes, until the rollout is done."""
    last = ""

    def show(obj: dict[str, Any] | None) -> bool:
        nonlocal last
        if obj is None:
            raise CommandError("object has been deleted")
        line, done = workload_status(obj, revision)
        if line != last:
            click.echo(line)
            last = line
        return done or not watch

    if show(deployment):
        return
    uid = (deployment.get("metadata") or {}).get("uid")
    await wait.watch_until(api, *target, show, uid=uid)


# --- history and undo ----------------------------------------------------------------------------------


async def replica_sets(api: session.Api, deployment: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The deployment's ReplicaSets (those it controls) by revision."""
    meta = deployment.get("metadata") or {}
    listing = await api.client.list(REPLICASETS, namespace=meta.get("namespace"))
    found: dict[int, dict[str, Any]] = {}
    for rs in listing.get("items") or ():
        rs_meta = rs.get("metadata") or {}
        owners = rs_meta.get("ownerReferences") or ()
        if not any(o.get("uid") == meta.get("uid") and o.get("controller") for o in owners):
            continue
        try:
            found[int((rs_meta.get("annotations") or {}).get(REVISION, ""))] = rs
        except ValueError:
            continue
    return found


@rollout.command(
    "history",
    epilog=manifests.examples(
        "kbox rollout history deployment/web", "kbox rollout history deployment/web --revision=2"
    ),
)
@_object_options
@click.option("--revision", type=int, default=0, help="Show the pod template of this revision.")
def history(named: targets.Named, profile: str | None, revision: int) -> None:
    """List a deployment's revisions (or show one with --revision)."""
    if revision < 0:
        raise CommandError(f"revision must be a positive integer: {revision}")

    async def show(api: session.Api, target: targets.Target, obj: dict[str, Any]) -> None:
        if target.info.kind == "Deployment":
            by_rs = await replica_sets(api, obj)
            templates = {n: (rs.get("spec") or {}).get("template") or {} for n, rs in by_rs.items()}
            revisions = by_rs
        else:
            revisions = await rolloutviewers.revisions(api, obj)
            templates = {n: rolloutviewers.template_of(cr) for n, cr in revisions.items()}
        if not revisions:
            click.echo(f"{target.ref} \nNo rollout history found.")
            return
        if revision:
            if revision not in revisions:
                raise CommandError("unable to find the specified revision")
            text = rolloutviewers.template_text(templates[revision])
            click.echo(f"{target.ref} with revision #{revision}\n{text}")
            return
        click.echo(f"{target.ref} \n{rolloutviewers.history_table(revisions)}")

    _each_workload(named, profile, show)


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != HASH_LABEL}
    meta["labels"] = labels
    return {**template, "metadata": meta}


@rollout.command(
    "undo",
    epilog=manifests.examples(
        "kbox rollout undo deployment/web", "kbox rollout undo deployment/web --to-revision=1"
    ),
)
@_object_options
@click.option(
    "--to-revision", type=int, default=0, help="The revision to go back to (default: the previous one)."
)
@session.dry_run_option("client: print the template it would restore.")
def undo(named: targets.Named, profile: str | None, to_revision: int, dry_run: str) -> None:
    """Roll a deployment back to its previous (or a given) revision."""
    if to_revision < 0:
        raise CommandError(f"unable to find specified revision {to_revision} in history")

    async def undo_one(api: session.Api, target: targets.Target, obj: dict[str, Any]) -> None:
        if target.info.kind == "Deployment":
            result = await _undo_one(api, target, obj, to_revision, dry_run)
        else:
            result = await rolloutviewers.undo(api, target.path(), obj, to_revision, dry_run)
        suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
        click.echo(f"{target.ref} {result}{suffix}")

    _each_workload(named, profile, undo_one)


async def _undo_one(
    api: session.Api, target: targets.Target, deployment: dict[str, Any], to_revision: int, dry_run: str
) -> str:
    revisions = await replica_sets(api, deployment)
    if to_revision:
        if to_revision not in revisions:
            raise CommandError(f"unable to find specified revision {to_revision} in history")
        chosen = to_revision
    else:
        ordered = sorted(revisions)
        if len(ordered) < 2:
            raise CommandError(f'no rollout history found for deployment "{target.name}"')
        chosen = ordered[-2]
    rs = revisions[chosen]
    template = _without_hash((rs.get("spec") or {}).get("template") or {})
    if dry_run == "client":
        return rolloutviewers.template_text((rs.get("spec") or {}).get("template") or {})
    if (deployment.get("spec") or {}).get("paused"):
        raise CommandError(
            "you cannot rollback a paused deployment; "
            "resume it first with 'kbox rollout resume' and try again"
        )
    if _without_hash((deployment.get("spec") or {}).get("template") or {}) == template:
        return f"skipped rollback (current template already matches revision {chosen})"
    current_annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    annotations = {k: v for k, v in current_annotations.items() if k in KEPT_ON_ROLLBACK}
    for key, value in ((rs.get("metadata") or {}).get("annotations") or {}).items():
        if key not in KEPT_ON_ROLLBACK:
            annotations[key] = value
    patch = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    params = {"dryRun": "All"} if dry_run == "server" else None
    await api.request("PATCH", target.path(), params=params, body=patch, content_type=JSON_PATCH)
    return "rolled back"


# --- restart, pause, resume ----------------------------------------------------------------------------


@rollout.command(
    "restart",
    epilog=manifests.examples(
        "kbox rollout restart deployment/web", "kbox rollout restart deployment -l tier=frontend"
    ),
)
@_object_options
def restart(named: targets.Named, profile: str | None) -> None:
    """Restart every pod of a deployment by rolling it (a restartedAt annotation)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def restart_one(api: session.Api, target: targets.Target, deployment: dict[str, Any]) -> bool:
        if target.info.kind == "Deployment" and (deployment.get("spec") or {}).get("paused"):
            click.echo(
                f'error: {target.info.qualified} "{target.name}" '
                "can't restart paused deployment (run rollout resume first)",
                err=True,
            )
            return True
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        await api.request("PATCH", target.path(), body=patch, content_type=STRATEGIC_PATCH)
        click.echo(f"{target.ref} restarted")
        return False

    _each_workload(named, profile, restart_one)


def _pauser(paused: bool) -> Any:
    verb = "paused" if paused else "resumed"

    @_object_options
    def command(named: targets.Named, profile: str | None) -> None:
        async def set_paused(api: session.Api, target: targets.Target, deployment: dict[str, Any]) -> bool:
            if target.info.kind != "Deployment":
                action = "pausing" if paused else "resuming"
                click.echo(
                    f'error: {target.info.qualified} "{target.name}" {action} is not supported', err=True
                )
                return True
            if bool((deployment.get("spec") or {}).get("paused")) == paused:
                state = "already paused" if paused else "not paused"
                raise CommandError(f'{target.info.qualified} "{target.name}" is {state}')
            body = {"spec": {"paused": paused or None}}
            await api.request("PATCH", target.path(), body=body, content_type=MERGE_PATCH)
            click.echo(f"{target.ref} {verb}")
            return False

        _each_workload(named, profile, set_paused)

    command.__doc__ = (
        f"Mark a deployment {verb}: {'no rollouts until resumed' if paused else 'rollouts continue'}."
    )
    return command


rollout.command("pause", epilog=manifests.examples("kbox rollout pause deployment/web"))(_pauser(True))
rollout.command("resume", epilog=manifests.examples("kbox rollout resume deployment/web"))(_pauser(False))
