"""The installed ``kbox`` command: ``kbox demo`` writes and watches a durable store whose revision
continues across runs, ``kbox store inspect`` reads it, and bad files get one readable line, exit 1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

KBOX = shutil.which("kbox", path=str(Path(sys.executable).parent)) or "kbox"


def kbox(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KBOX_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([KBOX, *args], capture_output=True, text=True, env=env, timeout=60)


def test_demo_then_inspect(tmp_path: Path) -> None:
    first = kbox("demo", "--objects", "3", home=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "opened at revision 0" in first.stdout
    assert first.stdout.count("ADDED") == 3
    assert first.stdout.count("MODIFIED") == 3

    second = kbox("demo", "--objects", "3", home=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "opened at revision 6" in second.stdout
    assert second.stdout.count("DELETED") == 3

    inspected = kbox("store", "inspect", str(tmp_path / "demo" / "state.db"), home=tmp_path)
    assert inspected.returncode == 0, inspected.stderr
    assert "revision 15" in inspected.stdout
    assert "/registry/configmaps/demo/" in inspected.stdout


def test_bad_database_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not sqlite" * 100)
    for args in (("store", "inspect", str(bad)), ("demo", "--path", str(bad))):
        result = kbox(*args, home=tmp_path)
        assert result.returncode == 1
        assert result.stderr.strip().count("\n") == 0
        assert "not a database" in result.stderr
        assert "Traceback" not in result.stderr
    assert bad.read_bytes() == b"not sqlite" * 100
