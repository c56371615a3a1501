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

Writes wait for the pod cache to show this controller's earlier creations and deletions (the
ReplicaSet controller's expectations), so a sync that runs before the watch caught up never acts twice.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import time
from collections.abc import Iterable
from typing import Any

from kbox.api import selectors
from kbox.client import cache
from kbox.client import informer as informers
from kbox.client.events import EventRecorder
from kbox.client.interface import MERGE_PATCH, NODES, PODS, Client, Obj, Resource, StatusError
from kbox.controllers import base, history, meta
from kbox.controllers.meta import controller_ref, epoch
from kbox.controllers.replicaset import Expectations, ready_since
from kbox.scheduler import filters

_log = logging.getLogger(__name__)

DAEMONSETS = Resource("apps", "v1", "daemonsets")
KIND = "DaemonSet"
HASH_LABEL = history.REVISION_HASH_LABEL
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
GENERATION_LABEL = "pod-template-generation"
SLOW_START_INITIAL_BATCH = 1
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 900.0

_NOT_READY = "node.kubernetes.io/not-ready"
_UNREACHABLE = "node.kubernetes.io/unreachable"


def _exists(key: str, effect: str) -> Obj:
    return {"key": key, "operator": "Exists", "effect": effect}


DAEMON_TOLERATIONS = (
    _exists(_NOT_READY, "NoExecute"),
    _exists(_UNREACHABLE, "NoExecute"),
    _exists("node.kubernetes.io/disk-pressure", "NoSchedule"),
    _exists("node.kubernetes.io/memory-pressure", "NoSchedule"),
    _exists("node.kubernetes.io/pid-pressure", "NoSchedule"),
    _exists("node.kubernetes.io/unschedulable", "NoSchedule"),
)
"""What every daemon pod tolerates (util.AddOrUpdateDaemonPodTolerations): it stays on a node that is
not ready or unreachable however long, and lands on nodes under pressure or cordoned."""
HOST_NETWORK_TOLERATION = _exists("node.kubernetes.io/network-unavailable", "NoSchedule")
"""Added for host-network pods, which do not need the pod network."""


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
        self.events = events
        self.burst_replicas = burst_replicas
        """At most this many pods are created, and as many deleted, by one sync."""
        self.expectations = Expectations(timeout=expectations_timeout)
        self.backoff = FailedPodBackoff()
        self.daemonsets = self.informer(DAEMONSETS)
        self.pods = self.informer(PODS, keys=self._keys_for_pod)
        self.pods.add_index(cache.OWNER_UID, cache.by_owner_uid)
        self.revisions = self.informer(history.CONTROLLERREVISIONS, keys=self._keys_for_revision)
        self.nodes = self.informer(NODES, enqueue=False)

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
        if _placement_fields(old) != _placement_fields(new):
            self._node_event(new)

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        return self._keys_for_owned(pod)

    def _keys_for_revision(self, revision: Obj) -> list[str]:
        return self._keys_for_owned(revision)

    def _keys_for_owned(self, obj: Obj) -> list[str]:
        metadata = obj.get("metadata") or {}
        namespace = metadata.get("namespace", "")
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("kind") == KIND and ref.get("apiVersion", "").startswith("apps/"):
                return [f"{namespace}/{ref.get('name', '')}"]
            return []
        if metadata.get("deletionTimestamp"):
            return []
        labels = metadata.get("labels") or {}
        return [
            cache.key_of(ds)
            for ds in self.daemonsets.indexer.by_index(cache.NAMESPACE, namespace)
            if (selector := _selector(ds)) is not None and selector.matches(labels)
        ]

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.daemonsets.indexer.get(key)
        if cached is None:
            self.expectations.forget(key)
            self.backoff.forget(key)
            return
        ds = copy.deepcopy(cached)
        if ds["metadata"].get("deletionTimestamp"):
            return
        selector = _selector(ds)
        if selector is None:
            message = "This daemon set is selecting all pods. A non-empty selector is required."
            self._event(ds, "Warning", "SelectingAll", message)
            return
        current, old = await self._construct_history(ds, selector)
        hash_text = revision_hash(current)
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
            await self._rolling_update(ds, key, nodes, pods, hash_text)
        pods = await self._claim_pods(ds, selector)
        await self._cleanup_history(ds, pods, old, hash_text)
        await self._write_status(ds, nodes, pods, hash_text, observe=True)

    # -- history -----------------------------------------------------------------------------

    async def _construct_history(self, ds: Obj, selector: selectors.LabelSelector) -> tuple[Obj, list[Obj]]:
        """The current revision (made or renumbered as needed) and the old ones."""
        revisions = await self._claim(history.CONTROLLERREVISIONS, self.revisions, ds, selector)
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
                if labels.get(HASH_LABEL) == revision_hash(duplicate):
                    patch = {"metadata": {"labels": {HASH_LABEL: revision_hash(keep)}}}
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

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_pods(self, ds: Obj, selector: selectors.LabelSelector) -> list[Obj]:
        return await self._claim(PODS, self.pods, ds, selector)

    async def _claim(
        self, resource: Resource, shared: informers.SharedInformer, ds: Obj, selector: selectors.LabelSelector
    ) -> list[Obj]:
        """Objects of ``resource`` this DaemonSet controls after adopting matching orphans and releasing
        owned ones that stopped matching (the controller-ref managers of client-go)."""
        uid = ds["metadata"]["uid"]
        owned: list[Obj] = []
        orphans: list[Obj] = []
        for obj in shared.indexer.by_index(cache.NAMESPACE, ds["metadata"]["namespace"]):
            ref = controller_ref(obj)
            labels = obj["metadata"].get("labels") or {}
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if selector.matches(labels):
                    owned.append(obj)
                else:
                    await self._set_owner(resource, obj, ds, adopt=False)
            elif selector.matches(labels) and not obj["metadata"].get("deletionTimestamp"):
                orphans.append(obj)
        if orphans and await self._can_adopt(ds):
            for obj in orphans:
                adopted = await self._set_owner(resource, obj, ds, adopt=True)
                if adopted is not None:
                    owned.append(adopted)
        return owned

    async def _can_adopt(self, ds: Obj) -> bool:
        metadata = ds["metadata"]
        try:
            fresh = await self.client.get(DAEMONSETS, metadata["name"], namespace=metadata["namespace"])
        except StatusError as exc:
            if exc.code == 404:
                return False
            raise
        return bool(
            fresh["metadata"].get("uid") == metadata["uid"] and not fresh["metadata"].get("deletionTimestamp")
        )

    async def _set_owner(self, resource: Resource, obj: Obj, ds: Obj, *, adopt: bool) -> Obj | None:
        metadata = obj["metadata"]
        refs = [
            dict(r) for r in metadata.get("ownerReferences") or [] if r.get("uid") != ds["metadata"]["uid"]
        ]
        if adopt:
            refs.append(history.owner_reference(ds, KIND))
        patch = {
            "metadata": {"ownerReferences": refs or None, "resourceVersion": metadata.get("resourceVersion")}
        }
        try:
            result: Obj = await self.client.patch(
                resource, metadata["name"], patch, namespace=metadata["namespace"]
            )
        except StatusError as exc:
            if exc.code in (404, 409):
                return None
            raise
        return result

    # -- placement ---------------------------------------------------------------------------

    async def _manage(self, ds: Obj, key: str, nodes: list[Obj], pods: list[Obj], hash_text: str) -> None:
        """Create the missing daemon pods and delete the ones that should not be (podsShouldBeOnNode)."""
        by_node = pods_by_node(pods)
        template = PodTemplate(ds)
        surge = allows_surge(ds)
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
                running.sort(key=_oldest_first)
                if not surge:
                    deletes += running[1:]
                elif not running:
                    if should_run:
                        creates.append(name)
                elif len(running) > 1:
                    deletes += _surge_extras(running, hash_text, min_ready)
            elif on_node:
                deletes += [p for p in on_node if not p["metadata"].get("deletionTimestamp")]
        known = {n["metadata"]["name"] for n in nodes}
        for name, on_node in by_node.items():
            if name not in known:  # the node is gone (or never was): its pods cannot run
                deletes += [p for p in on_node if not p["metadata"].get("deletionTimestamp")]
        await self._sync_nodes(ds, key, deletes, creates, hash_text)

    async def _rolling_update(
        self, ds: Obj, key: str, nodes: list[Obj], pods: list[Obj], hash_text: str
    ) -> None:
        """Replace old pods within maxUnavailable / maxSurge (upstream's rollingUpdate)."""
        by_node = pods_by_node(pods)
        template = PodTemplate(ds)
        desired = 0
        for node in nodes:
            if template.placement(node)[0]:
                desired += 1
                by_node.setdefault(node["metadata"]["name"], [])
        max_surge, max_unavailable = rolling_limits(ds, desired)
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        generation = template_generation(ds)
        now = time.time()
        nodes_by_name = {n["metadata"]["name"]: n for n in nodes}

        def available(pod: Obj) -> bool:
            return is_available(pod, min_ready, now)

        if max_surge == 0:
            unavailable = 0
            replace: list[Obj] = []
            candidates: list[Obj] = []
            for name in sorted(by_node):
                found = new_and_old(by_node[name], hash_text, generation)
                if found is None:
                    unavailable += 1
                    continue
                new_pod, old_pod = found
                if (old_pod is None) == (new_pod is None):
                    unavailable += 1
                elif new_pod is not None:
                    if not available(new_pod):
                        unavailable += 1
                elif old_pod is not None and not available(old_pod):
                    replace.append(old_pod)
                elif old_pod is not None and unavailable < max_unavailable:
                    candidates.append(old_pod)
            room = min(max(max_unavailable - unavailable, 0), len(candidates))
            await self._sync_nodes(ds, key, replace + candidates[:room], [], hash_text)
            return

        surged = available_count = 0
        deletes: list[Obj] = []
        leaving: list[Obj] = []
        allowed: list[str] = []
        surge_candidates: list[str] = []
        for name in sorted(by_node):
            found = new_and_old(by_node[name], hash_text, generation)
            if found is None:
                surged += 1
                continue
            new_pod, old_pod = found
            counted = old_pod if old_pod is not None else new_pod
            if counted is not None and available(counted):
                available_count += 1
            if old_pod is None:
                continue
            where = nodes_by_name.get(name)
            should_run = where is not None and template.placement(where)[0]
            if new_pod is None:
                if not available(old_pod):
                    if should_run:
                        allowed.append(name)
                    else:
                        deletes.append(old_pod)
                elif not should_run:
                    leaving.append(old_pod)
                elif surged < max_surge:
                    surge_candidates.append(name)
            elif not available(new_pod):
                surged += 1
            else:
                deletes.append(old_pod)
        # A node that stopped qualifying loses its old pod only once another is available elsewhere.
        deletable = min(max(available_count - desired, 0), len(leaving))
        deletes += leaving[:deletable]
        room = min(max(max_surge - surged, 0), len(surge_candidates))
        await self._sync_nodes(ds, key, deletes, allowed + surge_candidates[:room], hash_text)

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
        template = self._pod_template(ds, hash_text)
        batch = SLOW_START_INITIAL_BATCH
        position = 0
        while position < len(creates):
            chunk = creates[position : position + batch]
            made = await asyncio.gather(
                *(self._create_pod(ds, template, node) for node in chunk), return_exceptions=True
            )
            failed = next((r for r in made if isinstance(r, BaseException)), None)
            for result in made:
                if not isinstance(result, BaseException):
                    self.expectations.created(key, result)
            if failed is not None:
                failure = failure or failed
                break
            position += len(chunk)
            batch *= 2
        if failure is not None:
            raise failure

    def _pod_template(self, ds: Obj, hash_text: str) -> Obj:
        """The pod every node gets, before its node affinity (util.CreatePodTemplate)."""
        metadata = ds["metadata"]
        template = ds["spec"].get("template") or {}
        template_meta = template.get("metadata") or {}
        labels = dict(template_meta.get("labels") or {})
        labels[HASH_LABEL] = hash_text
        generation = template_generation(ds)
        if generation is not None:
            labels[GENERATION_LABEL] = str(generation)
        pod_meta: Obj = {
            "generateName": f"{metadata['name']}-",
            "namespace": metadata["namespace"],
            "labels": labels,
        }
        for field in ("annotations", "finalizers"):
            if template_meta.get(field):
                pod_meta[field] = copy.deepcopy(template_meta[field])
        pod_meta["ownerReferences"] = [history.owner_reference(ds, KIND)]
        spec = copy.deepcopy(template.get("spec") or {})
        add_daemon_tolerations(spec)
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}

    async def _create_pod(self, ds: Obj, template: Obj, node: str) -> Obj:
        pod = copy.deepcopy(template)
        pin_to_node(pod["spec"], node)
        try:
            created: Obj = await self.client.create(PODS, pod, namespace=ds["metadata"]["namespace"])
        except StatusError as exc:
            self._event(ds, "Warning", "FailedCreate", f"Error creating: {exc.message}")
            raise
        self._event(ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        return created

    async def _delete_pod(self, ds: Obj, pod: Obj) -> None:
        try:
            if not await meta.delete_exact(self.client, PODS, pod):
                return
        except StatusError as exc:
            self._event(ds, "Warning", "FailedDelete", f"Error deleting: {exc.message}")
            raise
        self._event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")

    # -- status ------------------------------------------------------------------------------

    async def _write_status(
        self, ds: Obj, nodes: list[Obj], pods: list[Obj], hash_text: str, *, observe: bool
    ) -> None:
        status = calculate_status(ds, nodes, pods, hash_text, observe=observe)
        current = ds.get("status") or {}
        patch = {k: v for k, v in status.items() if current.get(k) != v}
        if patch:
            await self._patch_status(ds, patch)
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        if min_ready > 0 and status["numberReady"] != status.get("numberAvailable", 0):
            self.queue.add_after(cache.key_of(ds), _next_available(pods, min_ready))

    async def _patch_status(self, ds: Obj, patch: Obj) -> None:
        metadata = ds["metadata"]
        try:
            result = await self.client.patch(
                DAEMONSETS, metadata["name"], {"status": patch}, namespace=metadata["namespace"],
                patch_type=MERGE_PATCH, subresource="status",
            )  # fmt: skip
        except StatusError as exc:
            if exc.code != 404:
                raise
            return
        ds["status"] = result.get("status") or {}

    def _event(self, ds: Obj, kind: str, reason: str, message: str) -> None:
        if self.events:
            self.recorder.record(ds, kind, reason, message)


# -- placement ---------------------------------------------------------------------------------------


class PodTemplate:
    """A DaemonSet's pod as the placement predicates see it: the template with the daemon tolerations,
    read once per sync (upstream's NewPod + NodeShouldRunDaemonPod)."""

    def __init__(self, ds: Obj) -> None:
        spec = copy.deepcopy((ds["spec"].get("template") or {}).get("spec") or {})
        add_daemon_tolerations(spec)
        self.node_name: str = spec.get("nodeName") or ""
        self.tolerations: list[Obj] = spec.get("tolerations") or []
        self.pod = filters.PodInfo({"metadata": {"namespace": ds["metadata"]["namespace"]}, "spec": spec})

    def placement(self, node: Obj) -> tuple[bool, bool]:
        """(should run a daemon pod here, may keep an existing one running here)."""
        name = node["metadata"]["name"]
        if self.node_name and self.node_name != name:
            return False, False
        if filters.node_affinity(self.pod, filters.NodeInfo(name, node)) is not None:
            return False, False
        untolerated = [
            taint
            for taint in (node.get("spec") or {}).get("taints") or []
            if taint.get("effect") in ("NoSchedule", "NoExecute")
            and not filters.tolerates(self.tolerations, taint)
        ]
        if untolerated:
            return False, not any(t.get("effect") == "NoExecute" for t in untolerated)
        return True, True


def add_daemon_tolerations(spec: Obj) -> None:
    """Add (or replace same key/operator/value/effect) the tolerations every daemon pod carries."""
    wanted = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        wanted.append(HOST_NETWORK_TOLERATION)
    tolerations = [dict(t) for t in spec.get("tolerations") or []]
    for toleration in wanted:
        same = [
            i
            for i, t in enumerate(tolerations)
            if all((t.get(f) or "") == (toleration.get(f) or "") for f in ("key", "value", "effect"))
            and (t.get("operator") or "Equal") == toleration["operator"]
        ]
        if same:
            tolerations[same[0]] = dict(toleration)
        else:
            tolerations.append(dict(toleration))
    spec["tolerations"] = tolerations


def pin_to_node(spec: Obj, node: str) -> None:
    """Require the node by ``metadata.name`` (util.ReplaceDaemonSetPodNodeNameNodeAffinity): the
    required node terms become this one term; the template's were already checked against the node."""
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
    }


