"""``kbox apiserver``: the apiserver and its store in the foreground, with a kubeconfig for kubectl.

A stepping stone until ``kbox start`` runs the whole cluster: state (SQLite database, token,
kubeconfig) lives in ``$KBOX_HOME/<profile>/``; the token is generated on first start and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from pathlib import Path

import click

from kbox import kubeconfig as kubeconfig_file
from kbox.api.app import ApiSettings
from kbox.api.certs import ensure_certificates
from kbox.api.controlplane import ControlPlane
from kbox.cli.store import kbox_home
from kbox.config import StoreSettings


def load_token(directory: Path) -> str:
    """The cluster's bearer token, created (mode 0600) on first use."""
    path = directory / "token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


@click.command()
@click.option("--profile", default="kbox", show_default=True, help="Name of the cluster's state folder.")
@click.option("--port", default=6443, show_default=True, help="Port on 127.0.0.1 (0 picks a free one).")
def apiserver(profile: str, port: int) -> None:
    """Serve the Kubernetes API (with its store) in the foreground until Ctrl-C."""
    directory = kbox_home() / profile
    directory.mkdir(parents=True, exist_ok=True)
    asyncio.run(_serve(directory, profile, port))


async def _serve(directory: Path, profile: str, port: int) -> None:
    token = load_token(directory)
    tls = ensure_certificates(directory / "pki")
    plane = ControlPlane(
        StoreSettings(path=directory / "state.db"),
        ApiSettings(host="127.0.0.1", port=port, token=token, tls=tls),
    )
    try:
        await plane.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    kubeconfig = directory / "kubeconfig"
    kubeconfig_file.write(
        kubeconfig, kubeconfig_file.build(name=profile, url=plane.url, token=token, ca=tls.ca_pem())
    )
    click.echo(f"kbox apiserver on {plane.url} (state in {directory})")
    click.echo(f"  kubectl --kubeconfig {kubeconfig} get namespaces")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await plane.stop()
        click.echo("stopped")
