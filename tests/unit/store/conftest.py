"""Fixtures for the store tests: every contract test runs against the memory and the SQLite backend."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kbox.config import StoreSettings
from kbox.store import open_store
from kbox.store.interface import Store

MakeStore = Callable[..., Awaitable[Store]]


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_store(backend: str, tmp_path: Path) -> AsyncIterator[MakeStore]:
    """Start stores of the parametrized backend with settings overridden per test; close them after."""
    opened: list[Store] = []

    async def make(**overrides: Any) -> Store:
        settings = StoreSettings(path=tmp_path / "kbox.db" if backend == "sqlite" else None)
        settings = dataclasses.replace(settings, **overrides)
        store = open_store(settings)
        await store.start()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> Store:
    return await make_store()
