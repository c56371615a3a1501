"""``kbox scale``: set the replicas of deployments, replicasets and statefulsets through ``/scale``.

Like kubectl, it reads the object's ``Scale`` subresource, checks the ``--current-replicas`` and
``--resource-version`` preconditions against it (``error: Expected replicas to be 3, was 2``), then
writes the new ``spec.replicas``: with a precondition by a PUT carrying the resourceVersion that was
checked (so a concurrent change is a 409 Conflict, not a silent overwrite), otherwise by a merge patch.
Any resource with a ``scale`` subresource works (custom resources too); one without says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from kbox.api.errors import StatusError
from kbox.cli.kube import manifests, session, targets
from kbox.cli.kube.manifests import CommandError
from kbox.client.interface import MERGE_PATCH

EXAMPLES = """
\b
Examples:
  kbox scale deployment/web --replicas=3
  kbox scale deploy web api --replicas=0 -n shop
  kbox scale --current-replicas=2 --replicas=3 deployment/web
  kbox scale statefulset -l app=db --replicas=1
"""


@click.command("scale", epilog=EXAMPLES)
@click.argument("args", nargs=-1)
@click.option("--replicas", type=click.IntRange(min=0), required=True, help="The new number of replicas.")
@click.option("--current-replicas", type=int, default=-1, help="Only scale if the current replicas are this.")
@click.option("--resource-version", default="", help="Only scale if the object is at this resourceVersion.")
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE", help="Objects in manifests.")
@click.option("-R", "--recursive", is_flag=True, help="Read directories given to -f recursively.")
@click.option("-l", "--selector", default=None, help="Scale the TYPE's objects matching this label selector.")
@click.option("--all", "all_objects", is_flag=True, help="Every object of the TYPE in the namespace.")
@click.option("-o", "--output", type=click.Choice(["name"]), default=None, help="name: print TYPE/NAME only.")
@session.namespace_options
@session.profile_option
def scale(
    args: tuple[str, ...],
    replicas: int,
    current_replicas: int,
    resource_version: str,
    filenames: tuple[str, ...],
    recursive: bool,
    selector: str | None,
    all_objects: bool,
    output: str | None,
    namespace: str | None,
    all_namespaces: bool,
    profile: str | None,
) -> None:
    """Set the number of replicas of deployments, replicasets or statefulsets."""
    named = targets.Named(args, namespace, all_namespaces, selector, all_objects, filenames, recursive)
    preconditions = Preconditions(current_replicas, resource_version)
    if manifests.run(_scale_all(named, replicas, preconditions, output, profile)):
        raise click.exceptions.Exit(1)


@dataclass(frozen=True)
class Preconditions:
    """What the object's Scale must show before it is written (-1 / empty: no check)."""

    current_replicas: int = -1
    resource_version: str = ""

    def __bool__(self) -> bool:
        return self.current_replicas >= 0 or bool(self.resource_version)


async def _scale_all(
    named: targets.Named, replicas: int, preconditions: Preconditions, output: str | None, profile: str | None
) -> bool:
    failed = False
    async with session.connect(profile) as api:
        found = await named.find(api)
        if not found:
            raise CommandError("no objects passed to scale")
        if len(found) > 1 and preconditions:
            raise CommandError("--current-replicas and --resource-version need exactly one object")
        for target in found:
            try:
                await scale_one(
                    api,
                    *target,
                    replicas,
                    current_replicas=preconditions.current_replicas,
                    resource_version=preconditions.resource_version,
                )
            except StatusError as exc:
                click.echo(manifests.server_error(exc), err=True)
                failed = True
                continue
            except CommandError as exc:
                click.echo(f"error: {exc.format_message()}", err=True)
                failed = True
                continue
            click.echo(target.ref if output == "name" else f"{target.ref} scaled")
    return failed


async def scale_one(
    api: session.Api,
    info: session.ResourceInfo,
    namespace: str | None,
    name: str,
    replicas: int,
    *,
    current_replicas: int = -1,
    resource_version: str = "",
) -> dict[str, Any]:
    """Write ``spec.replicas`` of one object's Scale, after checking the preconditions."""
    path = info.path(namespace, name, "scale")
    try:
        current: dict[str, Any] = await api.request("GET", path)
    except StatusError as exc:
        if exc.code != 404:
            raise
        await api.request("GET", info.path(namespace, name))  # a missing object: its own NotFound
        raise CommandError(
            f"cannot scale {info.qualified}: the server offers no scale subresource for it"
        ) from None
    if current_replicas >= 0:
        have = int((current.get("spec") or {}).get("replicas") or 0)
        if have != current_replicas:
            raise CommandError(f"Expected replicas to be {current_replicas}, was {have}")
    if resource_version:
        have_version = (current.get("metadata") or {}).get("resourceVersion", "")
        if have_version != resource_version:
            raise CommandError(f"Expected resourceVersion to be {resource_version}, was {have_version}")
    if current_replicas >= 0 or resource_version:
        body = {**current, "spec": {**(current.get("spec") or {}), "replicas": replicas}}
        result: dict[str, Any] = await api.request("PUT", path, body=body)
        return result
    patched: dict[str, Any] = await api.request(
        "PATCH", path, body={"spec": {"replicas": replicas}}, content_type=MERGE_PATCH
    )
    return patched
