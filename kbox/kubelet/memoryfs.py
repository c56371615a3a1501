"""Memory-backed folders for the volumes Kubernetes keeps in tmpfs.

Kubernetes never writes secrets to a node's disk: secret, downwardAPI and projected volumes are tmpfs
mounts, and so is an emptyDir with ``medium: Memory``. kbox's runtime interface knows bind mounts of
host folders, and a folder must be shared by every container of the pod (a Docker tmpfs mount is
private to one container, which would split an emptyDir between them). So these folders live under the
host's shared-memory tmpfs, ``/dev/shm/kbox/<id of the kubelet's state folder>/pods/<uid>/volumes/``,
and are bind-mounted like any other; the memory they use is charged to the containers that write it.

Where /dev/shm is not a writable tmpfs, the folders fall back to the kubelet's state folder on disk,
and the kubelet says so once in its log.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from kbox.kubelet import volumes

_log = logging.getLogger(__name__)
Obj = dict[str, Any]

SHM = Path("/dev/shm")
MEMORY_KINDS = ("secret", "downwardAPI", "projected")
"""API volume types Kubernetes backs with tmpfs (a configMap volume stays on disk, as there)."""


@functools.cache
def _tmpfs(path: Path) -> bool:
    """Whether ``path`` is a writable tmpfs mount point (read once per process)."""
    try:
        with open("/proc/mounts") as f:
            mounted = any(
                fields[1] == str(path) and fields[2] == "tmpfs" for fields in (line.split() for line in f)
            )
    except OSError:
        return False
    return mounted and os.access(path, os.W_OK | os.X_OK)


@functools.cache
def _warned(state_dir: Path) -> bool:
    _log.warning(
        "%s is not a writable tmpfs: secret, downwardAPI, projected and emptyDir medium Memory "
        "volumes are kept on disk under %s",
        SHM,
        state_dir,
    )
    return True


def root(state_dir: Path) -> Path | None:
    """This kubelet's folder in shared memory (named after its state folder), or None if unavailable."""
    if not _tmpfs(SHM):
        _warned(state_dir)
        return None
    key = hashlib.sha256(str(state_dir.absolute()).encode()).hexdigest()[:16]
    return SHM / "kbox" / key


def volume_dir(state_dir: Path, uid: str, name: str) -> Path:
    """A memory-backed folder for volume ``name`` of pod ``uid`` (on disk when there is no tmpfs)."""
    base = root(state_dir)
    if base is None:
        return volumes.volume_dir(state_dir, uid, name)
    return base / "pods" / uid / "volumes" / name


def api_volume_dir(state_dir: Path, uid: str, volume: Obj) -> Path:
    """Where the kubelet writes a configMap, secret, downwardAPI or projected volume."""
    name = str(volume.get("name", ""))
    if any(kind in volume for kind in MEMORY_KINDS):
        return volume_dir(state_dir, uid, name)
    return volumes.volume_dir(state_dir, uid, name)


def empty_dir(state_dir: Path, uid: str, volume: Obj) -> Path:
    """An emptyDir's folder, world-writable as the kubelet makes it; in memory for ``medium: Memory``."""
    name = str(volume.get("name", ""))
    if (volume.get("emptyDir") or {}).get("medium") != "Memory":
        return volumes.empty_dir(state_dir, uid, name)
    path = volume_dir(state_dir, uid, name)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


def remove_pod(state_dir: Path, uid: str) -> None:
    """Remove the pod's memory-backed folders (with :func:`volumes.remove_pod` for the rest)."""
    base = root(state_dir)
    if base is not None:
        shutil.rmtree(base / "pods" / uid, ignore_errors=True)


def remove_all(state_dir: Path) -> None:
    """Remove every memory-backed folder of the kubelet(s) keeping their state in ``state_dir``: for
    ``kbox delete`` and test teardown, when the state folder itself goes."""
    base = root(state_dir)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)
