"""``kbox delete``: delete objects like ``kubectl delete``, or, with no objects named, a whole profile.

Objects are named as kubectl names them: ``-f FILE|DIR|-``, ``TYPE NAME...``, ``TYPE/NAME...``,
``TYPE -l SELECTOR`` or ``TYPE --all``. Each DELETE carries the grace period (``--grace-period``,
``--now`` = 1 s, ``--force`` = 0) and the propagation policy (``--cascade``); each object is reported as
kubectl v1.32 reports it (``pod "web-0" deleted``) and then, as with ``kubectl --wait=true``, the command
waits (by watch, on the uid the DELETE answered with) until every object is really gone: finalizers
run, pods terminate.

``kbox delete`` without objects keeps its older meaning: delete the profile (``--profile``) or every
profile (``--all``): ``kbox.cli.lifecycle.delete`` does that, and this command hands over to it, so
``kbox delete --all`` still removes every cluster while ``kbox delete pods --all`` removes pods.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from kbox.api.errors import StatusError
from kbox.cli import lifecycle
from kbox.cli.kube import manifests, session, targets, wait
from kbox.cli.kube.manifests import CommandError
from kbox.cli.kube.wait import parse_duration

EXAMPLES = """
\b
Examples:
  kbox delete pod web-0                     # waits until the pod is gone
  kbox delete -f app.yaml
  kbox delete deploy/web svc/web -n shop
  kbox delete pods -l app=web --wait=false
  kbox delete pods --all --now
  kbox delete deployment web --cascade=orphan
\b
Without objects, deletes a whole cluster:
  kbox delete --profile dev                 # the profile's process, containers and state
  kbox delete --all                         # every profile
"""

# kubectl's older boolean values: --cascade=true is background, --cascade=false is orphan.
_POLICIES = {
    "background": "Background",
    "foreground": "Foreground",
    "orphan": "Orphan",
    "true": "Background",
    "false": "Orphan",
}


@click.command("delete", epilog=EXAMPLES)
@click.argument("args", nargs=-1)
@click.option(
    "-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-", help="Objects in manifests."
)
@click.option("-R", "--recursive", is_flag=True, help="Read directories given to -f recursively.")
@click.option(
    "-l", "--selector", default=None, help="Delete the TYPE's objects matching this label selector."
)
@click.option(
    "--all", "all_objects", is_flag=True, help="Every object of the TYPE (without a TYPE: every profile)."
)
@click.option("--ignore-not-found", is_flag=True, help="An object that does not exist is not an error.")
@session.bool_option(
    "--wait", default=True, help="Wait until the objects are gone (--wait=false: return at once)."
)
@click.option("--timeout", default="0s", show_default=True, help="How long to wait; 0 means a week.")
@click.option(
    "--grace-period", type=int, default=-1, help="Seconds a pod gets to stop (-1: its own setting)."
)
@click.option("--now", is_flag=True, help="Same as --grace-period=1.")
@click.option(
    "--force", is_flag=True, help="Remove at once (grace period 0) without waiting for the kubelet."
)
@click.option(
    "--cascade",
    type=click.Choice(["background", "foreground", "orphan", "true", "false"]),
    default="background",
    is_flag=False,
    flag_value="background",
    show_default=True,
    help="What happens to dependents: deleted in the background, first (foreground), or kept (orphan).",
)
@click.option("-o", "--output", type=click.Choice(["name"]), default=None, help="name: print TYPE/NAME only.")
@session.namespace_options
@session.profile_option
@click.pass_context
def delete(
    ctx: click.Context,
    args: tuple[str, ...],
    filenames: tuple[str, ...],
    recursive: bool,
    selector: str | None,
    all_objects: bool,
    ignore_not_found: bool,
    wait: bool,
    timeout: str,
    grace_period: int,
    now: bool,
    force: bool,
    cascade: str,
    output: str | None,
    namespace: str | None,
    all_namespaces: bool,
    profile: str | None,
) -> None:
    """Delete objects (by file, TYPE NAME, TYPE/NAME, -l or --all), or a whole profile."""
    if not args and not filenames:
        if selector:
            raise CommandError("resource(s) were provided, but no name was specified")
        ctx.invoke(lifecycle.delete, profile=profile, all_profiles=all_objects)
        return
    if all_objects and selector:
        raise CommandError("cannot set --all and --selector at the same time")
    if now:
        if grace_period != -1:
            raise CommandError("--now and --grace-period cannot be specified together")
        grace_period = 1
    if grace_period == 0 and not force:
        grace_period = 1  # kubectl: a zero grace period needs --force
    if force and grace_period < 0:
        grace_period = 0
    if force and grace_period > 0:
        raise CommandError("--force and --grace-period greater than 0 cannot be specified together")
    if grace_period == 0:
        click.echo(
            "Warning: Immediate deletion does not wait for confirmation that the running resource has been "
            "terminated. The resource may continue to run on the cluster indefinitely.",
            err=True,
        )
    seconds = parse_duration(timeout) or 7 * 24 * 3600.0  # kubectl: 0 means a week
    named = targets.Named(args, namespace, all_namespaces, selector, all_objects, filenames, recursive)
    options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if grace_period >= 0:
        options["gracePeriodSeconds"] = grace_period
    options["propagationPolicy"] = _POLICIES[cascade]
    failed = manifests.run(
        _delete_all(
            named,
            options,
            ignore_not_found=ignore_not_found,
            wait_seconds=seconds if wait else None,
            output=output,
            profile=profile,
        )
    )
    if failed:
        raise click.exceptions.Exit(1)


async def _delete_all(
    named: targets.Named,
    options: dict[str, Any],
    *,
    ignore_not_found: bool,
    wait_seconds: float | None,
    output: str | None,
    profile: str | None,
) -> bool:
    """DELETE each object with ``options``, then (unless ``wait_seconds`` is None) wait until all are gone."""
    failed = False
    forced = options.get("gracePeriodSeconds") == 0
    async with session.connect(profile) as api:
        found = await named.find(api)
        deleted: list[tuple[targets.Target, str | None]] = []
        for target in found:
            try:
                answer = await api.request("DELETE", target.path(), body=options)
            except StatusError as exc:
                if exc.code == 404 and ignore_not_found:
                    continue
                click.echo(manifests.server_error(exc), err=True)
                failed = True
                continue
            if output == "name":
                click.echo(target.ref)
            else:
                click.echo(
                    f'{target.info.kind_name} "{target.name}" {"force deleted" if forced else "deleted"}'
                )
            deleted.append((target, _uid(answer)))
        if not found and not failed:
            click.echo("No resources found")
        if wait_seconds is not None and deleted:
            deadline = asyncio.get_running_loop().time() + wait_seconds
            for target, uid in deleted:
                try:
                    async with asyncio.timeout_at(deadline):
                        await wait.wait_deleted(api, *target, uid)
                except TimeoutError:
                    click.echo(wait.timed_out(target), err=True)
                    failed = True
                    break
    return failed


def _uid(answer: Any) -> str | None:
    """The deleted object's uid: from the object, or from a Status's details."""
    if not isinstance(answer, dict):
        return None
    if answer.get("kind") == "Status":
        uid = (answer.get("details") or {}).get("uid")
    else:
        uid = (answer.get("metadata") or {}).get("uid")
    return str(uid) if uid else None
