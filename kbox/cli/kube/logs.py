"""``kbox logs``: a container's log as ``kubectl logs`` prints it, and the control plane's own logs.

Three forms:

* ``kbox logs POD|TYPE/NAME``: the ``pods/NAME/log`` subresource, streamed as it arrives (``-f``
  follows). A workload's pod is chosen as kubectl chooses it (see ``streams.target_pod``).
* ``kbox logs``: the profile's log file (``$KBOX_HOME/<profile>/kbox.log``), which works even when the
  cluster process is not running, which is when it is most wanted. ``-f`` follows the file.
* ``kbox logs COMPONENT`` (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
  kube-proxy, coredns) without ``-n``: that component's lines, read through the API from its mirror pod
  in kube-system; when there is no such pod (kubelet has none, the process is down), the log file's
  lines tagged ``[COMPONENT]`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import click

from kbox.cli.kube import session, streams
from kbox.client import interface
from kbox.profile import Profile, ProfileError

COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "coredns",
)
SYSTEM_NAMESPACE = "kube-system"
FILE_POLL = 0.25  # how often a followed log file is checked for more
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

EXAMPLES = """
\b
Examples:
  kbox logs mypod                         # the log of mypod's (first) container
  kbox logs -f mypod -c sidecar           # follow one container
  kbox logs deploy/web --tail 20          # the last 20 lines of a pod of deployment web
  kbox logs mypod --previous              # the container's previous (crashed) run
  kbox logs mypod --since 5m --timestamps
  kbox logs mypod --all-containers --prefix
  kbox logs -l app=web --prefix           # every pod with the label (the last 10 lines of each)
  kbox logs                               # the cluster process's own log file
  kbox logs -f kube-scheduler             # one control-plane component's log
"""


def parse_duration(text: str) -> float:
    """A Go duration (``5m``, ``1h30m``, ``10s``) in seconds."""
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise click.ClickException(
            f'invalid argument "{text}" for "--since": time: invalid duration "{text}"'
        )
    return total


@dataclass(frozen=True)
class Options:
    """What the user asked for, as ``PodLogOptions`` query parameters."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail: int = -1
    since_seconds: int | None = None
    since_time: str | None = None
    limit_bytes: int | None = None

    def params(self, container: str) -> dict[str, str]:
        params = {"container": container}
        if self.follow:
            params["follow"] = "true"
        if self.previous:
            params["previous"] = "true"
        if self.timestamps:
            params["timestamps"] = "true"
        if self.tail >= 0:
            params["tailLines"] = str(self.tail)
        if self.since_seconds is not None:
            params["sinceSeconds"] = str(self.since_seconds)
        if self.since_time is not None:
            params["sinceTime"] = self.since_time
        if self.limit_bytes is not None:
            params["limitBytes"] = str(self.limit_bytes)
        return params


@dataclass(frozen=True)
class Source:
    """One container's log, and the prefix its lines get (``--prefix``, or several pods at once)."""

    namespace: str
    pod: str
    container: str
    prefix: str = ""


# -- logs through the API ----------------------------------------------------------------------------


async def _chunks(api: session.Api, source: Source, options: Options) -> AsyncIterator[bytes]:
    info = await api.resolve("pods")
    url = api.url + info.path(source.namespace, source.pod, "log")
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with api.session.get(url, params=options.params(source.container), timeout=timeout) as response:
        if response.status >= 400:
            raise session.status_error(response.status, await response.read())
        if not source.prefix:
            async for chunk in response.content.iter_any():
                yield chunk
            return
        # With a prefix, whole lines only, so that concurrent sources never split each other's lines.
        async for line in response.content:
            yield source.prefix.encode() + line


async def stream(api: session.Api, sources: list[Source], options: Options) -> None:
    """Print the sources' logs: one after the other, or (following several) side by side."""
    out = streams.file_sink(sys.stdout.buffer)

    async def copy(source: Source) -> None:
        async for chunk in _chunks(api, source, options):
            await out(chunk)

    if not options.follow or len(sources) == 1:
        for source in sources:
            await copy(source)
        return
    async with asyncio.TaskGroup() as group:
        for source in sources:
            group.create_task(copy(source), name=f"kbox/logs/{source.pod}/{source.container}")


