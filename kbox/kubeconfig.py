"""Writing kubeconfig files that point kubectl and client libraries at a kbox cluster."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml


def build(*, name: str, url: str, token: str, ca: bytes, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context, all called ``name``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": url, "certificate-authority-data": base64.b64encode(ca).decode()},
            }
        ],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
    }


def write(path: Path, config: dict[str, Any]) -> None:
    """Write ``config`` readable by its owner only (it holds a credential)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
