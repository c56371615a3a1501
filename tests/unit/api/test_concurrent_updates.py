"""Concurrent writes without a resourceVersion on one object all land on the durable store. Reads see
committed objects while the store compares against writes still waiting for their commit, so a retry
that came at once could lose every round to one write waiting for its fsync and end in a 409 no client
asked for (kubectl set image right after kubectl create deployment did, under load)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kbox.api.catalog import Catalog
from kbox.config import StoreSettings
from kbox.resources import registry
from kbox.store.sqlite import SqliteStore

Obj = dict[str, Any]


async def test_concurrent_unconditional_updates_all_land(tmp_path: Path) -> None:
    store = SqliteStore(StoreSettings(path=tmp_path / "kbox.db"))
    await store.start()
    try:
        catalog = Catalog(store, registry.builtin())
        configmaps = catalog.lookup("", "v1", "configmaps")
        assert configmaps is not None
        await configmaps.create("default", {"metadata": {"name": "counter"}, "data": {}})

        def add(key: str) -> Callable[[Obj | None], Obj]:
            def transform(current: Obj | None) -> Obj:
                assert current is not None
                current["metadata"].pop("resourceVersion", None)  # no precondition: retried when it loses
                current["data"][key] = "1"
                return current

            return transform

        await asyncio.gather(*(configmaps.update("default", "counter", add(f"k{i}")) for i in range(40)))
        assert len((await configmaps.get("default", "counter"))["data"]) == 40
    finally:
        await store.close()
