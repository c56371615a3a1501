"""``kbox cordon``, ``kbox uncordon`` and ``kbox drain``: taking a node out of service as kubectl does.

``cordon``/``uncordon`` set or clear the node's ``spec.unschedulable`` (``node/n cordoned``,
``node/n already cordoned``). ``drain`` cordons, then lists the node's pods and sorts them as kubectl's
drain helper does: mirror pods are skipped; DaemonSet pods are refused unless ``--ignore-daemonsets``
(then left running: their controller would put them straight back); pods without a controller are
refused unless ``--force`` (nothing would recreate them); pods with ``emptyDir`` volumes are refused
unless ``--delete-emptydir-data`` (that data is lost). Finished pods always go. If any pod is refused
nothing is evicted, and the error names every refused pod.

The rest are evicted through ``pods/<name>/eviction``, all at once, so PodDisruptionBudgets decide: a
429 (the budget allows no disruption now) is printed and retried every 5 seconds, as kubectl does.
Then drain waits until each pod is gone (or replaced by a pod of the same name with another uid), and
prints ``pod/x evicted``, then ``node/n drained``. ``--disable-eviction`` deletes instead (bypassing
budgets); ``--timeout`` bounds the whole wait; ``--grace-period`` overrides the pods' own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from kbox.api.errors import StatusError
from kbox.cli.kube import manifests, session, wait
from kbox.cli.kube.manifests import CommandError
from kbox.client.interface import STRATEGIC_PATCH

Obj = dict[str, Any]
NODES = "/api/v1/nodes"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
RETRY_DELAY = 5.0
POLL_INTERVAL = 0.25  # kubectl polls every second; a local cluster answers faster
DAEMONSET_FATAL = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "Pods with local storage (use --delete-emptydir-data to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
# kubectl 1.32 words this one with its own "cannot delete" (so its error reads "cannot delete cannot
# delete Pods that ..."); kbox matches the version it is compared with.
UNMANAGED_FATAL = "cannot delete Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"
DRY_RUN_HELP = "client: only print what would be done; server: the server checks but does not persist."


class DrainError(Exception):
    """A node that could not be drained, with each reason (kubectl aggregates them)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(reasons[0] if len(reasons) == 1 else f"[{', '.join(reasons)}]")
        self.reasons = reasons


def go_duration(seconds: float) -> str:
    """A duration as Go prints a ``time.Duration`` (``5s``, ``1m30s``, ``1h0m0s``)."""
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


# -- cordon / uncordon ---------------------------------------------------------------------------------


async def _nodes(api: session.Api, names: tuple[str, ...], selector: str | None) -> list[Obj]:
    """The nodes named (or matching ``selector``), with kubectl's error for a missing one."""
    if names and selector:
        raise CommandError("cannot specify both a node name and a --selector option")
    if selector:
        listing = await api.request("GET", NODES, params={"labelSelector": selector})
        return list(listing.get("items") or [])
    if not names:
        raise CommandError("you must specify at least one node")
    return [await api.request("GET", f"{NODES}/{name}") for name in names]


async def set_unschedulable(api: session.Api, nodes: list[Obj], desired: bool, dry_run: str) -> None:
    """Cordon (``desired``) or uncordon each node, printing kubectl's line for each."""
    for node in nodes:
        name = (node.get("metadata") or {}).get("name", "")
        if bool((node.get("spec") or {}).get("unschedulable")) == desired:
            click.echo(f"node/{name} already {'cordoned' if desired else 'uncordoned'}")
            continue
        if dry_run != "client":
            params = {"dryRun": "All"} if dry_run == "server" else None
            body = {"spec": {"unschedulable": True if desired else None}}
            await api.request(
                "PATCH", f"{NODES}/{name}", params=params, body=body, content_type=STRATEGIC_PATCH
            )
        suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
        click.echo(f"node/{name} {'cordoned' if desired else 'uncordoned'}{suffix}")


