"""``kbox node list|add|stop|start|delete``: minikube's node commands for a running cluster.

Which nodes run is the ConfigMap ``kube-system/kbox-nodes`` (see :mod:`kbox.nodes`): each command is a
patch of it through the API, which the cluster's node manager carries out at once; the commands then
wait (``--wait`` seconds, 0: do not) until the cluster shows the result. New nodes are named as minikube
names them, ``<profile>-m02``, ``<profile>-m03``...

Differences from minikube, where kbox has no machines: ``stop`` stops the node's kubelet only, so its
pods keep running (as when a machine's kubelet dies) and the node turns Unknown after the grace period,
then its pods are evicted as Kubernetes does; the control-plane node may be stopped (the control plane
itself keeps running in the kbox process) but not deleted.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import time
from typing import Any

import click

from kbox import nodes, profile
from kbox.api.objects import parse_timestamp
from kbox.cli.kube import session
from kbox.client.interface import CONFIGMAPS, LEASES, NODES, StatusError

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@click.group(name="node")
def node() -> None:
    """Add, stop, start, delete and list the nodes of a running cluster.

    \b
    Examples:
      kbox node list
      kbox node add                 # a new node <profile>-m0N
      kbox node stop kbox-m02       # its kubelet stops; pods move after the grace period
      kbox node start kbox-m02
      kbox node delete kbox-m02
    """


_wait_option = click.option(
    "--wait",
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long for the cluster to carry it out (0: do not wait).",
)


class _View:
    """The profile's nodes as the ConfigMap wants them and as the API shows them."""

    def __init__(self, api: session.Api, configmap: Any, objects: dict[str, Any]) -> None:
        settings = api.profile.load_settings()
        initial = profile.node_names(api.profile.name, settings.nodes if settings else 1)
        self.profile = api.profile.name
        self.wanted = nodes.desired(configmap, initial)
        self.objects = objects

    def present(self) -> list[str]:
        names = [n for n, state in self.wanted.items() if state != nodes.DELETED]
        return sorted({*names, *self.objects}, key=_order)

    def check(self, name: str) -> None:
        if name not in self.present():
            known = ", ".join(self.present()) or "none"
            raise click.ClickException(f"no node {name!r} in profile {self.profile!r}; nodes: {known}")


async def _view(api: session.Api) -> _View:
    try:
        configmap: Any = await api.client.get(CONFIGMAPS, nodes.CONFIGMAP, namespace=nodes.NAMESPACE)
    except StatusError as exc:
        if exc.code != 404:
            raise
        configmap = None
    listing = await api.client.list(NODES)
    return _View(api, configmap, {n["metadata"]["name"]: n for n in listing["items"]})


async def _set(api: session.Api, name: str, state: str) -> None:
    patch = {"data": {name: state}}
    try:
        await api.client.patch(CONFIGMAPS, nodes.CONFIGMAP, patch, namespace=nodes.NAMESPACE)
    except StatusError as exc:
        if exc.code != 404:
            raise
        body = {"metadata": {"name": nodes.CONFIGMAP, "namespace": nodes.NAMESPACE}, **patch}
        await api.client.create(CONFIGMAPS, body, namespace=nodes.NAMESPACE)


def _order(name: str) -> tuple[int, str]:
    match = re.search(r"-m(\d+)$", name)
    return (int(match.group(1)) if match else 1, name)


def _ready(obj: Any) -> str:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            status = condition.get("status")
            return "Ready" if status == "True" else "NotReady" if status == "False" else "Unknown"
    return "Unknown"


async def _until(api: session.Api, within: float, what: str, done: Any) -> None:
    """Poll ``done(api)`` until true; after ``within`` seconds fail with one line naming ``what``."""
    deadline = time.monotonic() + within
    while not await done(api):
        if time.monotonic() > deadline:
            raise click.ClickException(f"{what} after {within:g}s (see kbox logs / kbox status)")
        await asyncio.sleep(0.2)


def _running_since(name: str, since: datetime.datetime) -> Any:
    """The node is Ready and its kubelet renewed the Lease after ``since`` (a kubelet runs now)."""

    async def check(api: session.Api) -> bool:
        try:
            obj = await api.client.get(NODES, name)
            lease = await api.client.get(LEASES, name, namespace="kube-node-lease")
        except StatusError as exc:
            if exc.code == 404:
                return False
            raise
        renewed = str((lease.get("spec") or {}).get("renewTime") or "")
        annotations = obj["metadata"].get("annotations") or {}
        return (
            _ready(obj) == "Ready"
            and nodes.STOPPED_ANNOTATION not in annotations
            and bool(renewed)
            and parse_timestamp(renewed) >= since
        )

    return check


