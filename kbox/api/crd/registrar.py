"""Keeps the apiserver's catalog in step with the stored CustomResourceDefinitions.

kube-apiextensions-apiserver spreads this over a naming controller, an establishing controller, a
finalizer controller and a handler that builds storage per CRD. kbox runs them as one task inside the
apiserver, on the store's watch of the CRD keys, one CRD at a time:

- **Start**: before the apiserver accepts requests, every stored CRD whose names were accepted is
  registered again (so its objects are served from the first request after a restart), then each is
  synced.
- **Names** (the naming controller): the requested plural, singular, short names, kind and list kind
  must not be in use in the group, by another CRD's accepted names or by a built-in type; a name in
  use keeps the previously accepted one and sets ``NamesAccepted`` False with upstream's reason
  (``PluralConflict``, ``KindConflict``, ...) and message (``"foos" is already in use``).
- **Serving**: with names accepted, each served version becomes a ``ResourceDef`` in the catalog
  (:mod:`.custom`), and so in discovery and OpenAPI; only then is ``Established`` set True, so a client
  that waits for it finds the resource. A spec change re-registers the types.
- **Conversion**: a CRD with ``conversion.strategy: Webhook`` and more than one version is not
  established (kbox calls no webhooks): ``Established`` False, reason ``WebhookConversionNotSupported``.
- **Non-structural schemas** are refused when a CRD is written (:mod:`.validation`); one stored before
  (the engine grew stricter) is still served and reported as ``NonStructuralSchema`` True.
- **Deletion** (the finalizer controller): a deleted CRD keeps being served while
  ``Terminating`` is True and creates are refused; every object is deleted (finalizers respected),
  the CRD is polled until none remains, then ``Terminating`` goes False (``InstanceDeletionCompleted``)
  and the ``customresourcecleanup.apiextensions.k8s.io`` finalizer is removed, so the CRD goes; its
  types then leave the catalog.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from kbox.api import errors
from kbox.api.catalog import Catalog
from kbox.api.crd import approval, custom, definition
from kbox.api.crd import schema as schemas
from kbox.api.crd.definition import (
    CLEANUP_FINALIZER,
    ESTABLISHED,
    NAMES_ACCEPTED,
    NON_STRUCTURAL,
    TERMINATING,
)
from kbox.api.registry import DeleteOptions, GenericStore
from kbox.api.resource import ResourceDef
from kbox.store import errors as store_errors
from kbox.util import aiotasks

_log = logging.getLogger(__name__)

Obj = dict[str, Any]

CLEANUP_POLL = 0.2
"""Seconds between checks that a terminating CRD's objects are gone (upstream polls every 5 s)."""


class _Skip(Exception):
    """The CRD changed under a status write; its next event syncs it again."""


