"""``kbox addons list|enable|disable``: minikube's addon commands for a running cluster.

The enabled set is the ConfigMap ``kube-system/kbox-addons`` (see kbox.addons.manager): enabling or
disabling is a patch of it through the API, and the cluster's addon manager starts or stops the
addon's components at once, no restart. ``enable`` waits (``--wait``, default on) until the addon's
pods in kube-system are Running and Ready, so a script can use the addon right after.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import click

from kbox.addons import catalog, manager
from kbox.api.nodeconnection import MIRROR_ANNOTATION
from kbox.cli.kube import session
from kbox.client.interface import CONFIGMAPS, PODS, StatusError


@click.group(name="addons")
def addons() -> None:
    """List, enable and disable addons of a running cluster (no restart needed).

    \b
    Examples:
      kbox addons list
      kbox addons disable dns
      kbox addons enable dns
    """


async def _enabled(api: session.Api) -> dict[str, bool]:
    try:
        configmap: Any = await api.client.get(CONFIGMAPS, manager.CONFIGMAP, namespace=manager.NAMESPACE)
    except StatusError as exc:
        if exc.code != 404:
            raise
        configmap = None
    data = (configmap or {}).get("data") or {}
    return {name: str(data.get(name, "")).lower() == "true" for name in catalog.addon_names()}


@addons.command(name="list")
@session.profile_option
def list_addons(profile: str | None) -> None:
    """Show every addon and whether it is enabled.

    \b
    Examples:
      kbox addons list
      kbox addons list -p dev
    """

    async def main() -> dict[str, bool]:
        async with session.connect(profile) as api:
            return await _enabled(api)

    enabled = session.run(main())
    width = max([len(n) for n in enabled] + [4])
    click.echo(f"{'NAME':<{width}}   STATUS     DESCRIPTION")
    for name in catalog.addon_names():
        state = "enabled" if enabled.get(name) else "disabled"
        click.echo(f"{name:<{width}}   {state:<8}   {catalog.description(name)}")


def _check(name: str) -> None:
    if name not in catalog.addon_names():
        known = ", ".join(catalog.addon_names()) or "none"
        raise click.ClickException(f"unknown addon {name!r}; known addons: {known}")


async def _set(profile: str | None, name: str, on: bool, wait: float) -> str:
    async with session.connect(profile) as api:
        before = await _enabled(api)
        patch = {"data": {name: "true" if on else "false"}}
        try:
            await api.client.patch(CONFIGMAPS, manager.CONFIGMAP, patch, namespace=manager.NAMESPACE)
        except StatusError as exc:
            if exc.code != 404:
                raise
            body = {"metadata": {"name": manager.CONFIGMAP, "namespace": manager.NAMESPACE}, **patch}
            await api.client.create(CONFIGMAPS, body, namespace=manager.NAMESPACE)
        if before.get(name) == on:
            return f"addon {name} is already {'enabled' if on else 'disabled'}"
        if wait > 0:
            await _wait_for_pods(api, catalog.components_of(name), present=on, within=wait)
        return f"addon {name} is {'enabled' if on else 'disabled'}"


async def _wait_for_pods(api: session.Api, components: list[str], *, present: bool, within: float) -> None:
    """Until the components' mirror pods are Running and Ready (or gone, when disabling)."""
    deadline = time.monotonic() + within
    while True:
        listing = await api.client.list(PODS, namespace=manager.NAMESPACE)
        ours = [
            p
            for p in listing["items"]
            if MIRROR_ANNOTATION in (p["metadata"].get("annotations") or {})
            and any(p["metadata"]["name"].startswith(c + "-") for c in components)
        ]
        done = (bool(ours) and all(_ready(p) for p in ours)) if present else not ours
        if done:
            return
        if time.monotonic() > deadline:
            state = "Running" if present else "gone"
            raise click.ClickException(f"the addon's pods were not {state} after {within:g}s")
        await asyncio.sleep(0.2)


def _ready(pod: Any) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )


_wait_option = click.option(
    "--wait",
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long for the addon's pods (0: do not wait).",
)


@addons.command()
@click.argument("name")
@session.profile_option
@_wait_option
def enable(name: str, profile: str | None, wait: float) -> None:
    """Enable an addon of the running cluster.

    \b
    Examples:
      kbox addons enable dns
    """
    _check(name)
    click.echo(session.run(_set(profile, name, True, wait)))


@addons.command()
@click.argument("name")
@session.profile_option
@_wait_option
def disable(name: str, profile: str | None, wait: float) -> None:
    """Disable an addon of the running cluster.

    \b
    Examples:
      kbox addons disable dns
    """
    _check(name)
    click.echo(session.run(_set(profile, name, False, wait)))


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    Examples:
      source <(kbox completion bash)            # in ~/.bashrc
      kbox completion zsh > "${fpath[1]}/_kbox"
      kbox completion fish > ~/.config/fish/completions/kbox.fish
    """
    from click.shell_completion import get_completion_class

    root = ctx.find_root().command
    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(root, {}, "kbox", "_KBOX_COMPLETE").source())