@node.command(name="list")
@session.profile_option
def list_nodes(profile: str | None) -> None:
    """List the nodes: kubelet state, Ready status, role and address.

    \b
    Examples:
      kbox node list
      kbox node list -p dev
    """

    async def main() -> _View:
        async with session.connect(profile) as api:
            return await _view(api)

    view = session.run(main())
    rows = [("NAME", "KUBELET", "STATUS", "ROLES", "INTERNAL-IP")]
    for name in view.present():
        obj = view.objects.get(name) or {}
        labels = (obj.get("metadata") or {}).get("labels") or {}
        address = next(
            (
                a["address"]
                for a in (obj.get("status") or {}).get("addresses") or []
                if a.get("type") == "InternalIP"
            ),
            "<none>",
        )
        rows.append(
            (
                name,
                view.wanted.get(name, "<unmanaged>"),
                _ready(obj) if obj else "<no Node>",
                "control-plane" if CONTROL_PLANE_LABEL in labels else "<none>",
                address,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@node.command()
@click.argument("name", required=False)
@session.profile_option
@_wait_option
def add(name: str | None, profile: str | None, wait: float) -> None:
    """Add a node (default name: the next free <profile>-m0N) and wait until it is Ready.

    \b
    Examples:
      kbox node add
      kbox node add kbox-m05
    """

    async def main() -> str:
        async with session.connect(profile) as api:
            view = await _view(api)
            present = view.present()
            chosen = name or _next_name(view.profile, present)
            if not _NAME.match(chosen):
                raise click.ClickException(
                    f"invalid node name {chosen!r}: use lower-case letters, digits and '-'"
                )
            if chosen in present:
                raise click.ClickException(f"node {chosen!r} already exists")
            since = _now()
            await _set(api, chosen, nodes.RUNNING)
            if wait > 0:
                await _until(api, wait, f"node {chosen} was not Ready", _running_since(chosen, since))
            return chosen

    click.echo(f"node {session.run(main())} added")


def _next_name(profile_name: str, present: list[str]) -> str:
    index = 2
    while f"{profile_name}-m{index:02d}" in present:
        index += 1
    return f"{profile_name}-m{index:02d}"


def _now() -> datetime.datetime:
    # Lease renewTime has microseconds; a second of slack covers a request racing the clock's edge.
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)


@node.command()
@click.argument("name")
@session.profile_option
@_wait_option
def stop(name: str, profile: str | None, wait: float) -> None:
    """Stop a node's kubelet. Its pods keep running; after the grace period the node turns Unknown
    and its pods are evicted to other nodes (their tolerations permitting).

    \b
    Examples:
      kbox node stop kbox-m02
    """

    async def main() -> str:
        async with session.connect(profile) as api:
            view = await _view(api)
            view.check(name)
            if view.wanted.get(name) == nodes.STOPPED:
                return f"node {name} is already stopped"
            await _set(api, name, nodes.STOPPED)

            async def stopped(api: session.Api) -> bool:
                try:
                    obj = await api.client.get(NODES, name)
                except StatusError as exc:
                    if exc.code == 404:
                        return True
                    raise
                return nodes.STOPPED_ANNOTATION in (obj["metadata"].get("annotations") or {})

            if wait > 0:
                await _until(api, wait, f"the kubelet of node {name} did not stop", stopped)
            return f"node {name} stopped"

    click.echo(session.run(main()))


@node.command()
@click.argument("name")
@session.profile_option
@_wait_option
def start(name: str, profile: str | None, wait: float) -> None:
    """Start a stopped node's kubelet again (it adopts the pods still running) and wait until Ready.

    \b
    Examples:
      kbox node start kbox-m02
    """

    async def main() -> str:
        async with session.connect(profile) as api:
            view = await _view(api)
            view.check(name)
            obj = view.objects.get(name) or {}
            stopped = nodes.STOPPED_ANNOTATION in ((obj.get("metadata") or {}).get("annotations") or {})
            if view.wanted.get(name) == nodes.RUNNING and not stopped and _ready(obj) == "Ready":
                return f"node {name} is already running"
            since = _now()
            await _set(api, name, nodes.RUNNING)
            if wait > 0:
                await _until(api, wait, f"node {name} was not Ready", _running_since(name, since))
            return f"node {name} started"

    click.echo(session.run(main()))


@node.command()
@click.argument("name")
@session.profile_option
@_wait_option
def delete(name: str, profile: str | None, wait: float) -> None:
    """Delete a node without draining it: its kubelet stops, its pods' containers are removed and
    its pods and Node object deleted (controllers recreate the pods elsewhere). The control-plane
    node cannot be deleted (kbox delete removes the whole cluster).

    \b
    Examples:
      kbox node delete kbox-m02
    """

    async def main() -> str:
        async with session.connect(profile) as api:
            view = await _view(api)
            view.check(name)
            labels = ((view.objects.get(name) or {}).get("metadata") or {}).get("labels") or {}
            if CONTROL_PLANE_LABEL in labels or name == view.profile:
                raise click.ClickException(
                    f"cannot delete the control-plane node {name!r} (kbox delete removes the whole cluster)"
                )
            await _set(api, name, nodes.DELETED)

            async def gone(api: session.Api) -> bool:
                try:
                    await api.client.get(NODES, name)
                except StatusError as exc:
                    if exc.code == 404:
                        return True
                    raise
                return False

            if wait > 0:
                await _until(api, wait, f"node {name} was not deleted", gone)
            return f"node {name} deleted"

    click.echo(session.run(main()))
