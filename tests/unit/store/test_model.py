"""Property test: random sequences of operations run against each backend and against a plain dict model;
results, errors, list pages (now and at past revisions) and watch streams must agree."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbox.config import StoreSettings
from kbox.store import errors, open_store
from kbox.store.interface import EventType

KEYS = [f"/r/{group}/{name}" for group in ("a", "b") for name in ("x", "y", "z")]
PREFIXES = ["/r/", "/r/a/", "/r/b/", "/r/c/"]

keys = st.sampled_from(KEYS)
values = st.binary(min_size=0, max_size=8)
expectations = st.sampled_from(["none", "current", "stale"])
operations = st.one_of(
    st.tuples(st.just("create"), keys, values),
    st.tuples(st.just("update"), keys, values, expectations),
    st.tuples(st.just("delete"), keys, expectations),
    st.tuples(st.just("get"), keys),
    st.tuples(st.just("list"), st.sampled_from(PREFIXES), st.integers(0, 4)),
)


@dataclass
class Model:
    live: dict[str, tuple[bytes, int, int]] = field(default_factory=dict)
    revision: int = 0
    events: list[tuple[EventType, str, bytes, int]] = field(default_factory=list)
    snapshots: dict[int, dict[str, tuple[bytes, int, int]]] = field(default_factory=lambda: {0: {}})

    def write(self, kind: EventType, key: str, value: bytes) -> int:
        self.revision += 1
        if kind is EventType.DELETED:
            value = self.live.pop(key)[0]
        else:
            create = self.live[key][1] if kind is EventType.MODIFIED else self.revision
            self.live[key] = (value, create, self.revision)
        self.events.append((kind, key, value, self.revision))
        self.snapshots[self.revision] = dict(self.live)
        return self.revision

    def expected_revision(self, key: str, how: str) -> int | None:
        if how == "none":
            return None
        current = self.live.get(key, (b"", 0, 0))[2]
        return current if how == "current" else current + 1000


async def run(backend: str, ops: list[tuple], directory: Path) -> None:  # type: ignore[type-arg]
    path = directory / "kbox.db" if backend == "sqlite" else None
    store = open_store(StoreSettings(path=path))
    await store.start()
    model = Model()
    try:
        for op in ops:
            name, key = op[0], op[1]
            if name == "create":
                if key in model.live:
                    try:
                        await store.create(key, op[2])
                        raise AssertionError("create of a live key succeeded")
                    except errors.KeyExists:
                        pass
                else:
                    kv = await store.create(key, op[2])
                    assert kv.mod_revision == model.write(EventType.ADDED, key, op[2])
            elif name in ("update", "delete"):
                expected = model.expected_revision(key, op[-1])
                try:
                    if name == "update":
                        kv = await store.update(key, op[2], expected_revision=expected)
                    else:
                        kv = await store.delete(key, expected_revision=expected)
                except errors.KeyNotFound:
                    assert key not in model.live
                except errors.Conflict:
                    assert key in model.live and expected != model.live[key][2]
                else:
                    assert key in model.live and expected in (None, model.live[key][2])
                    kind = EventType.MODIFIED if name == "update" else EventType.DELETED
                    assert kv.mod_revision == model.write(kind, key, op[2] if name == "update" else b"")
            elif name == "get":
                got = await store.get(key)
                want = model.live.get(key)
                assert (got.value, got.create_revision, got.mod_revision) == want if got else want is None
            else:
                await check_list(store, model, key, op[2], model.revision)
            assert store.revision == model.revision

        # Every past revision lists as it was then, page by page.
        for revision in range(model.revision + 1):
            if revision:
                await check_list(store, model, "/r/", 2, revision)
        # A watch from each revision replays exactly the model's later events.
        for start in range(model.revision + 1):
            watch = store.watch("/r/", after_revision=start)
            expected = model.events[start:]
            got = []
            for _ in expected:
                event = await asyncio.wait_for(watch.__anext__(), 5)
                got.append((event.type, event.key, event.value, event.revision))
            watch.close()
            assert got == expected
    finally:
        await store.close()

    if backend == "sqlite":
        # And after a restart the same state and history come back.
        store = open_store(StoreSettings(path=path))
        await store.start()
        try:
            assert store.revision == model.revision
            await check_list(store, model, "/r/", 0, model.revision)
            watch = store.watch("/r/", after_revision=0)
            for want in model.events:
                event = await asyncio.wait_for(watch.__anext__(), 5)
                assert (event.type, event.key, event.value, event.revision) == want
            watch.close()
        finally:
            await store.close()


async def check_list(store, model: Model, prefix: str, limit: int, revision: int) -> None:  # type: ignore[no-untyped-def]
    snapshot = model.snapshots[revision]
    want = sorted((k, v) for k, v in snapshot.items() if k.startswith(prefix))
    got = []
    page = await store.list(prefix, limit=limit, revision=revision if revision != model.revision else 0)
    got.extend(page.items)
    while page.continue_token:
        assert limit and len(page.items) == limit
        page = await store.list(prefix, limit=limit, continue_token=page.continue_token)
        got.extend(page.items)
    assert [(kv.key, (kv.value, kv.create_revision, kv.mod_revision)) for kv in got] == want


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(operations, max_size=40))
def test_memory_store_matches_model(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run("memory", ops, Path(directory)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(operations, max_size=40))
def test_sqlite_store_matches_model(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run("sqlite", ops, Path(directory)))
