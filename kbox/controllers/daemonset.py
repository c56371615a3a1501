"""The DaemonSet controller: one pod per eligible node (pkg/controller/daemon in shape; the placement
rules and the update arithmetic are upstream's, so a rollout steps as on a real cluster).

Each sync of ``ns/name`` reads the DaemonSet, the nodes, its pods and its ControllerRevisions from the
caches, and:

1. **History.** The revisions it owns (adopting matching orphans) are split into the *current* one, whose
   ``data`` is the DaemonSet's template (see :mod:`kbox.controllers.history`), and old ones. A missing
   current revision is created as ``<ds>-<hash>`` with the next revision number; an old template used
   again (``kubectl rollout undo``) gets the next number instead. Its hash is the
   ``controller-revision-hash`` label of every pod made from it.
2. **Placement.** A node should run a daemon pod when the template's ``nodeName`` (if any), its
   ``nodeSelector`` and required node affinity (the scheduler's own predicates) match it and every
   NoSchedule/NoExecute taint is tolerated, counting the tolerations Kubernetes adds to every daemon pod;
   an existing pod may keep running while only NoSchedule taints are untolerated. ``spec.unschedulable``
   is ignored (daemon pods tolerate it). Pods are created unbound, pinned to their node by a required
   node affinity on ``metadata.name`` (matchFields), and the scheduler binds them, as since Kubernetes
   1.12. A node without a pod gets one; extra, failed (with back-off) and succeeded pods go, and so do
   pods on nodes that no longer exist or should not run them.
3. **Rolling update** (``updateStrategy.type: RollingUpdate``): without ``maxSurge``, old pods are
   deleted on as many nodes as ``maxUnavailable`` allows (unavailable old pods first, always), and step 2
   creates their replacements; with ``maxSurge``, a new pod is created next to the old one on up to
   ``maxSurge`` nodes and the old one deleted once the new one is available. Both are int-or-percent of
   the number of nodes that should run a pod, rounded up. ``OnDelete`` replaces only deleted pods.
4. **Cleanup**: old revisions beyond ``revisionHistoryLimit`` that no pod uses are deleted.
5. **Status** through the status subresource, only when changed: desiredNumberScheduled,
   currentNumberScheduled, numberMisscheduled, numberReady, numberAvailable (ready for
   ``minReadySeconds``), numberUnavailable, updatedNumberScheduled, observedGeneration, collisionCount.

The decisions themselves (placement, the pod a node gets, a rolling update's step, the status counts)
are pure functions in :mod:`kbox.controllers.daemonsetpods`; this module reads the caches and writes.

Writes wait for the pod cache to show this controller's earlier creations and deletions
(:mod:`kbox.controllers.expectations`), so a sync that runs before the watch caught up never acts twice.
Claiming pods and revisions is :mod:`kbox.controllers.refmanager`'s.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from kbox.api import selectors
from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.events import EventRecorder
from kbox.client.interface import (
    CONTROLLERREVISIONS,
    DAEMONSETS,
    NODES,
    PODS,
    Client,
    Obj,
    Resource,
    StatusError,
)
from kbox.controllers import base, daemonsetpods, history, meta, podcontrol, podutil, refmanager
from kbox.controllers.expectations import Expectations

_log = logging.getLogger(__name__)

KIND = daemonsetpods.KIND
HASH_LABEL = daemonsetpods.HASH_LABEL


class DaemonSetController(base.Controller):
    """Pods for DaemonSets; see the module docstring."""

    name = "daemonset"

    def __init__(
        self,
        factory: informers.InformerFactory,
        client: Client | None = None,
        *,
        burst_replicas: int = 250,
        expectations_timeout: float = 300.0,
        events: bool = True,
        name: str | None = None,
        max_retries: int | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(factory, name=name, max_retries=max_retries, clock=clock)
        self.client = client or factory.client
        self.recorder = EventRecorder(self.client, component="daemonset-controller")
        self.pod_control = podcontrol.PodControl(self.client, self._event)
        self.events = events
        self.burst_replicas = burst_replicas
        """At most this many pods are created, and as many deleted, by one sync."""
        self.expectations = Expectations(timeout=expectations_timeout)
        self.backoff = daemonsetpods.FailedPodBackoff()
        self.daemonsets = self.informer(DAEMONSETS)
        self.pods = self.informer(PODS, keys=self._keys_for_pod)
        self.pods.add_index(cache.OWNER_UID, cache.by_owner_uid)
        self.revisions = self.informer(CONTROLLERREVISIONS, keys=self._keys_for_revision)
        self.nodes = self.informer(NODES, enqueue=False)
        self._templates: dict[str, tuple[str, int, daemonsetpods.PodTemplate]] = {}
        """Per DaemonSet key: its uid, generation and placement template (which remembers nodes)."""

    # -- keys --------------------------------------------------------------------------------

    async def run(self, *, workers: int = 1, ready: asyncio.Event | None = None) -> None:
        """The base loop, plus node events: a node that joins, leaves, or changes labels, taints or
        schedulability re-syncs every DaemonSet (whether it should run there may have changed)."""
        registration = self.nodes.add_handler(self._node_event, self._node_updated, self._node_event)
        try:
            await super().run(workers=workers, ready=ready)
        finally:
            registration.remove()

    def _node_event(self, _node: Any) -> None:
        for key in self.daemonsets.indexer:
            self.queue.add(key)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if daemonsetpods.placement_fields(old) != daemonsetpods.placement_fields(new):
            self._node_event(new)

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        return self._keys_for_owned(pod)

    def _keys_for_revision(self, revision: Obj) -> list[str]:
        return self._keys_for_owned(revision)

    def _keys_for_owned(self, obj: Obj) -> list[str]:
        return refmanager.owner_keys(
            obj, kind=KIND, group="apps", owners=self.daemonsets, selector_of=meta.selector_of
        )

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.daemonsets.indexer.get(key)
        if cached is None:
            self.expectations.forget(key)
            self.backoff.forget(key)
            self._templates.pop(key, None)
            return
        ds = copy.deepcopy(cached)
        if ds["metadata"].get("deletionTimestamp"):
            return
        selector = meta.selector_of(ds)
        if selector is None:
            message = "This daemon set is selecting all pods. A non-empty selector is required."
            self._event(ds, "Warning", "SelectingAll", message)
            return
        current, old = await self._construct_history(ds, selector)
        hash_text = daemonsetpods.revision_hash(current)
        nodes = list(self.nodes.indexer.list())
        if not self.expectations.satisfied(key, self.pods):
            await self._write_status(
                ds, nodes, await self._claim_pods(ds, selector), hash_text, observe=False
            )
            return
        pods = await self._claim_pods(ds, selector)
        await self._manage(ds, key, nodes, pods, hash_text)
        strategy = (ds["spec"].get("updateStrategy") or {}).get("type")
        if self.expectations.satisfied(key, self.pods) and strategy == "RollingUpdate":
            pods = await self._claim_pods(ds, selector)
            deletes, creates = daemonsetpods.rolling_update_plan(
                ds, nodes, pods, hash_text, template=self._template(ds, nodes)
            )
            await self._sync_nodes(ds, key, deletes, creates, hash_text)
        pods = await self._claim_pods(ds, selector)
        await self._cleanup_history(ds, pods, old, hash_text)
        await self._write_status(ds, nodes, pods, hash_text, observe=True)

    # -- history -----------------------------------------------------------------------------

    async def _construct_history(self, ds: Obj, selector: selectors.LabelSelector) -> tuple[Obj, list[Obj]]:
        """The current revision (made or renumbered as needed) and the old ones."""
        revisions = await self._claim(CONTROLLERREVISIONS, self.revisions, ds, selector)
        data = history.template_patch(ds)
        current = [r for r in revisions if r.get("data") == data]
        old = [r for r in revisions if r.get("data") != data]
        number = history.max_revision(old) + 1
        if not current:
            template = ds["spec"]["template"]
            collisions = int((ds.get("status") or {}).get("collisionCount") or 0)
            body = history.new_revision(
                ds, kind=KIND, data=data, number=number, annotations=ds["metadata"].get("annotations")
            )
            made, used = await history.create_revision(
                self.client,
                ds,
                body,
                collision_count=collisions,
                hash_fn=lambda count: history.hash_template(template, count),
            )
            if used != collisions:
                await self._patch_status(ds, {"collisionCount": used})
            return made, old
        keep = await self._dedup(ds, history.sort_revisions(current))
        if int(keep.get("revision") or 0) < number:
            keep = await history.renumber(self.client, keep, number)
        return keep, old

    async def _dedup(self, ds: Obj, equal: list[Obj]) -> Obj:
        """Of revisions holding the same template, keep the newest; relabel the pods of the others."""
        keep = equal[-1]
        for duplicate in equal[:-1]:
            for pod in self.pods.indexer.by_index(cache.OWNER_UID, ds["metadata"]["uid"]):
                labels = pod["metadata"].get("labels") or {}
                if labels.get(HASH_LABEL) == daemonsetpods.revision_hash(duplicate):
                    patch = {"metadata": {"labels": {HASH_LABEL: daemonsetpods.revision_hash(keep)}}}
                    await _ignore_gone(
                        self.client.patch(
                            PODS, pod["metadata"]["name"], patch, namespace=ds["metadata"]["namespace"]
                        )
                    )
            await history.delete_revision(self.client, duplicate)
        return keep

    async def _cleanup_history(self, ds: Obj, pods: list[Obj], old: list[Obj], hash_text: str) -> None:
        limit = ds["spec"].get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        live = {(p["metadata"].get("labels") or {}).get(HASH_LABEL, "") for p in pods} | {hash_text}
        await history.truncate(self.client, old, limit=limit, live=live, count_live=True)

    def _template(self, ds: Obj, nodes: list[Obj]) -> daemonsetpods.PodTemplate:
        """The DaemonSet's placement template, kept while its uid and generation stay the same."""
        key = cache.key_of(ds)
        uid = ds["metadata"]["uid"]
        generation = int(ds["metadata"].get("generation") or 0)
        kept = self._templates.get(key)
        if kept is not None and kept[0] == uid and kept[1] == generation:
            template = kept[2]
            template.forget_missing({n["metadata"]["name"] for n in nodes})
            return template
        template = daemonsetpods.PodTemplate(ds)
        self._templates[key] = (uid, generation, template)
        return template

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_pods(self, ds: Obj, selector: selectors.LabelSelector) -> list[Obj]:
        return await self._claim(PODS, self.pods, ds, selector)

    async def _claim(
        self, resource: Resource, shared: informers.SharedInformer, ds: Obj, selector: selectors.LabelSelector
    ) -> list[Obj]:
        """Objects of ``resource`` this DaemonSet controls after adopting matching orphans and releasing
        owned ones that stopped matching (see :mod:`kbox.controllers.refmanager`)."""
        return await refmanager.claim(
            self.client,
            resource,
            shared.indexer.by_index(cache.NAMESPACE, ds["metadata"]["namespace"]),
            owner=ds,
            owner_resource=DAEMONSETS,
            owner_ref=daemonsetpods.owner_reference(ds),
            selector=selector,
        )

    # -- placement ---------------------------------------------------------------------------

    async def _manage(self, ds: Obj, key: str, nodes: list[Obj], pods: list[Obj], hash_text: str) -> None:
        """Create the missing daemon pods and delete the ones that should not be (podsShouldBeOnNode)."""
        by_node = daemonsetpods.pods_by_node(pods)
        template = self._template(ds, nodes)
        surge = daemonsetpods.allows_surge(ds)
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        creates: list[str] = []
        deletes: list[Obj] = []
        for node in nodes:
            name = node["metadata"]["name"]
            should_run, should_continue = template.placement(node)
            on_node = by_node.get(name)
            if should_run and on_node is None:
                creates.append(name)
            elif should_continue:
                running: list[Obj] = []
                for pod in on_node or []:
                    if pod["metadata"].get("deletionTimestamp"):
                        continue
                    phase = (pod.get("status") or {}).get("phase")
                    if phase == "Failed":
                        delay = self.backoff.delay(key, name)
                        if delay > 0:
                            self.queue.add_after(key, delay)
                            continue
                        self.backoff.next(key, name)
                        where = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
                        message = f"Found failed daemon pod {where} on node {name}, will try to kill it"
                        self._event(ds, "Warning", "FailedDaemonPod", message)
                        deletes.append(pod)
                    elif phase == "Succeeded":
                        deletes.append(pod)
                    else:
                        running.append(pod)
                running.sort(key=daemonsetpods.oldest_first)
                if not surge:
                    deletes += running[1:]
                elif not running:
                    if should_run:
                        creates.append(name)
                elif len(running) > 1:
                    deletes += daemonsetpods.surge_extras(running, hash_text, min_ready)
            elif on_node:
                deletes += [p for p in on_node if not p["metadata"].get("deletionTimestamp")]
        known = {n["metadata"]["name"] for n in nodes}
        stranded = {name: on_node for name, on_node in by_node.items() if name not in known}
        await self._delete_stranded(ds, key, stranded)
        await self._sync_nodes(ds, key, deletes, creates, hash_text)

    async def _delete_stranded(self, ds: Obj, key: str, stranded: dict[str, list[Obj]]) -> None:
        """Pods on (or pinned to) a node that no longer exists can never run or be confirmed gone by a
        kubelet: delete them at once, terminating ones too, as upstream's pod garbage collector does
        (kbox has none). A fresh GET of the node first, so a node cache that lags never costs a pod."""
        for name, on_node in stranded.items():
            try:
                await self.client.get(NODES, name)
                continue  # there after all: the node cache has not caught up yet
            except StatusError as exc:
                if exc.code != 404:
                    raise
            for pod in on_node:
                self.expectations.deleting(key, pod)
                if await meta.delete_exact(self.client, PODS, pod, grace_period_seconds=0):
                    message = f"Deleted pod: {pod['metadata']['name']} (its node {name} is gone)"
                    self._event(ds, "Normal", "SuccessfulDelete", message)

    async def _sync_nodes(
        self, ds: Obj, key: str, deletes: list[Obj], creates: list[str], hash_text: str
    ) -> None:
        """Delete ``deletes`` and create a pod for each node in ``creates``, at most ``burst_replicas``
        of each, recording expectations first; the first failure is raised once the rest ran."""
        creates = creates[: self.burst_replicas]
        deletes = deletes[: self.burst_replicas]
        for pod in deletes:
            self.expectations.deleting(key, pod)
        failure: BaseException | None = None
        results = await asyncio.gather(
            *(self._delete_pod(ds, pod) for pod in deletes), return_exceptions=True
        )
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        template = daemonsetpods.new_pod(ds, hash_text)
        _, failed = await podutil.slow_start(
            creates,
            lambda node: self._create_pod(ds, template, node),
            on_created=lambda pod: self.expectations.created(key, pod),
        )
        failure = failure or failed
        if failure is not None:
            raise failure

    async def _create_pod(self, ds: Obj, template: Obj, node: str) -> Obj:
        pod = copy.deepcopy(template)
        daemonsetpods.pin_to_node(pod["spec"], node)
        return await self.pod_control.create(ds, pod)

    async def _delete_pod(self, ds: Obj, pod: Obj) -> None:
        await self.pod_control.delete(ds, pod)

    # -- status ------------------------------------------------------------------------------

    async def _write_status(
        self, ds: Obj, nodes: list[Obj], pods: list[Obj], hash_text: str, *, observe: bool
    ) -> None:
        template = self._template(ds, nodes)
        status = daemonsetpods.calculate_status(
            ds, nodes, pods, hash_text, observe=observe, template=template
        )
        current = ds.get("status") or {}
        patch = {k: v for k, v in status.items() if current.get(k) != v}
        if patch:
            await self._patch_status(ds, patch)
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        if min_ready > 0 and status["numberReady"] != status.get("numberAvailable", 0):
            self.queue.add_after(cache.key_of(ds), daemonsetpods.next_available(pods, min_ready))

    async def _patch_status(self, ds: Obj, patch: Obj) -> None:
        result = await meta.patch_status(self.client, DAEMONSETS, ds, patch)
        if result is not None:
            ds["status"] = result.get("status") or {}

    def _event(self, ds: Obj, kind: str, reason: str, message: str) -> None:
        if self.events:
            self.recorder.record(ds, kind, reason, message)


async def _ignore_gone(write: Any) -> None:
    try:
        await write
    except StatusError as exc:
        if exc.code not in (404, 409):
            raise
