"""The ServiceAccounts controller: a ``default`` ServiceAccount in every namespace that is not terminating
(pkg/controller/serviceaccount in shape).

Keys are namespace names. A namespace's key is queued when the namespace appears or changes, and when one
of the ensured ServiceAccounts in it is deleted, so a deleted ``default`` comes back. Each sync reads the
namespace and the ServiceAccounts from the caches and creates the missing ones; a namespace that is gone
or terminating gets nothing (creating in it would be refused anyway). A 409 AlreadyExists means the cache
lagged and is fine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kbox.client import informer as informers
from kbox.client.interface import NAMESPACES, SERVICEACCOUNTS, Client, Obj, StatusError
from kbox.controllers import base

_log = logging.getLogger(__name__)


class ServiceAccountsController(base.Controller):
    """The ServiceAccounts every namespace has; see the module docstring."""

    name = "serviceaccount"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        service_accounts: Sequence[str] = ("default",),
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.ensured = tuple(service_accounts)
        self.namespaces = self.informer(NAMESPACES)
        self.accounts = self.informer(SERVICEACCOUNTS, keys=self._keys_for_account)

    def _keys_for_account(self, account: Obj) -> list[str]:
        metadata = account.get("metadata") or {}
        if metadata.get("name") in self.ensured:
            return [metadata.get("namespace", "")]
        return []

    async def sync(self, key: str) -> None:
        namespace = self.namespaces.indexer.get(key)
        if namespace is None or is_terminating(namespace):
            return
        for account in self.ensured:
            if f"{key}/{account}" in self.accounts.indexer:
                continue
            body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}}
            try:
                await self.client.create(SERVICEACCOUNTS, body, namespace=key)
            except StatusError as exc:
                if exc.code == 409 and exc.reason == "AlreadyExists":
                    continue
                if exc.code in (403, 404) and self._gone_or_terminating(key):
                    return
                raise
            _log.debug("%s: created %s/%s", self.name, key, account)

    def _gone_or_terminating(self, key: str) -> bool:
        namespace = self.namespaces.indexer.get(key)
        return namespace is None or is_terminating(namespace)


def is_terminating(namespace: Obj) -> bool:
    if namespace["metadata"].get("deletionTimestamp"):
        return True
    return bool((namespace.get("status") or {}).get("phase") == "Terminating")