class CrdRegistrar:
    """The CRD type in the catalog, and the types each CRD serves; see the module docstring."""

    def __init__(self, catalog: Catalog, *, cleanup_poll: float = CLEANUP_POLL) -> None:
        self.catalog = catalog
        self.cleanup_poll = cleanup_poll
        self.crds: GenericStore = catalog.add(definition.RESOURCE)
        self._known: dict[str, Obj] = {}
        """The latest CRD objects by name (with the status this registrar wrote)."""
        self._served: dict[str, list[ResourceDef]] = {}
        self._basis: dict[str, tuple[Any, ...]] = {}
        """What each CRD's served types were made from (uid, spec, accepted names)."""
        self._states: dict[str, custom.CrdState] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._timers: set[asyncio.TimerHandle] = set()

    # -- lifetime ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register the stored CRDs' types, then follow the CRD keys (call before serving)."""
        page = await self.crds.list(None)
        for crd in page.items:
            name = crd["metadata"]["name"]
            self._known[name] = crd
            accepted = (crd.get("status") or {}).get("acceptedNames") or {}
            if accepted.get("plural") and (
                definition.is_true(crd, ESTABLISHED) or definition.is_true(crd, NAMES_ACCEPTED)
            ):
                self._serve(crd, accepted)  # schemas compile on first use
            self._enqueue(name)
        self._tasks = [
            aiotasks.create_guarded_task(
                self._watch(int(page.resource_version)), name="kube-apiserver/crd-watch", logger=_log
            ),
            aiotasks.create_guarded_task(self._work(), name="kube-apiserver/crd-registrar", logger=_log),
        ]

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        tasks, self._tasks = self._tasks, []
        await aiotasks.stop(tasks, title="crd-registrar")

    # -- events --------------------------------------------------------------------------------

    def _enqueue(self, name: str) -> None:
        if name not in self._queued:
            self._queued.add(name)
            self._queue.put_nowait(name)

    def _enqueue_later(self, name: str, delay: float) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            self._enqueue(name)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def _watch(self, after: int) -> None:
        prefix = definition.RESOURCE.key_root
        while True:
            try:
                stream = self.crds.store.watch(prefix, after_revision=after)
                try:
                    async for event in stream:
                        after = event.revision
                        self._enqueue(event.key[len(prefix) :])
                finally:
                    stream.close()
            except store_errors.Expired:
                # History compacted past us: re-read everything.
                page = await self.crds.list(None)
                after = int(page.resource_version)
                for crd in page.items:
                    self._enqueue(crd["metadata"]["name"])
                for name in list(self._known):
                    self._enqueue(name)

    async def _work(self) -> None:
        while True:
            name = await self._queue.get()
            try:
                await self.sync(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("CRD %s: sync failed; retrying", name)
                self._enqueue_later(name, 1.0)
            finally:
                self._queued.discard(name)

    # -- sync ----------------------------------------------------------------------------------

    async def sync(self, name: str) -> None:
        try:
            crd = await self.crds.get(None, name)
        except errors.StatusError as exc:
            if exc.code != 404:
                raise
            self._gone(name)
            return
        self._known[name] = crd
        if crd["metadata"].get("deletionTimestamp"):
            await self._finalize(crd)
            return
        wanted = copy.deepcopy(crd)
        names, serve = self._accept_names(wanted)
        problem = _conversion_problem(crd)
        if problem is not None:
            definition.set_condition(wanted, ESTABLISHED, "False", "WebhookConversionNotSupported", problem)
            serve = False
        if serve:
            try:
                # Compiling a big schema takes a while: off the loop, which keeps serving meanwhile.
                await asyncio.to_thread(custom.check_schemas, crd)
                self._serve(crd, names)
            except ValueError as exc:
                definition.set_condition(wanted, ESTABLISHED, "False", "InvalidSchema", str(exc))
                serve = False
        if serve:
            definition.set_condition(
                wanted, ESTABLISHED, "True", "InitialNamesAccepted", "the initial names have been accepted"
            )
        else:
            self._unserve(name)
        _non_structural(wanted)
        approved = approval.condition(wanted)
        if approved is not None:
            definition.set_condition(wanted, approval.CONDITION, *approved)
        await self._write_status(crd, wanted)

    def _gone(self, name: str) -> None:
        crd = self._known.pop(name, None)
        self._unserve(name)
        self._states.pop(name, None)
        if crd is not None:  # its names are free: others in the group may take them now
            group = definition.spec(crd).get("group")
            for other, known in self._known.items():
                if definition.spec(known).get("group") == group:
                    self._enqueue(other)

    # -- names ---------------------------------------------------------------------------------

    def _names_in_use(self, crd: Obj) -> tuple[set[str], set[str]]:
        """Resource names and kinds of the CRD's group taken by other CRDs and built-in types."""
        group = definition.spec(crd).get("group")
        me = crd["metadata"]["name"]
        resources: set[str] = set()
        kinds: set[str] = set()
        for name, other in self._known.items():
            if name == me or definition.spec(other).get("group") != group:
                continue
            accepted = (other.get("status") or {}).get("acceptedNames") or {}
            resources.update(str(n) for n in (accepted.get("plural"), accepted.get("singular")) if n)
            resources.update(str(n) for n in accepted.get("shortNames") or ())
            kinds.update(str(n) for n in (accepted.get("kind"), accepted.get("listKind")) if n)
        for resource in self.catalog.resources():
            if resource.group != group or "crd" in resource.extra:
                continue
            resources.update((resource.plural, resource.singular_name, *resource.short_names))
            kinds.update((resource.kind, resource.list_kind))
        return resources, kinds

    def _accept_names(self, crd: Obj) -> tuple[Obj, bool]:
        """Upstream's naming controller: set ``status.acceptedNames`` and ``NamesAccepted`` on ``crd``;
        returns the names to serve and whether to serve them."""
        requested = definition.spec(crd).get("names") or {}
        status = crd.setdefault("status", {})
        accepted = dict(status.get("acceptedNames") or {})
        names = dict(accepted)
        resources, kinds = self._names_in_use(crd)
        reason = ""
        message = ""

        def fresh(wanted: Any, current: Any, used: set[str]) -> str | None:
            if wanted == current or wanted not in used:
                return None
            return f'"{wanted}" is already in use'

        for key, used, why in (
            ("plural", resources, "PluralConflict"),
            ("singular", resources, "SingularConflict"),
        ):
            found = fresh(requested.get(key), accepted.get(key), used)
            if found is None:
                names[key] = requested.get(key)
            else:
                reason, message = why, found
        if list(requested.get("shortNames") or []) != list(accepted.get("shortNames") or []):
            mine = set(accepted.get("shortNames") or [])
            clashes = [
                f'"{short}" is already in use'
                for short in requested.get("shortNames") or []
                if short not in mine and short in resources
            ]
            if clashes:
                reason = "ShortNamesConflict"
                message = clashes[0] if len(clashes) == 1 else "[" + ", ".join(clashes) + "]"
            else:
                names["shortNames"] = list(requested.get("shortNames") or [])
        for key, why in (("kind", "KindConflict"), ("listKind", "ListKindConflict")):
            found = fresh(requested.get(key), accepted.get(key), kinds)
            if found is None:
                names[key] = requested.get(key)
            else:
                reason, message = why, found
        if requested.get("categories"):
            names["categories"] = list(requested["categories"])
        else:
            names.pop("categories", None)
        names = {k: v for k, v in names.items() if v not in (None, [], "") or k in ("plural", "kind")}
        status["acceptedNames"] = names
        if reason:
            definition.set_condition(crd, NAMES_ACCEPTED, "False", reason, message)
        else:
            definition.set_condition(crd, NAMES_ACCEPTED, "True", "NoConflicts", "no conflicts found")
        if not definition.is_true(crd, ESTABLISHED) and not reason:
            definition.set_condition(
                crd, ESTABLISHED, "False", "Installing", "the initial names have been accepted"
            )
        elif definition.condition(crd, ESTABLISHED) is None:
            definition.set_condition(crd, ESTABLISHED, "False", "NotAccepted", "not all names are accepted")
        # Served with the accepted names when they are all accepted, or when it was established before
        # (a later conflict keeps the names it had).
        serve = (not reason or definition.is_true(crd, ESTABLISHED)) and bool(names.get("plural"))
        return names, serve

    # -- serving -------------------------------------------------------------------------------

    def _serve(self, crd: Obj, names: Obj) -> None:
        """Put the CRD's served versions in the catalog (replacing what it served before)."""
        name = crd["metadata"]["name"]
        state = self._states.setdefault(name, custom.CrdState(name))
        state.terminating = bool(crd["metadata"].get("deletionTimestamp"))
        basis = (crd["metadata"].get("uid"), definition.spec(crd), names)
        if name in self._served and self._basis.get(name) == basis:
            return  # a status write: the served types stay as they are
        wanted = custom.resources_for(crd, names, state)
        self._unserve(name)
        for resource in wanted:
            self.catalog.add(resource)
        self._served[name] = wanted
        self._basis[name] = copy.deepcopy(basis)
        _log.info("serving %s (%s)", name, ", ".join(r.version for r in wanted) or "no served versions")

    def _unserve(self, name: str) -> None:
        self._basis.pop(name, None)
        for resource in self._served.pop(name, []):
            self.catalog.remove(resource)

    # -- status --------------------------------------------------------------------------------

    async def _write_status(self, seen: Obj, wanted: Obj) -> None:
        status = wanted.get("status") or {}
        if status == (seen.get("status") or {}):
            return
        uid = seen["metadata"].get("uid")
        generation = seen["metadata"].get("generation")

        def transform(current: Obj | None) -> Obj:
            if current is None or current["metadata"].get("uid") != uid:
                raise _Skip
            if current["metadata"].get("generation") != generation:
                raise _Skip  # the spec changed meanwhile: its event brings us back
            current["metadata"].pop("resourceVersion", None)
            current["status"] = copy.deepcopy(status)
            return current

        try:
            written, _ = await self.crds.update(
                None, seen["metadata"]["name"], transform, subresource="status"
            )
        except _Skip:
            return
        except errors.StatusError as exc:
            if exc.code in (404, 409):
                return
            raise
        self._known[seen["metadata"]["name"]] = written

    # -- deletion ------------------------------------------------------------------------------

    async def _finalize(self, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        state = self._states.setdefault(name, custom.CrdState(name))
        state.terminating = True
        if CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or []):
            return
        wanted = copy.deepcopy(crd)
        generic = self._instances(crd)
        if generic is None:
            definition.set_condition(
                wanted, TERMINATING, "False", "NeverEstablished", "resource was never established"
            )
        else:
            definition.set_condition(
                wanted,
                TERMINATING,
                "True",
                "InstanceDeletionInProgress",
                "CustomResource deletion is in progress",
            )
            await self._write_status(crd, wanted)
            remaining = await self._delete_instances(generic)
            if remaining:
                _log.debug("CRD %s: waiting for %d objects to go", name, remaining)
                self._enqueue_later(name, self.cleanup_poll)
                return
            crd = self._known.get(name, crd)
            wanted = copy.deepcopy(crd)
            definition.set_condition(
                wanted, TERMINATING, "False", "InstanceDeletionCompleted", "removed all instances"
            )
        await self._write_status(crd, wanted)
        await self._remove_finalizer(name, crd["metadata"].get("uid"))

    def _instances(self, crd: Obj) -> GenericStore | None:
        """A store over the CRD's objects, if it was ever served (else it has none)."""
        for resource in self._served.get(crd["metadata"]["name"], []):
            generic = self.catalog.lookup(resource.group, resource.version, resource.plural)
            if generic is not None:
                return generic
        accepted = (crd.get("status") or {}).get("acceptedNames") or {}
        if not accepted.get("plural") or not definition.is_true(crd, ESTABLISHED):
            return None
        # Established once but no version served now: read the objects through the storage version.
        every = copy.deepcopy(crd)
        for version in definition.spec(every).get("versions") or []:
            if isinstance(version, dict) and version.get("storage"):
                version["served"] = True
        state = self._states.setdefault(crd["metadata"]["name"], custom.CrdState(crd["metadata"]["name"]))
        try:
            resources = custom.resources_for(every, accepted, state)
        except ValueError:
            resources = []
        if not resources:
            return None
        return GenericStore(resources[0], self.catalog.store)

    async def _delete_instances(self, generic: GenericStore) -> int:
        """Delete every object not deleting yet; returns how many are left."""
        page = await generic.list(None)
        for obj in page.items:
            metadata = obj["metadata"]
            if metadata.get("deletionTimestamp"):
                continue
            try:
                await generic.delete(
                    metadata.get("namespace"),
                    metadata["name"],
                    DeleteOptions(preconditions={"uid": metadata["uid"]}),
                )
            except errors.StatusError as exc:
                if exc.code not in (404, 409):
                    raise
        return len((await generic.list(None)).items)

    async def _remove_finalizer(self, name: str, uid: str | None) -> None:
        def transform(current: Obj | None) -> Obj:
            if current is None or current["metadata"].get("uid") != uid:
                raise _Skip
            metadata = current["metadata"]
            metadata.pop("resourceVersion", None)
            metadata["finalizers"] = [f for f in metadata.get("finalizers") or [] if f != CLEANUP_FINALIZER]
            return current

        try:
            await self.crds.update(None, name, transform)
        except _Skip:
            return
        except errors.StatusError as exc:
            if exc.code not in (404, 409):
                raise
        try:
            await self.crds.get(None, name)
        except errors.StatusError as exc:
            if exc.code != 404:
                raise
            self._gone(name)  # at once: a client that saw the CRD go must not find its types


def _conversion_problem(crd: Obj) -> str | None:
    spec = definition.spec(crd)
    if ((spec.get("conversion") or {}).get("strategy")) != "Webhook":
        return None
    if len([v for v in spec.get("versions") or [] if isinstance(v, dict)]) < 2:
        return None  # one version never needs converting
    return (
        "conversion strategy Webhook is not supported by kbox (it calls no conversion webhooks); "
        "use strategy None or a single version"
    )


def _non_structural(crd: Obj) -> None:
    problems: list[str] = []
    for index, version in enumerate(definition.spec(crd).get("versions") or []):
        if not isinstance(version, dict):
            continue
        try:
            found = schemas.load(version).structural_errors()
        except ValueError:
            continue
        problems += [f"spec.versions[{index}].schema.openAPIV3Schema: {p}" for p in found]
    if problems:
        definition.set_condition(crd, NON_STRUCTURAL, "True", "Violations", ", ".join(problems))
    else:
        definition.remove_condition(crd, NON_STRUCTURAL)
