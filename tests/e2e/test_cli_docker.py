"""``kbox logs``, ``exec``, ``attach`` and ``port-forward`` on real containers: one profile started with
``--runtime docker`` through the installed command for the whole module, and three busybox pods: one that
logs to stdout and stderr and serves HTTP with ``httpd``, one whose main process reads its stdin, and a
shell with a terminal.

Checked as a user meets them: the log (and its timestamps), the remote exit code becoming kbox's, stdout
and stderr kept apart, stdin reaching ``cat`` and its end ending it, a terminal's size reaching the
command (under script(1)), an interactive shell typed at on a pseudo-terminal (left as it was found),
attach with and without a terminal, and HTTP through a forwarded port, twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import termios
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.component.cli.conftest import KBOX, KboxCluster
from tests.e2e.conftest import BuiltImages

pytestmark = pytest.mark.docker

SERVE = (
    "echo hello; echo to-err >&2; mkdir -p /www; echo pong > /www/index.html; exec httpd -f -p 8080 -h /www"
)
ECHO = 'while read line; do echo "got $line"; done; echo bye'


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, docker_images: BuiltImages) -> Iterator[KboxCluster]:
    base = tmp_path_factory.mktemp("kbox-cli-docker")
    c = KboxCluster(home=base / "home", kbox_home=base / "kbox-home", profile=f"cli-{uuid.uuid4().hex[:6]}")
    c.home.mkdir()
    try:
        c.ok("start", "--runtime", "docker", "--port", "0", timeout=300)
        pods = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web"},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": docker_images.busybox,
                            "imagePullPolicy": "Never",
                            "command": ["sh", "-c", SERVE],
                        }
                    ]
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "echo"},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": docker_images.busybox,
                            "imagePullPolicy": "Never",
                            "command": ["sh", "-c", ECHO],
                            "stdin": True,
                            "stdinOnce": True,
                        }
                    ]
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "shell"},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": docker_images.busybox,
                            "imagePullPolicy": "Never",
                            "command": ["sh"],
                            "stdin": True,
                            "tty": True,
                        }
                    ]
                },
            },
        ]
        c.kubectl_ok(
            "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": pods})
        )
        c.kubectl_ok(
            "wait", "--for=condition=Ready", "pod/web", "pod/echo", "pod/shell", "--timeout=120s", timeout=150
        )
        yield c
    finally:
        c.kbox("delete", "--all", timeout=180)


def test_logs(cluster: KboxCluster) -> None:
    # stdout and stderr are two pipes: Docker may keep either line first.
    whole = cluster.ok("logs", "web").splitlines(keepends=True)
    assert sorted(whole[:2]) == ["hello\n", "to-err\n"]  # (test_logs_follow may add a line)
    assert cluster.ok("logs", "web", "--tail", "1") == whole[-1]
    lines = cluster.ok("logs", "web", "--timestamps").splitlines()
    assert [line.split(" ", 1)[1] + "\n" for line in lines] == whole
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line.split(" ")[0]) for line in lines), (
        lines
    )


async def test_logs_follow(cluster: KboxCluster) -> None:
    process = await asyncio.create_subprocess_exec(
        KBOX, "logs", "-f", "web", env=cluster.env, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        # A line written to the main process's stdout from an exec arrives in the followed log,
        # after the lines that were there.
        marker = f"appended-{uuid.uuid4().hex[:6]}"
        cluster.ok("exec", "web", "--", "sh", "-c", f"echo {marker} > /proc/1/fd/1")
        lines = [await asyncio.wait_for(process.stdout.readline(), 30) for _ in range(3)]
        assert sorted(lines[:2]) == [b"hello\n", b"to-err\n"]
        assert lines[2] == f"{marker}\n".encode()
        assert process.returncode is None  # still following
    finally:
        process.terminate()
        await process.wait()


def test_exec_exit_codes_and_streams(cluster: KboxCluster) -> None:
    result = cluster.kbox("exec", "web", "--", "sh", "-c", "exit 3")
    assert result.returncode == 3
    assert result.stderr == "command terminated with exit code 3\n"
    result = cluster.kbox("exec", "web", "--", "sh", "-c", "echo out; echo err >&2")
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")
    assert cluster.ok("exec", "web", "--", "cat", "/www/index.html") == "pong\n"


def test_exec_with_stdin(cluster: KboxCluster) -> None:
    assert cluster.ok("exec", "-i", "web", "--", "cat", input="hi\n") == "hi\n"
    big = "".join(f"line {i}\n" for i in range(20000))  # several WebSocket messages
    assert cluster.ok("exec", "-i", "web", "--", "wc", "-l", input=big).strip() == "20000"


async def test_exec_with_a_terminal(cluster: KboxCluster, tmp_path: Path) -> None:
    # script(1) gives kbox a terminal of 30 rows and 100 columns: raw mode, the size sent at once. The
    # command polls for it: a Docker exec's terminal can answer stty with an error at first (kubectl's
    # sessions see the same).
    poll = 'for i in $(seq 50); do s=$(stty size 2>/dev/null); [ "$s" = "30 100" ] && break; sleep 0.1; done'
    command = shlex.join([KBOX, "exec", "-it", "web", "--", "sh", "-c", f'{poll}; echo "size $s"; tty'])
    process = await asyncio.create_subprocess_exec(
        "script",
        "-qec",
        f"stty rows 30 cols 100; {command}",
        "/dev/null",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cluster.env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, (out, err)
    # (script echoes the NUL it reads from /dev/null as "^@")
    lines = [line.lstrip("^@") for line in out.decode().replace("\r", "").splitlines()]
    assert "size 30 100" in lines, out
    assert any(line.startswith("/dev/pts/") for line in lines), out


class OnTerminal:
    """kbox run on a pseudo-terminal of its own, typed at like a user."""

    def __init__(self, cluster: KboxCluster) -> None:
        self.cluster = cluster
        self.master, self.slave = os.openpty()
        self.before = termios.tcgetattr(self.slave)
        self.seen = b""
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        self.process = await asyncio.create_subprocess_exec(
            KBOX,
            *args,
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=self.cluster.env,
            start_new_session=True,
        )
        return self.process

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    async def shows(self, marker: str, timeout: float = 60) -> None:
        async def read() -> None:
            loop = asyncio.get_running_loop()
            while marker.encode() not in self.seen:
                try:
                    chunk = await loop.run_in_executor(None, os.read, self.master, 4096)
                except OSError:  # EIO: nothing has the terminal open any more
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{marker!r} never came; the terminal showed {self.seen!r}")
                self.seen += chunk

        await asyncio.wait_for(read(), timeout)

    def is_raw(self) -> bool:
        return termios.tcgetattr(self.slave) != self.before

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        os.close(self.slave)
        os.close(self.master)


async def test_an_interactive_shell_and_the_terminal_left_as_it_was(cluster: KboxCluster) -> None:
    # A shell answers, its exit code is kbox's, and the terminal is the same after kbox as before.
    terminal = OnTerminal(cluster)
    try:
        process = await terminal.start("exec", "-it", "web", "--", "sh")
        terminal.type("echo $((6 * 7))\r")
        await terminal.shows("42")
        assert terminal.is_raw()  # while the session runs
        terminal.type("exit 7\r")
        assert await asyncio.wait_for(process.wait(), 60) == 7
        await terminal.shows("command terminated with exit code 7")
        assert not terminal.is_raw()
    finally:
        await terminal.close()


async def test_attach_with_a_terminal(cluster: KboxCluster) -> None:
    terminal = OnTerminal(cluster)
    try:
        process = await terminal.start("attach", "-it", "shell")
        await terminal.shows("If you don't see a command prompt, try pressing enter.")
        terminal.type("echo $((6 * 7))\r")
        await terminal.shows("42")
        terminal.type("exit\r")  # the container's main process ends, and so does the session
        assert await asyncio.wait_for(process.wait(), 60) == 0
        assert not terminal.is_raw()
    finally:
        await terminal.close()


def test_attach_to_the_main_process(cluster: KboxCluster) -> None:
    out = cluster.ok("attach", "-i", "echo", input="x\ny\n", timeout=60)
    assert out.splitlines()[-3:] == ["got x", "got y", "bye"]


async def test_port_forward_reaches_httpd(cluster: KboxCluster) -> None:
    process = await asyncio.create_subprocess_exec(
        KBOX,
        "port-forward",
        "web",
        ":8080",
        "--address",
        "127.0.0.1",
        env=cluster.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        match = re.fullmatch(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080\n", first)
        assert match, first
        port = int(match.group(1))

        async def get() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            await writer.drain()
            response = await reader.read()
            writer.close()
            return response

        for _ in range(2):  # each connection gets a tunnel of its own
            response = await asyncio.wait_for(get(), 60)
            assert response.startswith(b"HTTP/1.") and b" 200 " in response.split(b"\r\n")[0], response
            assert response.endswith(b"\r\n\r\npong\n"), response
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 30) == 0  # Ctrl-C/SIGTERM ends it cleanly
