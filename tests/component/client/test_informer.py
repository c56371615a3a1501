"""Informers, reflectors and the controller loop against a real apiserver in process, through both
``LocalClient`` and ``HttpClient``: the initial (paginated) list synced into the cache, adds, updates
and deletes delivered in order, label and field selectors (objects leaving and entering the selection),
recovery from 410 Gone with a synthesized delete for an object removed while the watch was down, back-off
on list and watch errors, periodic resync, late handlers and sharing through the factory, and a toy
controller that keeps a copy of each ConfigMap converging through ``Controller``.

Watches are held and cut by a wrapping client, and time that must pass (back-off, resync) comes from a
fake clock, so nothing here waits for wall-clock time; every wait is for a condition, with a timeout.
Leaves work queue details to tests/unit/client/test_workqueue.py."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from kbox.client import cache, interface, reflector
from kbox.client.http import HttpClient
from kbox.client.informer import InformerFactory, SharedInformer
from kbox.client.interface import Client, Obj, Resource, StatusError, WatchEvent
from kbox.client.local import LocalClient
from kbox.controllers.base import Controller
from kbox.store.log import LogStore
from kbox.util import aiotasks
from tests.support.apiserver import Served, served

CM = interface.CONFIGMAPS
PODS = interface.PODS
NS = "t"


class Signal:
    """Wait for a condition that becomes true when something calls :meth:`changed`."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def changed(self) -> None:
        self._event.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._event.clear()
                await self._event.wait()


