"""Every command named in kbox.cli.main.COMMANDS loads, under its own name, only when asked for."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from kbox.cli import main


@pytest.mark.parametrize("name", sorted(main.COMMANDS))
def test_each_command_loads_under_its_name(name: str) -> None:
    with click.Context(main.cli) as ctx:
        command = main.cli.get_command(ctx, name)
    assert command is not None and command.name == name


def test_importing_the_cli_does_not_load_the_cluster() -> None:
    code = "import sys, kbox.cli.main; print('kbox.cluster' in sys.modules, 'aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
