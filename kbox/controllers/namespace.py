"""The namespace controller: empty a terminating namespace, then let it go (pkg/controller/namespace in
shape).

Deleting a namespace marks it ``Terminating`` with a deletionTimestamp; the apiserver keeps it while
``spec.finalizers`` holds ``kubernetes`` and refuses creates into it meanwhile. Each sync of a namespace
that is terminating and still carries that finalizer:

1. **Deletes its content**: for every namespaced type it was given (the apiserver's served types, built
   at composition time; see :func:`kbox.controllers.garbagecollector.served_kinds`), a live list of the
   namespace (never the cache: a lagging cache must not let a namespace go with objects left in it) and
   a delete, with a UID precondition, of each object not deleting yet. Graceful deletion is respected:
   pods on nodes stay until their kubelet has stopped them, objects with finalizers until those are
   removed.
2. **Reports** what it saw as upstream's conditions on the namespace's status
   (``NamespaceDeletionContentFailure``, ``NamespaceContentRemaining``, ``NamespaceFinalizersRemaining``,
   ...), written only when they change.
3. **Finishes** when a pass found nothing left in any type: ``PUT namespaces/<name>/finalize`` without
   ``kubernetes`` in ``spec.finalizers``, and the apiserver removes the namespace. While something
   remains the key is synced again when a pod of the namespace changes or goes, and after
   ``poll_interval`` seconds anyway (other types have no informer here); a failed delete is retried with
   the queue's back-off. At most ``concurrent_deletes`` deletes are in flight at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Iterable
from typing import Any

from kbox.client import informer as informers
from kbox.client.interface import MERGE_PATCH, NAMESPACES, PODS, Client, Obj, Resource, StatusError
from kbox.controllers import base
from kbox.controllers.meta import timestamp

_log = logging.getLogger(__name__)

FINALIZER = "kubernetes"
LIST_PAGE = 500


class NamespaceController(base.Controller):
    """Terminating namespaces → their content deleted → the namespace finalized."""

    name = "namespace"

    def __init__(
        self,
        factory: informers.InformerFactory,
        resources: Iterable[Resource],
        client: Client | None = None,
        *,
        poll_interval: float = 1.0,
        concurrent_deletes: int = 100,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.poll_interval = poll_interval
        self._deleting = asyncio.Semaphore(concurrent_deletes)
        self.resources = [r for r in dict.fromkeys(resources) if r.namespaced]
        """The namespaced types emptied, each once."""
        self.namespaces = self.informer(NAMESPACES)
        self.pods = self.informer(PODS, keys=self._keys_for_pod)

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        namespace = pod["metadata"].get("namespace", "")
        ns = self.namespaces.indexer.get(namespace)
        return [namespace] if ns is not None and ns["metadata"].get("deletionTimestamp") else []

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        ns = self.namespaces.indexer.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        results = await asyncio.gather(*(self._empty(resource, key) for resource in self.resources))
        remaining: dict[str, int] = {}
        finalizers: collections.Counter[str] = collections.Counter()
        failures: list[StatusError] = []
        for resource, (count, held_by, failed) in zip(self.resources, results, strict=True):
            if count:
                remaining[_qualified(resource)] = count
            finalizers.update(held_by)
            failures.extend(failed)
        await self._write_conditions(ns, conditions(remaining, finalizers, failures))
        if failures:
            raise failures[0]
        if remaining:
            _log.debug("%s: %s still holds %s", self.name, key, remaining)
            self.queue.add_after(key, self.poll_interval)
            return
        await self._finalize(ns)

    async def _empty(self, resource: Resource, namespace: str) -> tuple[int, list[str], list[StatusError]]:
        """Delete every object of ``resource`` in ``namespace``: (objects left, their finalizers,
        failures)."""
        try:
            items = await self._list(resource, namespace)
        except StatusError as exc:
            return 0, [], [exc]
        results = await asyncio.gather(
            *(self._delete(resource, item) for item in items), return_exceptions=True
        )
        count = 0
        finalizers: list[str] = []
        failures: list[StatusError] = []
        for result in results:
            if isinstance(result, StatusError):
                failures.append(result)
                count += 1
            elif isinstance(result, BaseException):
                raise result
            elif result is not None:
                count += 1
                finalizers.extend(result["metadata"].get("finalizers") or [])
        return count, finalizers, failures

    async def _list(self, resource: Resource, namespace: str) -> list[Obj]:
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = await self.client.list(
                resource, namespace=namespace, limit=LIST_PAGE, continue_token=token
            )
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    async def _delete(self, resource: Resource, obj: Obj) -> Obj | None:
        """Delete ``obj`` unless it is deleting already; the object if it remains, ``None`` if gone."""
        metadata = obj["metadata"]
        if metadata.get("deletionTimestamp"):
            return obj
        try:
            async with self._deleting:
                result = await self.client.delete(
                    resource,
                    metadata["name"],
                    namespace=metadata["namespace"],
                    propagation_policy="Background",
                    preconditions={"uid": metadata["uid"]},
                )
        except StatusError as exc:
            if exc.code == 404:
                return None
            if exc.code == 409:  # replaced by a namesake meanwhile: the next pass deletes that one
                return obj
            raise
        if result.get("kind") != "Status" and (result.get("metadata") or {}).get("deletionTimestamp"):
            return result
        return None

    async def _write_conditions(self, ns: Obj, new: list[Obj]) -> None:
        old = {c.get("type"): c for c in (ns.get("status") or {}).get("conditions") or []}
        changed = False
        for condition in new:
            previous = old.get(condition["type"])
            if previous is not None and previous.get("status") == condition["status"]:
                condition["lastTransitionTime"] = previous.get(
                    "lastTransitionTime", condition["lastTransitionTime"]
                )
            if previous is None or any(
                previous.get(f) != condition[f] for f in ("status", "reason", "message")
            ):
                changed = True
        if not changed:
            return
        kept = [c for t, c in old.items() if t not in {c["type"] for c in new}]
        try:
            await self.client.patch(
                NAMESPACES, ns["metadata"]["name"], {"status": {"conditions": new + kept}},
                patch_type=MERGE_PATCH, subresource="status",
            )  # fmt: skip
        except StatusError as exc:
            if exc.code != 404:
                raise

    async def _finalize(self, ns: Obj) -> None:
        name = ns["metadata"]["name"]
        finalizers = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != FINALIZER]
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
            "spec": {"finalizers": finalizers},
        }
        try:
            await self.client.update(NAMESPACES, body, subresource="finalize")
        except StatusError as exc:
            if exc.code != 404:
                raise
        _log.info("%s: %s is empty and finalized", self.name, name)


def conditions(
    remaining: dict[str, int], finalizers: dict[str, int], failures: list[StatusError]
) -> list[Obj]:
    """Upstream's namespace deletion conditions for what one pass saw (True: something is wrong)."""
    now = timestamp()

    def condition(kind: str, status: bool, reason: str, message: str) -> Obj:
        return {
            "type": kind,
            "status": "True" if status else "False",
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }

    result = [
        condition(
            "NamespaceDeletionDiscoveryFailure",
            False,
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            False,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
    ]
    kind = "NamespaceDeletionContentFailure"
    if failures:
        errors = ", ".join(exc.message for exc in failures)
        message = f"Failed to delete all resource types, {len(failures)} remaining: {errors}"
        result.append(condition(kind, True, "ContentDeletionFailed", message))
    else:
        message = "All content successfully deleted, may be waiting on finalization"
        result.append(condition(kind, False, "ContentDeleted", message))
    kind = "NamespaceContentRemaining"
    if remaining:
        counts = ", ".join(f"{name} has {n} resource instances" for name, n in sorted(remaining.items()))
        result.append(condition(kind, True, "SomeResourcesRemain", f"Some resources are remaining: {counts}"))
    else:
        result.append(condition(kind, False, "ContentRemoved", "All content successfully removed"))
    kind = "NamespaceFinalizersRemaining"
    if finalizers:
        counts = ", ".join(f"{name} in {n} resource instances" for name, n in sorted(finalizers.items()))
        message = f"Some content in the namespace has finalizers remaining: {counts}"
        result.append(condition(kind, True, "SomeFinalizersRemain", message))
    else:
        message = "All content-preserving finalizers finished"
        result.append(condition(kind, False, "ContentHasNoFinalizers", message))
    return result


def _qualified(resource: Resource) -> str:
    """``pods.`` / ``replicasets.apps``: how upstream's message names a group-version-resource."""
    return f"{resource.plural}.{resource.group}"
