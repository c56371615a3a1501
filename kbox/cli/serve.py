"""``kbox serve``: a whole cluster in the foreground, with a kubeconfig for kubectl.

A stepping stone until ``kbox start`` (background process, progress, profiles) exists: state
(SQLite database, token, certificates, kubeconfig) lives in ``$KBOX_HOME/<profile>/``; the token and
the TLS certificates are generated on first start, and the token is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click

from kbox import kubeconfig as kubeconfig_file
from kbox.cli.store import kbox_home
from kbox.cluster import Cluster, ClusterSettings
from kbox.kubelet.runtime.interface import ContainerRuntimeError
from kbox.util import aiotasks, gctune


@click.command()
@click.option(
    "--profile", default="kbox", show_default=True, help="Name of the cluster and its state folder."
)
@click.option("--port", default=6443, show_default=True, help="API port on 127.0.0.1 (0 picks a free one).")
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
def serve(profile: str, port: int, runtime: str, nodes: int) -> None:
    """Run a cluster in the foreground until Ctrl-C."""
    settings = ClusterSettings(
        name=profile,
        state_dir=kbox_home() / profile,
        runtime="fake" if runtime == "fake" else "docker",
        nodes=nodes,
        port=port,
    )
    asyncio.run(_serve(settings))


async def _serve(settings: ClusterSettings) -> None:
    gctune.tune()
    cluster = Cluster(settings)
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
    config = kubeconfig_file.build(
        name=settings.name, url=cluster.url, token=cluster.token, ca=cluster.tls.ca_pem()
    )
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
    try:
        await stop.wait()
    finally:
        await aiotasks.stop([freezer], title="gc")
        await cluster.stop()
        click.echo("stopped")
