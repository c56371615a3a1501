"""The apiserver with its store, as one unit: open the store, build the catalog of built-in types,
create the cluster's default objects, and serve. ``kbox start`` and the embedded fixture build on it."""

from __future__ import annotations

from kbox.api.app import ApiServer, ApiSettings
from kbox.api.bootstrap import ensure_defaults
from kbox.api.catalog import Catalog
from kbox.api.crd.registrar import CrdRegistrar
from kbox.api.serviceaccounts import TokenIssuer
from kbox.config import StoreSettings
from kbox.resources import registry
from kbox.store import open_store
from kbox.store.interface import Store


class ControlPlane:
    """Store + catalog + apiserver; ``async with ControlPlane(...)`` serves until the block ends."""

    def __init__(self, store_settings: StoreSettings, api_settings: ApiSettings) -> None:
        self.store: Store = open_store(store_settings)
        self.catalog = Catalog(self.store, registry.builtin())
        # The service-account key lives next to the CA.
        key_dir = api_settings.tls.ca_cert.parent if api_settings.tls is not None else None
        self.catalog.tokens = TokenIssuer(key_dir, admin_token=api_settings.token)
        self.crds = CrdRegistrar(self.catalog)  # CustomResourceDefinitions and the types they serve
        self.api_settings = api_settings
        self.server: ApiServer | None = None

    async def start(self) -> None:
        await self.store.start()
        try:
            await self.crds.start()  # the stored CRDs' types are served from the first request
            self.server = ApiServer(self.catalog, self.api_settings)
            await self.server.start()
            await ensure_defaults(self.catalog, host=self.api_settings.host, port=self.server.port)
        except BaseException:
            await self.stop()
            raise

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
        await self.crds.stop()
        await self.store.close()

    async def __aenter__(self) -> ControlPlane:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
