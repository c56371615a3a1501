"""``kbox``: the entry point and its command groups.

Errors a user can cause (a missing or foreign database file, a bad flag) end in one readable line on
stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import sys

import click

from kbox import __version__
from kbox.cli import addons as addons_commands
from kbox.cli import lifecycle as lifecycle_commands
from kbox.cli import serve as serve_commands
from kbox.cli import service as service_command
from kbox.cli import store as store_commands
from kbox.cli.kube import apply as apply_command
from kbox.cli.kube import attach as attach_command
from kbox.cli.kube import create as create_command
from kbox.cli.kube import delete as delete_command
from kbox.cli.kube import describe as describe_command
from kbox.cli.kube import exec as exec_command
from kbox.cli.kube import get as get_command
from kbox.cli.kube import logs as logs_command
from kbox.cli.kube import passthrough as passthrough_command
from kbox.cli.kube import portforward as portforward_command
from kbox.cli.kube import rollout as rollout_command
from kbox.cli.kube import scale as scale_command
from kbox.cli.kube import wait as wait_command
from kbox.store import errors


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kbox")
def cli() -> None:
    """kbox: Kubernetes in one asyncio Python process."""


cli.add_command(store_commands.store)
cli.add_command(store_commands.demo)
cli.add_command(serve_commands.serve)
cli.add_command(service_command.service)
cli.add_command(addons_commands.addons)
cli.add_command(addons_commands.completion)
for _command in lifecycle_commands.COMMANDS:
    cli.add_command(_command)
cli.add_command(get_command.get)
cli.add_command(describe_command.describe)
cli.add_command(passthrough_command.kubectl)
for _command in (
    logs_command.logs,
    exec_command.exec_command,
    attach_command.attach,
    portforward_command.port_forward,
):
    cli.add_command(_command)
# kbox.cli.kube.delete replaces the lifecycle ``delete``: with no objects named it deletes the profile.
for _command in (
    apply_command.apply,
    create_command.create,
    delete_command.delete,
    scale_command.scale,
    rollout_command.rollout,
    wait_command.wait,
):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry: run the CLI, turning expected errors into one line."""
    try:
        # In this mode click returns a command's ctx.exit(code) instead of exiting: pass it on.
        sys.exit(cli(standalone_mode=False) or 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except errors.StoreError as exc:
        click.echo(f"kbox: {exc}", err=True)
        sys.exit(1)
