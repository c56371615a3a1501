"""The lifecycle commands, as minikube has them: ``kbox start|stop|status|delete|kubeconfig|profile|version``.

``kbox start`` runs ``kbox serve`` detached (its own session, output to the profile's ``kbox.log``),
records its pid, waits until the API answers and every node is Ready, and merges the cluster into the
user's kubeconfig (``$KUBECONFIG``'s first path, else ``~/.kube/config``) as the current context.
``kbox stop`` sends SIGTERM; a later ``kbox start`` reuses the profile's settings (``profile.json``) and
state (the SQLite database). ``kbox delete`` also removes the profile's Docker containers and network,
its kubeconfig entries and its directory. Every failure is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import datetime
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from kbox import __version__
from kbox import kubeconfig as kubeconfig_file
from kbox import profile as profiles
from kbox.api.certs import ensure_certificates
from kbox.api.nodeconnection import MIRROR_ANNOTATION
from kbox.cli import serve as serve_commands
from kbox.kubelet import memoryfs
from kbox.kubelet.runtime.interface import ContainerRuntimeError
from kbox.profile import Profile, ProfileError, ProfileSettings

EXIT_PROFILE_NOT_FOUND = 85  # minikube's ExProfileNotFound
STARTUP_TIMEOUT = 180.0
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
"""Components whose mirror pods ``kbox start`` waits for (addons' pods too, when present)."""
STOP_TIMEOUT = 30.0
LOG_TAIL_LINES = 20

_profile_option = click.option(
    "--profile",
    "-p",
    default=None,
    metavar="NAME",
    help="The cluster to act on (default: $KBOX_PROFILE, else 'kbox').",
)


class ProfileNotFound(click.ClickException):
    exit_code = EXIT_PROFILE_NOT_FOUND


def _err() -> Console:
    return Console(stderr=True)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Profile and file errors become one line (click's ``Error: ...``), never a traceback."""
    try:
        yield
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise click.ClickException(f"{where}{exc.strerror or exc}") from None


def _get_profile(name: str | None, *, must_exist: bool = False) -> Profile:
    with _user_errors():
        prof = Profile.get(name)
    if must_exist and not prof.exists():
        raise ProfileNotFound(f"profile {prof.name!r} not found (kbox profile list shows the profiles)")
    return prof


def _url(port: int) -> str:
    return f"https://127.0.0.1:{port}"


# -- talking to a running cluster (plain urllib: the CLI stays synchronous) ---------------------------


def _get(prof: Profile, port: int, path: str, *, timeout: float = 2.0) -> Any:
    """GET ``path`` from the profile's apiserver with its CA and token; None when it does not answer."""
    try:
        context = ssl.create_default_context(cadata=prof.ca_file.read_text())
        token = prof.token_file.read_text().strip()
    except (OSError, ssl.SSLError, ValueError):
        return None
    request = urllib.request.Request(_url(port) + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
            body = response.read()
    except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


def _api_ready(prof: Profile, port: int) -> bool:
    return _get(prof, port, "/readyz") is not None


def _ready_nodes(prof: Profile, port: int, names: list[str], since: float = 0.0) -> list[str] | None:
    """Names among ``names`` whose Ready condition is True with a heartbeat at or after ``since``, and
    those held stopped by ``kbox node stop`` (annotated so; nothing will make them Ready to wait for)."""
    listing = _get(prof, port, "/api/v1/nodes")
    if not isinstance(listing, dict):
        return None
    ready = []
    for item in listing.get("items") or []:
        name = (item.get("metadata") or {}).get("name")
        if name not in names:
            continue
        if "kbox.io/kubelet-stopped" in ((item.get("metadata") or {}).get("annotations") or {}):
            ready.append(name)
            continue
        for condition in (item.get("status") or {}).get("conditions") or []:
            if condition.get("type") != "Ready" or condition.get("status") != "True":
                continue
            try:
                beat = datetime.datetime.fromisoformat(condition.get("lastHeartbeatTime", "")).timestamp()
            except (TypeError, ValueError):
                beat = 0.0
            if beat >= since:
                ready.append(name)
    return ready


def _components(prof: Profile, port: int, since: float = 0.0) -> dict[str, tuple[bool, int]] | None:
    """The mirror pods in kube-system: pod name → (Running and Ready since ``since``, restarts)."""
    listing = _get(prof, port, "/api/v1/namespaces/kube-system/pods")
    if not isinstance(listing, dict):
        return None
    found = {}
    for item in listing.get("items") or []:
        metadata = item.get("metadata") or {}
        if MIRROR_ANNOTATION not in (metadata.get("annotations") or {}):
            continue
        status = item.get("status") or {}
        containers = status.get("containerStatuses") or [{}]
        running = (containers[0].get("state") or {}).get("running") or {}
        try:
            started = datetime.datetime.fromisoformat(running.get("startedAt", "")).timestamp()
        except (TypeError, ValueError):
            started = 0.0
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        up = status.get("phase") == "Running" and ready and bool(running) and started >= since
        found[str(metadata.get("name"))] = (up, int(containers[0].get("restartCount") or 0))
    return found


def _node_names(prof: Profile, nodes: int) -> list[str]:
    return profiles.node_names(prof.name, nodes)


# -- processes ----------------------------------------------------------------------------------------


def _serve_command(prof: Profile, settings: ProfileSettings, addons: str | None = None) -> list[str]:
    exe = shutil.which("kbox", path=os.path.dirname(sys.executable))
    base = [exe] if exe else [sys.executable, "-c", "from kbox.cli.main import main; main()"]
    extra = ["--addons", addons] if addons is not None else []
    return [
        *base,
        "serve",
        "--profile",
        prof.name,
        "--runtime",
        settings.runtime,
        "--nodes",
        str(settings.nodes),
        "--port",
        str(settings.port),
        *extra,
    ]


def _log_tail(prof: Profile, offset: int) -> str:
    try:
        with prof.log_file.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(f"  | {line}" for line in lines[-LOG_TAIL_LINES:])


def _terminate(pid: int, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM ``pid``, wait up to ``timeout``, then SIGKILL; True if it ended gracefully."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not profiles.pid_alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and profiles.pid_alive(pid):
        time.sleep(0.1)
    return False


async def _docker_problem() -> str | None:
    from kbox.kubelet.runtime.docker import DockerRuntime

    runtime = DockerRuntime(cluster="kbox-check")
    try:
        await asyncio.wait_for(runtime.version(), 10)
    except ContainerRuntimeError as exc:
        return str(exc)
    except TimeoutError:
        return "Docker does not answer (10 s)"
    finally:
        await runtime.close()
    return None


async def _purge(name: str) -> None:
    from kbox.kubelet.runtime.docker import DockerRuntime

    runtime = DockerRuntime(cluster=name)
    try:
        await runtime.purge()
    finally:
        await runtime.close()


# -- start --------------------------------------------------------------------------------------------


def _resolve(prof: Profile, runtime: str | None, nodes: int | None, port: int | None) -> ProfileSettings:
    """Flags over remembered settings over defaults; a busy default port is replaced by a free one."""
    with _user_errors():
        saved = prof.load_settings()
    base = saved or ProfileSettings()
    chosen = ProfileSettings(
        runtime=runtime or base.runtime,
        nodes=base.nodes if nodes is None else nodes,
        port=base.port,
    )
    if port is not None and port != 0:
        if not profiles.port_free(port):
            raise click.ClickException(f"port {port} on 127.0.0.1 is in use; pick another with --port")
        chosen.port = port
    elif port == 0 or not profiles.port_free(chosen.port):
        chosen.port = profiles.free_port()
    return chosen


@click.command()
@_profile_option
@click.option("--runtime", type=click.Choice(["docker", "fake"]), default=None, help="[default: docker]")
@click.option("--nodes", type=click.IntRange(0, 1000), default=None, help="Kubelets to run [default: 1].")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="API port on 127.0.0.1 [default: 6443, or a free one if busy; 0: a free one].",
)
@click.option(
    "--addons",
    default=None,
    metavar="LIST",
    help="Comma-separated addons to run (the others off); default: as last time (new cluster: dns).",
)
@click.option("--foreground", is_flag=True, help="Run the cluster in this process until Ctrl-C/SIGTERM.")
@click.option(
    "--wait-timeout",
    type=float,
    default=STARTUP_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the API and the nodes.",
)
@click.pass_context
def start(
    ctx: click.Context,
    profile: str | None,
    runtime: str | None,
    nodes: int | None,
    port: int | None,
    addons: str | None,
    foreground: bool,
    wait_timeout: float,
) -> None:
    """Start a cluster (or restart a stopped one with its objects) and point kubectl at it.

    \b
    Examples:
      kbox start                         # docker runtime, one node, profile 'kbox'
      kbox start --runtime fake --nodes 3
      kbox start -p dev --port 7443      # a second cluster side by side
    """
    prof = _get_profile(profile)
    pid = prof.read_pid()
    if pid is not None:
        with _user_errors():
            saved = prof.load_settings()
        where = f" on {_url(saved.port)}" if saved else ""
        click.echo(f"kbox profile {prof.name!r} is already running{where} (pid {pid})")
        return
    settings = _resolve(prof, runtime, nodes, port)
    if settings.runtime == "docker":
        with _err().status("checking Docker"):
            problem = asyncio.run(_docker_problem())
        if problem is not None:
            raise click.ClickException(f"the docker runtime needs Docker: {problem}; or use --runtime fake")
    with _user_errors():
        prof.save_settings(settings)
        tls = ensure_certificates(prof.dir / "pki")
        token = profiles.load_token(prof.dir)
        ca = tls.ca_pem()
        # The same file ``kbox serve`` writes once it listens; written now so it is there from the start.
        kubeconfig_file.write(
            prof.kubeconfig,
            kubeconfig_file.build(name=prof.name, url=_url(settings.port), token=token, ca=ca),
        )
    if addons is not None:
        serve_commands.addon_choice(addons)  # unknown names fail here, before anything starts
    if foreground:
        _start_foreground(ctx, prof, settings, token, ca, addons)
        return
    _start_detached(prof, settings, wait_timeout, addons)
    with _user_errors():
        merged = profiles.merge_kubeconfig(prof.name, url=_url(settings.port), token=token, ca=ca)
    names = ", ".join(_node_names(prof, settings.nodes)) or "none"
    click.echo(f"kbox cluster {prof.name!r} is running on {_url(settings.port)}")
    click.echo(f"  runtime {settings.runtime}, nodes: {names}; logs: {prof.log_file}")
    click.echo(f"  kubectl is now configured to use {prof.name!r} ({merged}): kubectl get nodes")
    click.echo(f"  or: kubectl --kubeconfig {prof.kubeconfig} get nodes")


def _start_foreground(
    ctx: click.Context, prof: Profile, settings: ProfileSettings, token: str, ca: bytes, addons: str | None
) -> None:
    with _user_errors():
        profiles.merge_kubeconfig(prof.name, url=_url(settings.port), token=token, ca=ca)
        prof.write_pid(os.getpid())
    try:
        ctx.invoke(
            serve_commands.serve,
            profile=prof.name,
            port=settings.port,
            runtime=settings.runtime,
            nodes=settings.nodes,
            addons=addons,
        )
    finally:
        prof.remove_pid()


def _start_detached(
    prof: Profile, settings: ProfileSettings, wait_timeout: float, addons: str | None = None
) -> None:
    with _user_errors():
        prof.dir.mkdir(parents=True, exist_ok=True)
        with prof.log_file.open("ab") as log:
            offset = log.tell()
            stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
            log.write(f"--- kbox start {prof.name} at {stamp}\n".encode())
            log.flush()
            began = time.time()
            child = subprocess.Popen(
                _serve_command(prof, settings, addons),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=prof.dir,
                env={**os.environ, "KBOX_HOME": str(prof.home), "PYTHONUNBUFFERED": "1"},
            )
        prof.write_pid(child.pid)
    names = _node_names(prof, settings.nodes)
    since = float(int(began) - 1)  # heartbeats have one-second resolution

    def fail(reason: str) -> click.ClickException:
        if child.poll() is None:
            _terminate(child.pid, timeout=10)
            child.wait()
        prof.remove_pid()
        tail = _log_tail(prof, offset)
        if tail:
            click.echo(f"last lines of {prof.log_file}:\n{tail}", err=True)
        return click.ClickException(f"kbox profile {prof.name!r} did not start: {reason}")

    deadline = time.monotonic() + wait_timeout
    try:
        with _err().status(f"starting {prof.name!r}: the API server") as status:
            api_up = False
            while True:
                code = child.poll()
                if code is not None:
                    raise fail(f"the cluster process exited with code {code}")
                if time.monotonic() > deadline:
                    raise fail(f"not ready after {wait_timeout:g} s")
                if not api_up and _api_ready(prof, settings.port):
                    api_up = True
                if api_up:
                    ready = _ready_nodes(prof, settings.port, names, since)
                    if ready is None or not set(ready) >= set(names):
                        count = len(ready or [])
                        status.update(f"starting {prof.name!r}: nodes Ready {count}/{len(names)}")
                    elif not names:
                        return
                    else:
                        pods = _components(prof, settings.port, since) or {}
                        expected = [f"{c}-{names[0]}" for c in CONTROL_PLANE]
                        if all(pods.get(n, (False, 0))[0] for n in expected) and all(
                            up for up, _ in pods.values()
                        ):
                            return
                        up = sum(1 for ok, _ in pods.values() if ok)
                        status.update(f"starting {prof.name!r}: kube-system pods Running {up}/{len(pods)}")
                time.sleep(0.1)
    except KeyboardInterrupt:
        raise fail("interrupted") from None


# -- stop, status -------------------------------------------------------------------------------------


@click.command()
@_profile_option
def stop(profile: str | None) -> None:
    """Stop a running cluster (SIGTERM, then SIGKILL after 30 s); its state stays for ``kbox start``."""
    prof = _get_profile(profile, must_exist=True)
    pid = prof.read_pid()
    if pid is None:
        prof.remove_pid()
        click.echo(f"kbox profile {prof.name!r} is not running")
        return
    with _err().status(f"stopping {prof.name!r}"):
        graceful = _terminate(pid)
    prof.remove_pid()
    click.echo(f"stopped kbox profile {prof.name!r}" + ("" if graceful else " (killed after 30 s)"))


def _configured(prof: Profile, port: int) -> bool:
    try:
        data = yaml.safe_load(profiles.user_kubeconfig().read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    for entry in data.get("clusters") or [] if isinstance(data, dict) else []:
        if isinstance(entry, dict) and entry.get("name") == prof.name:
            return bool((entry.get("cluster") or {}).get("server") == _url(port))
    return False


@click.command()
@_profile_option
def status(profile: str | None) -> None:
    """Show whether the cluster's process, API server and kubelets run.

    Exit code 0 when everything runs; otherwise bit 1 host, 2 kubelet, 4 apiserver are down (7: stopped),
    85 for an unknown profile (as minikube).
    """
    prof = _get_profile(profile, must_exist=True)
    with _user_errors():
        settings = prof.load_settings() or ProfileSettings()
    host = prof.read_pid() is not None
    apiserver = host and _api_ready(prof, settings.port)
    names = _node_names(prof, settings.nodes)
    ready = _ready_nodes(prof, settings.port, names) if apiserver else None
    kubelet = ready is not None and set(ready) >= set(names)

    def word(up: bool) -> str:
        return "Running" if up else "Stopped"

    click.echo(prof.name)
    click.echo("type: Control Plane")
    click.echo(f"host: {word(host)}")
    click.echo(
        f"kubelet: {word(kubelet)}" + (f" ({len(ready or [])}/{len(names)} nodes Ready)" if host else "")
    )
    click.echo(f"apiserver: {word(apiserver)}")
    click.echo(f"kubeconfig: {'Configured' if _configured(prof, settings.port) else 'Misconfigured'}")
    pods = _components(prof, settings.port) if apiserver else None
    for name, (up, restarts) in sorted((pods or {}).items()):
        again = f", {restarts} restart{'s' if restarts != 1 else ''}" if restarts else ""
        click.echo(f"{name}: {'Running' if up else 'NotReady'}{again}")
    code = (0 if host else 1) | (0 if kubelet else 2) | (0 if apiserver else 4)
    if code:
        sys.exit(code)  # not click's Exit: main() runs click with standalone_mode=False, which drops it


# -- delete -------------------------------------------------------------------------------------------


def _delete(prof: Profile) -> None:
    pid = prof.read_pid()
    if pid is not None:
        with _err().status(f"stopping {prof.name!r}"):
            _terminate(pid)
    prof.remove_pid()
    with _user_errors():
        settings = prof.load_settings()
    runtime = settings.runtime if settings else None
    if runtime != "fake":
        with _err().status(f"removing the containers and network of {prof.name!r}"):
            try:
                asyncio.run(_purge(prof.name))
            except ContainerRuntimeError as exc:
                if runtime == "docker":  # keep the state so a later delete can finish the job
                    raise click.ClickException(
                        f"cannot remove the Docker objects of {prof.name!r}: {exc}"
                    ) from None
    with _user_errors():
        profiles.unmerge_kubeconfig(prof.name)
        memoryfs.remove_all(prof.dir / "kubelet")  # secret volumes live in /dev/shm, outside the folder
        if prof.exists():
            shutil.rmtree(prof.dir)
    click.echo(f"deleted kbox profile {prof.name!r}")


@click.command()
@_profile_option
@click.option("--all", "all_profiles", is_flag=True, help="Delete every profile.")
def delete(profile: str | None, all_profiles: bool) -> None:
    """Stop a cluster and remove its containers, network, kubeconfig entries and state."""
    if all_profiles:
        found = profiles.list_profiles()
        if not found:
            click.echo("no kbox profiles to delete")
        for prof in found:
            _delete(prof)
        return
    prof = _get_profile(profile)
    if not prof.exists():
        with _user_errors():
            removed = profiles.unmerge_kubeconfig(prof.name)
        click.echo(
            f"kbox profile {prof.name!r} does not exist"
            + ("; removed its kubeconfig entries" if removed else "")
        )
        return
    _delete(prof)


# -- kubeconfig, profile list, version ----------------------------------------------------------------


@click.command()
@_profile_option
def kubeconfig(profile: str | None) -> None:
    """Print the path of the profile's own kubeconfig (``kubectl --kubeconfig $(kbox kubeconfig)``)."""
    prof = _get_profile(profile, must_exist=True)
    if not prof.kubeconfig.exists():
        raise click.ClickException(f"profile {prof.name!r} has no kubeconfig yet: run kbox start")
    click.echo(str(prof.kubeconfig))


@click.group(name="profile")
def profile_group() -> None:
    """Profiles: one cluster each, side by side."""


@profile_group.command(name="list")
def profile_list() -> None:
    """List the profiles with their status, runtime, nodes and port."""
    found = profiles.list_profiles()
    if not found:
        click.echo(f"no kbox profiles in {profiles.kbox_home()}; create one with kbox start")
        return
    try:
        current = (yaml.safe_load(profiles.user_kubeconfig().read_text()) or {}).get("current-context")
    except (OSError, yaml.YAMLError, AttributeError):
        current = None
    table = Table("Profile", "Status", "Runtime", "Nodes", "Port", "Active")
    for prof in found:
        try:
            settings = prof.load_settings()
        except ProfileError:
            settings = None
        running = prof.read_pid() is not None
        table.add_row(
            prof.name,
            "Running" if running else "Stopped",
            settings.runtime if settings else "?",
            str(settings.nodes) if settings else "?",
            str(settings.port) if settings else "?",
            "*" if current == prof.name else "",
        )
    Console(width=max(100, shutil.get_terminal_size().columns)).print(table)


@click.command()
def version() -> None:
    """Print kbox's version."""
    click.echo(f"kbox version: v{__version__}")


COMMANDS: list[click.Command] = [start, stop, status, delete, kubeconfig, profile_group, version]
