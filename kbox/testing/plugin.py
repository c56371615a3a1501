"""The pytest plugin, registered through the ``pytest11`` entry point: active wherever kbox is installed.

Fixtures:

- ``kbox_cluster`` (session): one :class:`~kbox.testing.SyncCluster` for the whole run (per process,
  so pytest-xdist workers each get their own). Blocking helpers work in plain tests and in
  pytest-asyncio tests alike; async tests can also ``await kbox_cluster.aio.<helper>(...)``, and
  ``kbox_cluster.kubeconfig_path`` serves any client.
- ``kbox_namespace`` (function): the name of a fresh namespace for the test. Afterwards every object in
  it is deleted, then the namespace (the namespace controller removes it once empty).

Options (command line, or the ini option of the same name with ``_``): ``--kbox-runtime fake|docker``
(default fake), ``--kbox-nodes N`` (default 1), ``--kbox-keep``: when a test fails, keep its namespace,
and keep the cluster's state directory (then a durable SQLite store) after the run; the summary prints
where. Importing this module is cheap: the cluster loads when a fixture first needs it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kbox.testing.cluster import SyncCluster

_FAILED = pytest.StashKey[bool]()
_KEPT = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kbox", "kbox embedded cluster (kbox_cluster, kbox_namespace fixtures)")
    group.addoption(
        "--kbox-runtime",
        choices=("fake", "docker"),
        default=None,
        help="container runtime of the kbox_cluster fixture (ini: kbox_runtime; default fake)",
    )
    group.addoption(
        "--kbox-nodes",
        type=int,
        default=None,
        help="nodes of the kbox_cluster fixture (ini: kbox_nodes; default 1)",
    )
    group.addoption(
        "--kbox-keep",
        action="store_true",
        default=None,
        help="on failure keep the test's namespace and the cluster's state directory (ini: kbox_keep)",
    )
    parser.addini(
        "kbox_runtime", "container runtime of the kbox_cluster fixture: fake or docker", default="fake"
    )
    parser.addini("kbox_nodes", "nodes of the kbox_cluster fixture", default="1")
    parser.addini("kbox_keep", "keep namespaces and state of failed runs", type="bool", default=False)


def _option(config: pytest.Config, name: str) -> object:
    given = config.getoption(f"--{name.replace('_', '-')}")
    return given if given is not None else config.getini(name)


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Remember a failed setup, call or teardown (a plain hook, not a wrapper: any pytest version)."""
    excinfo = call.excinfo
    if excinfo is not None and not excinfo.errisinstance(pytest.skip.Exception):
        item.stash[_FAILED] = True


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in terminalreporter.config.stash.get(_KEPT, []):
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def kbox_cluster(request: pytest.FixtureRequest) -> Iterator[SyncCluster]:
    """A whole kbox cluster for the test session (see ``kbox.testing``)."""
    from kbox.testing.cluster import SyncCluster

    config = request.config
    runtime = str(_option(config, "kbox_runtime"))
    if runtime not in ("fake", "docker"):
        raise pytest.UsageError(f"kbox_runtime must be fake or docker, not {runtime!r}")
    nodes = int(str(_option(config, "kbox_nodes")))
    keep = bool(_option(config, "kbox_keep"))
    cluster = SyncCluster("docker" if runtime == "docker" else "fake", nodes, durable=keep)
    cluster.start()
    try:
        yield cluster
    finally:
        if keep and request.session.testsfailed:
            cluster.keep = True
            config.stash.setdefault(_KEPT, []).append(
                f"kbox: tests failed; kept the state of cluster {cluster.name} in {cluster.state_dir} "
                f"(kubeconfig: {cluster.kubeconfig_path}; reopen it with "
                f"KBOX_HOME={cluster.state_dir.parent} kbox serve --profile {cluster.state_dir.name} "
                f"--runtime {runtime} --port 0)"
            )
        cluster.stop()


@pytest.fixture
def kbox_namespace(request: pytest.FixtureRequest, kbox_cluster: SyncCluster) -> Iterator[str]:
    """A fresh namespace for this test, named after it; emptied and deleted afterwards."""
    name = namespace_name(request.node.name)
    kbox_cluster.create_namespace(name, labels={"kbox.io/test": "true"})
    yield name
    if request.node.stash.get(_FAILED, False) and bool(_option(request.config, "kbox_keep")):
        request.config.stash.setdefault(_KEPT, []).append(
            f"kbox: kept namespace {name} of failed test {request.node.nodeid}"
        )
        return
    kbox_cluster.delete_namespace(name)


def namespace_name(test_name: str) -> str:
    """``kbox-<test name as a DNS label>-<random>``, at most 63 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")
    return f"kbox-{slug[:48].rstrip('-')}-{secrets.token_hex(3)}".replace("--", "-")
