"""The root CA publisher: ConfigMap ``kube-root-ca.crt`` in every namespace (pkg/controller/certificates/
rootcacertpublisher in shape).

Pods verify the apiserver with it: the ServiceAccount admission plugin projects its ``ca.crt`` key into
every pod at /var/run/secrets/kubernetes.io/serviceaccount/ca.crt, next to the token. Keys are namespace
names; a namespace is queued when it appears or changes, and when its ``kube-root-ca.crt`` is changed or
deleted, so an edited or deleted copy is put back. A namespace that is gone or terminating gets nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from kbox.client import informer as informers
from kbox.client.interface import CONFIGMAPS, NAMESPACES, Client, Obj, StatusError
from kbox.controllers import base
from kbox.controllers.serviceaccount import is_terminating

_log = logging.getLogger(__name__)

NAME = "kube-root-ca.crt"
KEY = "ca.crt"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
    "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)


class RootCACertPublisher(base.Controller):
    """Keeps ``kube-root-ca.crt`` holding the cluster CA in every namespace; see the module docstring."""

    name = "root-ca-cert-publisher"

    def __init__(
        self,
        factory: informers.InformerFactory,
        ca_pem: bytes | str,
        client: Client | None = None,
        *,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.ca = ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem
        self.namespaces = self.informer(NAMESPACES)
        self.configmaps = self.informer(CONFIGMAPS, keys=self._keys_for_configmap)

    def _keys_for_configmap(self, configmap: Obj) -> list[str]:
        metadata = configmap.get("metadata") or {}
        return [metadata.get("namespace", "")] if metadata.get("name") == NAME else []

    async def sync(self, key: str) -> None:
        namespace = self.namespaces.indexer.get(key)
        if namespace is None or is_terminating(namespace):
            return
        current = self.configmaps.indexer.get(f"{key}/{NAME}")
        try:
            if current is None:
                await self.client.create(CONFIGMAPS, self._desired(), namespace=key)
                _log.debug("%s: created %s/%s", self.name, key, NAME)
            elif (current.get("data") or {}) != {KEY: self.ca}:
                wanted = self._desired()
                wanted["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
                await self.client.update(CONFIGMAPS, wanted, namespace=key)
                _log.debug("%s: restored %s/%s", self.name, key, NAME)
        except StatusError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                return  # the cache lagged; its add event brings the key back
            if exc.code in (403, 404) and self._gone_or_terminating(key):
                return
            raise

    def _desired(self) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": NAME, "annotations": {"kubernetes.io/description": DESCRIPTION}},
            "data": {KEY: self.ca},
        }

    def _gone_or_terminating(self, key: str) -> bool:
        namespace = self.namespaces.indexer.get(key)
        return namespace is None or is_terminating(namespace)