def target_node(pod: Obj) -> str:
    """The node a daemon pod is on, or is pinned to while unscheduled (util.GetTargetNodeName)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            values = field.get("values") or []
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return ""


def pods_by_node(pods: Iterable[Obj]) -> dict[str, list[Obj]]:
    """Daemon pods by target node, leaving out pods that are both finished and being deleted."""
    result: dict[str, list[Obj]] = {}
    for pod in pods:
        finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if finished and pod["metadata"].get("deletionTimestamp"):
            continue
        result.setdefault(target_node(pod), []).append(pod)
    result.pop("", None)
    return result


def _placement_fields(node: Obj) -> tuple[Any, ...]:
    return (
        (node.get("metadata") or {}).get("labels"),
        (node.get("spec") or {}).get("taints"),
        (node.get("spec") or {}).get("unschedulable"),
    )


# -- updates -----------------------------------------------------------------------------------------


def template_generation(ds: Obj) -> int | None:
    text = (ds["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION, "")
    return int(text) if isinstance(text, str) and text.isdigit() else None


def revision_hash(revision: Obj) -> str:
    labels = revision["metadata"].get("labels") or {}
    return str(labels.get(HASH_LABEL) or revision["metadata"]["name"])


def is_updated(pod: Obj, hash_text: str, generation: int | None) -> bool:
    """Made from the current template: its hash label, or (older pods) its template generation."""
    labels = pod["metadata"].get("labels") or {}
    if hash_text and labels.get(HASH_LABEL) == hash_text:
        return True
    return generation is not None and labels.get(GENERATION_LABEL) == str(generation)


def new_and_old(
    pods: list[Obj], hash_text: str, generation: int | None
) -> tuple[Obj | None, Obj | None] | None:
    """The node's updated and old pod (not terminating), or ``None`` when it has two of either."""
    new_pod: Obj | None = None
    old_pod: Obj | None = None
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if is_updated(pod, hash_text, generation):
            if new_pod is not None:
                return None
            new_pod = pod
        else:
            if old_pod is not None:
                return None
            old_pod = pod
    return new_pod, old_pod


