"""Container images for the Docker tests, built locally from the host's static binaries.

There is no container registry here (and no internet), so nothing can be pulled: not busybox, not
the pause image. Instead every test image is built ``FROM scratch`` through the Docker build API,
with an in-memory tar build context that holds a Dockerfile and a statically linked binary taken
from a Debian package on the host:

* ``kbox.test/busybox:1``: Debian's ``busybox-static`` at ``/bin/busybox``, plus the applets
  (``sh``, ``echo``, ``nc``, ``ip``, ...) as symlinks to it. ``FROM scratch`` has no shell, so a
  Dockerfile cannot ``RUN busybox --install``; the links are made in the tar context instead, and
  ``COPY`` keeps them as symlinks.
* ``kbox.test/pause:1``: Debian's ``catatonit`` as ``/catatonit``, run as ``catatonit -P`` (its
  pause mode): a pod sandbox that holds the pod's network namespace and exits at once on SIGTERM.

Both binaries must be statically linked (an image from scratch has no libc); scripts/ensure-docker.sh
installs them. Builds are cached: an image is only built when its tag is missing or was built from a
different binary (the binary's SHA-256 is kept in an image label), so the first test session pays
about a second and later ones nothing. Every image carries the label ``kbox.test=1``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import struct
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiodocker

BUSYBOX_TAG = "kbox.test/busybox:1"
"""Tag of the busybox test image; usable from sync code (fixtures, parametrisation)."""

PAUSE_TAG = "kbox.test/pause:1"
"""Tag of the pod-sandbox (pause) test image."""

TEST_LABEL_KEY = "kbox.test"
TEST_LABELS: Mapping[str, str] = {TEST_LABEL_KEY: "1"}
"""Label put on every Docker object the tests create, so leftovers can be found and removed."""

SOURCE_LABEL_KEY = "kbox.test.source-sha256"
"""Image label holding the SHA-256 of the host binary the image was built from."""

BUSYBOX_BINARY = Path("/usr/bin/busybox")  # Debian package busybox-static
CATATONIT_BINARY = Path("/usr/bin/catatonit")  # Debian package catatonit

BUSYBOX_APPLETS: tuple[str, ...] = (
    # what the tests and kbox's Docker runtime rely on
    "sh",
    "echo",
    "sleep",
    "cat",
    "ls",
    "wget",
    "nc",
    "env",
    "hostname",
    "id",
    "true",
    "false",
    "ifconfig",
    "ip",
    "nslookup",
    # small conveniences for ad-hoc commands in tests
    "grep",
    "head",
    "httpd",
    "kill",
    "mkdir",
    "printf",
    "ps",
    "rm",
    "seq",
    "test",
    "wc",
)

_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ENSURE_HINT = "run scripts/ensure-docker.sh (as root) to install it"


class MissingBinaryError(RuntimeError):
    """A host binary a test image is built from is missing or not statically linked."""


def is_static_elf(path: Path) -> bool:
    """Whether ``path`` is an ELF executable without a program interpreter (statically linked).

    Reads the ELF program headers rather than calling ``file`` or ``ldd``, which a minimal machine may
    lack. A dynamically linked binary would start from scratch only to fail on its missing loader.
    """
    try:
        with path.open("rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF":
                return False
            is64 = ident[4] == 2
            endian = "<" if ident[5] == 1 else ">"
            if is64:
                f.seek(32)
                (phoff,) = struct.unpack(endian + "Q", f.read(8))
                f.seek(54)
            else:
                f.seek(28)
                (phoff,) = struct.unpack(endian + "I", f.read(4))
                f.seek(42)
            phentsize, phnum = struct.unpack(endian + "HH", f.read(4))
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                (p_type,) = struct.unpack(endian + "I", f.read(4))
                if p_type == 3:  # PT_INTERP: needs a dynamic loader
                    return False
            return True
    except (OSError, struct.error):
        return False


def _read_static_binary(path: Path, package: str) -> bytes:
    if not path.exists():
        raise MissingBinaryError(f"{path} is missing (Debian package {package}); {_ENSURE_HINT}")
    if not is_static_elf(path):
        raise MissingBinaryError(
            f"{path} is not a statically linked executable, so it cannot run in an image FROM scratch; "
            f"install Debian's {package} ({_ENSURE_HINT})"
        )
    return path.read_bytes()


@dataclass
class _Context:
    """An in-memory Docker build context: a Dockerfile plus files, directories and symlinks."""

    dockerfile: str
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path -> (data, mode)
    dirs: dict[str, int] = field(default_factory=dict)  # path -> mode
    symlinks: dict[str, str] = field(default_factory=dict)  # path -> target

    def tar(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

            def add(info: tarfile.TarInfo, data: bytes | None = None) -> None:
                info.mtime = 0  # reproducible context, so the builder's layer cache can hit
                tar.addfile(info, io.BytesIO(data) if data is not None else None)

            for name, (data, mode) in {"Dockerfile": (self.dockerfile.encode(), 0o644), **self.files}.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), mode
                add(info, data)
            for name, mode in self.dirs.items():
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, mode
                add(info)
            for name, target in self.symlinks.items():
                info = tarfile.TarInfo(name)
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
                add(info)
        return buf.getvalue()


def _busybox_context() -> tuple[_Context, str]:
    binary = _read_static_binary(BUSYBOX_BINARY, "busybox-static")
    digest = hashlib.sha256(binary).hexdigest()
    ctx = _Context(
        dockerfile="\n".join(
            [
                "FROM scratch",
                # rootfs/ holds bin/busybox and the applet symlinks; COPY keeps symlinks as they are.
                "COPY rootfs/ /",
                f"ENV {_PATH_ENV}",
                'CMD ["sh"]',
                "",
            ]
        ),
        files={"rootfs/bin/busybox": (binary, 0o755)},
        dirs={"rootfs/tmp": 0o1777, "rootfs/etc": 0o755},
        symlinks={f"rootfs/bin/{applet}": "busybox" for applet in BUSYBOX_APPLETS},
    )
    return ctx, digest


def _pause_context() -> tuple[_Context, str]:
    binary = _read_static_binary(CATATONIT_BINARY, "catatonit")
    digest = hashlib.sha256(binary).hexdigest()
    ctx = _Context(
        dockerfile="\n".join(
            [
                "FROM scratch",
                "COPY catatonit /catatonit",
                # -P: pause mode. catatonit as PID 1 just waits for signals and exits on SIGTERM, like
                # Kubernetes' pause container, which a registry-less machine cannot pull.
                'ENTRYPOINT ["/catatonit", "-P"]',
                "",
            ]
        ),
        files={"catatonit": (binary, 0o755)},
    )
    return ctx, digest


async def _existing_source(docker: aiodocker.Docker, tag: str) -> str | None:
    """The source digest label of image ``tag``, "" if it has none, None if there is no such image."""
    try:
        info = await docker.images.inspect(tag)
    except aiodocker.DockerError as e:
        if e.status == 404:
            return None
        raise
    labels = (info.get("Config") or {}).get("Labels") or {}
    return str(labels.get(SOURCE_LABEL_KEY, ""))


async def _build(docker: aiodocker.Docker, tag: str, ctx: _Context, digest: str) -> str:
    if await _existing_source(docker, tag) == digest:
        return tag
    context = await asyncio.to_thread(ctx.tar)
    # An uncompressed tar; aiodocker requires an encoding to be named, and the daemon detects
    # compression from the content anyway. pull=False: FROM scratch needs no registry.
    output: list[dict[str, Any]] = await docker.images.build(
        fileobj=io.BytesIO(context),
        encoding="identity",
        tag=tag,
        labels={**TEST_LABELS, SOURCE_LABEL_KEY: digest},
        rm=True,
        forcerm=True,
        pull=False,
    )
    errors = [m for m in output if isinstance(m, dict) and ("error" in m or "errorDetail" in m)]
    if errors:  # older aiodocker releases return errors in the list instead of raising
        raise RuntimeError(f"building {tag} failed: {json.dumps(errors)}")
    return tag


async def ensure_busybox_image(docker: aiodocker.Docker, tag: str = BUSYBOX_TAG) -> str:
    """Build the busybox test image ``tag`` unless it is already there; return the tag.

    Built FROM scratch out of the host's /usr/bin/busybox (Debian busybox-static) because there is no
    registry to pull busybox from. Raises :class:`MissingBinaryError` if that binary is missing.
    """
    ctx, digest = await asyncio.to_thread(_busybox_context)
    return await _build(docker, tag, ctx, digest)


async def ensure_pause_image(docker: aiodocker.Docker, tag: str = PAUSE_TAG) -> str:
    """Build the pod-sandbox image ``tag`` (``catatonit -P``) unless it is already there; return the tag.

    Built FROM scratch out of the host's /usr/bin/catatonit (Debian catatonit) because Kubernetes'
    pause image cannot be pulled here. Raises :class:`MissingBinaryError` if that binary is missing.
    """
    ctx, digest = await asyncio.to_thread(_pause_context)
    return await _build(docker, tag, ctx, digest)
