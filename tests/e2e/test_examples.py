"""The sample downstream project (examples/fixture-demo) works as a user would run it.

A fresh virtualenv (``python -m venv``, no system site-packages) gets only what a user installs: kbox from
this repository (``pip install <repo>``, a setuptools build), the example project (which depends on kbox and
the official ``kubernetes`` client) and pytest, from the package index. Then ``pytest`` runs in the example's
folder as a subprocess: the kbox plugin must be found through its ``pytest11`` entry point, start a cluster,
and the example's test must pass against it.

Both source trees are copied to a temporary directory first, so the builds (``build/``, ``*.egg-info``)
never touch the working tree. When the package index cannot be reached the test is skipped with the reason,
except under ``CI=true``, where it runs (and fails) regardless: a CI run without it would be a false green.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "fixture-demo"
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
# About 35 s with a warm pip cache (most of it pip); a cold cache on a slow network takes longer.
pytestmark = pytest.mark.timeout(300)

# What a build of kbox needs from the repository (not .venv, .git, caches or old builds).
_NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "bench"
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _index_reachable() -> str | None:
    """None if the package index answers, else why not."""
    try:
        with urllib.request.urlopen(f"{INDEX}/pip/", timeout=10) as response:
            response.read(1)
    except (urllib.error.URLError, OSError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user's shell with the venv activated: nothing of this test run leaks in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "PYTHON", "VIRTUAL_ENV", "KBOX_")) and k != "COV_CORE_SOURCE"
    }
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = f"$ {' '.join(args)}\n{done.stdout}{done.stderr}"
    assert done.returncode == 0, f"exit {done.returncode}:\n{output[-6000:]}"
    return output


def test_fixture_demo_passes_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    unreachable = _index_reachable()
    if unreachable is not None and not _in_ci():
        pytest.skip(f"the package index {INDEX} cannot be reached ({unreachable}); the example needs pip")

    kbox_src = tmp_path / "kbox"
    example = tmp_path / "fixture-demo"
    shutil.copytree(REPO, kbox_src, ignore=_NOT_SOURCE)
    shutil.copytree(EXAMPLE, example, ignore=_NOT_SOURCE)
    venv = tmp_path / "venv"
    started = time.monotonic()

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    env = _clean_env(venv)
    python = str(venv / "bin" / "python")
    _run(
        [python, "-m", "pip", "install", "--quiet", str(kbox_src), str(example), "pytest"],
        cwd=tmp_path,
        env=env,
        timeout=240,
    )
    installed = time.monotonic() - started

    # The user's command, in the example's folder: the plugin comes from kbox's pytest11 entry point.
    output = _run([python, "-m", "pytest", "-v", "-p", "no:cacheprovider"], cwd=example, env=env, timeout=120)
    total = time.monotonic() - started
    assert "test_deploy.py::test_deploy_runs_pods PASSED" in output, output
    assert " 1 passed" in output, output
    # The fixtures came from kbox's entry point, the only plugin in a venv holding kbox and pytest alone.
    plugins = next((line for line in output.splitlines() if line.startswith("plugins:")), "")
    assert re.fullmatch(r"plugins: kbox-[\w.+!-]+", plugins), output
    print(
        f"fresh venv: venv and installs {installed:.1f} s, the example's pytest run {total - installed:.1f} s"
    )
