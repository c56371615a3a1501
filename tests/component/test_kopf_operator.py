"""A kopf operator (kopf from PyPI, examples/operator/) against an embedded kbox cluster: its CRD applied
with kubectl and established, the operator run as ``kopf run --standalone`` in a subprocess, and its
handlers seen to fire: create (a ConfigMap owned by the Greeting, ``status.message`` patched through
the status subresource, kopf's finalizer added), update (both rewritten), delete (the handler's Event
posted, kopf's finalizer removed so the Greeting goes, the ConfigMap garbage-collected).

Schema defaulting is visible too: the CRD defaults ``spec.greeting`` to ``Hello``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.testing.cluster import Cluster, SyncCluster
from tests.support.apiserver import KUBECTL
from tests.support.wait import until

if importlib.util.find_spec("kopf") is None:  # kopf is in the test extra: under CI=true it must be there
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise ImportError("kopf is missing under CI=true: pip install -e '.[test]'")
    pytest.skip("kopf is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "operator"
NAMESPACE = "operator"
FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


@pytest.fixture(scope="module")
def c() -> Iterator[SyncCluster]:
    with Cluster(runtime="fake") as cluster:
        yield cluster


def kubectl(c: SyncCluster, *args: str) -> str:
    if not Path(KUBECTL).exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{KUBECTL} is missing under CI=true")
        pytest.skip(f"{KUBECTL} is not installed")
    cache = Path(c.state_dir) / "kubectl-cache"
    result = subprocess.run(
        [KUBECTL, f"--kubeconfig={c.kubeconfig_path}", f"--cache-dir={cache}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}{result.stdout}"
    return result.stdout


@pytest.fixture(scope="module")
def operator(c: SyncCluster) -> Iterator[subprocess.Popen[str]]:
    kubectl(c, "apply", "-f", str(EXAMPLE / "crd.yaml"))
    kubectl(c, "wait", "--for=condition=Established", "crd/greetings.example.kbox.dev", "--timeout=10s")
    c.create_namespace(NAMESPACE)
    kopf = shutil.which("kopf", path=str(Path(sys.executable).parent)) or "kopf"
    log = open(Path(c.state_dir) / "kopf.log", "w")  # noqa: SIM115 - closed after the process ends
    process = subprocess.Popen(
        [kopf, "run", "--standalone", f"--namespace={NAMESPACE}", str(EXAMPLE / "handlers.py")],
        env={**os.environ, "KUBECONFIG": str(c.kubeconfig_path)},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def greeting(c: SyncCluster, name: str) -> dict[str, Any] | None:
    try:
        return c.get("greetings", name, namespace=NAMESPACE)
    except StatusError as exc:
        if exc.code == 404:
            return None
        raise


def configmap(c: SyncCluster, name: str) -> dict[str, Any] | None:
    try:
        return c.get("configmaps", name, namespace=NAMESPACE)
    except StatusError as exc:
        if exc.code == 404:
            return None
        raise


def log_of(c: SyncCluster) -> str:
    return (Path(c.state_dir) / "kopf.log").read_text()


def wait(c: SyncCluster, check: Any, timeout: float = 20) -> None:
    """``until``, with the operator's log in the failure."""
    try:
        until(check, timeout)
    except AssertionError as exc:
        pytest.fail(f"{exc}\nkopf log:\n{log_of(c)}")


def test_handlers_fire_on_create_update_delete(c: SyncCluster, operator: subprocess.Popen[str]) -> None:
    created = c.apply(
        {
            "apiVersion": "example.kbox.dev/v1",
            "kind": "Greeting",
            "metadata": {"name": "hi", "namespace": NAMESPACE},
            "spec": {"name": "kbox"},
        }
    )
    assert created["spec"] == {"name": "kbox", "greeting": "Hello"}  # the schema's default

    def status_message() -> str | None:
        if operator.poll() is not None:
            pytest.fail(f"kopf exited with {operator.returncode}:\n{log_of(c)}")
        found = greeting(c, "hi")
        return (found or {}).get("status", {}).get("message")

    wait(c, lambda: status_message() == "Hello, kbox!")
    current = greeting(c, "hi")
    assert current is not None and FINALIZER in current["metadata"]["finalizers"]
    owned = configmap(c, "hi-greeting")
    assert owned is not None and owned["data"] == {"message": "Hello, kbox!"}
    assert owned["metadata"]["ownerReferences"][0]["uid"] == current["metadata"]["uid"]
    table = kubectl(c, "get", "gr", "-n", NAMESPACE)
    assert table.splitlines()[0].split() == ["NAME", "NAME", "MESSAGE", "AGE"]
    assert "Hello, kbox!" in table

    kubectl(c, "patch", "gr", "hi", "-n", NAMESPACE, "--type=merge", "-p", '{"spec":{"greeting":"Howdy"}}')
    wait(c, lambda: status_message() == "Howdy, kbox!")
    wait(c, lambda: (configmap(c, "hi-greeting") or {}).get("data") == {"message": "Howdy, kbox!"})

    kubectl(c, "delete", "gr", "hi", "-n", NAMESPACE, "--wait=false")
    wait(c, lambda: greeting(c, "hi") is None)
    wait(c, lambda: configmap(c, "hi-greeting") is None)
    events = kubectl(c, "get", "events", "-n", NAMESPACE, "--field-selector=reason=Goodbye", "-o", "name")
    assert events.strip(), log_of(c)
