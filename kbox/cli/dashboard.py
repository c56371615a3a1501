"""``kbox dashboard``: open the cluster's web UI, logged in, as ``minikube dashboard`` does.

The dashboard addon is enabled first when it is off (a patch of ``kube-system/kbox-addons``, as
``kbox addons enable dashboard`` does). The dashboard records its URL in ``kube-system/kbox-dashboard``;
this command reads it, waits until the server answers, and asks it for a one-time login link with the
profile's token (``POST /_/tickets``). The link logs one browser in, once, within a minute; the token
itself never goes into a URL. ``--url`` prints the link only; otherwise it is opened in the default
browser when there is one, and printed either way.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import webbrowser
from typing import Any

import aiohttp
import click

from kbox.addons import manager
from kbox.addons.dashboard import NAMESPACE, RECORD
from kbox.cli.kube import session
from kbox.client.interface import CONFIGMAPS, StatusError

WAIT = 60.0


async def _enable_if_off(api: session.Api) -> bool:
    """Turn the addon on when it is off; True when it had to be."""
    try:
        current: Any = await api.client.get(CONFIGMAPS, manager.CONFIGMAP, namespace=manager.NAMESPACE)
    except StatusError as exc:
        if exc.code != 404:
            raise
        current = None
    if str(((current or {}).get("data") or {}).get("dashboard", "")).lower() == "true":
        return False
    patch = {"data": {"dashboard": "true"}}
    if current is None:
        body = {"metadata": {"name": manager.CONFIGMAP, "namespace": manager.NAMESPACE}, **patch}
        await api.client.create(CONFIGMAPS, body, namespace=manager.NAMESPACE)
    else:
        await api.client.patch(CONFIGMAPS, manager.CONFIGMAP, patch, namespace=manager.NAMESPACE)
    return True


async def _recorded_url(api: session.Api) -> str | None:
    try:
        record: Any = await api.client.get(CONFIGMAPS, RECORD, namespace=NAMESPACE)
    except StatusError as exc:
        if exc.code != 404:
            raise
        return None
    return str(((record or {}).get("data") or {}).get("url") or "") or None


async def _login_link(profile: str | None, within: float) -> str:
    async with session.connect(profile) as api:
        if await _enable_if_off(api):
            click.echo("enabling the dashboard addon", err=True)
        token = api.profile.token_file.read_text().strip()
        deadline = time.monotonic() + within
        problem = "the dashboard has not recorded its address yet"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while time.monotonic() < deadline:
                url = await _recorded_url(api)
                if url is not None:
                    try:
                        async with http.post(
                            url.rstrip("/") + "/_/tickets", headers={"Authorization": f"Bearer {token}"}
                        ) as resp:
                            body = await resp.json(content_type=None)
                            if resp.status == 200 and isinstance(body, dict) and body.get("path"):
                                return url.rstrip("/") + str(body["path"])
                            problem = f"the dashboard at {url} answered {resp.status}: {body.get('message')}"
                    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                        problem = f"the dashboard at {url} does not answer ({exc or type(exc).__name__})"
                await asyncio.sleep(0.2)
        raise click.ClickException(f"{problem} after {within:g}s; see kbox get pods -n kube-system")


def _has_browser() -> bool:
    if sys.platform == "darwin" or os.name == "nt":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@click.command()
@click.option("--url", "url_only", is_flag=True, help="Print the login URL; do not open a browser.")
@click.option(
    "--wait", default=WAIT, show_default=True, metavar="SECONDS", help="How long to wait for the dashboard."
)
@session.profile_option
def dashboard(url_only: bool, wait: float, profile: str | None) -> None:
    """Open the cluster's dashboard in a browser, logged in (enables the addon when it is off).

    The link logs one browser in once, within a minute; run the command again for another.

    \b
    Examples:
      kbox dashboard
      kbox dashboard --url -p dev
    """
    link = session.run(_login_link(profile, wait))
    if url_only:
        click.echo(link)
        return
    opened = False
    if _has_browser():
        try:
            opened = webbrowser.open(link)
        except webbrowser.Error:
            opened = False
    if opened:
        click.echo(f"Opening the dashboard in your default browser: {link}")
    else:
        click.echo(f"Open the dashboard at (one-time login link, valid for a minute): {link}")
