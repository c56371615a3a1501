"""``kbox kubectl -- ARGS``: the installed kubectl, pointed at a profile's cluster.

Whatever the built-in commands do not cover, the real kubectl does: this runs it (from ``PATH``, else
``/usr/bin/kubectl``) with ``--kubeconfig`` set to the profile's own kubeconfig, so it works whatever
the user's ``~/.kube/config`` says. The kubectl process replaces this one, so its output, exit code
and signal handling are kubectl's own.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from kbox.cli.kube import session
from kbox.profile import Profile, ProfileError

FALLBACK = Path("/usr/bin/kubectl")


def find_kubectl() -> str:
    """The kubectl to run; a clear error when there is none."""
    found = shutil.which("kubectl")
    if found:
        return found
    if FALLBACK.is_file() and os.access(FALLBACK, os.X_OK):
        return str(FALLBACK)
    raise click.ClickException(
        "kubectl is not installed (not on PATH, nor /usr/bin/kubectl); "
        "kbox get, describe, apply, delete, logs and exec work without it"
    )


@click.command(
    "kubectl",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    epilog="""\b
Examples:
  kbox kubectl -- get pods -A               # any kubectl command
  kbox kubectl -- api-resources
  kbox kubectl -p dev -- top nodes          # another profile's cluster
  kbox kubectl -- --help                    # kubectl's own help""",
)
@session.profile_option
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def kubectl(profile: str | None, args: tuple[str, ...]) -> None:
    """Run the installed kubectl against the profile's cluster (its exit code passes through)."""
    try:
        prof = Profile.get(profile)
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from None
    if not prof.exists() or prof.read_pid() is None or not prof.kubeconfig.is_file():
        hint = "kbox start" if prof.name == "kbox" else f"kbox start --profile {prof.name}"
        raise click.ClickException(f'profile "{prof.name}" is not running: {hint}')
    binary = find_kubectl()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(binary, [binary, f"--kubeconfig={prof.kubeconfig}", *args])
    except OSError as exc:
        raise click.ClickException(f"cannot run {binary}: {exc.strerror or exc}") from None