def _cordon_command(desired: bool) -> click.Command:
    word = "cordon" if desired else "uncordon"

    @click.command(word, epilog=manifests.examples(f"kbox {word} worker-1", f"kbox {word} -l pool=spare"))
    @click.argument("names", nargs=-1)
    @click.option("-l", "--selector", default=None, help="Nodes matching this label selector.")
    @session.dry_run_option(DRY_RUN_HELP)
    @session.profile_option
    def command(names: tuple[str, ...], selector: str | None, dry_run: str, profile: str | None) -> None:
        async def main() -> None:
            async with session.connect(profile) as api:
                await set_unschedulable(api, await _nodes(api, names, selector), desired, dry_run)

        manifests.run(main())

    command.help = (
        "Mark a node unschedulable: no new pods go there (running ones stay)."
        if desired
        else "Mark a node schedulable again."
    )
    return command


cordon = _cordon_command(True)
uncordon = _cordon_command(False)


# -- drain ---------------------------------------------------------------------------------------------


def _controller(pod: Obj) -> Obj | None:
    owners = (pod.get("metadata") or {}).get("ownerReferences") or []
    return next((o for o in owners if o.get("controller")), None)


def _finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


async def classify(api: session.Api, pod: Obj, options: DrainOptions) -> tuple[bool, str, str]:
    """kubectl's drain filters: (evict it?, "warning"/"error"/"" , message)."""
    meta = pod.get("metadata") or {}
    owner = _controller(pod)
    if (
        owner
        and (owner.get("apiVersion"), owner.get("kind")) == ("apps/v1", "DaemonSet")
        and not _finished(pod)
    ):
        try:
            await api.request(
                "GET", f"/apis/apps/v1/namespaces/{meta.get('namespace')}/daemonsets/{owner['name']}"
            )
        except StatusError as exc:
            if exc.code == 404 and options.force:
                return True, "warning", exc.message
            return False, "error", exc.message
        if not options.ignore_daemonsets:
            return False, "error", DAEMONSET_FATAL
        return False, "warning", DAEMONSET_WARNING
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return False, "", ""
    status: tuple[bool, str, str] = (True, "", "")
    volumes = (pod.get("spec") or {}).get("volumes") or []
    if any("emptyDir" in v for v in volumes) and not _finished(pod):
        if not options.delete_emptydir_data:
            return False, "error", LOCAL_STORAGE_FATAL
        status = (True, "warning", LOCAL_STORAGE_WARNING)
    if not _finished(pod) and owner is None:
        if not options.force:
            return False, "error", UNMANAGED_FATAL
        status = (True, "warning", UNMANAGED_WARNING)
    return status


class DrainOptions:
    """What ``kbox drain`` was asked to do."""

    def __init__(self, **flags: Any) -> None:
        self.force: bool = flags["force"]
        self.ignore_daemonsets: bool = flags["ignore_daemonsets"]
        self.delete_emptydir_data: bool = flags["delete_emptydir_data"]
        self.disable_eviction: bool = flags["disable_eviction"]
        self.grace_period: int = flags["grace_period"]
        self.timeout: float = flags["timeout"]
        self.pod_selector: str | None = flags["pod_selector"]
        self.dry_run: str = flags["dry_run"]

    def delete_options(self) -> Obj:
        options: Obj = {}
        if self.grace_period >= 0:
            options["gracePeriodSeconds"] = self.grace_period
        if self.dry_run == "server":
            options["dryRun"] = ["All"]
        return options


