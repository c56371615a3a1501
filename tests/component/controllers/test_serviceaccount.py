"""The ServiceAccounts controller against the apiserver: a ``default`` ServiceAccount in the namespaces that
exist when it starts and in new ones, recreated after deletion, none in a terminating namespace. Pods
getting ``serviceAccountName: default`` is the apiserver's admission and is not covered here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.client import interface
from kbox.client.interface import StatusError
from kbox.controllers.serviceaccount import SERVICEACCOUNTS, ServiceAccountsController
from tests.component.controllers import Cluster, cluster, eventually

Obj = dict[str, Any]


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path, nodes=1) as running:
        running.start(ServiceAccountsController(running.factory, running.client))
        yield running


async def account(c: Cluster, namespace: str, name: str = "default") -> Obj | None:
    try:
        return await c.client.get(SERVICEACCOUNTS, name, namespace=namespace)
    except StatusError as exc:
        if exc.code == 404:
            return None
        raise


async def test_default_account_in_every_namespace_and_recreated(c: Cluster) -> None:
    for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
        await eventually(lambda ns=namespace: account(c, ns), message=f"default SA in {namespace}")

    await c.client.create(
        interface.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    )
    first = await eventually(lambda: account(c, "team-a"), message="default SA in team-a")
    assert first["metadata"]["namespace"] == "team-a"

    await c.client.delete(SERVICEACCOUNTS, "default", namespace="team-a")

    async def recreated() -> Obj | None:
        current = await account(c, "team-a")
        return current if current and current["metadata"]["uid"] != first["metadata"]["uid"] else None

    await eventually(recreated, message="default SA recreated")
    # Other accounts are the user's business: deleting one brings nothing back.
    await c.client.create(
        SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"}},
        namespace="team-a",
    )  # fmt: skip
    await c.client.delete(SERVICEACCOUNTS, "builder", namespace="team-a")
    assert await account(c, "team-a", "builder") is None


async def test_terminating_namespace_gets_none(c: Cluster) -> None:
    await c.client.create(
        interface.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "going"}}
    )
    await eventually(lambda: account(c, "going"), message="default SA in going")
    # No namespace controller runs here: the namespace stays Terminating (its finalizer is never removed).
    await c.client.delete(interface.NAMESPACES, "going")
    await c.client.delete(SERVICEACCOUNTS, "default", namespace="going")
    # The deletion was seen before this later namespace's creation; once that one has its account, the
    # terminating one has been synced and left without.
    await c.client.create(
        interface.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "later"}}
    )
    await eventually(lambda: account(c, "later"), message="default SA in later")
    namespace = await c.client.get(interface.NAMESPACES, "going")
    assert namespace["status"]["phase"] == "Terminating"
    assert await account(c, "going") is None
