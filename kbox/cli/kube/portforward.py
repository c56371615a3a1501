"""``kbox port-forward``: local ports that reach ports of a pod, as ``kubectl port-forward`` gives.

Each local connection gets a WebSocket of its own to ``pods/NAME/portforward?ports=REMOTE`` (the channel
form of the protocol; see ``streams.tunnel``), so connections never wait on each other and one that
fails says so without touching the rest. ``svc/NAME`` forwards to the pod port its ``targetPort``
names, and a remote port may be a container port's name. The command runs until Ctrl-C, or until the
pod stops running ("lost connection to pod"), which it learns from a watch on the pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import click

from kbox.api.errors import StatusError
from kbox.cli.kube import session, streams
from kbox.client import interface
from kbox.util import aiotasks

EXAMPLES = """
\b
Examples:
  kbox port-forward mypod 8080:80              # localhost:8080 reaches port 80 of mypod
  kbox port-forward mypod 5000 6000            # local 5000 and 6000 to the same pod ports
  kbox port-forward deploy/web :80             # a free local port (printed) to a pod of web
  kbox port-forward svc/web 8080:http          # through the Service's port named http
  kbox port-forward --address 0.0.0.0 mypod 8080:80
"""


@dataclass(frozen=True)
class Forward:
    local: int
    remote: int


def _named_container_port(pod: Mapping[str, Any], name: str) -> int:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name:
                return int(port["containerPort"])
    pod_name = (pod.get("metadata") or {}).get("name")
    raise click.ClickException(f"Pod '{pod_name}' does not have a named port '{name}'")


def _service_target(service: Mapping[str, Any], pod: Mapping[str, Any], remote: str) -> int:
    """The pod port behind a Service port (given by number or name), as kubectl translates it."""
    name = (service.get("metadata") or {}).get("name")
    for port in (service.get("spec") or {}).get("ports") or []:
        if str(port.get("port")) == remote or port.get("name") == remote:
            target = port.get("targetPort")
            if target is None or target == 0:
                return int(port["port"])
            if isinstance(target, int) or str(target).isdigit():
                return int(target)
            return _named_container_port(pod, str(target))
    raise click.ClickException(f"Service {name} does not have a service port {remote}")


def forwards(
    pairs: list[tuple[int | None, str]], pod: Mapping[str, Any], service: Mapping[str, Any] | None
) -> list[Forward]:
    result = []
    for local, remote in pairs:
        if service is not None:
            number = _service_target(service, pod, remote)
        elif remote.isdigit():
            number = int(remote)
        else:
            number = _named_container_port(pod, remote)
        result.append(Forward(number if local is None else local, number))
    return result


def _hosts(addresses: tuple[str, ...]) -> list[str]:
    hosts: list[str] = []
    for value in addresses:
        for address in value.split(","):
            address = address.strip()
            for host in ("127.0.0.1", "::1") if address == "localhost" else (address,):
                if host and host not in hosts:
                    hosts.append(host)
    return hosts


def _shown(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Forwarder:
    """The listeners of one ``kbox port-forward`` and the tunnels of their connections."""

    def __init__(self, api: session.Api, url: str) -> None:
        self.api = api
        self.url = url
        self.servers: list[asyncio.Server] = []

    async def listen(self, forward: Forward, hosts: list[str]) -> None:
        port, failures = forward.local, []
        bound = 0
        for host in hosts:
            try:
                server = await asyncio.start_server(
                    functools.partial(self._connection, forward=forward), host=host, port=port
                )
            except OSError as exc:
                failures.append(f"{_shown(host, port)}: {exc.strerror or exc}")
                continue
            self.servers.append(server)
            port = server.sockets[0].getsockname()[1]  # a free port chosen for :REMOTE: keep it
            bound += 1
            click.echo(f"Forwarding from {_shown(host, port)} -> {forward.remote}")
        if not bound:
            raise click.ClickException(f"unable to listen on port {forward.local}: {'; '.join(failures)}")

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, forward: Forward
    ) -> None:
        local = writer.get_extra_info("sockname")[1]
        click.echo(f"Handling connection for {local}")
        try:
            error = await streams.tunnel(self.api.session, self.url, forward.remote, reader, writer)
        except (StatusError, streams.StreamError) as exc:
            error = str(exc.message if isinstance(exc, StatusError) else exc)
            writer.close()
        if error:
            click.echo(f"error: an error occurred forwarding {local} -> {forward.remote}: {error}", err=True)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()


async def _until_pod_stops(api: session.Api, namespace: str, name: str, uid: str) -> None:
    """Return when the pod is deleted, replaced or no longer running, or the API server is gone."""
    try:
        while True:
            async for event in api.client.watch(
                interface.PODS, namespace=namespace, field_selector=f"metadata.name={name}"
            ):
                pod = event.object
                running = (pod.get("status") or {}).get("phase") == "Running"
                if event.type == "DELETED" or pod["metadata"].get("uid") != uid or not running:
                    return
    except (StatusError, aiohttp.ClientError, OSError):
        return


async def _port_forward(
    profile: str | None,
    namespace: str | None,
    target: str,
    pairs: list[tuple[int | None, str]],
    hosts: list[str],
    wait_seconds: float,
) -> None:
    async with session.connect(profile) as api:
        ns = namespace or api.namespace
        service = None
        kind, slash, name = target.partition("/")
        if slash and (await api.resolve(kind)).kind == "Service":
            service = await api.request("GET", (await api.resolve(kind)).path(ns, name))
        pod = await streams.target_pod(api, target, ns, for_logs=False, wait_seconds=wait_seconds)
        meta = pod["metadata"]
        chosen = forwards(pairs, pod, service)
        phase = (pod.get("status") or {}).get("phase")
        if phase != "Running":
            raise click.ClickException(
                f"unable to forward port because pod is not running. Current status={phase}"
            )
        url = await streams.pod_url(api, ns, pod, "portforward")
        forwarder = Forwarder(api, url)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        stopped = aiotasks.create_guarded_task(stop.wait(), name="kbox/port-forward/interrupt")
        try:
            for forward in chosen:
                await forwarder.listen(forward, hosts)
            gone = aiotasks.create_guarded_task(
                _until_pod_stops(api, ns, meta["name"], meta.get("uid", "")), name="kbox/port-forward/pod"
            )
            try:
                await asyncio.wait({gone, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (gone, stopped):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if not stop.is_set():
                raise click.ClickException("lost connection to pod")
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await forwarder.close()


@click.command("port-forward", epilog=EXAMPLES)
@click.argument("target", metavar="POD|TYPE/NAME")
@click.argument("ports", nargs=-1, required=True, metavar="[LOCAL:]REMOTE...")
@click.option(
    "--address",
    multiple=True,
    default=("localhost",),
    metavar="ADDR",
    help="Addresses to listen on, comma-separated (default: localhost, i.e. 127.0.0.1 and ::1).",
)
@streams.pod_options(pod_running_timeout=60.0)
@session.profile_option
def port_forward(
    target: str,
    ports: tuple[str, ...],
    address: tuple[str, ...],
    namespace: str | None,
    pod_running_timeout: float,
    profile: str | None,
) -> None:
    """Forward local ports to ports of POD (or of a pod of TYPE/NAME) until Ctrl-C."""
    try:
        pairs = [streams.parse_port_pair(text) for text in ports]
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    hosts = _hosts(address)
    if not hosts:
        raise click.ClickException("--address needs at least one address")
    session.run(_port_forward(profile, namespace, target, pairs, hosts, pod_running_timeout))