def _sources(
    pod: dict[str, Any], container: str | None, *, all_containers: bool, prefix: bool
) -> list[Source]:
    metadata = pod["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    if not all_containers:
        chosen = streams.choose_container(pod, container)
        return [Source(namespace, name, chosen, f"[pod/{name}/{chosen}] " if prefix else "")]
    spec = pod.get("spec") or {}
    names = [
        str(c.get("name"))
        for field in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(field) or []
    ]
    return [Source(namespace, name, c, f"[pod/{name}/{c}] " if prefix else "") for c in names]


async def _pod_logs(
    profile: str | None,
    namespace: str | None,
    target: str | None,
    options: Options,
    *,
    selector: str | None,
    container: str | None,
    all_containers: bool,
    prefix: bool,
    wait_seconds: float,
) -> None:
    async with session.connect(profile) as api:
        ns = namespace or api.namespace
        if target is not None:
            pod = await streams.target_pod(api, target, ns, for_logs=True, wait_seconds=wait_seconds)
            pods = [pod]
        else:
            listed = await api.client.list(interface.PODS, namespace=ns, label_selector=selector)
            pods = sorted(listed.get("items") or [], key=lambda p: str(p["metadata"]["name"]))
            if not pods:
                click.echo(f"No resources found in {ns} namespace.", err=True)
                return
        sources = [
            source
            for pod in pods
            for source in _sources(pod, container, all_containers=all_containers, prefix=prefix)
        ]
        await stream(api, sources, options)


# -- the control plane's own logs ------------------------------------------------------------------


async def _mirror_pods(profile: str | None, component: str) -> list[dict[str, Any]] | None:
    """The component's mirror pods in kube-system; None when the API cannot be asked at all."""
    try:
        async with session.connect(profile) as api:
            listed = await api.client.list(interface.PODS, namespace=SYSTEM_NAMESPACE)
    except (click.ClickException, aiohttp.ClientError, OSError):
        return None
    return [
        pod
        for pod in listed.get("items") or []
        if pod["metadata"]["name"].startswith(f"{component}-")
        and any(c.get("name") == component for c in (pod.get("spec") or {}).get("containers") or [])
    ]


async def _component_logs(profile: str | None, component: str, options: Options, *, prefix: bool) -> None:
    pods = await _mirror_pods(profile, component)
    if not pods:
        # No mirror pod to ask (the kubelet has none; the cluster may be down): the log file's lines
        # that the process tagged with this component (the file's format has "[component]").
        await _print_file(_profile(profile).log_file, options, contains=f"[{component}]")
        return
    several = len(pods) > 1
    sources = [
        Source(
            SYSTEM_NAMESPACE,
            p["metadata"]["name"],
            component,
            f"[pod/{p['metadata']['name']}/{component}] " if prefix or several else "",
        )
        for p in sorted(pods, key=lambda p: str(p["metadata"]["name"]))
    ]
    async with session.connect(profile) as api:
        await stream(api, sources, options)


def _profile(name: str | None) -> Profile:
    try:
        return Profile.get(name)
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from None


# -- the log file ------------------------------------------------------------------------------------


def _tail_offset(path: Path, lines: int) -> int:
    """Where the last ``lines`` lines of the file start (read backwards in blocks, not all of it)."""
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        if lines < 0:
            return 0
        if lines == 0:
            return end
        position, found = end, 0
        while position > 0:
            step = min(65536, position)
            position -= step
            f.seek(position)
            block = f.read(step)
            if position + step == end and block.endswith(b"\n"):
                block = block[:-1]  # the last line's own newline does not start a line
            for index in range(len(block) - 1, -1, -1):
                if block[index] == 0x0A:
                    found += 1
                    if found == lines:
                        return position + index + 1
        return 0


def _matches(line: bytes, contains: str | None, since: float | None) -> bool:
    if contains is not None and contains.encode() not in line:
        return False
    if since is not None:
        stamp = line[:23].decode(errors="replace")  # "2026-11-29 21:10:05,123"
        with contextlib.suppress(ValueError):
            moment = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            return moment >= since
    return True


async def _print_file(path: Path, options: Options, *, contains: str | None = None) -> None:
    """Print the log file (the last ``--tail`` lines, those since ``--since``, only the lines that
    contain ``contains``), then with ``-f`` what is appended to it, until Ctrl-C."""
    loop = asyncio.get_running_loop()
    out = streams.file_sink(sys.stdout.buffer)
    since = None if options.since_seconds is None else time.time() - options.since_seconds

    def read_from(offset: int) -> tuple[list[bytes], int]:
        with path.open("rb") as f:
            if f.seek(0, os.SEEK_END) < offset:
                offset = 0  # the file was truncated or replaced: start over
            f.seek(offset)
            data = f.read()
        complete = data.rfind(b"\n") + 1
        return data[:complete].splitlines(keepends=True), offset + complete

    try:
        if contains is None:
            offset = await loop.run_in_executor(None, _tail_offset, path, options.tail)
            lines, offset = await loop.run_in_executor(None, read_from, offset)
        else:
            # The tail counts the component's lines, not the file's.
            lines, offset = await loop.run_in_executor(None, read_from, 0)
    except FileNotFoundError:
        raise click.ClickException(f"{path}: no log file (has the profile been started?)") from None
    if contains is not None:
        lines = [line for line in lines if _matches(line, contains, None)]
        if options.tail >= 0:
            lines = lines[len(lines) - options.tail :] if options.tail else []
    budget = options.limit_bytes
    for line in lines:
        if not _matches(line, contains, since):
            continue
        if budget is not None:
            line, budget = line[:budget], budget - len(line[:budget])
        await out(line)
        if budget is not None and budget <= 0:
            return
    while options.follow:
        await asyncio.sleep(FILE_POLL)
        try:
            lines, offset = await loop.run_in_executor(None, read_from, offset)
        except FileNotFoundError:  # between a delete and the next start: keep waiting for it
            lines, offset = [], 0
        for line in lines:
            if _matches(line, contains, None):
                await out(line)


# -- the command ---------------------------------------------------------------------------------------


@click.command("logs", epilog=EXAMPLES)
@click.argument("target", required=False, metavar="[POD|TYPE/NAME|COMPONENT]")
@click.option("--container", "-c", default=None, metavar="NAME", help="The container (default: the first).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing the log as it grows.")
@click.option("--previous", is_flag=True, help="The previous run of the container (after a restart).")
@click.option("--tail", default=-1, type=int, metavar="N", help="Only the last N lines (default: all).")
@click.option("--since", default=None, metavar="DURATION", help="Only lines newer than this (5s, 2m, 3h).")
@click.option("--since-time", default=None, metavar="RFC3339", help="Only lines after this time.")
@click.option("--timestamps", is_flag=True, help="Prefix each line with its time (RFC 3339).")
@click.option("--limit-bytes", default=None, type=int, metavar="N", help="Stop after N bytes.")
@click.option("--all-containers", is_flag=True, help="Every container of the pod, init containers first.")
@click.option("--prefix", is_flag=True, help="Start each line with [pod/NAME/CONTAINER].")
@click.option(
    "--selector", "-l", default=None, metavar="SELECTOR", help="The pods with these labels (--tail 10 then)."
)
@streams.pod_options(pod_running_timeout=20.0)
@session.profile_option
def logs(
    target: str | None,
    container: str | None,
    follow: bool,
    previous: bool,
    tail: int,
    since: str | None,
    since_time: str | None,
    timestamps: bool,
    limit_bytes: int | None,
    all_containers: bool,
    prefix: bool,
    selector: str | None,
    namespace: str | None,
    pod_running_timeout: float,
    profile: str | None,
) -> None:
    """Print the log of a container in POD (or in a pod of TYPE/NAME).

    With no argument, print the cluster process's own log file; with a control-plane COMPONENT
    (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, coredns) and no
    -n, print that component's log.
    """
    if since is not None and since_time is not None:
        raise click.ClickException("at most one of --since or --since-time may be used")
    if limit_bytes is not None and limit_bytes < 1:
        raise click.ClickException("--limit-bytes must be greater than 0")
    if all_containers and container:
        raise click.ClickException("--container cannot be combined with --all-containers")
    if selector is not None:
        if target is not None:
            raise click.ClickException("only a selector (-l) or a POD|TYPE/NAME can be given, not both")
        if tail == -1:
            tail = 10  # as kubectl limits a selector's logs
    seconds = None
    if since is not None:
        seconds = max(1, int(-(-parse_duration(since) // 1)))  # whole seconds, rounded up
    options = Options(
        follow=follow,
        previous=previous,
        timestamps=timestamps,
        tail=tail,
        since_seconds=seconds,
        since_time=since_time,
        limit_bytes=limit_bytes,
    )
    with streams.quiet_broken_pipe():
        if target is None and selector is None:
            session.run(_print_file(_profile(profile).log_file, options))
        elif target in COMPONENTS and namespace is None:
            session.run(_component_logs(profile, target, options, prefix=prefix))
        else:
            session.run(
                _pod_logs(
                    profile,
                    namespace,
                    target,
                    options,
                    selector=selector,
                    container=container,
                    all_containers=all_containers,
                    prefix=prefix,
                    wait_seconds=pod_running_timeout,
                )
            )
