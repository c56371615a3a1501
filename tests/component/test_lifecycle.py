"""The installed ``kbox start|stop|status|delete|kubeconfig|profile list`` commands, as subprocesses.

Each test points ``KBOX_HOME`` and ``HOME`` at temporary folders and uses the fake runtime, so no Docker
is needed; the real kubectl reaches the cluster through the merged ``~/.kube/config``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

KBOX = shutil.which("kbox", path=str(Path(sys.executable).parent)) or "kbox"
KUBECTL = "/usr/bin/kubectl"


def require_kubectl() -> None:
    if not Path(KUBECTL).exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{KUBECTL} is missing under CI=true")
        pytest.skip(f"{KUBECTL} is not installed")


@dataclass
class Env:
    home: Path  # $HOME: ~/.kube/config lives here
    kbox_home: Path

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KBOX_PROFILE")}
        return {**env, "HOME": str(self.home), "KBOX_HOME": str(self.kbox_home)}

    @property
    def user_kubeconfig(self) -> Path:
        return self.home / ".kube" / "config"

    def kbox(
        self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KBOX, *args], env=env or self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def ok(self, *args: str) -> str:
        result = self.kbox(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def kubectl(self, *args: str) -> str:
        require_kubectl()
        result = subprocess.run(
            [KUBECTL, f"--cache-dir={self.home / 'kube-cache'}", *args],
            env={**self.env, "KUBECTL_COMMAND_HEADERS": "false"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(home=tmp_path / "home", kbox_home=tmp_path / "kbox-home")
    e.home.mkdir()
    try:
        yield e
    finally:
        e.kbox("delete", "--all")  # never leave a cluster process behind


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_start_stop_restart_delete_with_kubectl(env: Env) -> None:
    require_kubectl()
    # A context of some other cluster that must survive start, stop and delete.
    other = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "other", "cluster": {"server": "https://other.example:6443"}}],
        "users": [{"name": "other", "user": {"token": "secret"}}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
        "current-context": "other",
    }
    env.user_kubeconfig.parent.mkdir()
    env.user_kubeconfig.write_text(yaml.safe_dump(other))

    out = env.ok("start", "--runtime", "fake", "--nodes", "2", "--port", "0")
    assert "kbox cluster 'kbox' is running on https://127.0.0.1:" in out
    port = json.loads((env.kbox_home / "kbox" / "profile.json").read_text())["port"]
    assert port > 0
    status = env.kbox("status")
    assert status.returncode == 0, status.stdout
    assert "host: Running" in status.stdout and "apiserver: Running" in status.stdout

    merged = yaml.safe_load(env.user_kubeconfig.read_text())
    assert merged["current-context"] == "kbox"
    assert {c["name"] for c in merged["contexts"]} == {"other", "kbox"}
    rows = [line.split() for line in env.kubectl("get", "nodes").splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("kbox", "Ready"), ("kbox-m02", "Ready")]
    env.kubectl("create", "configmap", "kept", "--from-literal=a=b")
    assert env.ok("kubeconfig").strip() == str(env.kbox_home / "kbox" / "kubeconfig")

    assert "stopped" in env.ok("stop")
    assert not (env.kbox_home / "kbox" / "kbox.pid").exists()
    status = env.kbox("status")
    assert status.returncode == 7 and "host: Stopped" in status.stdout
    assert "not running" in env.ok("stop")

    # Restart: same settings (the remembered port, two nodes), objects back from SQLite.
    assert f"https://127.0.0.1:{port}" in env.ok("start")
    assert "kept" in env.kubectl("get", "configmaps")
    assert len(env.kubectl("get", "nodes", "-o", "name").split()) == 2
    assert "already running" in env.ok("start")

    listing = env.ok("profile", "list")
    assert "kbox" in listing and "Running" in listing and "fake" in listing and str(port) in listing

    assert "deleted" in env.ok("delete")
    assert not (env.kbox_home / "kbox").exists()
    merged = yaml.safe_load(env.user_kubeconfig.read_text())
    for key in ("clusters", "users", "contexts"):
        assert [e["name"] for e in merged[key]] == ["other"]
    assert merged["current-context"] != "kbox"
    assert "no kbox profiles" in env.ok("profile", "list")


def test_user_errors_are_one_line(env: Env) -> None:
    for command in ("status", "stop", "kubeconfig"):
        result = env.kbox(command, "--profile", "nope")
        assert result.returncode == 85
        assert "profile 'nope' not found" in one_line_error(result)
    result = env.kbox("status", "--profile", "Bad_Name")
    assert result.returncode == 1 and "invalid profile name" in one_line_error(result)

    # Docker unreachable with the docker runtime: a clear message, exit 1, nothing left behind.
    result = env.kbox(
        "start",
        "-p",
        "nodocker",
        "--runtime",
        "docker",
        env={**env.env, "DOCKER_HOST": "unix:///nonexistent.sock"},
    )
    assert result.returncode == 1
    assert "--runtime fake" in one_line_error(result)
    assert not (env.kbox_home / "nodocker").exists()

    assert env.kbox("version").stdout.startswith("kbox version: v")


def test_a_cluster_process_dying_at_startup_shows_its_log(env: Env) -> None:
    state = env.kbox_home / "broken"
    state.mkdir(parents=True)
    (state / "state.db").write_bytes(b"this is not a database" * 100)
    result = env.kbox("start", "-p", "broken", "--runtime", "fake", "--port", "0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr.splitlines()[-1]
    assert "did not start" in result.stderr and "last lines of" in result.stderr
    assert not (state / "kbox.pid").exists()
    assert env.kbox("status", "-p", "broken").returncode == 7
