"""``kbox``: the entry point and its command groups.

Errors a user can cause (a missing or foreign database file, a bad flag) end in one readable line on
stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from kbox import __version__
from kbox.store import errors

# Command name → "module:attribute". A command's module (and what it imports: aiohttp, the cluster,
# the API machinery) loads only when that command runs, so ``kbox get`` does not pay for ``kbox serve``.
COMMANDS: dict[str, str] = {
    "start": "kbox.cli.lifecycle:start",
    "stop": "kbox.cli.lifecycle:stop",
    "status": "kbox.cli.lifecycle:status",
    "kubeconfig": "kbox.cli.lifecycle:kubeconfig",
    "profile": "kbox.cli.lifecycle:profile_group",
    "version": "kbox.cli.lifecycle:version",
    "serve": "kbox.cli.serve:serve",
    "service": "kbox.cli.service:service",
    "addons": "kbox.cli.addons:addons",
    "node": "kbox.cli.node:node",
    "dashboard": "kbox.cli.dashboard:dashboard",
    "completion": "kbox.cli.addons:completion",
    "store": "kbox.cli.store:store",
    "demo": "kbox.cli.store:demo",
    "get": "kbox.cli.kube.get:get",
    "describe": "kbox.cli.kube.describe:describe",
    "kubectl": "kbox.cli.kube.passthrough:kubectl",
    "logs": "kbox.cli.kube.logs:logs",
    "exec": "kbox.cli.kube.exec:exec_command",
    "attach": "kbox.cli.kube.attach:attach",
    "port-forward": "kbox.cli.kube.portforward:port_forward",
    "apply": "kbox.cli.kube.apply:apply",
    "create": "kbox.cli.kube.create:create",
    # With no objects named it deletes the profile (the lifecycle delete).
    "delete": "kbox.cli.kube.delete:delete",
    "scale": "kbox.cli.kube.scale:scale",
    "rollout": "kbox.cli.kube.rollout:rollout",
    "wait": "kbox.cli.kube.wait:wait",
    "cordon": "kbox.cli.kube.drain:cordon",
    "uncordon": "kbox.cli.kube.drain:uncordon",
    "drain": "kbox.cli.kube.drain:drain",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented lazy-loading shape)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attribute = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command) or command.name != cmd_name:
                raise RuntimeError(f"{COMMANDS[cmd_name]} is not the command {cmd_name!r}")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kbox")
def cli() -> None:
    """kbox: Kubernetes in one asyncio Python process."""


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
