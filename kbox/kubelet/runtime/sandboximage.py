"""The pod sandbox ("pause") image, built locally on first use: there may be no registry to pull one from.

A pod sandbox only has to hold the pod's network namespace and exit promptly when asked. Debian's
``catatonit`` does exactly that in its pause mode (``catatonit -P``: PID 1 waits for signals and exits
on SIGTERM), and it is statically linked, so an image ``FROM scratch`` holding just that binary is a
complete sandbox image of well under a megabyte. It is built through the Docker build API from a tar
build context made in memory; nothing is pulled and nothing is written to disk by kbox.

The image carries the label ``io.kbox.sandbox-image.recipe``: a SHA-256 over the Dockerfile and the
binary. An image of the configured name with the current recipe is used as it is; one with another
recipe (catatonit was upgraded, or kbox changed the Dockerfile) is rebuilt; an image of that name
without the label is someone else's (say, a real pause image the user tagged) and is used untouched.

:class:`BuildContext` and :func:`is_static_elf` are generic enough that the test images reuse them.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiodocker

from kbox import __version__
from kbox.kubelet.runtime.interface import ContainerRuntimeError

DEFAULT_SANDBOX_IMAGE = f"kbox/pause:{__version__}"
CATATONIT = Path("/usr/bin/catatonit")  # Debian package catatonit (statically linked)

LABEL_IMAGE_KIND = "io.kbox.image"
LABEL_RECIPE = "io.kbox.sandbox-image.recipe"
IMAGE_LABELS = (LABEL_IMAGE_KIND, LABEL_RECIPE)  # Docker shows them among the sandbox container's labels

_DOCKERFILE = """\
FROM scratch
COPY catatonit /catatonit
# -P: pause mode. As PID 1 it only reaps and waits for a signal; SIGTERM ends it at once.
ENTRYPOINT ["/catatonit", "-P"]
"""

_INSTALL_HINT = (
    "install Debian's catatonit package (apt-get install catatonit; kbox's scripts/ensure-docker.sh "
    "installs it), or pass a sandbox image that is already in the local Docker engine"
)


def is_static_elf(path: Path) -> bool:
    """Whether ``path`` is an ELF executable without a program interpreter (statically linked).

    Reads the ELF program headers itself (``file`` or ``ldd`` may be missing). A dynamically linked
    binary in an image ``FROM scratch`` would fail to start for want of its loader.
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


@dataclass
class BuildContext:
    """An in-memory Docker build context: a Dockerfile plus files, directories and symlinks."""

    dockerfile: str
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path -> (data, mode)
    dirs: dict[str, int] = field(default_factory=dict)  # path -> mode
    symlinks: dict[str, str] = field(default_factory=dict)  # path -> target

    def tar(self) -> bytes:
        """The context as an uncompressed tar; reproducible (mtime 0), so the builder's cache can hit."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

            def add(info: tarfile.TarInfo, data: bytes | None = None) -> None:
                info.mtime = 0
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


async def image_labels(docker: aiodocker.Docker, tag: str) -> dict[str, str] | None:
    """The labels of image ``tag`` ({} if it has none), or None when there is no such image."""
    try:
        info = await docker.images.inspect(tag)
    except aiodocker.DockerError as e:
        if e.status == 404:
            return None
        raise
    return dict((info.get("Config") or {}).get("Labels") or {})


async def build_image(
    docker: aiodocker.Docker, *, tag: str, context: BuildContext, labels: Mapping[str, str]
) -> None:
    """Build ``context`` into ``tag`` through the Docker build API, offline (``pull=False``).

    Raises :class:`aiodocker.DockerError` (``DockerStreamError`` for a failing build step).
    """
    data = await asyncio.to_thread(context.tar)
    # aiodocker requires an encoding to be named; "identity" sends the plain tar as it is.
    output = await docker.images.build(
        fileobj=io.BytesIO(data),
        encoding="identity",
        tag=tag,
        labels=dict(labels),
        rm=True,
        forcerm=True,
        pull=False,
    )
    # aiodocker releases before 0.24 return a failing step in the output instead of raising.
    failed = [m for m in output if isinstance(m, dict) and ("error" in m or "errorDetail" in m)]
    if failed:
        detail = failed[0].get("errorDetail") or {}
        raise aiodocker.DockerError(500, str(detail.get("message") or failed[0].get("error")))


def _sandbox_context(binary: Path) -> tuple[BuildContext, str]:
    """The build context and its recipe digest (Dockerfile and binary), read from the host."""
    if not binary.exists():
        raise ContainerRuntimeError(
            f"cannot build the pod sandbox image: {binary} is missing; {_INSTALL_HINT}",
            reason="SandboxImageUnavailable",
        )
    if not is_static_elf(binary):
        raise ContainerRuntimeError(
            f"cannot build the pod sandbox image: {binary} is not a statically linked executable, so it "
            f"cannot run in an image FROM scratch; {_INSTALL_HINT}",
            reason="SandboxImageUnavailable",
        )
    data = binary.read_bytes()
    recipe = hashlib.sha256(_DOCKERFILE.encode() + b"\0" + data).hexdigest()
    return BuildContext(dockerfile=_DOCKERFILE, files={"catatonit": (data, 0o755)}), recipe


async def ensure_sandbox_image(
    docker: aiodocker.Docker,
    tag: str = DEFAULT_SANDBOX_IMAGE,
    *,
    binary: Path = CATATONIT,
    extra_labels: Mapping[str, str] | None = None,
) -> str:
    """Make sure image ``tag`` is a usable pod sandbox image, building it if needed; return ``tag``.

    Raises :class:`ContainerRuntimeError` (reason ``SandboxImageUnavailable``) when the image is
    missing and cannot be built, and lets :class:`aiodocker.DockerError` through for the caller to
    translate.
    """
    labels = await image_labels(docker, tag)
    if labels is not None and LABEL_RECIPE not in labels:
        return tag  # not built by kbox: the user provides it
    if labels is not None and not await asyncio.to_thread(binary.exists):
        return tag  # kbox built it earlier; the binary went away since, but the image still works
    context, recipe = await asyncio.to_thread(_sandbox_context, binary)
    if labels is not None and labels.get(LABEL_RECIPE) == recipe:
        return tag
    await build_image(
        docker,
        tag=tag,
        context=context,
        labels={**(extra_labels or {}), LABEL_IMAGE_KIND: "sandbox", LABEL_RECIPE: recipe},
    )
    return tag