class Recorder(Signal):
    """A handler that records ``(event, name)`` pairs (a tombstone shows as ``tombstone``)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []
        self.deleted: list[Obj | cache.DeletedFinalStateUnknown] = []

    def attach(self, informer: SharedInformer) -> Recorder:
        informer.add_handler(self.on_add, self.on_update, self.on_delete)
        return self

    def on_add(self, obj: Obj) -> None:
        self._record("add", obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._record("resync" if old is new else "update", new)

    def on_delete(self, obj: Obj | cache.DeletedFinalStateUnknown) -> None:
        self.deleted.append(obj)
        kind = "tombstone" if isinstance(obj, cache.DeletedFinalStateUnknown) else "delete"
        self._record(kind, cache.deleted_object(obj))

    def _record(self, kind: str, obj: Obj) -> None:
        self.events.append((kind, obj["metadata"]["name"]))
        self.changed()

    def take(self) -> list[tuple[str, str]]:
        events, self.events = self.events, []
        return events


class Switchboard(Client, Signal):
    """A client that passes everything to ``inner`` and lets a test hold new watches (``gate``), cut
    the open ones (they end as a server timeout would), and make the next lists or watches fail."""

    def __init__(self, inner: Client) -> None:
        Signal.__init__(self)
        self.inner = inner
        self.gate = asyncio.Event()
        self.gate.set()
        self.held = 0
        self.lists: list[tuple[int, str | None]] = []
        self.watches: list[str] = []
        self.list_failures: list[Exception | None] = []
        """Outcomes of the next lists: an exception to raise, or ``None`` to pass the call on."""
        self.watch_failures: list[Exception] = []
        self._open: set[asyncio.Timeout] = set()

    def cut(self) -> None:
        loop = asyncio.get_running_loop()
        for scope in self._open:
            scope.reschedule(loop.time())

    @property
    def open_watches(self) -> int:
        return len(self._open)

    async def list(self, resource: Resource, **kwargs: Any) -> Obj:
        self.lists.append((kwargs.get("limit", 0), kwargs.get("continue_token")))
        self.changed()
        failure = self.list_failures.pop(0) if self.list_failures else None
        if failure is not None:
            raise failure
        return await self.inner.list(resource, **kwargs)

    async def watch(self, resource: Resource, **kwargs: Any) -> AsyncIterator[WatchEvent]:
        self.held += 1
        self.changed()
        try:
            await self.gate.wait()
        finally:
            self.held -= 1
        self.watches.append(kwargs.get("resource_version", ""))
        if self.watch_failures:
            raise self.watch_failures.pop(0)
        stream = self.inner.watch(resource, **kwargs)
        try:
            async with asyncio.timeout(None) as scope:
                self._open.add(scope)
                self.changed()
                try:
                    async for event in stream:
                        self.changed()  # the consumer applies it before the waiters look
                        yield event
                finally:
                    self._open.discard(scope)
        except TimeoutError:
            return
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> Obj:
        return await self.inner.get(resource, name, namespace=namespace)

    async def create(self, resource: Resource, obj: Obj, *, namespace: str | None = None) -> Obj:
        return await self.inner.create(resource, obj, namespace=namespace)

    async def update(self, resource: Resource, obj: Obj, **kwargs: Any) -> Obj:
        return await self.inner.update(resource, obj, **kwargs)

    async def patch(self, resource: Resource, name: str, patch: Any, **kwargs: Any) -> Obj:
        return await self.inner.patch(resource, name, patch, **kwargs)

    async def delete(self, resource: Resource, name: str, **kwargs: Any) -> Obj:
        return await self.inner.delete(resource, name, **kwargs)

    async def bind(self, pod: str, node: str, *, namespace: str) -> None:
        await self.inner.bind(pod, node, namespace=namespace)


class FakeClock:
    """Time the test moves: with ``auto``, every sleep returns at once (recording its length); without,
    sleepers wait for :meth:`advance`."""

    def __init__(self, *, auto: bool = False) -> None:
        self.auto = auto
        self.now = 0.0
        self.slept: list[float] = []
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.slept.append(delay)
        if self.auto:
            self.now += delay
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + delay, future))
        await future

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for deadline, future in list(self._sleepers):
            if deadline <= self.now:
                self._sleepers.remove((deadline, future))
                if not future.done():
                    future.set_result(None)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path) as s:
        yield s


@pytest.fixture(params=["local", "http"])
async def client(request: pytest.FixtureRequest, server: Served) -> AsyncIterator[Client]:
    if request.param == "local":
        c: Client = LocalClient(server.plane.catalog)
    else:
        c = HttpClient(server.url, token=server.token, ca_file=str(server.ca_file))
    await c.create(interface.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    yield c
    await c.close()


@pytest.fixture
async def board(client: Client) -> Switchboard:
    return Switchboard(client)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[SharedInformer], None]]:
    """Run informers as tasks for the test, and stop them after it."""
    tasks: list[asyncio.Task[None]] = []

    def run(informer: SharedInformer) -> None:
        tasks.append(aiotasks.create_guarded_task(informer.run(), name=informer.name))

    yield run
    await aiotasks.stop(tasks, title="test informers")


def cm(name: str, data: dict[str, str] | None = None, **labels: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data if data is not None else {"a": "1"},
    }


def pod(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }


async def test_initial_list_then_events_in_order(
    client: Client, board: Switchboard, running: Callable[[SharedInformer], None]
) -> None:
    for i in range(7):
        await client.create(CM, cm(f"c{i}"), namespace=NS)
    informer = SharedInformer(board, CM, namespace=NS, page_size=3)
    recorder = Recorder().attach(informer)
    assert not await informer.wait_synced(timeout=0.01)  # not running yet
    running(informer)
    assert await informer.wait_synced(timeout=5)
    assert informer.has_synced and await informer.wait_synced()
    # Three pages at one revision, announced as adds, cached with their kind as watch events carry it.
    assert [limit for limit, _ in board.lists] == [3, 3, 3] and board.lists[0][1] is None
    assert sorted(recorder.take()) == [("add", f"c{i}") for i in range(7)]
    assert sorted(informer.indexer.keys()) == [f"{NS}/c{i}" for i in range(7)]
    assert informer.indexer.get(f"{NS}/c0")["kind"] == "ConfigMap"  # type: ignore[index]
    assert len(informer.indexer.by_index(cache.NAMESPACE, NS)) == 7

    await client.create(CM, cm("x"), namespace=NS)
    await client.patch(CM, "x", {"data": {"a": "2"}}, namespace=NS)
    await client.patch(CM, "c3", {"data": {"a": "2"}}, namespace=NS)
    await client.delete(CM, "x", namespace=NS)
    await client.delete(CM, "c0", namespace=NS)
    await recorder.until(lambda: len(recorder.events) == 5)
    assert recorder.take() == [
        ("add", "x"),
        ("update", "x"),
        ("update", "c3"),
        ("delete", "x"),
        ("delete", "c0"),
    ]
    assert informer.indexer.get(f"{NS}/x") is None
    assert informer.indexer.get(f"{NS}/c3")["data"] == {"a": "2"}  # type: ignore[index]
    assert informer.resource_version == informer.indexer.resource_version != ""
    assert board.watches == [board.watches[0]] and informer.reflector.lists == 1


async def test_expired_continuation_falls_back_to_a_full_list(
    client: Client, board: Switchboard, running: Callable[[SharedInformer], None]
) -> None:
    for i in range(5):
        await client.create(CM, cm(f"c{i}"), namespace=NS)
    board.list_failures = [None, StatusError("continue token expired", 410, "Expired")]
    informer = SharedInformer(board, CM, namespace=NS, page_size=2)
    recorder = Recorder().attach(informer)
    running(informer)
    assert await informer.wait_synced(5)
    assert [limit for limit, _ in board.lists] == [2, 2, 0]  # first page, expired second, then whole
    assert sorted(recorder.take()) == [("add", f"c{i}") for i in range(5)]  # announced once each


async def test_bookmarks_only_advance_the_revision(
    client: Client, server: Served, board: Switchboard, running: Callable[[SharedInformer], None]
) -> None:
    store = server.plane.store
    assert isinstance(store, LogStore)
    informer = SharedInformer(board, CM, namespace=NS)
    recorder = Recorder().attach(informer)
    running(informer)
    assert await informer.wait_synced(5)
    await board.until(lambda: board.open_watches == 1)
    listed = informer.resource_version
    # Writes elsewhere move the store on; a bookmark tells the quiet watcher, which resumes from there.
    await client.create(CM, cm("elsewhere"), namespace="default")
    store.request_progress()
    await board.until(lambda: informer.resource_version == str(store.revision) != listed)
    assert recorder.events == [] and len(informer.indexer) == 0
    assert informer.indexer.resource_version == str(store.revision)
    board.cut()
    await board.until(lambda: len(board.watches) == 2 and board.open_watches == 1)
    assert board.watches == [listed, str(store.revision)]


async def test_label_and_field_selectors(
    client: Client, board: Switchboard, running: Callable[[SharedInformer], None]
) -> None:
    await client.create(CM, cm("a1", team="a"), namespace=NS)
    await client.create(CM, cm("b1", team="b"), namespace=NS)
    team_a = SharedInformer(board, CM, namespace=NS, label_selector="team=a")
    on_node = SharedInformer(board, PODS, field_selector="spec.nodeName=node-1")
    on_node.add_index(cache.NODE_NAME, cache.by_node_name)
    labels, fields = Recorder().attach(team_a), Recorder().attach(on_node)
    running(team_a)
    running(on_node)
    assert await team_a.wait_synced(5) and await on_node.wait_synced(5)
    assert labels.take() == [("add", "a1")] and fields.take() == []

    # Leaving the selection reads as a delete, entering it as an add.
    await client.patch(CM, "a1", {"metadata": {"labels": {"team": "b"}}}, namespace=NS)
    await client.patch(CM, "b1", {"metadata": {"labels": {"team": "a"}}}, namespace=NS)
    await labels.until(lambda: len(labels.events) == 2)
    assert labels.take() == [("delete", "a1"), ("add", "b1")]
    assert team_a.indexer.keys() == [f"{NS}/b1"]

    # The kubelet's view: a pod shows up on its node when it is bound there, not before.
    await client.create(PODS, pod("p"), namespace=NS)
    await client.create(PODS, pod("q"), namespace=NS)
    await client.bind("q", "node-2", namespace=NS)
    await client.bind("p", "node-1", namespace=NS)
    await fields.until(lambda: len(fields.events) == 1)
    assert fields.take() == [("add", "p")]
    assert on_node.indexer.keys() == [f"{NS}/p"]
    assert [cache.key_of(o) for o in on_node.indexer.by_index(cache.NODE_NAME, "node-1")] == [f"{NS}/p"]


async def test_gone_relists_and_synthesizes_missed_deletes(
    client: Client, server: Served, board: Switchboard, running: Callable[[SharedInformer], None]
) -> None:
    await client.create(CM, cm("x"), namespace=NS)
    clock = FakeClock(auto=True)
    informer = SharedInformer(board, CM, namespace=NS, clock=clock)
    recorder = Recorder().attach(informer)
    running(informer)
    assert await informer.wait_synced(5)
    await board.until(lambda: board.open_watches == 1)
    await client.create(CM, cm("y"), namespace=NS)  # the watch works: its end is no failure
    await recorder.until(lambda: len(recorder.events) == 2)
    assert recorder.take() == [("add", "x"), ("add", "y")]
    last_known_x = informer.indexer.get(f"{NS}/x")

    # Take the watch down and keep it down while history moves on and is compacted away.
    board.gate.clear()
    board.cut()
    await board.until(lambda: board.held == 1)
    await client.delete(CM, "x", namespace=NS)
    await client.patch(CM, "y", {"data": {"a": "2"}}, namespace=NS)
    await client.create(CM, cm("z"), namespace=NS)
    await server.plane.store.compact(server.plane.store.revision)
    board.gate.set()

    await recorder.until(lambda: len(recorder.events) == 3)
    assert sorted(recorder.take()) == [("add", "z"), ("tombstone", "x"), ("update", "y")]
    tombstone = recorder.deleted[-1]
    assert tombstone == cache.DeletedFinalStateUnknown(f"{NS}/x", last_known_x)  # type: ignore[arg-type]
    assert sorted(informer.indexer.keys()) == [f"{NS}/y", f"{NS}/z"]
    assert informer.reflector.lists == 2
    assert clock.slept == []  # the first 410 re-lists at once
    # And the new watch carries on from the new list.
    await board.until(lambda: board.open_watches == 1)
    await client.create(CM, cm("w"), namespace=NS)
    await recorder.until(lambda: recorder.events == [("add", "w")])


async def test_errors_back_off_then_recover(
    client: Client, board: Switchboard, running: Callable[[SharedInformer], None]
) -> None:
    await client.create(CM, cm("x"), namespace=NS)
    clock = FakeClock(auto=True)
    backoff = reflector.Backoff(rand=lambda: 1.0)  # no jitter: exact delays
    informer = SharedInformer(board, CM, namespace=NS, clock=clock, backoff=backoff)
    recorder = Recorder().attach(informer)
    board.list_failures = [StatusError("unavailable", 503, "ServiceUnavailable")] * 3
    running(informer)
    assert await informer.wait_synced(5)
    assert clock.slept == [0.5, 1.0, 2.0]
    assert recorder.take() == [("add", "x")]

    # A broken watch backs off and resumes from its revision: no re-list, nothing missed.
    await board.until(lambda: board.open_watches == 1)
    await client.create(CM, cm("w"), namespace=NS)  # a watch that delivers resets the back-off
    await recorder.until(lambda: recorder.take() == [("add", "w")])
    clock.slept.clear()
    board.watch_failures = [ConnectionResetError("reset"), ConnectionResetError("reset")]
    board.cut()
    await board.until(lambda: not board.watch_failures and board.open_watches == 1)
    await client.create(CM, cm("y"), namespace=NS)
    await recorder.until(lambda: recorder.events == [("add", "y")])
    assert clock.slept == [0.5, 1.0]
    assert informer.reflector.lists == len(board.lists) == 4  # three failed lists and one good, no more
    assert len(set(board.watches[-3:])) == 1  # all three from the same revision

    # The delays double up to a cap, jittered between 75% and 100%.
    exact = reflector.Backoff(rand=lambda: 1.0)
    assert [exact.delay(n) for n in (1, 2, 6, 7, 20, 10_000)] == [0.5, 1.0, 16.0, 30.0, 30.0, 30.0]
    assert reflector.Backoff(rand=lambda: 0.0).delay(7) == 22.5


async def test_resync_delivers_every_cached_object(
    client: Client, running: Callable[[SharedInformer], None]
) -> None:
    await client.create(CM, cm("x"), namespace=NS)
    await client.create(CM, cm("y"), namespace=NS)
    clock = FakeClock()
    informer = SharedInformer(client, CM, namespace=NS, resync_period=30, clock=clock)
    recorder = Recorder().attach(informer)
    running(informer)
    assert await informer.wait_synced(5)
    recorder.take()
    clock.advance(30)
    await recorder.until(lambda: len(recorder.events) == 2)
    assert sorted(recorder.take()) == [("resync", "x"), ("resync", "y")]
    clock.advance(30)
    await recorder.until(lambda: len(recorder.events) == 2)
    assert sorted(recorder.take()) == [("resync", "x"), ("resync", "y")]


async def test_factory_shares_informers_and_replays_to_late_handlers(
    client: Client, board: Switchboard
) -> None:
    await client.create(CM, cm("x", team="a"), namespace=NS)
    factory = InformerFactory(board)
    first = factory.informer(CM, namespace=NS)
    assert factory.informer(CM, namespace=NS) is first
    assert factory.informer(CM, namespace=NS, label_selector="") is first
    selected = factory.informer(CM, namespace=NS, label_selector="team=a")
    nodes = factory.informer(interface.NODES, namespace="ignored-for-cluster-scope")
    assert nodes is factory.informer(interface.NODES)
    assert len({id(i) for i in (first, selected, nodes)}) == 3 == len(factory.informers)
    early = Recorder().attach(first)
    factory.start()
    factory.start()  # idempotent
    try:
        assert await factory.wait_synced(timeout=5)
        await board.until(lambda: board.open_watches == 3)
        late = Recorder().attach(first)  # a component that comes late still sees everything
        assert early.take() == late.take() == [("add", "x")]
        await client.create(CM, cm("y"), namespace=NS)
        await early.until(lambda: early.events == [("add", "y")])
        await late.until(lambda: late.events == [("add", "y")])
        assert len(board.watches) == 3  # two handlers, one watch
    finally:
        await factory.stop()
    assert board.open_watches == 0


async def test_handler_errors_are_contained(
    client: Client, running: Callable[[SharedInformer], None]
) -> None:
    informer = SharedInformer(client, CM, namespace=NS)

    def broken(obj: Obj) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(on_add=broken)
    recorder = Recorder().attach(informer)
    running(informer)
    assert await informer.wait_synced(5)
    await client.create(CM, cm("x"), namespace=NS)
    await recorder.until(lambda: recorder.events == [("add", "x")])
    registration = informer.add_handler(on_add=broken)
    registration.remove()
    registration.remove()  # twice is harmless


class ConfigMapCopier(Controller):
    """Keeps ``<name>-copy`` holding the data of every ConfigMap ``<name>`` in the namespace. Events about
    a copy map to its source, so a copy edited or deleted by hand is repaired."""

    name = "copier"

    def __init__(
        self, client: Client, factory: InformerFactory, *, fail: dict[str, int], signal: Signal
    ) -> None:
        super().__init__(factory, max_retries=3)
        self.client = client
        self.signal = signal
        self.configmaps = self.informer(CM, namespace=NS)
        self.fail = fail
        self.attempts: dict[str, int] = {}
        self.active: set[str] = set()

    def key_for(self, obj: Obj) -> str | None:
        key = cache.key_of(obj)
        return key.removesuffix("-copy")

    async def sync(self, key: str) -> None:
        assert key not in self.active, "two workers on one key"
        self.attempts[key] = self.attempts.get(key, 0) + 1
        self.active.add(key)
        try:
            await self._sync(key)
        finally:
            self.active.discard(key)
            self.signal.changed()

    async def _sync(self, key: str) -> None:
        if self.fail.get(key, 0) > 0:
            self.fail[key] -= 1
            raise RuntimeError(f"injected failure for {key}")
        namespace, name = cache.split_key(key)
        source = self.configmaps.indexer.get(key)
        target = self.configmaps.indexer.get(f"{key}-copy")
        if source is None:
            if target is not None:
                try:
                    await self.client.delete(CM, f"{name}-copy", namespace=namespace)
                except StatusError as exc:
                    if exc.code != 404:
                        raise
            return
        want = source.get("data") or {}
        if target is None:
            await self.client.create(CM, cm(f"{name}-copy", dict(want)), namespace=namespace)
        elif (target.get("data") or {}) != want:
            changed = copy.deepcopy(target)  # cached objects are read-only
            changed["data"] = dict(want)
            await self.client.update(CM, changed, namespace=namespace)


async def test_controller_converges(client: Client) -> None:
    await client.create(CM, cm("a", {"k": "1"}), namespace=NS)
    factory = InformerFactory(client)
    recorder = Recorder()
    copier = ConfigMapCopier(client, factory, fail={f"{NS}/flaky": 2, f"{NS}/broken": 100}, signal=recorder)
    watched = factory.informer(CM, namespace=NS)
    assert watched is copier.configmaps
    recorder.attach(watched)

    def data(name: str) -> dict[str, str] | None:
        obj = watched.indexer.get(f"{NS}/{name}")
        return None if obj is None else obj.get("data")

    task = aiotasks.create_guarded_task(copier.run(workers=3), name="copier")
    try:
        await recorder.until(lambda: data("a-copy") == {"k": "1"})
        assert copier.has_synced
        await client.create(CM, cm("b", {"k": "b"}), namespace=NS)
        await client.patch(CM, "a", {"data": {"k": "2"}}, namespace=NS)
        await recorder.until(lambda: data("a-copy") == {"k": "2"} and data("b-copy") == {"k": "b"})

        # Failures are retried with back-off until they succeed...
        await client.create(CM, cm("flaky", {"k": "f"}), namespace=NS)
        await recorder.until(lambda: data("flaky-copy") == {"k": "f"})
        assert copier.attempts[f"{NS}/flaky"] >= 3
        assert copier.queue.num_requeues(f"{NS}/flaky") == 0  # forgotten once it synced
        # ...or dropped after max_retries.
        await client.create(CM, cm("broken"), namespace=NS)
        await recorder.until(lambda: copier.attempts.get(f"{NS}/broken") == 4)
        await recorder.until(lambda: f"{NS}/broken" not in copier.queue.processing, timeout=2)
        assert copier.queue.num_requeues(f"{NS}/broken") == 0 and data("broken-copy") is None

        # Level-triggered repair: the copy is recreated and re-synced from the source, whatever happened.
        await client.delete(CM, "b-copy", namespace=NS)
        await client.patch(CM, "a-copy", {"data": {"k": "tampered"}}, namespace=NS)
        await recorder.until(lambda: data("a-copy") == {"k": "2"} and data("b-copy") == {"k": "b"})
        await client.delete(CM, "a", namespace=NS)
        await recorder.until(lambda: data("a-copy") is None)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await factory.stop()
    assert copier.queue.shutting_down
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("copier/")]
    assert not copier.active
