"""Volume content on the host: what a configMap, secret, downwardAPI or projected volume holds, and
the kubelet's atomic writer that puts it in the pod's volume folder.

Every volume is a folder ``<state_dir>/pods/<uid>/volumes/<name>`` that the runtime bind-mounts.
Folders with API data use the layout of the kubelet's atomic writer::

    <dir>/..2024_05_01_12_00_00.1a2b3c/   the files of one version (items may nest: a/b.txt)
    <dir>/..data -> ..2024_05_01_12_00_00.1a2b3c
    <dir>/<key>  -> ..data/<key>          one visible symlink per top-level entry

An update writes a new timestamped folder, points a temporary symlink at it and renames that over
``..data`` (an atomic swap), fixes the visible symlinks, then removes the old folder, so a running
container sees either the old or the new version, never a mix. A ``subPath`` mount resolves the
symlinks when the container is created and does not see updates, as in Kubernetes.

Secret, downwardAPI and projected volumes, and an emptyDir with ``medium: Memory``, take their folder
from :mod:`kbox.kubelet.memoryfs` (the host's shared-memory tmpfs) instead. Differences from
Kubernetes, on purpose: ``sizeLimit`` is not enforced; a projected ``clusterTrustBundle`` source is
skipped.

A projected ``serviceAccountToken`` source holds a token the kubelet asks the TokenRequest API for,
bound to the pod (so it dies with it), for the source's audience and lifetime. The token written last
is the cache: it is read back from the volume, reused while less than 80% of its lifetime has passed
(the kubelet token manager's rule), then replaced by a fresh one with the same atomic swap; the pod's
sync asks to run again at that moment (:func:`token_refresh_in`). Keeping no cache in memory means a
restarted kubelet neither re-requests good tokens nor forgets to renew old ones.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kbox.api import quantity
from kbox.api.errors import StatusError
from kbox.client.interface import PVCS as _PVCS
from kbox.client.interface import PVS as _PVS
from kbox.client.interface import Client
from kbox.kubelet.runtime.interface import ContainerRuntimeError

Obj = dict[str, Any]

DEFAULT_MODE = 0o644
DATA_LINK = "..data"

API_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")
"""Volume types whose content the kubelet writes (read-only in the container, as in Kubernetes)."""


@dataclass(frozen=True)
class File:
    data: bytes
    mode: int = DEFAULT_MODE


Payload = dict[str, File]
"""Relative path (``key`` or ``dir/key``) → content and mode."""


def config_error(volume: str, message: str) -> ContainerRuntimeError:
    return ContainerRuntimeError(
        f'MountVolume.SetUp failed for volume "{volume}" : {message}', reason="CreateContainerConfigError"
    )


# -- where -------------------------------------------------------------------------------------------


def pod_dir(state_dir: Path, uid: str) -> Path:
    return state_dir / "pods" / uid


def volume_dir(state_dir: Path, uid: str, name: str) -> Path:
    return pod_dir(state_dir, uid) / "volumes" / name


def remove_pod(state_dir: Path, uid: str) -> None:
    """Remove everything the kubelet wrote for a pod (its volumes); call once its containers are gone."""
    shutil.rmtree(pod_dir(state_dir, uid), ignore_errors=True)


def empty_dir(state_dir: Path, uid: str, name: str) -> Path:
    """An emptyDir's folder (world-writable, as the kubelet makes it); ``medium: Memory`` too."""
    path = volume_dir(state_dir, uid, name)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


def host_path(source: Obj) -> Path:
    """A hostPath volume's folder; made when its ``type`` is DirectoryOrCreate."""
    path = Path(source.get("path", ""))
    if source.get("type") == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    return path


# -- persistentVolumeClaim ------------------------------------------------------------------------------