async def pods_to_delete(
    api: session.Api, node: str, options: DrainOptions, *, warn: bool = True
) -> list[Obj]:
    """The node's pods drain removes; prints the warnings, raises naming every refused pod."""
    params = {"fieldSelector": f"spec.nodeName={node}"}
    if options.pod_selector:
        params["labelSelector"] = options.pod_selector
    listing = await api.request("GET", "/api/v1/pods", params=params)
    chosen: list[Obj] = []
    warnings: dict[str, list[str]] = {}
    errors: dict[str, list[str]] = {}
    for pod in listing.get("items") or []:
        meta = pod.get("metadata") or {}
        evict, level, message = await classify(api, pod, options)
        ref = f"{meta.get('namespace')}/{meta.get('name')}"
        if level == "warning":
            warnings.setdefault(message, []).append(ref)
        elif level == "error":
            errors.setdefault(message or "unexpected error", []).append(ref)
        if evict:
            chosen.append(pod)
    if errors:
        texts = [f"cannot delete {msg}: {', '.join(refs)}" for msg, refs in sorted(errors.items())]
        raise DrainError(texts)
    if warnings and warn:
        text = "; ".join(f"{msg}: {', '.join(refs)}" for msg, refs in sorted(warnings.items()))
        click.echo(f"Warning: {text}", err=True)
    return chosen


async def _gone(api: session.Api, pod: Obj) -> bool:
    meta = pod.get("metadata") or {}
    try:
        fresh = await api.request("GET", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}")
    except StatusError as exc:
        if exc.code == 404:
            return True
        raise
    return bool((fresh.get("metadata") or {}).get("uid") != meta.get("uid"))


async def _evict_one(api: session.Api, pod: Obj, options: DrainOptions, waiting: set[str]) -> None:
    """Evict (or delete) one pod, retrying while a budget refuses, then wait until it is gone (its uid
    is in ``waiting`` meanwhile, so a timeout can say which stage it stopped at)."""
    meta = pod.get("metadata") or {}
    name, ns = meta.get("name", ""), meta.get("namespace", "")
    path = f"/api/v1/namespaces/{ns}/pods/{name}"
    if options.disable_eviction:
        try:
            await api.request("DELETE", path, body=options.delete_options() or None)
        except StatusError as exc:
            if exc.code != 404:
                raise CommandError(exc.message) from None
    else:
        while True:
            click.echo(
                f"evicting pod {ns}/{name}{' (server dry run)' if options.dry_run == 'server' else ''}"
            )
            body = {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": name, "namespace": ns},
                "deleteOptions": options.delete_options(),
            }
            try:
                await api.request("POST", f"{path}/eviction", body=body)
                break
            except StatusError as exc:
                if exc.code == 404:
                    return
                if exc.code != 429:
                    raise CommandError(
                        f'error when evicting pods/"{name}" -n "{ns}": {exc.message}'
                    ) from None
                click.echo(
                    f'error when evicting pods/"{name}" -n "{ns}" (will retry after '
                    f"{go_duration(RETRY_DELAY)}): {exc.message}",
                    err=True,
                )
                await asyncio.sleep(RETRY_DELAY)
    if options.dry_run == "server":
        return
    waiting.add(meta.get("uid", ""))
    while True:  # poll each pod until it is gone, as kubectl does
        if await _gone(api, pod):
            break
        await asyncio.sleep(POLL_INTERVAL)
    click.echo(f"pod/{name} {'deleted' if options.disable_eviction else 'evicted'}")


async def evict_all(api: session.Api, pods: list[Obj], options: DrainOptions) -> None:
    """Evict every pod concurrently (as kubectl does: one budget's refusals do not hold up the others);
    the errors of all of them are reported together."""
    errors: list[str] = []
    done: set[str] = set()
    waiting: set[str] = set()

    async def one(pod: Obj) -> None:
        try:
            await _evict_one(api, pod, options, waiting)
        except CommandError as exc:
            errors.append(exc.message)
        except StatusError as exc:
            errors.append(exc.message)
        done.add(pod["metadata"]["uid"])

    try:
        async with asyncio.timeout(options.timeout or None), asyncio.TaskGroup() as group:
            for pod in pods:
                group.create_task(one(pod), name=f"kbox/drain/{pod['metadata']['name']}")
    except TimeoutError:
        pending = [pod["metadata"] for pod in pods if pod["metadata"]["uid"] not in done]
        for meta in pending:
            name, ns = meta["name"], meta["namespace"]
            if meta["uid"] not in waiting:
                errors.append(
                    f'error when evicting pods/"{name}" -n "{ns}": '
                    f"global timeout reached: {go_duration(options.timeout)}"
                )
            elif options.disable_eviction:
                errors.append("context deadline exceeded")  # kubectl's words for a deletion not done in time
            else:
                errors.append(
                    f'error when waiting for pod "{name}" in namespace "{ns}" to terminate: '
                    "context deadline exceeded"
                )
    if errors:
        raise DrainError(errors)


