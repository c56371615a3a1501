"""The version kbox reports as a Kubernetes apiserver.

kubectl at /usr/bin/kubectl on these machines is a dispatcher that runs the bundled kubectl matching
the server's minor version, and client libraries gate features on it: kbox speaks the v1.32 API.
"""

from __future__ import annotations

import platform

from kbox import __version__

MAJOR = "1"
MINOR = "32"
GIT_VERSION = "v1.32.4"


def info() -> dict[str, str]:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return {
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": f"{GIT_VERSION}+kbox.{__version__}",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-29T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "kbox",
        "platform": f"linux/{arch}",
    }
