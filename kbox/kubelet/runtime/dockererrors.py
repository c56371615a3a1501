"""Docker failures as the kubelet sees them: every aiodocker or transport error becomes a
:class:`ContainerRuntimeError`, and an unreachable daemon gets reason :data:`REASON_UNAVAILABLE`.

The kubelet tells "Docker is down" (a node problem: the node goes NotReady, pod workers pause) from
"this call failed" (a pod problem: it shows in the pod's status), so the distinction is made once,
here, for every module of the Docker runtime.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiodocker
import aiohttp

from kbox.kubelet.runtime.interface import REASON_UNAVAILABLE, ContainerRuntimeError

__all__ = ["REASON_UNAVAILABLE", "no_endpoint", "status_of", "translated", "unavailable"]
_HINT = "start Docker (scripts/ensure-docker.sh does) or set DOCKER_HOST"


def unavailable(what: str, cause: object) -> ContainerRuntimeError:
    """The error for a daemon that cannot be reached while doing ``what``."""
    return ContainerRuntimeError(
        f"{what}: Docker is not available ({cause}); {_HINT}", reason=REASON_UNAVAILABLE
    )


def no_endpoint(cause: BaseException) -> ContainerRuntimeError:
    """The error for a machine where aiodocker finds no Docker endpoint at all."""
    return ContainerRuntimeError(
        f"Docker is not available: no Docker endpoint found ({cause or type(cause).__name__}); {_HINT}",
        reason=REASON_UNAVAILABLE,
    )


@contextlib.contextmanager
def translated(what: str, *, reason: str = "RuntimeError") -> Iterator[None]:
    """Turn aiodocker and connection errors raised inside into :class:`ContainerRuntimeError`."""
    try:
        yield
    except ContainerRuntimeError:
        raise
    except aiodocker.DockerError as e:
        if e.status == 900:  # aiodocker's code for "cannot connect"
            raise unavailable(what, e.message) from e
        raise ContainerRuntimeError(
            f"{what}: {e.message}", reason="NotFound" if e.status == 404 else reason
        ) from e
    except (aiohttp.ClientError, OSError) as e:  # also TimeoutError
        raise ContainerRuntimeError(
            f"{what}: the connection to Docker failed ({e or type(e).__name__})",
            reason=REASON_UNAVAILABLE,
        ) from e


def status_of(error: ContainerRuntimeError) -> int | None:
    """The HTTP status Docker answered with, if the error came from an answer."""
    cause = error.__cause__
    return cause.status if isinstance(cause, aiodocker.DockerError) else None
