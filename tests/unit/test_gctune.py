"""The collector settings of a cluster process: what survives a full collection is frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from kbox.util import gctune


@pytest.fixture
def tuned() -> Iterator[None]:
    """Apply kbox serve's settings, and give this test process its own settings back afterwards."""
    threshold = gc.get_threshold()
    callbacks = list(gc.callbacks)
    gctune.tune()
    try:
        yield
    finally:
        gc.callbacks[:] = callbacks
        gc.set_threshold(*threshold)
        gc.unfreeze()


class Node:
    """A container object the collector tracks."""

    def __init__(self) -> None:
        self.children: list[Node] = []


def test_a_full_collection_freezes_what_survived(tuned: None) -> None:
    assert gc.get_threshold() == (20_000, 20, 20)
    frozen = gc.get_freeze_count()
    survivors = [Node() for _ in range(1_000)]
    gc.collect(1)  # a younger generation: nothing frozen
    assert gc.get_freeze_count() == frozen
    gc.collect()
    assert gc.get_freeze_count() >= frozen + len(survivors)
    assert gc.get_count()[0] < 100  # the young generations were emptied into the permanent one


def test_frozen_objects_are_still_freed_by_reference_counting(tuned: None) -> None:
    import weakref

    node = Node()
    gc.collect()
    ref = weakref.ref(node)
    del node
    assert ref() is None
