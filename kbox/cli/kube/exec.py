"""``kbox exec``: run a command in a pod's container, as ``kubectl exec`` does, and the terminal
plumbing it shares with ``kbox attach``.

The session is a WebSocket to ``pods/NAME/exec`` (``v5.channel.k8s.io``, else ``v4``). With ``-i`` local
stdin is sent, and its end is passed on (v5), so ``echo hi | kbox exec -i POD -- cat`` ends. With
``-it`` on a terminal the terminal goes raw (keys, ^C included, go to the remote side) and its size
follows SIGWINCH; it is restored however the command ends. The remote exit code becomes kbox's.

stdin is read in a daemon thread rather than through ``connect_read_pipe``: that handles a regular file
or ``/dev/null`` as well as a pipe or a terminal, never switches a terminal shared with the shell to
non-blocking mode, and a read still waiting for a key when the command ends does not hold the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import termios
import threading
import tty
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import click

from kbox.cli.kube import session, streams

# The descriptors themselves: sys.stdin is None when the shell closed stdin (<&-).
STDIN_FD, STDOUT_FD = 0, 1

EXAMPLES = """
\b
Examples:
  kbox exec mypod -- date                      # run date in mypod's first container
  kbox exec mypod -c sidecar -- ls /           # in a named container
  kbox exec deploy/web -- env                  # in a pod of the deployment web
  echo hi | kbox exec -i mypod -- cat          # send stdin to the command
  kbox exec -it mypod -- sh                    # an interactive shell
  kbox exec mypod -- sh -c 'exit 3'; echo $?   # prints 3: the remote exit code is kbox's
"""


class StdinReader:
    """A file descriptor's bytes as an async iterator, read in a daemon thread (see the module doc).

    At most ``AHEAD`` chunks wait between the thread and the consumer: a fast stdin (``cat big |``)
    waits for the WebSocket instead of filling memory."""

    AHEAD = 8

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._slots = threading.Semaphore(self.AHEAD)
        self._loop: asyncio.AbstractEventLoop | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            threading.Thread(target=self._read, name="kbox-stdin", daemon=True).start()
        while (chunk := await self._queue.get()) is not None:
            self._slots.release()
            yield chunk

    def _read(self) -> None:
        assert self._loop is not None
        while True:
            self._slots.acquire()  # a consumer that stopped leaves this daemon thread parked here
            try:
                chunk = os.read(self._fd, streams.CHUNK)
            except OSError:
                chunk = b""
            try:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, chunk or None)
            except RuntimeError:  # the loop is closed: nobody reads any more
                return
            if not chunk:
                return


def is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """The terminal on ``fd`` in raw mode, put back as it was however the block ends."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class TerminalSizes:
    """The terminal's size now, then again each time it changes (SIGWINCH), as an async iterator."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()

    def _current(self) -> None:
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(self._fd)
            self._queue.put_nowait((size.columns, size.lines))

    def __aiter__(self) -> AsyncIterator[tuple[int, int]]:
        return self._sizes()

    async def _sizes(self) -> AsyncIterator[tuple[int, int]]:
        loop = asyncio.get_running_loop()
        self._current()
        installed = False
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(signal.SIGWINCH, self._current)
            installed = True
        try:
            while True:
                yield await self._queue.get()
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGWINCH)


@dataclass(frozen=True)
class Terminal:
    """What the local side of a session uses: stdin (or not), and whether it is a raw terminal."""

    stdin: bool
    tty: bool

    @classmethod
    def setup(cls, *, stdin: bool, tty: bool, quiet: bool) -> Terminal:
        """As kubectl decides: a tty only with stdin, and only when stdin is a terminal."""
        if not stdin:
            return cls(stdin=False, tty=False)
        if tty and not is_terminal(STDIN_FD):
            if not quiet:
                click.echo(
                    "Unable to use a TTY - input is not a terminal or the right kind of file", err=True
                )
            tty = False
        return cls(stdin=True, tty=tty)

    def params(self) -> list[tuple[str, str]]:
        flags = [("stdout", "true")]
        if self.stdin:
            flags.append(("stdin", "true"))
        if self.tty:
            flags.append(("tty", "true"))
        else:
            flags.append(("stderr", "true"))  # a tty merges stderr into stdout
        return flags

    async def relay(self, api: session.Api, url: str, params: list[tuple[str, str]]) -> int:
        """Connect, relay until the remote side ends, and return the exit code its Status gives."""
        ws = await streams.connect(api.session, url, params=params, protocols=streams.EXEC_PROTOCOLS)
        stdout = streams.file_sink(sys.stdout.buffer)
        stderr = streams.file_sink(sys.stderr.buffer)
        stdin = StdinReader(STDIN_FD) if self.stdin else None
        if not self.tty:
            status = await streams.relay_session(ws, stdout=stdout, stderr=stderr, stdin=stdin)
        else:
            fd = STDIN_FD
            size_fd = STDOUT_FD if is_terminal(STDOUT_FD) else fd
            with raw_terminal(fd):
                status = await streams.relay_session(
                    ws, stdout=stdout, stderr=stderr, stdin=stdin, sizes=TerminalSizes(size_fd)
                )
        return 0 if status is None else streams.exit_code(status)


async def _exec(
    profile: str | None,
    namespace: str | None,
    target: str,
    command: tuple[str, ...],
    *,
    container: str | None,
    terminal: Terminal,
    quiet: bool,
    wait_seconds: float,
) -> int:
    async with session.connect(profile) as api:
        ns = namespace or api.namespace
        pod, chosen = await streams.live_container(
            api, target, ns, container, quiet=quiet, wait_seconds=wait_seconds, verb="exec into"
        )
        url = await streams.pod_url(api, ns, pod, "exec")
        params = [("command", part) for part in command] + [("container", chosen), *terminal.params()]
        return await terminal.relay(api, url, params)


@click.command("exec", epilog=EXAMPLES)
@click.argument("target", metavar="POD|TYPE/NAME")
@click.argument("command", nargs=-1, metavar="-- COMMAND [ARGS]...")
@click.option("--container", "-c", default=None, metavar="NAME", help="The container (default: the first).")
@click.option("--stdin", "-i", "stdin", is_flag=True, help="Pass stdin to the command.")
@click.option("--tty", "-t", "tty_", is_flag=True, help="Stdin is a terminal (with -i): raw mode, resizes.")
@click.option("--quiet", "-q", is_flag=True, help="Print only what the command prints.")
@streams.pod_options(pod_running_timeout=60.0)
@session.profile_option
def exec_command(
    target: str,
    command: tuple[str, ...],
    container: str | None,
    stdin: bool,
    tty_: bool,
    quiet: bool,
    namespace: str | None,
    pod_running_timeout: float,
    profile: str | None,
) -> None:
    """Run COMMAND in a container of POD (or of a pod of TYPE/NAME); its exit code is kbox's."""
    if not command:
        raise click.ClickException("you must specify at least one command for the container (after --)")
    terminal = Terminal.setup(stdin=stdin, tty=tty_, quiet=quiet)
    with streams.quiet_broken_pipe():
        code = session.run(
            _exec(
                profile,
                namespace,
                target,
                command,
                container=container,
                terminal=terminal,
                quiet=quiet,
                wait_seconds=pod_running_timeout,
            )
        )
    if code != 0:
        if not quiet:
            click.echo(f"command terminated with exit code {code}", err=True)
        raise click.exceptions.Exit(code)
