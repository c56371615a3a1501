"""Container images for the Docker tests, built locally from the host's static binaries.

There is no container registry here (and no internet), so nothing can be pulled: not busybox, not
the pause image. Instead every test image is built ``FROM scratch`` through the Docker build API,
with an in-memory tar build context that holds a Dockerfile and a statically linked binary taken
from a Debian package on the host:

* ``kbox.test/busybox:1``: Debian's ``busybox-static`` at ``/bin/busybox``, plus the applets
  (``sh``, ``echo``, ``nc``, ``ip``, ...) as symlinks to it. ``FROM scratch`` has no shell, so a
  Dockerfile cannot ``RUN busybox --install``; the links are made in the tar context instead, and
  ``COPY`` keeps them as symlinks.
* ``kbox.test/pause:2``: kbox's own pod sandbox image (Debian's ``catatonit`` run as ``catatonit -P``,
  its pause mode), built by :mod:`kbox.kubelet.runtime.sandboximage` under a test tag: a sandbox that
  holds the pod's network namespace and exits at once on SIGTERM.

Both binaries must be statically linked (an image from scratch has no libc); scripts/ensure-docker.sh
installs them. The build context and the build itself are kbox's (``sandboximage.BuildContext`` and
``build_image``). Builds are cached: an image is only built when its tag is missing or was built from a
different binary (the binary's SHA-256, or kbox's recipe digest for the pause image, is kept in an
image label), so the first test session pays about a second and later ones nothing. Every image
carries the label ``kbox.test=1``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from pathlib import Path

import aiodocker

from kbox.kubelet.runtime.sandboximage import (
    BuildContext,
    build_image,
    ensure_sandbox_image,
    image_labels,
    is_static_elf,
)

BUSYBOX_TAG = "kbox.test/busybox:1"
"""Tag of the busybox test image; usable from sync code (fixtures, parametrisation)."""

PAUSE_TAG = "kbox.test/pause:2"
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


def _read_static_binary(path: Path, package: str) -> bytes:
    if not path.exists():
        raise MissingBinaryError(f"{path} is missing (Debian package {package}); {_ENSURE_HINT}")
    if not is_static_elf(path):
        raise MissingBinaryError(
            f"{path} is not a statically linked executable, so it cannot run in an image FROM scratch; "
            f"install Debian's {package} ({_ENSURE_HINT})"
        )
    return path.read_bytes()


def _busybox_context() -> tuple[BuildContext, str]:
    binary = _read_static_binary(BUSYBOX_BINARY, "busybox-static")
    digest = hashlib.sha256(binary).hexdigest()
    ctx = BuildContext(
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


async def _build(docker: aiodocker.Docker, tag: str, ctx: BuildContext, digest: str) -> str:
    labels = await image_labels(docker, tag)
    if labels is not None and labels.get(SOURCE_LABEL_KEY) == digest:
        return tag
    await build_image(docker, tag=tag, context=ctx, labels={**TEST_LABELS, SOURCE_LABEL_KEY: digest})
    return tag


async def ensure_busybox_image(docker: aiodocker.Docker, tag: str = BUSYBOX_TAG) -> str:
    """Build the busybox test image ``tag`` unless it is already there; return the tag.

    Built FROM scratch out of the host's /usr/bin/busybox (Debian busybox-static) because there is no
    registry to pull busybox from. Raises :class:`MissingBinaryError` if that binary is missing.
    """
    ctx, digest = await asyncio.to_thread(_busybox_context)
    return await _build(docker, tag, ctx, digest)


KUBECTL_TAG = "kbox.test/kubectl:1"
"""Tag of the busybox image with the host's kubectl in it (a pod that talks to the API in-cluster)."""

KUBECTL_BINARY = Path("/usr/bin/kubectl")  # the real kubectl v1.32: a statically linked Go binary


def _kubectl_context() -> tuple[BuildContext, str]:
    context, busybox_digest = _busybox_context()
    binary = _read_static_binary(KUBECTL_BINARY.resolve(), "kubectl")
    context.files["rootfs/bin/kubectl"] = (binary, 0o755)
    digest = hashlib.sha256(busybox_digest.encode() + hashlib.sha256(binary).digest()).hexdigest()
    return context, digest


async def ensure_kubectl_image(docker: aiodocker.Docker, tag: str = KUBECTL_TAG) -> str:
    """The busybox test image plus /bin/kubectl, as ``tag`` (built unless current); returns the tag.

    kubectl in a pod uses in-cluster configuration: KUBERNETES_SERVICE_HOST/PORT and the token and CA
    under /var/run/secrets/kubernetes.io/serviceaccount, the path a client library in a pod takes."""
    ctx, digest = await asyncio.to_thread(_kubectl_context)
    return await _build(docker, tag, ctx, digest)


async def ensure_pause_image(docker: aiodocker.Docker, tag: str = PAUSE_TAG) -> str:
    """Build kbox's pod-sandbox image as ``tag`` (``catatonit -P``) unless it is current; return the tag.

    Built FROM scratch out of the host's /usr/bin/catatonit (Debian catatonit) because Kubernetes'
    pause image cannot be pulled here. Raises :class:`MissingBinaryError` if that binary is missing.
    """
    await asyncio.to_thread(_read_static_binary, CATATONIT_BINARY, "catatonit")  # the tests' own error
    return await ensure_sandbox_image(docker, tag, binary=CATATONIT_BINARY, extra_labels=TEST_LABELS)
