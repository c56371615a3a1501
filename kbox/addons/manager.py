"""The addon manager: which addons run is cluster state, and this component makes it so.

As minikube keeps its addon settings per profile and kube-addon-manager reconciles addon objects, kbox
keeps the set of enabled addons in the ConfigMap ``kube-system/kbox-addons`` (``data: {dns: "true",
dashboard: "false"}``): it lives in the cluster's own store, so it survives restarts, and ``kbox addons
enable|disable`` is a plain API write that takes effect without a restart. The manager watches that
ConfigMap and adds or removes the addons' components in the supervisor; an addon's ``setup`` (objects
it needs, such as the ``kube-dns`` Service) runs each time it is enabled.

The ConfigMap is created on first start from the defaults (``--addons`` of ``kbox start``, else each
addon's own default); a value that is not "true"/"false" is reported once and treated as "false".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kbox import supervisor
from kbox.client.interface import CONFIGMAPS, Client, Obj, StatusError

_log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
CONFIGMAP = "kbox-addons"


@dataclass(frozen=True)
class Addon:
    """An addon: what it is, whether it is on by default, and how to build and prepare it."""

    name: str
    description: str
    default: bool
    components: Callable[[], list[supervisor.Component]]
    setup: Callable[[Client], Awaitable[None]] | None = None


def wanted(configmap: Obj | None, addons: dict[str, Addon]) -> dict[str, bool]:
    """Addon name → enabled, from the ConfigMap's data (defaults for names it does not mention)."""
    data = (configmap or {}).get("data") or {}
    result = {}
    for name, addon in addons.items():
        value = str(data.get(name, "")).strip().lower()
        result[name] = addon.default if value == "" else value == "true"
    return result


class AddonManager:
    """Reconciles the supervisor's addon components with ``kube-system/kbox-addons``."""

    name = "addon-manager"

    def __init__(
        self,
        client: Client,
        supervised: supervisor.Supervisor,
        addons: dict[str, Addon],
        *,
        initial: dict[str, bool] | None = None,
    ) -> None:
        """``initial``: addon → enabled to write into the ConfigMap at start (``kbox start --addons``);
        ``None`` keeps what the cluster already has (or the defaults on a new cluster)."""
        self.client = client
        self.supervisor = supervised
        self.addons = addons
        self.initial = initial
        self.running: dict[str, list[str]] = {}  # addon → names of its components in the supervisor
        self._synced = False

    def healthy(self) -> bool:
        return self._synced

    async def run(self) -> None:
        try:
            await self._seed()
            while True:
                listing = await self.client.list(
                    CONFIGMAPS, namespace=NAMESPACE, field_selector=f"metadata.name={CONFIGMAP}"
                )
                items = listing.get("items") or []
                await self._reconcile(items[0] if items else None)
                version = listing["metadata"]["resourceVersion"]
                try:
                    async for event in self.client.watch(
                        CONFIGMAPS,
                        namespace=NAMESPACE,
                        field_selector=f"metadata.name={CONFIGMAP}",
                        resource_version=version,
                    ):
                        if event.type in ("ADDED", "MODIFIED"):
                            await self._reconcile(event.object)
                        elif event.type == "DELETED":
                            await self._reconcile(None)
                except StatusError as exc:
                    if exc.code != 410:
                        raise
        finally:
            self._synced = False
            for addon in list(self.running):
                await self._disable(addon)

    async def _seed(self) -> None:
        """Write the ConfigMap on a new cluster, or the ``--addons`` choice given at start."""
        data = {name: str(on).lower() for name, on in (self.initial or {}).items() if name in self.addons}
        if self.initial is None:
            data = {name: str(addon.default).lower() for name, addon in self.addons.items()}
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE},
        }
        try:
            await self.client.create(CONFIGMAPS, {**body, "data": data}, namespace=NAMESPACE)
        except StatusError as exc:
            if exc.code != 409:
                raise
            if self.initial is not None:
                await self.client.patch(CONFIGMAPS, CONFIGMAP, {"data": data}, namespace=NAMESPACE)

    async def _reconcile(self, configmap: Obj | None) -> None:
        for name, enabled in wanted(configmap, self.addons).items():
            if enabled and name not in self.running:
                await self._enable(name)
            elif not enabled and name in self.running:
                await self._disable(name)
        self._synced = True

    async def _enable(self, name: str) -> None:
        addon = self.addons[name]
        _log.info("enabling addon %s", name)
        if addon.setup is not None:
            await addon.setup(self.client)
        names = []
        for component in addon.components():
            self.supervisor.add(component)
            names.append(component.name)
        self.running[name] = names

    async def _disable(self, name: str) -> None:
        _log.info("disabling addon %s", name)
        for component in self.running.pop(name, []):
            await asyncio.shield(self.supervisor.remove(component))
