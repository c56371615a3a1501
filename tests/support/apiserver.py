"""A live apiserver for tests, and the real kubectl and official client pointed at it.

``served()`` starts the control plane (in-memory store) on a free loopback port with a fresh token and
writes a kubeconfig for it. ``Kubectl`` runs /usr/bin/kubectl as a subprocess *asynchronously*, so the
server keeps answering on the same event loop while kubectl talks to it. kubectl tests are skipped only
when kubectl is absent, and never under CI=true (they fail there instead).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from kbox import kubeconfig as kubeconfig_file
from kbox.api.app import ApiSettings
from kbox.api.certs import ensure_certificates
from kbox.api.controlplane import ControlPlane
from kbox.config import StoreSettings

KUBECTL = "/usr/bin/kubectl"


@dataclass
class Served:
    plane: ControlPlane
    url: str
    token: str
    kubeconfig: Path
    ca_file: Path


@asynccontextmanager
async def served(
    directory: Path, *, store_path: Path | None = None, service_accounts: bool = False
) -> AsyncIterator[Served]:
    """``service_accounts``: run the ServiceAccount admission plugin (off by default, as envtest runs
    kube-apiserver: with no controllers here, no namespace gets its ``default`` ServiceAccount)."""
    token = secrets.token_urlsafe(24)
    tls = ensure_certificates(directory / "pki")
    plane = ControlPlane(
        StoreSettings(path=store_path), ApiSettings(host="127.0.0.1", port=0, token=token, tls=tls)
    )
    if not service_accounts:
        plane.catalog.admission_disabled.add("ServiceAccount")
    await plane.start()
    try:
        kubeconfig = directory / "kubeconfig"
        kubeconfig_file.write(
            kubeconfig, kubeconfig_file.build(name="kbox-test", url=plane.url, token=token, ca=tls.ca_pem())
        )
        yield Served(plane, plane.url, token, kubeconfig, tls.ca_cert)
    finally:
        await plane.stop()


@dataclass
class Result:
    code: int
    out: str
    err: str


class Kubectl:
    """The real kubectl against one server, with its own discovery cache."""

    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        if not Path(KUBECTL).exists():
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"{KUBECTL} is missing under CI=true")
            pytest.skip(f"{KUBECTL} is not installed")
        self.base = [KUBECTL, f"--kubeconfig={kubeconfig}", f"--cache-dir={cache}"]
        self.env = {**os.environ, "HOME": str(cache), "KUBECTL_COMMAND_HEADERS": "false"}

    async def __call__(self, *args: str, stdin: str | None = None, timeout: float = 30) -> Result:
        process = await asyncio.create_subprocess_exec(
            *self.base,
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        return Result(process.returncode or 0, out.decode(), err.decode())

    async def ok(self, *args: str, stdin: str | None = None) -> str:
        result = await self(*args, stdin=stdin)
        assert result.code == 0, f"kubectl {' '.join(args)} failed ({result.code}): {result.err}{result.out}"
        return result.out

    async def fails(self, *args: str, stdin: str | None = None) -> str:
        result = await self(*args, stdin=stdin)
        assert result.code != 0, f"kubectl {' '.join(args)} should have failed: {result.out}"
        return result.err


def which_kubectl() -> str | None:
    return shutil.which("kubectl")
