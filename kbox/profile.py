"""Profiles: one named cluster each, its state under ``$KBOX_HOME/<profile>/``.

``$KBOX_HOME`` defaults to ``~/.kbox``; the profile comes from ``--profile``, else ``$KBOX_PROFILE``,
else ``kbox``. A profile's directory holds the database, token, certificates and kubeconfig (written by
the cluster process), plus what the lifecycle commands keep: the pid file of the running process, its
log file ``kbox.log`` and ``profile.json``, the settings (runtime, nodes, port) a later ``kbox start``
reuses.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PROFILE = "kbox"
DEFAULT_PORT = 6443
# Profile names become node names and Docker object names: DNS labels.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


class ProfileError(Exception):
    """A profile that cannot be used as asked (bad name, unreadable settings)."""


def kbox_home() -> Path:
    """Where kbox keeps state: ``$KBOX_HOME`` or ``~/.kbox``."""
    return Path(os.environ.get("KBOX_HOME") or Path.home() / ".kbox").absolute()


def profile_name(explicit: str | None = None) -> str:
    """``explicit`` (``--profile``), else ``$KBOX_PROFILE``, else ``kbox``; checked to be a DNS label."""
    name = explicit or os.environ.get("KBOX_PROFILE") or DEFAULT_PROFILE
    if not _NAME.match(name):
        raise ProfileError(
            f"invalid profile name {name!r}: use lower-case letters, digits and '-' (at most 40 characters)"
        )
    return name


@dataclass
class ProfileSettings:
    """What ``kbox start`` remembers for a profile."""

    runtime: str = "docker"
    nodes: int = 1
    port: int = DEFAULT_PORT


@dataclass(frozen=True)
class Profile:
    """Paths of one profile; nothing is created until asked."""

    name: str
    home: Path

    @classmethod
    def get(cls, name: str | None = None) -> Profile:
        return cls(profile_name(name), kbox_home())

    @property
    def dir(self) -> Path:
        return self.home / self.name

    @property
    def pid_file(self) -> Path:
        return self.dir / "kbox.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "kbox.log"

    @property
    def settings_file(self) -> Path:
        return self.dir / "profile.json"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.dir / "pki" / "ca.crt"

    @property
    def token_file(self) -> Path:
        return self.dir / "token"

    def exists(self) -> bool:
        return self.dir.is_dir()

    def load_settings(self) -> ProfileSettings | None:
        """The remembered settings, or None for a profile never started with ``kbox start``."""
        try:
            data = json.loads(self.settings_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ProfileError(f"{self.settings_file}: cannot read the profile's settings: {exc}") from None
        if not isinstance(data, dict):
            raise ProfileError(f"{self.settings_file}: not a JSON object")
        defaults = ProfileSettings()
        try:
            return ProfileSettings(
                runtime=str(data.get("runtime", defaults.runtime)),
                nodes=int(data.get("nodes", defaults.nodes)),
                port=int(data.get("port", defaults.port)),
            )
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"{self.settings_file}: bad value: {exc}") from None

    def save_settings(self, settings: ProfileSettings) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.settings_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(settings), indent=2) + "\n")
        tmp.replace(self.settings_file)

    def read_pid(self) -> int | None:
        """The pid of this profile's running cluster process, or None (a stale pid file is ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def write_pid(self, pid: int) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(f"{pid}\n")

    def remove_pid(self) -> None:
        self.pid_file.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) kbox process."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, not ours to judge further
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return True  # no /proc (not Linux): trust kill(0)
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else ""
    if state in ("Z", "X"):
        return False
    return b"kbox" in cmdline  # a recycled pid belongs to some other program


def list_profiles(home: Path | None = None) -> list[Profile]:
    """Every profile directory under ``$KBOX_HOME``, by name."""
    home = home or kbox_home()
    if not home.is_dir():
        return []
    return [
        Profile(p.name, home)
        for p in sorted(home.iterdir())
        if p.is_dir() and _NAME.match(p.name) is not None
    ]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# -- the merged kubeconfig (as minikube does) ----------------------------------------------------


def user_kubeconfig() -> Path:
    """The first path of ``$KUBECONFIG``, else ``~/.kube/config``."""
    for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if entry.strip():
            return Path(entry.strip()).expanduser()
    return Path.home() / ".kube" / "config"


def _load_kubeconfig(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not a valid kubeconfig: {exc}".splitlines()[0]) from None
    if data is None:
        return {"apiVersion": "v1", "kind": "Config"}
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: not a valid kubeconfig (expected a mapping)")
    return data


def _save_kubeconfig(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600
    with contextlib.suppress(FileNotFoundError):
        mode = path.stat().st_mode & 0o777
    tmp = path.with_name(f".{path.name}.kbox-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    os.chmod(tmp, mode)
    tmp.replace(path)


def _entries(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


def _without(entries: list[Any], name: str) -> list[Any]:
    return [e for e in entries if not (isinstance(e, dict) and e.get("name") == name)]


def merge_kubeconfig(name: str, *, url: str, token: str, ca: bytes, path: Path | None = None) -> Path:
    """Put cluster, user and context ``name`` into the user's kubeconfig and make it current.

    Entries of other names are left as they are; the file is created with mode 0600 if missing.
    """
    path = path or user_kubeconfig()
    data = _load_kubeconfig(path)
    cluster = {"server": url, "certificate-authority-data": base64.b64encode(ca).decode()}
    data["clusters"] = [*_without(_entries(data, "clusters"), name), {"name": name, "cluster": cluster}]
    data["users"] = [*_without(_entries(data, "users"), name), {"name": name, "user": {"token": token}}]
    context = {"cluster": name, "user": name, "namespace": "default"}
    data["contexts"] = [*_without(_entries(data, "contexts"), name), {"name": name, "context": context}]
    data["current-context"] = name
    _save_kubeconfig(path, data)
    return path


def unmerge_kubeconfig(name: str, *, path: Path | None = None) -> bool:
    """Remove cluster, user and context ``name`` from the user's kubeconfig; True if any was there."""
    path = path or user_kubeconfig()
    if not path.exists():
        return False
    data = _load_kubeconfig(path)
    changed = False
    for key in ("clusters", "users", "contexts"):
        entries = _entries(data, key)
        kept = _without(entries, name)
        if len(kept) != len(entries):
            data[key] = kept
            changed = True
    if data.get("current-context") == name:
        data["current-context"] = ""
        changed = True
    if changed:
        _save_kubeconfig(path, data)
    return changed


def node_names(name: str, nodes: int) -> list[str]:
    """minikube's scheme: the first node is named after the cluster, the others ``<name>-m02``..."""
    return [name] + [f"{name}-m{i:02d}" for i in range(2, nodes + 1)]


def load_token(directory: Path) -> str:
    """The cluster's bearer token, created (mode 0600) on first use and never logged."""
    path = directory / "token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token
