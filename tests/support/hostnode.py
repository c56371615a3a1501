"""A ``NodeConnection`` for tests that runs everything on the host instead of in containers.

- ``logs``: from in-memory ``LogBuffer``s the test fills (``node.log(ns, pod, container).append(...)``);
  a follow yields lines as they are appended, until ``end()``. Tail, timestamps, since and limitBytes
  are applied as the kubelet applies them.
- ``exec``: the command runs as a local subprocess (pipes, or a pty with ``tty``; resizes set the pty's
  window size and are recorded in ``resizes``).
- ``attach``: relays a long-running local process per container, started on first attach from
  ``attach_command``; its output goes to every attached session, stdin to the process.
- ``port_forward``: a TCP connection to ``127.0.0.1:<port>`` on the host.

Call ``close()`` at the end to stop the attached processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fcntl
import os
import struct
import termios
from collections.abc import AsyncIterator

from kbox.api import errors
from kbox.api.nodeconnection import ExecSession, LogOptions, NodeConnection


def log_timestamp(moment: datetime.datetime) -> bytes:
    """RFC 3339 with nanoseconds, fixed width, as the kubelet prefixes log lines."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z").encode()


class LogBuffer:
    """One container's log: lines with the time each was appended."""

    def __init__(self) -> None:
        self.entries: list[tuple[datetime.datetime, bytes]] = []
        self.ended = False
        self.readers = 0  # reads in progress: a follow whose client went away must end
        self._changed = asyncio.Event()

    def append(self, *lines: str) -> None:
        for line in lines:
            self.entries.append((datetime.datetime.now(datetime.UTC), line.encode() + b"\n"))
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def read(self, options: LogOptions) -> AsyncIterator[bytes]:
        entries = list(self.entries)
        if options.since_seconds is not None:
            since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=options.since_seconds)
            entries = [e for e in entries if e[0] >= since]
        elif options.since_time is not None:
            since = datetime.datetime.fromisoformat(options.since_time.replace("Z", "+00:00"))
            entries = [e for e in entries if e[0] >= since]
        if options.tail_lines is not None:
            entries = entries[len(entries) - options.tail_lines :] if options.tail_lines else []
        budget = options.limit_bytes
        sent = len(self.entries)
        self.readers += 1
        try:
            while True:
                for moment, line in entries:
                    chunk = (log_timestamp(moment) + b" " + line) if options.timestamps else line
                    if budget is not None:
                        chunk, budget = chunk[:budget], budget - len(chunk[:budget])
                    yield chunk
                    if budget is not None and budget <= 0:
                        return
                if not options.follow or self.ended:
                    return
                changed = self._changed
                if len(self.entries) == sent:
                    await changed.wait()
                entries, sent = self.entries[sent:], len(self.entries)
        finally:
            self.readers -= 1


class _Output:
    """Chunks from one or two readers, in the order produced; ``None`` once every reader has ended."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

    async def pump(self, stream: int, reader: asyncio.StreamReader) -> None:
        try:
            while chunk := await reader.read(65536):
                self.queue.put_nowait((stream, chunk))
        finally:
            self.queue.put_nowait(None)

    async def chunks(self, sources: int) -> AsyncIterator[tuple[int, bytes]]:
        ended = 0
        while ended < sources:
            item = await self.queue.get()
            if item is None:
                ended += 1
            else:
                yield item


class PipeSession(ExecSession):
    """A local process with pipes: stdout is stream 1, stderr stream 2."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._output = _Output()
        assert process.stdout is not None and process.stderr is not None
        self._pumps = [
            asyncio.ensure_future(self._output.pump(1, process.stdout)),
            asyncio.ensure_future(self._output.pump(2, process.stderr)),
        ]

    @classmethod
    async def start(cls, command: list[str], *, stdin: bool) -> PipeSession:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def write_stdin(self, data: bytes) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.process.stdin.drain()

    async def close_stdin(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        async for item in self._output.chunks(2):
            yield item

    async def resize(self, width: int, height: int) -> None:
        pass

    async def wait(self) -> int:
        return await self.process.wait()

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        for pump in self._pumps:
            pump.cancel()


class PtySession(ExecSession):
    """A local process on a pseudo-terminal: everything it writes is stream 1."""

    def __init__(
        self, process: asyncio.subprocess.Process, master: int, resizes: list[tuple[int, int]]
    ) -> None:
        self.process = process
        self.master = master
        self.resizes = resizes
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._readable)
        self._open = True

    @classmethod
    async def start(cls, command: list[str], resizes: list[tuple[int, int]]) -> PtySession:
        master, slave = os.openpty()
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return cls(process, master, resizes)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave descriptor is closed, the process is gone
            chunk = b""
        if chunk:
            self._chunks.put_nowait(chunk)
        else:
            self._stop_reading()
            self._chunks.put_nowait(None)

    def _stop_reading(self) -> None:
        if self._open:
            self._open = False
            asyncio.get_running_loop().remove_reader(self.master)

    async def write_stdin(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, data)

    async def close_stdin(self) -> None:
        await self.write_stdin(b"\x04")  # a terminal's end of input is ^D

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while (chunk := await self._chunks.get()) is not None:
            yield 1, chunk

    async def resize(self, width: int, height: int) -> None:
        self.resizes.append((width, height))
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        return await self.process.wait()

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        self._stop_reading()
        with contextlib.suppress(OSError):
            os.close(self.master)


