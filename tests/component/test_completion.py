"""``kbox completion SHELL``: the script a shell sources, and the completions it then asks kbox for."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.component.test_lifecycle import KBOX


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_names_kbox(shell: str) -> None:
    result = subprocess.run(
        [KBOX, "completion", shell], capture_output=True, text=True, check=True, timeout=30
    )
    assert "_KBOX_COMPLETE" in result.stdout


def test_bash_completes_commands_and_options() -> None:
    env = {**os.environ, "_KBOX_COMPLETE": "bash_complete", "COMP_WORDS": "kbox sta", "COMP_CWORD": "1"}
    out = subprocess.run([KBOX], env=env, capture_output=True, text=True, timeout=30, check=False).stdout
    assert "plain,start" in out.splitlines() and "plain,status" in out.splitlines()
    env.update(COMP_WORDS="kbox start --run", COMP_CWORD="2")
    out = subprocess.run([KBOX], env=env, capture_output=True, text=True, timeout=30, check=False).stdout
    assert "plain,--runtime" in out.splitlines()


def test_unknown_shell_is_one_line() -> None:
    result = subprocess.run(
        [KBOX, "completion", "tcsh"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