@click.command(
    "drain",
    epilog=manifests.examples(
        "kbox drain worker-1 --ignore-daemonsets",
        "kbox drain worker-1 --ignore-daemonsets --delete-emptydir-data --force --timeout=2m",
        "kbox drain worker-1 --pod-selector=app=web --disable-eviction",
    ),
)
@click.argument("names", nargs=-1)
@click.option("-l", "--selector", default=None, help="Nodes matching this label selector.")
@click.option("--force", is_flag=True, help="Also delete pods no controller manages (they are lost).")
@click.option("--ignore-daemonsets", is_flag=True, help="Leave DaemonSet-managed pods running.")
@click.option("--delete-emptydir-data", is_flag=True, help="Also delete pods using emptyDir (data lost).")
@click.option("--disable-eviction", is_flag=True, help="Delete pods instead of evicting (budgets ignored).")
@click.option("--grace-period", type=int, default=-1, help="Seconds each pod gets (-1: its own).")
@click.option("--timeout", default="0s", show_default=True, help="How long to wait (0: no limit).")
@click.option("--pod-selector", default=None, help="Only pods matching this label selector.")
@session.dry_run_option(DRY_RUN_HELP)
@session.profile_option
def drain(names: tuple[str, ...], selector: str | None, profile: str | None, **flags: Any) -> None:
    """Cordon a node and evict its pods, so it can be taken down."""
    flags["timeout"] = wait.parse_duration(flags["timeout"])
    options = DrainOptions(**flags)

    async def main() -> list[tuple[str, DrainError]]:
        failed: list[tuple[str, DrainError]] = []
        async with session.connect(profile) as api:
            nodes = await _nodes(api, names, selector)
            await set_unschedulable(api, nodes, True, options.dry_run)
            for node in nodes:
                name = (node.get("metadata") or {}).get("name", "")
                try:
                    await drain_node(api, name, options)
                except DrainError as exc:
                    click.echo(
                        f'error: unable to drain node "{name}" due to error: {exc}, continuing command...',
                        err=True,
                    )
                    failed.append((name, exc))
                    continue
                suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(options.dry_run, "")
                click.echo(f"node/{name} drained{suffix}")
        return failed

    failed = manifests.run(main())
    if failed:
        click.echo("There are pending nodes to be drained:", err=True)
        for name, _ in failed:
            click.echo(f" {name}", err=True)
        for _, error in failed:  # as kubectl prints an aggregate error: a line each, no prefix
            for reason in error.reasons:
                click.echo(reason, err=True)
        raise click.exceptions.Exit(1)


async def drain_node(api: session.Api, name: str, options: DrainOptions) -> None:
    """Evict the pods of one (already cordoned) node and wait until they are gone."""
    pods = await pods_to_delete(api, name, options)
    if options.dry_run == "client":
        for pod in pods:
            meta = pod["metadata"]
            click.echo(f"evicting pod {meta['namespace']}/{meta['name']} (dry run)")
        return
    try:
        await evict_all(api, pods, options)
    except DrainError as exc:
        try:
            left = await pods_to_delete(api, name, options, warn=False)
        except DrainError:
            left = []
        if left:
            click.echo(f'There are pending pods in node "{name}" when an error occurred: {exc}', err=True)
            for pod in left:
                click.echo(f"pod/{pod['metadata']['name']}", err=True)
        raise
