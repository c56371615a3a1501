"""A running kbox profile for the kubectl-like command tests, shared by each test module.

``cluster`` starts ``kbox start --runtime fake --port 0`` once per module under a temporary ``HOME`` and
``KBOX_HOME`` (the profile is named by ``KBOX_PROFILE`` in the environment the helpers pass), and
deletes it at teardown. ``cluster.kbox(...)`` runs the installed ``kbox`` command and
``cluster.kubectl(...)`` the real kubectl on the profile's kubeconfig; both return the
``CompletedProcess`` so a test can check exit codes and stderr; ``ok``/``kubectl_ok`` assert success and
return stdout. Tests that create objects use their own namespace (``cluster.namespace(...)``) so that
tests in one module do not see each other's objects.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

KBOX = shutil.which("kbox", path=str(Path(sys.executable).parent)) or "kbox"
KUBECTL = "/usr/bin/kubectl"
PROFILE = "clitest"


def require_kubectl() -> None:
    """Skip without kubectl, except under CI=true where a missing kubectl is a failure."""
    if not Path(KUBECTL).exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{KUBECTL} is missing under CI=true")
        pytest.skip(f"{KUBECTL} is not installed")


@dataclass
class KboxCluster:
    """A started profile and the commands that talk to it."""

    home: Path
    kbox_home: Path
    profile: str = PROFILE

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KBOX_PROFILE")}
        return {
            **env,
            "HOME": str(self.home),
            "KBOX_HOME": str(self.kbox_home),
            "KBOX_PROFILE": self.profile,
            "KUBECTL_COMMAND_HEADERS": "false",
        }

    @property
    def kubeconfig(self) -> Path:
        return self.kbox_home / self.profile / "kubeconfig"

    def kbox(
        self, *args: str, input: str | None = None, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The installed ``kbox`` with ``args``; never raises on a non-zero exit."""
        return subprocess.run(
            [KBOX, *args],
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        """``kbox args`` that must succeed; its stdout."""
        result = self.kbox(*args, input=input, timeout=timeout)
        assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return result.stdout

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """The real kubectl on the profile's kubeconfig; never raises on a non-zero exit."""
        require_kubectl()
        return subprocess.run(
            [KUBECTL, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.home / 'kube-cache'}", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def kubectl_ok(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        result = self.kubectl(*args, input=input, timeout=timeout)
        assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        return result.stdout

    def namespace(self, prefix: str = "t") -> str:
        """A fresh namespace for one test."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.kubectl_ok("create", "namespace", name)
        return name


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (asserting there is exactly one, and no traceback)."""
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KboxCluster]:
    base = tmp_path_factory.mktemp("kbox-cli")
    c = KboxCluster(home=base / "home", kbox_home=base / "kbox-home")
    c.home.mkdir()
    try:
        c.ok("start", "--runtime", "fake", "--port", "0", timeout=180)
        yield c
    finally:
        c.kbox("delete", "--all", timeout=120)  # never leave a cluster process behind
