"""``kbox attach``: attach to the main process of a running container, as ``kubectl attach`` does.

The session is a WebSocket to ``pods/NAME/attach``, relayed like exec's (``exec.Terminal``): output
always, stdin with ``-i`` (its end closes the process's stdin with ``v5.channel.k8s.io``, as
``stdinOnce`` does), and a raw terminal with ``-it`` when the container allocated one.
"""

from __future__ import annotations

from typing import Any

import click

from kbox.cli.kube import exec as exec_command
from kbox.cli.kube import session, streams

EXAMPLES = """
\b
Examples:
  kbox attach mypod                 # the output of mypod's first container, as it comes
  kbox attach mypod -c worker       # of a named container
  kbox attach -it mypod             # an interactive session (the container needs stdin and tty)
  echo quit | kbox attach -i mypod  # send input to the process
"""


async def _attach(
    profile: str | None,
    namespace: str | None,
    target: str,
    *,
    container: str | None,
    stdin: bool,
    tty: bool,
    quiet: bool,
    wait_seconds: float,
) -> int:
    async with session.connect(profile) as api:
        ns = namespace or api.namespace
        pod, chosen = await streams.live_container(
            api, target, ns, container, quiet=quiet, wait_seconds=wait_seconds, verb="attach"
        )
        spec: dict[str, Any] = next(
            (c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == chosen), {}
        )
        if tty and stdin and not spec.get("tty"):
            if not quiet:
                click.echo(f"Unable to use a TTY - container {chosen} did not allocate one", err=True)
            tty = False
        terminal = exec_command.Terminal.setup(stdin=stdin, tty=tty, quiet=quiet)
        if terminal.tty and not quiet:
            click.echo("If you don't see a command prompt, try pressing enter.", err=True)
        url = await streams.pod_url(api, ns, pod, "attach")
        return await terminal.relay(api, url, [("container", chosen), *terminal.params()])


@click.command("attach", epilog=EXAMPLES)
@click.argument("target", metavar="POD|TYPE/NAME")
@click.option("--container", "-c", default=None, metavar="NAME", help="The container (default: the first).")
@click.option("--stdin", "-i", "stdin", is_flag=True, help="Pass stdin to the container's process.")
@click.option("--tty", "-t", "tty_", is_flag=True, help="Stdin is a terminal (with -i): raw mode, resizes.")
@click.option("--quiet", "-q", is_flag=True, help="Print only what the container prints.")
@streams.pod_options(pod_running_timeout=60.0)
@session.profile_option
def attach(
    target: str,
    container: str | None,
    stdin: bool,
    tty_: bool,
    quiet: bool,
    namespace: str | None,
    pod_running_timeout: float,
    profile: str | None,
) -> None:
    """Attach to the main process of a container in POD (or in a pod of TYPE/NAME)."""
    with streams.quiet_broken_pipe():
        code = session.run(
            _attach(
                profile,
                namespace,
                target,
                container=container,
                stdin=stdin,
                tty=tty_,
                quiet=quiet,
                wait_seconds=pod_running_timeout,
            )
        )
    if code != 0:
        raise click.exceptions.Exit(code)
