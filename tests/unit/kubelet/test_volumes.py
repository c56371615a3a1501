"""The kubelet's volume content and atomic writer layout (no runtime needed)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from kbox.kubelet import volumes
from kbox.kubelet.runtime.interface import ContainerRuntimeError
from kbox.kubelet.volumes import File

Obj = dict[str, Any]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def timestamped(target: Path) -> list[str]:
    return sorted(p.name for p in target.iterdir() if p.name.startswith("..") and p.name != "..data")


def test_write_uses_the_atomic_writer_layout(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert volumes.write(target, {"a": File(b"1"), "sub/b": File(b"2", 0o600)})
    data = target / "..data"
    assert data.is_symlink()
    stamp = os.readlink(data)
    assert stamp.startswith("..") and timestamped(target) == [stamp]
    assert os.readlink(target / "a") == "..data/a"
    assert os.readlink(target / "sub") == "..data/sub"
    assert (target / "a").read_bytes() == b"1"
    assert (target / "sub" / "b").read_bytes() == b"2"
    assert (target / stamp / "a").stat().st_mode & 0o777 == 0o644
    assert (target / stamp / "sub" / "b").stat().st_mode & 0o777 == 0o600
    assert volumes.read(target) == {"a": File(b"1"), "sub/b": File(b"2", 0o600)}


def test_unchanged_content_is_not_rewritten_and_an_update_swaps_data(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    volumes.write(target, {"a": File(b"1"), "b": File(b"x")})
    first = os.readlink(target / "..data")
    assert not volumes.write(target, {"a": File(b"1"), "b": File(b"x")})
    assert os.readlink(target / "..data") == first
    assert volumes.write(target, {"a": File(b"2"), "c": File(b"y")})
    second = os.readlink(target / "..data")
    assert second != first
    assert timestamped(target) == [second]  # the old version is gone
    assert (target / "a").read_bytes() == b"2"
    assert not (target / "b").exists() and not (target / "b").is_symlink()
    assert (target / "c").read_bytes() == b"y"
    # A mode change alone is an update too.
    assert volumes.write(target, {"a": File(b"2", 0o400), "c": File(b"y")})


def test_empty_payload_and_invalid_paths(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert volumes.write(target, {})
    assert volumes.read(target) == {}
    assert [p.name for p in target.iterdir() if not p.name.startswith("..")] == []
    for bad in ("../escape", "/abs", "..data", ""):
        with pytest.raises(ValueError, match="invalid path"):
            volumes.write(target, {bad: File(b"")})


def test_configmap_files_keys_items_modes_and_binary_data() -> None:
    cm = {"data": {"a": "1", "b": "2"}, "binaryData": {"bin": base64.b64encode(b"\x00\xff").decode()}}
    assert volumes.configmap_files("v", {"name": "cm"}, cm) == {
        "a": File(b"1"),
        "b": File(b"2"),
        "bin": File(b"\x00\xff"),
    }
    source = {
        "name": "cm",
        "defaultMode": 0o440,
        "items": [{"key": "a", "path": "x/a.txt", "mode": 0o600}, {"key": "b", "path": "b"}],
    }
    assert volumes.configmap_files("v", source, cm) == {"x/a.txt": File(b"1", 0o600), "b": File(b"2", 0o440)}
    with pytest.raises(ContainerRuntimeError, match='no key "z"') as missing_key:
        volumes.configmap_files("v", {"name": "cm", "items": [{"key": "z", "path": "z"}]}, cm)
    assert missing_key.value.reason == "CreateContainerConfigError"


def test_missing_objects_are_errors_unless_optional() -> None:
    with pytest.raises(ContainerRuntimeError, match='configmap "cm" not found') as error:
        volumes.configmap_files("v", {"name": "cm"}, None)
    assert error.value.reason == "CreateContainerConfigError"
    assert 'volume "v"' in str(error.value)
    assert volumes.configmap_files("v", {"name": "cm", "optional": True}, None) == {}
    with pytest.raises(ContainerRuntimeError, match='secret "s" not found'):
        volumes.secret_files("v", {"secretName": "s"}, None)
    assert volumes.secret_files("v", {"secretName": "s", "optional": True}, None) == {}


def test_secret_files_are_decoded_with_0644_by_default() -> None:
    secret = {"data": {"user": b64("admin"), "pass": b64("hunter2")}}
    assert volumes.secret_files("v", {"secretName": "s"}, secret) == {
        "user": File(b"admin", 0o644),
        "pass": File(b"hunter2", 0o644),
    }
    source = {"secretName": "s", "defaultMode": 0o400, "items": [{"key": "pass", "path": "p"}]}
    assert volumes.secret_files("v", source, secret) == {"p": File(b"hunter2", 0o400)}


def test_downward_files() -> None:
    pod: Obj = {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u-1",
            "labels": {"b": "2", "a": 'say "hi"'},
            "annotations": {"note": "x"},
        },
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}}]},
    }
    items = [
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
        {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}, "mode": 0o400},
        {"path": "note", "fieldRef": {"fieldPath": "metadata.annotations['note']"}},
        {
            "path": "mem",
            "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"},
        },
        {
            "path": "cpu",
            "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"},
        },
    ]
    files = volumes.downward_files("v", {"items": items}, pod)
    assert {k: f.data.decode() for k, f in files.items()} == {
        "name": "p",
        "ns": "ns",
        "uid": "u-1",
        "labels": 'a="say \\"hi\\""\nb="2"',
        "note": "x",
        "mem": "64",
        "cpu": "250",
    }
    assert files["labels"].mode == 0o400 and files["name"].mode == 0o644
    with pytest.raises(ContainerRuntimeError, match="unsupported fieldPath"):
        volumes.downward_files(
            "v", {"items": [{"path": "x", "fieldRef": {"fieldPath": "status.podIP"}}]}, pod
        )


def test_empty_dir_host_path_and_remove_pod(tmp_path: Path) -> None:
    state = tmp_path / "state"
    path = volumes.empty_dir(state, "uid-1", "scratch")
    assert path == state / "pods" / "uid-1" / "volumes" / "scratch"
    assert path.is_dir() and path.stat().st_mode & 0o777 == 0o777
    made = volumes.host_path({"path": str(tmp_path / "host"), "type": "DirectoryOrCreate"})
    assert made.is_dir()
    assert not volumes.host_path({"path": str(tmp_path / "other")}).exists()
    volumes.write(volumes.volume_dir(state, "uid-1", "cfg"), {"a": File(b"1")})
    volumes.remove_pod(state, "uid-1")
    assert not (state / "pods" / "uid-1").exists()
    volumes.remove_pod(state, "uid-1")  # idempotent