class _MainProcess:
    """A container's long-running process, relayed to whoever attaches."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.subscribers: set[asyncio.Queue[tuple[int, bytes] | None]] = set()
        assert process.stdout is not None and process.stderr is not None
        self._output = _Output()
        self._pumps = [
            asyncio.ensure_future(self._output.pump(1, process.stdout)),
            asyncio.ensure_future(self._output.pump(2, process.stderr)),
        ]
        self._fanout = asyncio.ensure_future(self._relay())

    async def _relay(self) -> None:
        async for item in self._output.chunks(2):
            for queue in self.subscribers:
                queue.put_nowait(item)
        await self.process.wait()
        for queue in self.subscribers:
            queue.put_nowait(None)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        for task in (*self._pumps, self._fanout):
            task.cancel()


class AttachSession(ExecSession):
    def __init__(self, main: _MainProcess) -> None:
        self.main = main
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        if main.process.returncode is None:
            main.subscribers.add(self.queue)
        else:
            self.queue.put_nowait(None)

    async def write_stdin(self, data: bytes) -> None:
        stdin = self.main.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await stdin.drain()

    async def close_stdin(self) -> None:
        stdin = self.main.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while (item := await self.queue.get()) is not None:
            yield item

    async def resize(self, width: int, height: int) -> None:
        pass

    async def wait(self) -> int:
        return await self.main.process.wait()

    async def close(self) -> None:
        self.main.subscribers.discard(self.queue)
        self.queue.put_nowait(None)


class HostNodeConnection(NodeConnection):
    def __init__(self, *, attach_command: list[str] | None = None) -> None:
        self.attach_command = attach_command
        self.buffers: dict[tuple[str, str, str], LogBuffer] = {}
        self.mains: dict[tuple[str, str, str], _MainProcess] = {}
        self.exec_calls: list[tuple[str, str, str, list[str]]] = []
        self.sessions: list[ExecSession] = []
        self.resizes: list[tuple[int, int]] = []

    def log(self, namespace: str, pod: str, container: str) -> LogBuffer:
        return self.buffers.setdefault((namespace, pod, container), LogBuffer())

    def logs(self, namespace: str, pod: str, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        if options.previous:
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{pod}" not found')
        return self.log(namespace, pod, container).read(options)

    async def exec(
        self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> ExecSession:
        self.exec_calls.append((namespace, pod, container, command))
        try:
            session: ExecSession
            if tty:
                session = await PtySession.start(command, self.resizes)
            else:
                session = await PipeSession.start(command, stdin=stdin)
        except OSError as exc:
            # The wording of a runtime that cannot start the command.
            raise errors.internal(
                f"error executing command in container: failed to exec in container: {exc.strerror}"
            ) from None
        self.sessions.append(session)
        return session

    async def attach(
        self, namespace: str, pod: str, container: str, *, stdin: bool, tty: bool
    ) -> ExecSession:
        key = (namespace, pod, container)
        main = self.mains.get(key)
        if main is None:
            if not self.attach_command:
                raise errors.bad_request(
                    f'container "{container}" in pod "{pod}" has no process to attach to'
                )
            process = await asyncio.create_subprocess_exec(
                *self.attach_command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            main = self.mains[key] = _MainProcess(process)
        return AttachSession(main)

    async def port_forward(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port)

    async def close(self) -> None:
        for buffer in self.buffers.values():
            buffer.end()
        for main in self.mains.values():
            await main.stop()
