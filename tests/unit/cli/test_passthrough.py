"""Finding kubectl for ``kbox kubectl``: PATH first, then /usr/bin/kubectl, else one clear error."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from kbox.cli.kube import passthrough


def test_path_first_then_fallback_then_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = tmp_path / "bin" / "kubectl"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    fallback = tmp_path / "fallback-kubectl"
    fallback.write_text("#!/bin/sh\n")
    fallback.chmod(0o755)
    monkeypatch.setattr(passthrough, "FALLBACK", fallback)

    monkeypatch.setenv("PATH", str(on_path.parent))
    assert passthrough.find_kubectl() == str(on_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert passthrough.find_kubectl() == str(fallback)
    monkeypatch.setattr(passthrough, "FALLBACK", tmp_path / "absent")
    with pytest.raises(click.ClickException, match="kubectl is not installed"):
        passthrough.find_kubectl()
