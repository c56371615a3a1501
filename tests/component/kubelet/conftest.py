"""Every kubelet test here keeps its state under ``tmp_path/kubelet``; its memory-backed volume
folders (in /dev/shm, see kbox.kubelet.memoryfs) go with the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kbox.kubelet import memoryfs


@pytest.fixture(autouse=True)
def _memory_volumes_removed(tmp_path: Path) -> Iterator[None]:
    yield
    memoryfs.remove_all(tmp_path / "kubelet")
