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
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.wait import eventually

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
        return _run([KBOX, *args], {**self.env, **(env or {})}, input, timeout)

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
        kube = [KUBECTL, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.home / 'kube-cache'}"]
        return _run([*kube, *args], self.env, input, timeout)

    def kubectl_ok(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        result = self.kubectl(*args, input=input, timeout=timeout)
        assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        return result.stdout

    def namespace(self, prefix: str = "t") -> str:
        """A fresh namespace for one test."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.kubectl_ok("create", "namespace", name)
        return name


# An age as kubectl prints it: 5s, 119s, 3m10s, 7h59m, 2d1h, 3y.
_AGE = re.compile(r"(?<![\w.:/-])(\d+[smhdy])(\d+[smh])?(?![\w.:/-])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}


def _seconds(age: str) -> int:
    return sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhdy])", age))


def same_but_ages(ours: str, theirs: str, *, slack: int = 5) -> bool:
    """``ours == theirs`` except that ages may differ by up to ``slack`` seconds, as long as they print
    with the same width (so the columns around them are compared exactly)."""
    if ours == theirs:
        return True
    ages_ours, ages_theirs = _AGE.findall(ours), _AGE.findall(theirs)
    if len(ages_ours) != len(ages_theirs):
        return False
    for a, b in zip(ages_ours, ages_theirs, strict=True):
        a_text, b_text = "".join(a), "".join(b)
        if len(a_text) != len(b_text) or abs(_seconds(a_text) - _seconds(b_text)) > slack:
            return False

    def mask(text: str) -> str:
        return _AGE.sub(lambda m: "#" * len(m.group(0)), text)

    return mask(ours) == mask(theirs)


async def assert_same_as_kubectl(cluster: KboxCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """``kbox ARGS`` prints what ``kubectl ARGS`` prints (stdout, stderr, exit code); kbox's result.

    Ages tick between the two runs, so they may differ by a few seconds where they print with the same
    width; everything else must be identical. Retried while ages print with different widths (a
    ``59s`` → ``60s`` boundary) or objects still change."""
    last: list[tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]] = []

    def check() -> bool:
        ours, theirs = cluster.kbox(*args), cluster.kubectl(*args)
        last[:] = [(ours, theirs)]
        return ours.returncode == theirs.returncode and all(
            same_but_ages(a, b) for a, b in ((ours.stdout, theirs.stdout), (ours.stderr, theirs.stderr))
        )

    try:
        await eventually(check, timeout=30, interval=0.2)
    except AssertionError:
        ours, theirs = last[0]
        pytest.fail(
            f"kbox {' '.join(args)} differs from kubectl:\n--- kbox (exit {ours.returncode})\n{ours.stdout}"
            f"{ours.stderr}\n--- kubectl (exit {theirs.returncode})\n{theirs.stdout}{theirs.stderr}"
        )
    return last[0][0]


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


def _run(
    argv: list[str], env: dict[str, str], input: str | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``argv`` with its output captured as text; never raises on a non-zero exit."""
    return subprocess.run(
        argv, env=env, input=input, capture_output=True, text=True, timeout=timeout, check=False
    )
