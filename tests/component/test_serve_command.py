"""The installed ``kbox serve`` command: it brings up a cluster (fake runtime here, so no Docker is
needed), writes a kubeconfig the real kubectl uses, keeps state across restarts, and stops cleanly
on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path

from tests.support.apiserver import Kubectl

KBOX = shutil.which("kbox", path=str(Path(sys.executable).parent)) or "kbox"


async def start(home: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        KBOX,
        "serve",
        "--runtime",
        "fake",
        "--nodes",
        "2",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KBOX_HOME": str(home)},
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert b"kbox cluster 'kbox' on https://127.0.0.1:" in line, line
    return process


async def stop(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0


async def test_serve_runs_a_cluster_kubectl_can_use(tmp_path: Path) -> None:
    home = tmp_path / "home"
    process = await start(home)
    try:
        cache = tmp_path / "cache"
        cache.mkdir()
        kubectl = Kubectl(home / "kbox" / "kubeconfig", cache)
        nodes = await kubectl.ok("get", "nodes")
        rows = [line.split() for line in nodes.splitlines()[1:]]
        assert [(r[0], r[1]) for r in rows] == [("kbox", "Ready"), ("kbox-m02", "Ready")]
        await kubectl.ok("create", "configmap", "kept", "--from-literal=a=b")
    finally:
        await stop(process)
    assert (home / "kbox" / "token").stat().st_mode & 0o077 == 0
    process = await start(home)
    try:
        assert "kept" in await kubectl.ok("get", "configmaps")
    finally:
        await stop(process)
