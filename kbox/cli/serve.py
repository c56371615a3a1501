"""``kbox serve``: a whole cluster in the foreground, with a kubeconfig for kubectl.

A stepping stone until ``kbox start`` (background process, progress, profiles) exists: state
(SQLite database, token, certificates, kubeconfig) lives in ``$KBOX_HOME/<profile>/``; the token and
the TLS certificates are generated on first start, and the token is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING

import click

from kbox import componentlogs
from kbox import kubeconfig as kubeconfig_file
from kbox.addons.catalog import addon_names
from kbox.cli.store import kbox_home
from kbox.kubelet.runtime.interface import ContainerRuntimeError
from kbox.util import aiotasks, gctune

if TYPE_CHECKING:
    from kbox.cluster import ClusterSettings


@click.command()
@click.option(
    "--profile", default="kbox", show_default=True, help="Name of the cluster and its state folder."
)
@click.option("--port", default=6443, show_default=True, help="API port (0 picks a free one).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address the API listens on (0.0.0.0 in a container, published with -p 6443:6443).",
)
@click.option(
    "--runtime",
    type=click.Choice(["docker", "fake"]),
    default="docker",
    show_default=True,
    help="docker runs real containers; fake simulates them.",
)
@click.option(
    "--nodes",
    default=1,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="Kubelets to run (0: API only).",
)
@click.option(
    "--addons",
    default=None,
    metavar="LIST",
    help="Comma-separated addons to enable (the others are disabled); default: keep the cluster's choice.",
)
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(
    profile: str, port: int, host: str, runtime: str, nodes: int, addons: str | None, log_level: str
) -> None:
    """Run a cluster in the foreground until Ctrl-C."""
    from kbox.cluster import ClusterSettings  # the whole cluster: imported only by the command that runs it

    settings = ClusterSettings(
        name=profile,
        state_dir=kbox_home() / profile,
        runtime="fake" if runtime == "fake" else "docker",
        nodes=nodes,
        host=host,
        port=port,
        mirror_pods=True,
        kube_proxy=runtime == "docker",
        stop_pods=True,
        addons=addon_choice(addons),
    )
    buffers = componentlogs.configure(level=getattr(logging, log_level.upper()))
    asyncio.run(_serve(settings, buffers))


def addon_choice(value: str | None) -> dict[str, bool] | None:
    """``--addons dns,dashboard`` → every known addon on or off; unknown names are an error."""
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    known = sorted(addon_names())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown addon {unknown[0]!r}; known addons: {', '.join(known) or 'none'}", param_hint="--addons"
        )
    return {name: name in names for name in known}


async def _serve(settings: ClusterSettings, buffers: componentlogs.LogBuffers | None = None) -> None:
    from kbox.cluster import Cluster

    gctune.tune()
    cluster = Cluster(settings, logs=buffers)
    try:
        await cluster.start()
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
        ) from None
    except ContainerRuntimeError as exc:
        raise click.ClickException(
            f"the {settings.runtime} runtime is not usable: {exc}. Start Docker (scripts/ensure-docker.sh) "
            "or use --runtime fake."
        ) from None
    path = settings.state_dir / "kubeconfig"
    url = cluster.url.replace("://0.0.0.0:", "://127.0.0.1:")  # the certificate names 127.0.0.1
    config = kubeconfig_file.build(name=settings.name, url=url, token=cluster.token, ca=cluster.tls.ca_pem())
    kubeconfig_file.write(path, config)
    nodes = f"{settings.nodes} node(s), {settings.runtime} runtime"
    click.echo(f"kbox cluster {settings.name!r} on {cluster.url}: {nodes}")
    click.echo(f"  kubectl --kubeconfig {path} get nodes")
    freezer = aiotasks.create_guarded_task(gctune.freeze_periodically(), name="gc/freeze")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    stopping = asyncio.ensure_future(stop.wait())
    failing = asyncio.ensure_future(cluster.wait())
    failure = ""
    try:
        await asyncio.wait([stopping, failing], return_when=asyncio.FIRST_COMPLETED)
        if failing.done():
            state = failing.result()
            failure = f"{state.name} failed ({state.last.message if state.last else 'stopped'})"
            click.echo(f"kbox: {failure}; stopping the cluster", err=True)
    finally:
        stopping.cancel()
        failing.cancel()
        await aiotasks.stop([freezer], title="gc")
        await cluster.stop()
        click.echo("stopped")
    if failure:
        raise click.ClickException(f"the cluster stopped because {failure}")