async def claim_problem(client: Client, pod: Obj) -> str | None:
    """Why the pod's persistentVolumeClaim volumes cannot be mounted yet (the FailedMount message, in
    the kubelet's words), or None when every claim is bound."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    failed: list[str] = []
    reasons: list[str] = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        source = volume.get("persistentVolumeClaim") if isinstance(volume, dict) else None
        if not source:
            continue
        claim_name = source.get("claimName", "")
        try:
            claim = await client.get(_PVCS, claim_name, namespace=namespace)
        except StatusError as exc:
            if exc.code != 404:
                raise
            reason = f"failed to fetch PVC from API server: {exc.message}"
        else:
            if (claim.get("status") or {}).get("phase") == "Bound" and (claim.get("spec") or {}).get(
                "volumeName"
            ):
                continue
            reason = f"error processing PVC {namespace}/{claim_name}: PVC is not bound"
        failed.append(volume.get("name", ""))
        reasons.append(reason)
    if not failed:
        return None
    names = " ".join(failed)
    return (
        f"Unable to attach or mount volumes: unmounted volumes=[{names}], unattached volumes=[], "
        f"failed to process volumes=[{names}]: {', '.join(reasons)}"
    )


async def claim_path(client: Client, volume: str, namespace: str, source: Obj) -> Path:
    """The host folder of the PersistentVolume bound to a persistentVolumeClaim volume (hostPath or
    local volumes: the folder itself, bind-mounted as it is)."""
    claim_name = source.get("claimName", "")
    try:
        claim = await client.get(_PVCS, claim_name, namespace=namespace)
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if not volume_name or (claim.get("status") or {}).get("phase") != "Bound":
            raise config_error(volume, f"PVC {namespace}/{claim_name} is not bound")
        persistent = await client.get(_PVS, volume_name)
    except StatusError as exc:
        raise config_error(volume, exc.message) from None
    spec = persistent.get("spec") or {}
    if isinstance(spec.get("hostPath"), dict):
        return host_path(spec["hostPath"])
    if isinstance(spec.get("local"), dict) and spec["local"].get("path"):
        return Path(spec["local"]["path"])
    raise config_error(volume, f'PersistentVolume "{volume_name}" is neither a hostPath nor a local volume')


# -- what ------------------------------------------------------------------------------------------


def _mode(value: Any, default: int) -> int:
    return int(value) & 0o777 if value is not None else default


def _keyed(
    volume: str, kind: str, name: str, entries: dict[str, bytes], source: Obj, default_mode: int
) -> Payload:
    """One file per key, or per ``items`` entry (``key``, ``path``, ``mode``)."""
    mode = _mode(source.get("defaultMode"), default_mode)
    items = source.get("items")
    if not items:
        return {key: File(data, mode) for key, data in entries.items()}
    payload: Payload = {}
    for item in items:
        key = item.get("key", "")
        if key not in entries:
            if source.get("optional"):
                continue
            raise config_error(volume, f'{kind} "{name}" has no key "{key}"')
        payload[item.get("path") or key] = File(entries[key], _mode(item.get("mode"), mode))
    return payload


def configmap_files(
    volume: str, source: Obj, configmap: Obj | None, default_mode: int = DEFAULT_MODE
) -> Payload:
    """A configMap volume (or projection): ``data`` as UTF-8, ``binaryData`` base64-decoded.
    ``configmap`` is None when it does not exist: empty if optional, else an error."""
    name = source.get("name", "")
    if configmap is None:
        if source.get("optional"):
            return {}
        raise config_error(volume, f'configmap "{name}" not found')
    entries = {k: str(v).encode() for k, v in (configmap.get("data") or {}).items()}
    entries.update({k: base64.b64decode(v) for k, v in (configmap.get("binaryData") or {}).items()})
    return _keyed(volume, "configmap", name, entries, source, default_mode)


def secret_files(volume: str, source: Obj, secret: Obj | None, default_mode: int = DEFAULT_MODE) -> Payload:
    """A secret volume (or projection): ``data`` base64-decoded. The volume names ``secretName``,
    a projection ``name``."""
    name = source.get("secretName") or source.get("name", "")
    if secret is None:
        if source.get("optional"):
            return {}
        raise config_error(volume, f'secret "{name}" not found')
    entries = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    return _keyed(volume, "secret", name, entries, source, default_mode)


def _format_map(values: Obj) -> str:
    """Labels/annotations as the kubelet writes them: sorted ``key="value"`` lines (Go's %q)."""
    return "\n".join(f"{k}={json.dumps(str(values[k]), ensure_ascii=False)}" for k in sorted(values))


def field_value(pod: Obj, path: str) -> str:
    metadata = pod.get("metadata") or {}
    simple = {"metadata.name": "name", "metadata.namespace": "namespace", "metadata.uid": "uid"}
    if path in simple:
        return str(metadata.get(simple[path], ""))
    if path in ("metadata.labels", "metadata.annotations"):
        return _format_map(metadata.get(path.partition(".")[2]) or {})
    match = re.match(r"metadata\.(labels|annotations)\['(.+)'\]$", path)
    if match:
        return str((metadata.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ValueError(f"unsupported fieldPath {path!r}")


def resource_value(pod: Obj, ref: Obj, container_name: str = "") -> str:
    """``resourceFieldRef``: the container's request or limit divided by ``divisor``, rounded up
    ("0" when unset; Kubernetes would report the node's allocatable for a missing limit)."""
    name = ref.get("containerName") or container_name
    spec = pod.get("spec") or {}
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    container = next((c for c in containers if c.get("name") == name), None)
    if container is None:
        raise ValueError(f'container "{name}" not found in the pod')
    section, _, resource = ref.get("resource", "").partition(".")
    raw = ((container.get("resources") or {}).get(section) or {}).get(resource)
    if raw is None:
        return "0"
    value = quantity.parse(raw) / quantity.parse(ref.get("divisor") or "1")
    return str(int(-(-value // 1)))


def downward_files(volume: str, source: Obj, pod: Obj, default_mode: int = DEFAULT_MODE) -> Payload:
    """A downwardAPI volume (or projection): one file per item, from ``fieldRef`` (metadata.name,
    namespace, uid, labels, annotations, and single labels/annotations) or ``resourceFieldRef``."""
    mode = _mode(source.get("defaultMode"), default_mode)
    payload: Payload = {}
    for item in source.get("items") or []:
        try:
            if "fieldRef" in item:
                text = field_value(pod, (item["fieldRef"] or {}).get("fieldPath", ""))
            elif "resourceFieldRef" in item:
                text = resource_value(pod, item["resourceFieldRef"] or {})
            else:
                continue
        except ValueError as exc:
            raise config_error(volume, str(exc)) from None
        payload[item.get("path", "")] = File(text.encode(), _mode(item.get("mode"), mode))
    return payload


# -- service account tokens ----------------------------------------------------------------------------

TOKEN_REFRESH_FRACTION = 0.8
TOKEN_MAX_AGE = 24 * 3600  # the kubelet renews a token at least daily, whatever its lifetime
DEFAULT_TOKEN_EXPIRATION = 3600


def token_claims(token: bytes | str) -> Obj | None:
    """The (unverified) claims of a JWT the kubelet wrote earlier; None if it is not one."""
    text = token.decode(errors="replace") if isinstance(token, bytes) else token
    parts = text.strip().split(".")
    if len(parts) != 3:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    return decoded if isinstance(decoded, dict) else None


def token_fresh_for(claims: Obj | None, *, now: float) -> float:
    """Seconds until a token with ``claims`` is due for renewal (<= 0: renew now)."""
    if claims is None:
        return 0.0
    try:
        issued, expires = float(claims["iat"]), float(claims["exp"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    due = min(issued + (expires - issued) * TOKEN_REFRESH_FRACTION, issued + TOKEN_MAX_AGE)
    return due - now


def _token_matches(claims: Obj | None, pod: Obj, source: Obj) -> bool:
    """Whether a written token still answers this source for this pod (same pod, account, audience)."""
    if claims is None:
        return False
    private = claims.get("kubernetes.io") or {}
    metadata = pod.get("metadata") or {}
    account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    audience = source.get("audience")
    audiences = claims.get("aud")
    return (
        (private.get("pod") or {}).get("uid") == metadata.get("uid")
        and (private.get("serviceaccount") or {}).get("name") == account
        and (not audience or audiences in ([audience], audience))
    )


async def service_account_token(
    client: Client,
    volume: str,
    source: Obj,
    pod: Obj,
    mode: int,
    previous: Payload | None,
    *,
    now: float | None = None,
) -> Payload:
    """A projected ``serviceAccountToken``: the token already written while it is fresh, else a new one
    from the TokenRequest API bound to ``pod``."""
    path = source.get("path") or "token"
    now = time.time() if now is None else now
    old = (previous or {}).get(path)
    if old is not None:
        claims = token_claims(old.data)
        if _token_matches(claims, pod, source) and token_fresh_for(claims, now=now) > 0:
            return {path: File(old.data, mode)}
    metadata = pod.get("metadata") or {}
    spec: Obj = {
        "audiences": [source["audience"]] if source.get("audience") else [],
        "expirationSeconds": int(source.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION),
        "boundObjectRef": {
            "kind": "Pod",
            "apiVersion": "v1",
            "name": metadata.get("name", ""),
            "uid": metadata.get("uid", ""),
        },
    }
    account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    try:
        answer = await client.request_token(account, spec, namespace=metadata.get("namespace", ""))
    except StatusError as exc:
        raise config_error(volume, f"failed to fetch token: {exc}") from None
    token = str((answer.get("status") or {}).get("token") or "")
    if not token:
        raise config_error(volume, "failed to fetch token: the TokenRequest answer holds no token")
    return {path: File(token.encode(), mode)}


def token_refresh_in(
    pod: Obj, read_volume: Callable[[Obj], Payload | None], *, now: float | None = None
) -> float | None:
    """Seconds until the first service account token among ``pod``'s projected volumes is due for
    renewal (``read_volume``: what a volume holds now), or None if none is written yet."""
    now = time.time() if now is None else now
    due: list[float] = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        sources = (volume.get("projected") or {}).get("sources") or []
        paths = [
            (s["serviceAccountToken"] or {}).get("path") or "token"
            for s in sources
            if "serviceAccountToken" in s
        ]
        if not paths:
            continue
        payload = read_volume(volume) or {}
        for path in paths:
            file = payload.get(path)
            if file is not None:
                due.append(max(token_fresh_for(token_claims(file.data), now=now), 1.0))
    return min(due) if due else None


# -- writing -------------------------------------------------------------------------------------------


def _check(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if not path or relative.is_absolute() or ".." in relative.parts or relative.parts[0].startswith(".."):
        raise ValueError(f"invalid path {path!r} in volume")
    return relative


def read(target: Path) -> Payload | None:
    """What ``target/..data`` holds now, or None when nothing was written yet."""
    data = target / DATA_LINK
    if not data.is_symlink():
        return None
    root = data.resolve()
    payload: Payload = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            payload[path.relative_to(root).as_posix()] = File(path.read_bytes(), path.stat().st_mode & 0o7777)
    return payload


def write(target: Path, payload: Payload) -> bool:
    """Make ``target`` hold ``payload`` with the atomic writer's layout; False when it already did."""
    paths = {key: _check(key) for key in payload}
    if read(target) == payload:
        return False
    target.mkdir(parents=True, exist_ok=True)
    old = (target / DATA_LINK).resolve() if (target / DATA_LINK).is_symlink() else None
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    new = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    new.chmod(0o755)
    for key, file in payload.items():
        path = new / paths[key]
        if path.parent != new:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_bytes(file.data)
        path.chmod(file.mode)
    temporary = target / "..data_tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(new.name)
    os.replace(temporary, target / DATA_LINK)
    visible = {paths[key].parts[0] for key in payload}
    for name in visible:
        link = target / name
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            link.symlink_to(f"{DATA_LINK}/{name}")
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in visible and entry.is_symlink():
            entry.unlink()
    if old is not None and old.parent == target and old != new:
        shutil.rmtree(old, ignore_errors=True)
    return True
