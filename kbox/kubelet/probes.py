"""Container probes: liveness, readiness and startup, with exec, httpGet and tcpSocket handlers.

Like the kubelet's prober manager, there is one worker per (pod, container, probe kind) while the
container runs; a worker belongs to one container instance (its runtime id), so a restarted container
gets fresh workers and the old ones are cancelled. A worker waits ``initialDelaySeconds`` from the
container's start, then probes every ``periodSeconds`` with a ``timeoutSeconds`` limit; a result only
counts after ``successThreshold`` consecutive successes or ``failureThreshold`` consecutive failures.
Liveness and readiness do not probe until the startup probe (if any) has succeeded; the startup worker
then ends. Initial results: readiness fails (not ready), liveness passes, startup has not succeeded.

A result that changes re-syncs the pod (``kubelet.workers.update``). The pod sync reads the results:
readiness feeds the container's ``ready`` (and so the pod's Ready and ContainersReady conditions); a
failed liveness or startup probe makes the sync kill the container ("Killing" event) and restart it
through the ordinary restart path (restart count, back-off, restart policy). Every failed probe
records an ``Unhealthy`` Warning event.

On the simulated runtime (``runtime.name == "fake"``) nothing runs, so there is nothing to exec into
and no address to connect to: every probe is simulated as passing, with its timing kept (a readiness
probe still holds a container not ready for its initial delay and first period).
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from kbox.kubelet.runtime.interface import ContainerRuntimeError, ContainerStatus
from kbox.util import aiotasks

if TYPE_CHECKING:
    from kbox.kubelet.kubelet import Kubelet, PodState

_log = logging.getLogger(__name__)
Obj = dict[str, Any]

LIVENESS = "liveness"
READINESS = "readiness"
STARTUP = "startup"
KINDS = (STARTUP, READINESS, LIVENESS)
_TITLE = {LIVENESS: "Liveness", READINESS: "Readiness", STARTUP: "Startup"}
_OUTPUT_LIMIT = 10 * 1024
_USER_AGENT = "kube-probe/1.31"


def spec_of(container: Obj, kind: str) -> Obj | None:
    probe = container.get(f"{kind}Probe")
    return probe if isinstance(probe, dict) else None


@dataclass
class _Worker:
    container_id: str
    result: bool | None  # None: no verdict yet (startup)
    task: asyncio.Task[Any] | None = None
    last: bool | None = None
    run: int = 0


@dataclass
class ProbeResult:
    success: bool
    message: str = ""
    unknown: bool = False  # the runtime could not be reached: neither success nor failure


@dataclass
class ProbeManager:
    """The probe workers of one kubelet, and the results the pod sync reads."""

    kubelet: Kubelet
    _pods: dict[str, dict[tuple[str, str], _Worker]] = field(default_factory=dict)
    _killed: dict[str, set[str]] = field(default_factory=dict)  # uid -> container ids killed by probes

    # -- what the pod sync asks --------------------------------------------------------------

    def _result(self, uid: str, name: str, kind: str, container_id: str) -> bool | None:
        worker = self._pods.get(uid, {}).get((name, kind))
        if worker is None or worker.container_id != container_id:
            return {LIVENESS: True, READINESS: False, STARTUP: None}[kind]
        return worker.result

    def started(self, uid: str, container: Obj, container_id: str) -> bool:
        """Whether the startup probe (if any) of this container instance has succeeded."""
        if spec_of(container, STARTUP) is None:
            return True
        return self._result(uid, container["name"], STARTUP, container_id) is True

    def ready(self, uid: str, container: Obj, container_id: str) -> bool:
        """Readiness of a running container: started, and its readiness probe (if any) passing."""
        if not self.started(uid, container, container_id):
            return False
        if spec_of(container, READINESS) is None:
            return True
        return self._result(uid, container["name"], READINESS, container_id) is True

    def failed(self, uid: str, container: Obj, container_id: str) -> str:
        """The probe kind (liveness or startup) whose failure means this container must restart, or ""."""
        for kind in (STARTUP, LIVENESS):
            probed = spec_of(container, kind) is not None
            if probed and self._result(uid, container["name"], kind, container_id) is False:
                return kind
        return ""

    def mark_killed(self, uid: str, container_id: str) -> None:
        self._killed.setdefault(uid, set()).add(container_id)

    def killed(self, uid: str, container_id: str) -> bool:
        """Whether this container instance was killed for a failed probe (it restarts unless policy Never)."""
        return container_id in self._killed.get(uid, set())

    # -- workers -----------------------------------------------------------------------------

    def sync(self, pod: Obj, state: PodState) -> None:
        """Run exactly the workers the pod's running app containers need; stop every other one."""
        uid = state.uid
        spec = pod.get("spec") or {}
        wanted: dict[tuple[str, str], tuple[ContainerStatus, Obj]] = {}
        for container in spec.get("containers") or []:
            current = state.current.get(container["name"])
            if current is None or current.state != "running":
                continue
            for kind in KINDS:
                if spec_of(container, kind) is not None:
                    wanted[(container["name"], kind)] = (current, container)
        workers = self._pods.setdefault(uid, {})
        for key, worker in list(workers.items()):
            target = wanted.get(key)
            if target is None or target[0].id != worker.container_id:
                self._cancel(worker)
                del workers[key]
        for key, (current, container) in wanted.items():
            if key in workers:
                continue
            name, kind = key
            worker = _Worker(current.id, {LIVENESS: True, READINESS: False, STARTUP: None}[kind])
            workers[key] = worker
            worker.task = aiotasks.create_guarded_task(
                self._run(uid, container, kind, current, worker),
                name=f"kubelet/{self.kubelet.name}/probe/{uid}/{name}/{kind}",
                logger=_log,
            )
        if not workers:
            self._pods.pop(uid, None)
        live = {c.id for c in state.current.values()} | {c.id for c in state.previous.values()}
        killed = self._killed.get(uid)
        if killed:
            killed &= live
            if not killed:
                self._killed.pop(uid, None)

    def forget(self, uid: str) -> None:
        """The pod is going: stop its workers and drop its results."""
        for worker in self._pods.pop(uid, {}).values():
            self._cancel(worker)
        self._killed.pop(uid, None)

    async def close(self) -> None:
        tasks = [w.task for ws in self._pods.values() for w in ws.values() if w.task is not None]
        self._pods.clear()
        self._killed.clear()
        await aiotasks.stop(tasks, title=f"kubelet {self.kubelet.name} probes")

    @staticmethod
    def _cancel(worker: _Worker) -> None:
        if worker.task is not None and not worker.task.done():
            worker.task.cancel()

    @property
    def active(self) -> int:
        return sum(1 for ws in self._pods.values() for w in ws.values() if w.task and not w.task.done())

    # -- one worker --------------------------------------------------------------------------

    async def _run(
        self, uid: str, container: Obj, kind: str, current: ContainerStatus, worker: _Worker
    ) -> None:
        probe = spec_of(container, kind) or {}
        name = container["name"]
        period = max(1.0, float(probe.get("periodSeconds") or 10))
        success_threshold = max(1, int(probe.get("successThreshold") or 1))
        failure_threshold = max(1, int(probe.get("failureThreshold") or 3))
        delay = float(probe.get("initialDelaySeconds") or 0)
        started_at = current.started_at or time.time()
        wait = started_at + delay - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        while True:
            if kind != STARTUP and not self.started(uid, container, worker.container_id):
                await asyncio.sleep(period)
                continue
            if not self.kubelet.health.ok:  # the runtime is down: no verdict on the container
                await asyncio.sleep(period)
                continue
            outcome = await self.probe(uid, container, probe, worker.container_id)
            if outcome.unknown:
                await asyncio.sleep(period)
                continue
            if not outcome.success:
                pod = self.kubelet.pods.get(uid)
                if pod is not None:
                    self.kubelet.event(
                        pod,
                        "Warning",
                        "Unhealthy",
                        f"{_TITLE[kind]} probe failed: {outcome.message}".rstrip(),
                        field_path=f"spec.containers{{{name}}}",
                    )
            worker.run = worker.run + 1 if worker.last == outcome.success else 1
            worker.last = outcome.success
            threshold = success_threshold if outcome.success else failure_threshold
            if worker.run >= threshold and worker.result != outcome.success:
                worker.result = outcome.success
                _log.debug("%s probe of %s in pod %s: %s", kind, name, uid, outcome.success)
                self.kubelet.workers.update(uid)
            if kind == STARTUP and worker.result is True:
                return  # started: the startup probe is done for this container
            if kind in (LIVENESS, STARTUP) and worker.result is False:
                return  # the pod sync kills and restarts the container; its successor gets new workers
            await asyncio.sleep(period)

    async def probe(self, uid: str, container: Obj, probe: Obj, container_id: str) -> ProbeResult:
        """Run one probe attempt; never raises (errors and timeouts are failures)."""
        if self.kubelet.runtime.name == "fake":
            return ProbeResult(True)  # nothing runs on the simulated runtime: probes pass
        timeout = max(1.0, float(probe.get("timeoutSeconds") or 1))
        try:
            async with asyncio.timeout(timeout):
                if "exec" in probe:
                    return await self._exec(container_id, probe["exec"])
                if "httpGet" in probe:
                    return await self._http(uid, container, probe["httpGet"])
                if "tcpSocket" in probe:
                    return await self._tcp(uid, container, probe["tcpSocket"])
                if "grpc" in probe:
                    return ProbeResult(False, "grpc probes are not supported by kbox")
                return ProbeResult(False, "probe has no handler")
        except TimeoutError:
            if "exec" in probe:
                command = shlex.join(str(c) for c in probe["exec"].get("command") or [])
                return ProbeResult(False, f'command "{command}" timed out')
            return ProbeResult(False, f"timeout after {timeout:g}s")
        except ContainerRuntimeError as exc:
            if exc.unavailable:
                self.kubelet.health.failed(exc)
                return ProbeResult(False, str(exc), unknown=True)
            return ProbeResult(False, str(exc))
        except (OSError, aiohttp.ClientError, ValueError) as exc:
            return ProbeResult(False, _describe(exc))

    async def _exec(self, container_id: str, action: Obj) -> ProbeResult:
        command = [str(c) for c in action.get("command") or []]
        session = await self.kubelet.runtime.exec(container_id, command, stdin=False, tty=False)
        try:
            output = bytearray()
            async for _stream, data in session.output():
                if len(output) < _OUTPUT_LIMIT:
                    output += data[: _OUTPUT_LIMIT - len(output)]
            code = await session.wait()
        finally:
            await session.close()
        text = output.decode(errors="replace").strip()
        if code == 0:
            return ProbeResult(True, text)
        return ProbeResult(False, text or f"command {shlex.join(command)!r} exited with {code}")

    def _host(self, uid: str, action: Obj) -> str:
        if action.get("host"):
            return str(action["host"])
        state = self.kubelet.states.get(uid)
        ip = state.sandbox.ip if state is not None and state.sandbox is not None else ""
        return ip or self.kubelet.address or "127.0.0.1"

    async def _http(self, uid: str, container: Obj, action: Obj) -> ProbeResult:
        host = self._host(uid, action)
        port = resolve_port(container, action.get("port"))
        scheme = str(action.get("scheme") or "HTTP").lower()
        path = str(action.get("path") or "/")
        if not path.startswith("/"):
            path = "/" + path
        netloc = f"[{host}]" if ":" in host else host
        url = f"{scheme}://{netloc}:{port}{path}"
        headers = {"User-Agent": _USER_AGENT, "Accept": "*/*", "Connection": "close"}
        for header in action.get("httpHeaders") or []:
            headers[str(header.get("name", ""))] = str(header.get("value", ""))
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        connector = aiohttp.TCPConnector(ssl=insecure if scheme == "https" else False, force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(url, headers=headers, allow_redirects=False) as response,
        ):
            body = await response.content.read(_OUTPUT_LIMIT)
            if 200 <= response.status < 400:
                return ProbeResult(True)
            text = body.decode(errors="replace").strip()
            return ProbeResult(False, f"HTTP probe failed with statuscode: {response.status} {text}".strip())

    async def _tcp(self, uid: str, container: Obj, action: Obj) -> ProbeResult:
        host = self._host(uid, action)
        port = resolve_port(container, action.get("port"))
        _reader, writer = await asyncio.open_connection(host, port)
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return ProbeResult(True)


def resolve_port(container: Obj, port: Any) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    text = str(port or "")
    if text.isdigit():
        return int(text)
    for entry in container.get("ports") or []:
        if entry.get("name") == text:
            return int(entry["containerPort"])
    raise ValueError(f"port {text!r} is not a port of container {container.get('name', '')}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp: connect: connection refused ({exc})"
    return f"{type(exc).__name__}: {exc}"
