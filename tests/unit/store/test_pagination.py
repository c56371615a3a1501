"""Paginated lists: limit and continue tokens, pages consistent with the first one while writes go on,
and the errors for malformed, foreign and expired tokens. Runs against every backend."""

from __future__ import annotations

import asyncio

import pytest

from kbox.store import errors
from kbox.store.interface import KeyValue, Store

from .conftest import MakeStore


async def list_all(store: Store, prefix: str, limit: int) -> tuple[list[KeyValue], int, int]:
    """Every page of a list; returns the items, the revision of the pages and how many pages there were."""
    items: list[KeyValue] = []
    token = None
    revisions = set()
    pages = 0
    while True:
        page = await store.list(prefix, limit=limit, continue_token=token)
        items.extend(page.items)
        revisions.add(page.revision)
        pages += 1
        token = page.continue_token
        if token is None:
            break
    assert len(revisions) == 1
    return items, revisions.pop(), pages


async def test_pages_cover_everything_once(store: Store) -> None:
    for i in range(25):
        await store.create(f"/p/{i:02}", str(i).encode())
    items, _, pages = await list_all(store, "/p/", limit=10)
    assert [kv.key for kv in items] == [f"/p/{i:02}" for i in range(25)]
    assert pages == 3


async def test_exact_multiple_of_limit_has_no_empty_last_page(store: Store) -> None:
    for i in range(20):
        await store.create(f"/p/{i:02}", b"x")
    _, _, pages = await list_all(store, "/p/", limit=10)
    assert pages == 2


async def test_pages_stay_consistent_under_concurrent_writes(store: Store) -> None:
    for i in range(100):
        await store.create(f"/p/{i:03}", b"v0")
    expected = {f"/p/{i:03}": b"v0" for i in range(100)}

    async def churn() -> None:
        # Update, delete and create keys all over the range while the pages are read.
        for i in range(100):
            await store.update(f"/p/{(i * 37) % 100:03}", b"v1")
            if i % 3 == 0:
                await store.delete(f"/p/{(i * 11) % 100:03}")
                await store.create(f"/p/{(i * 11) % 100:03}", b"again")
            await store.create(f"/p/{i:03}-new", b"new")

    writer = asyncio.ensure_future(churn())
    items: list[KeyValue] = []
    page = await store.list("/p/", limit=7)
    first_revision = page.revision
    items.extend(page.items)
    while page.continue_token:
        await asyncio.sleep(0.001)  # let the writer run between pages
        page = await store.list("/p/", limit=7, continue_token=page.continue_token)
        assert page.revision == first_revision
        items.extend(page.items)
    await writer
    assert store.revision > first_revision
    assert {kv.key: kv.value for kv in items} == expected
    assert [kv.key for kv in items] == sorted(expected)


async def test_bad_tokens_are_rejected(store: Store) -> None:
    for i in range(5):
        await store.create(f"/p/{i}", b"x")
    page = await store.list("/p/", limit=2)
    assert page.continue_token
    with pytest.raises(errors.InvalidContinue):
        await store.list("/p/", continue_token="not base64 !!!")
    with pytest.raises(errors.InvalidContinue):
        await store.list("/other/", continue_token=page.continue_token)


async def test_token_expires_with_compaction(make_store: MakeStore) -> None:
    store = await make_store(history_max_events=5)
    for i in range(5):
        await store.create(f"/p/{i}", b"x")
    page = await store.list("/p/", limit=2)
    for i in range(10):
        await store.update("/p/0", str(i).encode())
    with pytest.raises(errors.Expired):
        await store.list("/p/", continue_token=page.continue_token)
