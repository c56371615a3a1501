"""The in-process client: the apiserver's pipeline without HTTP or JSON.

Components in the kbox process (scheduler, controllers, kubelet) use it. A call goes through the same
checks, admission, defaulting, validation and store as an HTTP request; only parsing and encoding are
skipped. Objects handed out are private copies, except watch events, which are shared by every
watcher of the event and must be treated as read-only.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

from kbox.api.catalog import Catalog
from kbox.api.pipeline import Pipeline
from kbox.api.registry import DeleteOptions, GenericStore
from kbox.api.requestinfo import RequestInfo
from kbox.client.interface import MERGE_PATCH, Client, Obj, Resource, WatchEvent


class LocalClient(Client):
    def __init__(self, catalog: Catalog, *, field_manager: str = "kbox") -> None:
        self.pipeline = Pipeline(catalog)
        self.field_manager = field_manager

    def _generic(self, resource: Resource) -> GenericStore:
        return self.pipeline.resolve(resource.group, resource.version, resource.plural)

    async def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> Obj:
        return await self.pipeline.get(self._generic(resource), namespace, name)

    async def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str = "",
    ) -> Obj:
        generic = self._generic(resource)
        page = await self.pipeline.list(
            generic,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_token=continue_token,
            resource_version=resource_version,
        )
        metadata: Obj = {"resourceVersion": page.resource_version}
        if page.continue_token:
            metadata["continue"] = page.continue_token
        return {
            "kind": generic.resource.list_kind,
            "apiVersion": generic.resource.api_version,
            "metadata": metadata,
            "items": page.items,
        }

    async def create(self, resource: Resource, obj: Obj, *, namespace: str | None = None) -> Obj:
        generic = self._generic(resource)
        return await self.pipeline.create(generic, _namespace(obj, namespace), copy.deepcopy(obj))

    async def update(
        self, resource: Resource, obj: Obj, *, namespace: str | None = None, subresource: str | None = None
    ) -> Obj:
        generic = self._generic(resource)
        name = obj.get("metadata", {}).get("name", "")
        result, _ = await self.pipeline.update(
            generic, _namespace(obj, namespace), name, copy.deepcopy(obj), subresource=subresource
        )
        return result

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: str = MERGE_PATCH,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
    ) -> Obj:
        generic = self._generic(resource)
        if subresource == "scale":
            info = RequestInfo(
                "patch", resource.group, resource.version, resource.plural, namespace, name, "scale"
            )
            return await self.pipeline.scale(generic, info, copy.deepcopy(patch), patch_type)
        result, _ = await self.pipeline.patch(
            generic,
            namespace,
            name,
            copy.deepcopy(patch),
            patch_type,
            subresource=subresource,
            field_manager=field_manager or self.field_manager,
            force=force,
        )
        return result

    async def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> Obj:
        options = DeleteOptions(
            grace_period_seconds=grace_period_seconds,
            propagation_policy=propagation_policy,
            preconditions=dict(preconditions or {}),
        )
        return await self.pipeline.delete(self._generic(resource), namespace, name, options)

    async def bind(self, pod: str, node: str, *, namespace: str) -> None:
        """``pods/<pod>/binding``: what the scheduler writes."""
        info = RequestInfo("create", "", "v1", "pods", namespace, pod, "binding")
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod}, "target": {"name": node}}
        await self.pipeline.bind(self._generic(Resource("", "v1", "pods")), info, body)

    async def request_token(self, service_account: str, spec: Obj, *, namespace: str) -> Obj:
        info = RequestInfo("create", "", "v1", "serviceaccounts", namespace, service_account, "token")
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": copy.deepcopy(spec)}
        return await self.pipeline.token(self._generic(Resource("", "v1", "serviceaccounts")), info, body)

    async def watch(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str = "",
        bookmarks: bool = False,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[WatchEvent]:
        events = await self.pipeline.watch(
            self._generic(resource),
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            bookmarks=bookmarks,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds if timeout_seconds else None
        try:
            while True:
                try:
                    if deadline is None:
                        event = await anext(events)
                    else:
                        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                        # that races with a result (gh-86296), leaving a watcher running after stop.
                        async with asyncio.timeout_at(deadline):
                            event = await anext(events)
                except (StopAsyncIteration, TimeoutError):
                    return
                yield WatchEvent(event.type, event.object)
        finally:
            await events.aclose()  # type: ignore[attr-defined]


def _namespace(obj: Obj, namespace: str | None) -> str | None:
    return namespace or obj.get("metadata", {}).get("namespace")