def allows_surge(ds: Obj) -> bool:
    strategy = ds["spec"].get("updateStrategy") or {}
    if strategy.get("type") != "RollingUpdate":
        return False
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", 0)
    return scaled(surge, 1) > 0


def scaled(value: Any, total: int) -> int:
    """An int-or-percent of ``total``, percentages rounded up (as the DaemonSet controller rounds)."""
    if isinstance(value, int):
        return value
    text = str(value or "0")
    if text.endswith("%"):
        return math.ceil(int(text[:-1]) * total / 100)
    return int(text) if text.isdigit() else 0


def rolling_limits(ds: Obj, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for ``desired`` nodes; never both zero while any node wants a pod."""
    rolling = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge", 0), desired)
    unavailable = scaled(rolling.get("maxUnavailable", 1), desired)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def is_available(pod: Obj, min_ready: int, now: float) -> bool:
    since = ready_since(pod)
    return since is not None and (min_ready == 0 or since + min_ready <= now)


def _phase_rank(pod: Obj) -> int:
    return {"Pending": 0, "Unknown": 1, "Running": 2}.get((pod.get("status") or {}).get("phase", ""), 0)


def _oldest_first(pod: Obj) -> tuple[float, int, str]:
    """podByCreationTimestampAndPhase: older first, then running before pending, then name."""
    created = epoch(pod["metadata"].get("creationTimestamp")) or 0.0
    return (created, -_phase_rank(pod), pod["metadata"].get("name", ""))


def _surge_extras(running: list[Obj], hash_text: str, min_ready: int) -> list[Obj]:
    """With surge, a node keeps its oldest new pod and its oldest old pod, and the old one only while
    it is ready and the new one is not yet available."""
    oldest_new: Obj | None = None
    oldest_old: Obj | None = None
    extras: list[Obj] = []
    for pod in running:
        if (pod["metadata"].get("labels") or {}).get(HASH_LABEL) == hash_text:
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        extras.append(pod)
    if (
        oldest_new is not None
        and oldest_old is not None
        and (ready_since(oldest_old) is None or is_available(oldest_new, min_ready, time.time()))
    ):
        extras.append(oldest_old)
    return extras


# -- status ------------------------------------------------------------------------------------------


def calculate_status(ds: Obj, nodes: list[Obj], pods: list[Obj], hash_text: str, *, observe: bool) -> Obj:
    by_node = pods_by_node(pods)
    template = PodTemplate(ds)
    min_ready = int(ds["spec"].get("minReadySeconds") or 0)
    generation = template_generation(ds)
    now = time.time()
    desired = current = misscheduled = ready = available = updated = 0
    for node in nodes:
        should_run, _ = template.placement(node)
        on_node = by_node.get(node["metadata"]["name"]) or []
        if not should_run:
            misscheduled += 1 if on_node else 0
            continue
        desired += 1
        if not on_node:
            continue
        current += 1
        pod = sorted(on_node, key=_oldest_first)[0]
        if ready_since(pod) is not None:
            ready += 1
            if is_available(pod, min_ready, now):
                available += 1
        if is_updated(pod, hash_text, generation):
            updated += 1
    old = ds.get("status") or {}
    status: Obj = {
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
        "observedGeneration": ds["metadata"].get("generation", 1)
        if observe
        else old.get("observedGeneration"),
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
    }
    # Zero counts the Go type leaves out (omitempty) are left out; the first four always show.
    for field in ("observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
        if not status[field]:
            status[field] = None
    return status


def _next_available(pods: list[Obj], min_ready: int) -> float:
    now = time.time()
    waits = [
        since + min_ready - now
        for pod in pods
        if (since := ready_since(pod)) is not None and since + min_ready > now
    ]
    # Timestamps have second precision: wake a little after the boundary.
    return (min(waits) if waits else float(min_ready)) + 0.05


# -- helpers -----------------------------------------------------------------------------------------


class FailedPodBackoff:
    """Per DaemonSet and node: how long to wait before deleting the next failed pod (a kubelet that
    keeps rejecting a pod would otherwise meet a controller that keeps replacing it). 1 s, doubling
    to 15 minutes; forgotten after twice the maximum without failures."""

    def __init__(self, *, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[tuple[str, str], tuple[float, float]] = {}

    def delay(self, key: str, node: str) -> float:
        """Seconds left before the next failed pod on ``node`` may be deleted (0: now)."""
        entry = self._entries.get((key, node))
        if entry is None:
            return 0.0
        delay, since = entry
        return max(since + delay - time.monotonic(), 0.0)

    def next(self, key: str, node: str) -> None:
        now = time.monotonic()
        entry = self._entries.get((key, node))
        if entry is None or now - entry[1] > 2 * self.maximum:
            self._entries[(key, node)] = (self.initial, now)
        else:
            self._entries[(key, node)] = (min(entry[0] * 2, self.maximum), now)

    def forget(self, key: str) -> None:
        for entry in [e for e in self._entries if e[0] == key]:
            del self._entries[entry]


def _selector(ds: Obj) -> selectors.LabelSelector | None:
    """The parsed selector; ``None`` when unusable or empty (an empty one would select every pod)."""
    try:
        parsed = selectors.from_label_selector((ds.get("spec") or {}).get("selector"))
    except StatusError:
        return None
    if parsed is None or parsed.empty or parsed.matches_nothing:
        return None
    return parsed


async def _ignore_gone(write: Any) -> None:
    try:
        await write
    except StatusError as exc:
        if exc.code not in (404, 409):
            raise
