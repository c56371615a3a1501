"""The generic registry: REST semantics of one resource type over the store, written once.

``GenericStore`` is configured by a ``ResourceDef`` and never subclassed per kind. It owns what every
kind shares: keys, uid, creationTimestamp, resourceVersion (the store revision, written into the
object's own bytes so reads and watches serve them without re-encoding), generation, generateName,
optimistic concurrency, graceful deletion and finalizers, selectors, pagination and watch. Every update
is ``update(name, transform)``: PUT, each patch type and server-side apply are only different
transforms of the current object, retried on a lost compare-and-swap.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import functools
import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kbox.api import errors, objects, selectors, validation
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef
from kbox.api.strategy import Strategy
from kbox.store import errors as store_errors
from kbox.store.interface import Event, EventType, KeyValue, Route, Router, Store

Obj = dict[str, Any]
Transform = Callable[[Obj | None], Obj]
UPDATE_RETRY_SECONDS = 30.0
"""How long an update without a resourceVersion keeps retrying compare-and-swaps it loses to concurrent
writers before it gives up with a 409 (kube-apiserver retries such updates until they land; this bounds
a livelock). Bounded by time, not rounds: with slow commits (fsync under load) a writer among forty
concurrent ones lost more than 100 rounds before its turn came, in CI."""


def _rounds() -> Iterator[int]:
    """Attempt numbers of an unconditional write, until :data:`UPDATE_RETRY_SECONDS` have passed."""
    deadline = time.monotonic() + UPDATE_RETRY_SECONDS
    for attempt in itertools.count():
        if attempt and time.monotonic() > deadline:
            return
        yield attempt


def _after_lost_race(attempt: int) -> Awaitable[None]:
    """A pause before retrying a lost compare-and-swap. Reads see committed objects while the store
    compares against writes still committing (group commit): retrying at once could lose every round to
    one write waiting for its fsync. Jittered, so writers that collided spread out: up to 2 ms doubling,
    at most 50 ms a round."""
    return asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.05)))


FRAME_CACHE = 4096  # events whose JSON watch lines the HTTP watchers of a version share
SELECTABLE_CACHE = 4096  # events whose labels and fields watchers with selectors share (a watch buffer's 4x)
# ``GenericStore.list`` shadows the builtin inside the class body.
_FieldErrors = list[FieldError]
_Objs = list[Obj]
_Values = list[bytes]
Selectable = tuple[dict[str, str] | None, dict[str, str]]
"""An object's labels and selectable fields (:func:`selectable`)."""


@dataclass
class ListPage:
    items: list[Obj]
    resource_version: str
    continue_token: str | None = None


class WatchEvent:
    """One event for a watch client.

    ``frame`` is the JSON watch line, built on first use (only HTTP watchers ask) and shared by every
    watcher that sees the event as stored. ``object`` is decoded on first use and is not kept on the
    shared store event: the retained history would otherwise hold a decoded copy of every object it
    has seen.
    """

    __slots__ = ("_api_version", "_event", "_frame", "_framer", "_object", "type")

    def __init__(
        self,
        type: str,
        obj: Obj | None = None,
        *,
        event: Event | None = None,
        api_version: str | None = None,
        framer: Callable[[Event], bytes] | None = None,
    ) -> None:
        self.type = type
        self._object = obj
        self._event = event
        self._api_version = api_version  # a custom resource read through another version than stored
        self._framer = framer
        self._frame: bytes | None = None

    @property
    def object(self) -> Obj:
        if self._object is None:
            assert self._event is not None
            self._object = _event_object(self._event, self._api_version)
        return self._object

    @property
    def frame(self) -> bytes | None:
        """The shared JSON line of an event as stored (None for synthesized events: the caller encodes)."""
        if self._frame is None and self._framer is not None:
            assert self._event is not None
            self._frame = self._framer(self._event)
        return self._frame


@dataclass
class Selection:
    """Label and field selectors of a list or watch (both optional)."""

    labels: selectors.LabelSelector | None = None
    fields: selectors.FieldSelector | None = None

    def matches(self, resource: ResourceDef, obj: Obj) -> bool:
        if self.labels is not None and not self.labels.matches(obj.get("metadata", {}).get("labels")):
            return False
        if self.fields is not None:
            return self.fields.matches(selectable(resource, obj)[1])
        return True

    def matches_selectable(self, selectable: Selectable) -> bool:
        """``matches`` on what :func:`selectable` worked out of an object."""
        labels, fields = selectable
        if self.labels is not None and not self.labels.matches(labels):
            return False
        return self.fields is None or self.fields.matches(fields)

    @property
    def empty(self) -> bool:
        return self.labels is None and self.fields is None


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    preconditions: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False


class GenericStore:
    """Create, read, update, delete, list and watch objects of one ``ResourceDef``."""

    def __init__(self, resource: ResourceDef, store: Store) -> None:
        self.resource = resource
        self.store = store
        self.strategy: Strategy = resource.strategy
        # Custom resources are stored at their CRD's storage version and served at any served version
        # (conversion "None": only apiVersion changes). None for every built-in kind.
        stored = resource.extra.get("storage_api_version")
        self.storage_api_version: str | None = stored if isinstance(stored, str) else None
        self._served_prefix = b'{"apiVersion":' + objects.encode(resource.api_version)
        self._selectables: dict[tuple[int, str, bool], Selectable] = {}  # by (revision, key, previous)
        self._routers: dict[str, Router] = {}  # by field: one router shared by the watches it routes
        self._frames: dict[tuple[int, str], bytes] = {}  # by (revision, key): see _frame

    # -- reads -------------------------------------------------------------------------------

    async def get_raw(self, namespace: str | None, name: str) -> bytes:
        """The stored JSON of one object (it already carries its resourceVersion)."""
        kv = await self.store.get(self.resource.key(namespace, name))
        if kv is None:
            raise errors.not_found(self.resource.group, self.resource.plural, name)
        return self._served_bytes(kv.value)

    def _served(self, obj: Obj) -> Obj:
        """A stored object as this resource's version serves it (custom resources: its apiVersion)."""
        if self.storage_api_version is not None:
            obj["apiVersion"] = self.resource.api_version
        return obj

    def _served_bytes(self, value: bytes) -> bytes:
        if self.storage_api_version is None or value.startswith(self._served_prefix):
            return value  # (objects usually start with their apiVersion: no decoding then)
        obj = objects.decode(value)
        if obj.get("apiVersion") == self.resource.api_version:
            return value
        return objects.encode(self._served(obj))

    def _stamped(self, obj: Obj) -> Callable[[int], bytes]:
        return _stamped(obj, self.storage_api_version)

    async def get(self, namespace: str | None, name: str) -> Obj:
        obj: Obj = objects.decode(await self.get_raw(namespace, name))
        return obj

    async def list(
        self,
        namespace: str | None,
        *,
        selection: Selection | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ListPage:
        """One page of objects, consistent at one revision (see the store's pagination)."""
        selection = selection or Selection()
        namespace = namespace or _namespace_from(selection)
        prefix = self.resource.prefix(namespace)
        revision = self._list_revision(resource_version, resource_version_match, continue_token)
        items: _Objs = []
        token = continue_token or None
        list_revision = 0
        while True:
            want = limit - len(items) if limit else 0
            try:
                page = await self.store.list(prefix, limit=want, continue_token=token, revision=revision)
            except store_errors.InvalidContinue as exc:
                raise errors.bad_request(str(exc)) from None
            except store_errors.Expired:
                if continue_token:
                    raise errors.gone(
                        "The provided continue parameter is too old to display a consistent list result."
                        " You can start a new list without the continue parameter."
                    ) from None
                raise errors.gone(f"too old resource version: {revision}") from None
            except store_errors.RevisionTooNew:
                raise errors.timeout(
                    f"Too large resource version: {revision}, current: {self.store.revision}"
                ) from None
            list_revision = page.revision
            revision = page.revision
            for kv in page.items:
                obj: Obj = self._served(objects.decode(kv.value))
                if selection.empty or selection.matches(self.resource, obj):
                    items.append(obj)
            token = page.continue_token
            if token is None or not limit or len(items) >= limit:
                break
        return ListPage(items=items, resource_version=str(list_revision), continue_token=token)

    async def list_raw(
        self,
        namespace: str | None,
        *,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> tuple[_Values, str, str | None]:
        """An unfiltered page as the stored bytes (they carry their resourceVersion): no decoding."""
        revision = self._list_revision(resource_version, resource_version_match, continue_token)
        try:
            page = await self.store.list(
                self.resource.prefix(namespace), limit=limit, continue_token=continue_token, revision=revision
            )
        except store_errors.InvalidContinue as exc:
            raise errors.bad_request(str(exc)) from None
        except store_errors.Expired:
            raise errors.gone(
                "The provided continue parameter is too old to display a consistent list result."
                if continue_token
                else f"too old resource version: {revision}"
            ) from None
        except store_errors.RevisionTooNew:
            raise errors.timeout(
                f"Too large resource version: {revision}, current: {self.store.revision}"
            ) from None
        return [self._served_bytes(kv.value) for kv in page.items], str(page.revision), page.continue_token

    def _list_revision(self, resource_version: str, match: str, continue_token: str | None) -> int:
        if continue_token:
            if resource_version not in ("", "0"):
                raise errors.bad_request("specifying resource version is not allowed when using continue")
            return 0
        if resource_version in ("", "0"):
            if match == "Exact":
                raise errors.bad_request("resourceVersionMatch=Exact requires a resourceVersion other than 0")
            return 0
        revision = _parse_revision(resource_version)
        if match == "Exact":
            return revision
        if match not in ("", "NotOlderThan"):
            raise errors.bad_request(f'unsupported resourceVersionMatch "{match}"')
        if revision > self.store.revision:
            raise errors.timeout(f"Too large resource version: {revision}, current: {self.store.revision}")
        return 0

    # -- create ------------------------------------------------------------------------------

    async def create(self, namespace: str | None, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Create ``obj`` (the pipeline has checked kind and namespace); returns the stored object."""
        strategy = self.strategy
        metadata = objects.meta(obj)
        if self.resource.namespaced:
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = objects.generate_name(str(metadata["generateName"]))
        for stale in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            metadata.pop(stale, None)
        metadata["uid"] = objects.new_uid()
        metadata["creationTimestamp"] = objects.timestamp()
        if strategy.tracks_generation:
            metadata["generation"] = 1
        else:
            metadata.pop("generation", None)
        obj["apiVersion"] = self.resource.api_version
        obj["kind"] = self.resource.kind
        strategy.prepare_for_create(obj)
        self._check(obj, self._meta_errors(obj) + strategy.validate(obj))
        strategy.canonicalize(obj)
        if dry_run:
            return obj
        try:
            await self.store.create(self.resource.key(namespace, metadata["name"]), self._stamped(obj))
        except store_errors.KeyExists:
            raise errors.already_exists(self.resource.group, self.resource.plural, metadata["name"]) from None
        return obj

    def _meta_errors(self, obj: Obj) -> _FieldErrors:
        return validation.validate_object_meta(
            obj.get("metadata", {}), namespaced=self.resource.namespaced, name_rule=self.strategy.name_errors
        )

    def _check(self, obj: Obj, problems: _FieldErrors) -> None:
        if problems:
            name = obj.get("metadata", {}).get("name") or obj.get("metadata", {}).get("generateName", "")
            raise errors.invalid_object(self.resource.group, self.resource.kind, name, problems)

    # -- update ------------------------------------------------------------------------------

    async def update(
        self,
        namespace: str | None,
        name: str,
        transform: Transform,
        *,
        subresource: str | None = None,
        create_missing: bool = False,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Apply ``transform`` to the current object and store the result; returns (object, created).

        ``transform`` gets a private copy of the current object (``None`` if there is none) and returns
        the desired one. A resourceVersion in the result is a precondition; without one the update is
        retried from the newest object when a concurrent write wins the compare-and-swap.
        """
        key = self.resource.key(namespace, name)
        for attempt in _rounds():
            kv = await self.store.get(key)
            if kv is None:
                new = transform(None)
                if not create_missing:
                    raise errors.not_found(self.resource.group, self.resource.plural, name)
                self._check_name(new, name)
                objects.meta(new)["name"] = name
                objects.meta(new).pop("resourceVersion", None)
                return await self.create(namespace, new, dry_run=dry_run), True
            old: Obj = self._served(objects.decode(kv.value))
            new = transform(copy.deepcopy(old))
            # A resourceVersion from the caller is a precondition; without one a lost race is retried.
            conditional = bool(objects.meta(new).get("resourceVersion"))
            try:
                result = self._prepare_update(new, old, kv, name=name, subresource=subresource)
            except _Unchanged:
                return old, False
            if result is None:  # the last finalizer of a deleting object is gone
                if dry_run:
                    return new, False
                return await self._finish_delete(key, kv, new), False
            if dry_run:
                return result, False
            try:
                await self.store.update(key, self._stamped(result), expected_revision=kv.mod_revision)
            except store_errors.Conflict:
                if conditional:
                    raise self._conflict(name) from None
                await _after_lost_race(attempt)
                continue
            except store_errors.KeyNotFound:
                await _after_lost_race(attempt)
                continue
            return result, False
        raise self._conflict(name)

    def _prepare_update(
        self, new: Obj, old: Obj, kv: KeyValue, *, name: str, subresource: str | None
    ) -> Obj | None:
        old_meta = old["metadata"]
        new_meta = objects.meta(new)
        self._check_name(new, name)
        wanted = new_meta.get("resourceVersion")
        if wanted and wanted != old_meta.get("resourceVersion"):
            raise self._conflict(name)
        strategy = self.strategy
        if subresource == "status" and self.resource.status_strategy is not None:
            strategy = self.resource.status_strategy
        elif subresource is not None:
            special = self.resource.extra.get(f"strategy:{subresource}")
            if isinstance(special, Strategy):
                strategy = special
        new["apiVersion"] = self.resource.api_version
        new["kind"] = self.resource.kind
        # What the server owns is carried over, whatever the client sent.
        for owned in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if owned in old_meta:
                new_meta[owned] = old_meta[owned]
            else:
                new_meta.pop(owned, None)
        new_meta["name"] = old_meta["name"]
        if self.resource.namespaced:
            new_meta["namespace"] = old_meta.get("namespace")
        strategy.prepare_for_update(new, old)
        new_meta = objects.meta(new)
        problems = validation.validate_object_meta_update(new_meta, old_meta) + self._meta_errors(new)
        self._check(new, problems + strategy.validate_update(new, old))
        if self.strategy.tracks_generation and self.strategy.spec_changed(new, old):
            new_meta["generation"] = int(old_meta.get("generation", 1)) + 1
        strategy.canonicalize(new)
        new_meta["resourceVersion"] = old_meta.get("resourceVersion")
        if new == old:
            raise _Unchanged
        if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers") and not self._held(new):
            return None
        return new

    def _held(self, obj: Obj) -> bool:
        """Whether a terminating object must stay: its grace period runs, or its kind holds it."""
        if self.strategy.deletion_waits(obj):
            return True
        return bool(obj["metadata"].get("deletionGracePeriodSeconds"))

    def _check_name(self, obj: Obj, name: str) -> None:
        body_name = obj.get("metadata", {}).get("name")
        if body_name and body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )

    def _conflict(self, name: str) -> errors.StatusError:
        return errors.conflict(
            self.resource.group,
            self.resource.plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )

    # -- delete ------------------------------------------------------------------------------

    async def delete(
        self, namespace: str | None, name: str, options: DeleteOptions | None = None
    ) -> tuple[Obj, bool]:
        """Delete, gracefully when the kind or finalizers say so; returns (object, gone now)."""
        options = options or DeleteOptions()
        key = self.resource.key(namespace, name)
        for attempt in _rounds():
            kv = await self.store.get(key)
            if kv is None:
                raise errors.not_found(self.resource.group, self.resource.plural, name)
            obj: Obj = self._served(objects.decode(kv.value))
            metadata = obj["metadata"]
            self._check_preconditions(name, metadata, options.preconditions)
            finalizers = list(metadata.get("finalizers") or [])
            policy = options.propagation_policy
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            grace = self.strategy.grace_period(obj, options.grace_period_seconds)
            if finalizers or grace > 0 or self.strategy.deletion_waits(obj):
                terminating = bool(metadata.get("deletionTimestamp"))
                current_grace = metadata.get("deletionGracePeriodSeconds")
                shorten = terminating and current_grace is not None and grace < current_grace
                if terminating and finalizers == (metadata.get("finalizers") or []) and not shorten:
                    return obj, False  # already terminating; a longer grace period changes nothing
                updated = copy.deepcopy(obj)
                um = updated["metadata"]
                if finalizers:
                    um["finalizers"] = finalizers
                self.strategy.prepare_for_delete(updated)  # after: it may add finalizers of its own
                if not terminating or shorten:
                    um["deletionTimestamp"] = objects.timestamp(
                        objects.now() + datetime.timedelta(seconds=grace)
                    )
                    um["deletionGracePeriodSeconds"] = grace
                if options.dry_run:
                    return updated, False
                try:
                    await self.store.update(key, self._stamped(updated), expected_revision=kv.mod_revision)
                except (store_errors.Conflict, store_errors.KeyNotFound):
                    await _after_lost_race(attempt)
                    continue
                return updated, False
            if options.dry_run:
                return obj, True
            return await self._finish_delete(key, kv, obj), True
        raise self._conflict(name)

    async def _finish_delete(self, key: str, kv: KeyValue, obj: Obj) -> Obj:
        try:
            deleted = await self.store.delete(key, expected_revision=kv.mod_revision)
        except store_errors.KeyNotFound:
            raise errors.not_found(
                self.resource.group, self.resource.plural, obj["metadata"]["name"]
            ) from None
        except store_errors.Conflict:
            raise self._conflict(obj["metadata"]["name"]) from None
        obj["metadata"]["resourceVersion"] = str(deleted.mod_revision)
        return obj

    def _check_preconditions(self, name: str, metadata: Obj, preconditions: dict[str, str]) -> None:
        uid = preconditions.get("uid")
        if uid and uid != metadata.get("uid"):
            raise errors.conflict(
                self.resource.group,
                self.resource.plural,
                name,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {metadata.get('uid')}",
            )
        rv = preconditions.get("resourceVersion")
        if rv and rv != metadata.get("resourceVersion"):
            raise errors.conflict(
                self.resource.group,
                self.resource.plural,
                name,
                f"Precondition failed: ResourceVersion in precondition: {rv}, "
                f"ResourceVersion in object meta: {metadata.get('resourceVersion')}",
            )

    # -- watch -------------------------------------------------------------------------------

    async def watch(
        self,
        namespace: str | None,
        *,
        resource_version: str = "",
        selection: Selection | None = None,
        bookmarks: bool = False,
    ) -> WatchStream:
        """Events after ``resource_version``; for "" or "0", ADDED for current objects first."""
        selection = selection or Selection()
        namespace = namespace or _namespace_from(selection)
        prefix = self.resource.prefix(namespace)
        if resource_version in ("", "0"):
            page = await self.list(namespace, selection=selection)
            after = int(page.resource_version)
            initial = page.items
        else:
            after = _parse_revision(resource_version)
            initial = []
        try:
            accept = None if selection.empty else functools.partial(self._wanted, selection=selection)
            stream = self.store.watch(
                prefix, after_revision=after, bookmarks=bookmarks, accept=accept, route=self._route(selection)
            )
        except store_errors.Expired as exc:
            raise errors.gone(f"too old resource version: {after} ({exc.compact_revision})") from None
        return WatchStream(self._events(stream, initial, selection), stream)

    async def _events(self, stream: Any, initial: _Objs, selection: Selection) -> AsyncIterator[WatchEvent]:
        try:
            for obj in initial:
                yield WatchEvent("ADDED", obj)
            async for event in stream:
                converted = self._convert(event, selection)
                if converted is not None:
                    yield converted
        except store_errors.Expired as exc:
            raise errors.gone(f"too old resource version: {exc.compact_revision}") from None
        finally:
            stream.close()

    def _convert(self, event: Event, selection: Selection) -> WatchEvent | None:
        if event.type is EventType.BOOKMARK:
            bookmark = {
                "kind": self.resource.kind,
                "apiVersion": self.resource.api_version,
                "metadata": {"resourceVersion": str(event.revision)},
            }
            return WatchEvent("BOOKMARK", bookmark)
        if selection.empty:
            return self._event(event)
        # Matching reads the labels and fields worked out once per event for every watcher; only a
        # watcher that gets the event decodes the object (its own copy, which it may change).
        matches = selection.matches_selectable(self._selectable(event))
        if event.type is EventType.MODIFIED and event.prev_value is not None:
            matched = selection.matches_selectable(self._selectable(event, previous=True))
            if matched and not matches:
                # It left the selection: to this watcher it is gone.
                return WatchEvent(
                    "DELETED", _event_object(event, self.storage_api_version and self.resource.api_version)
                )
            if matches and not matched:
                return WatchEvent(
                    "ADDED", _event_object(event, self.storage_api_version and self.resource.api_version)
                )
        if not matches:
            return None
        return self._event(event)

    def _event(self, event: Event) -> WatchEvent:
        """The event as stored; its JSON line comes from :meth:`_frame` if a watcher asks for it."""
        version = self.storage_api_version and self.resource.api_version
        return WatchEvent(str(event.type), event=event, api_version=version, framer=self._frame)

    def _frame(self, event: Event) -> bytes:
        """The JSON watch line of ``event``, shared by the HTTP watchers of this version. Kept in a
        bounded cache of the latest events, not on the event: the store's history retains events, and
        a line per event there doubled what the history holds (and every in-process watcher paid for
        building lines nobody read)."""
        key = (event.revision, event.key)
        line = self._frames.get(key)
        if line is None:
            if self.storage_api_version is None:
                line = _event_frame(event)
            else:
                obj = _event_object(event, self.resource.api_version)
                line = objects.encode({"type": event.type.value, "object": obj}) + b"\n"
            self._frames[key] = line
            if len(self._frames) > FRAME_CACHE:
                del self._frames[next(iter(self._frames))]  # the oldest
        return line

    def _wanted(self, event: Event, *, selection: Selection) -> bool:
        """Whether a watcher with ``selection`` gets ``event`` in some form (see :meth:`_convert`);
        the store asks as it publishes, so watchers of other objects are not even woken."""
        if selection.matches_selectable(self._selectable(event)):
            return True
        return (
            event.type is EventType.MODIFIED
            and event.prev_value is not None
            and selection.matches_selectable(self._selectable(event, previous=True))
        )

    def _route(self, selection: Selection) -> Route | None:
        """For a watch whose field selector pins a field (``spec.nodeName=n``, ``metadata.name=x``): the
        router of that field and the value, so the store finds such watches by value."""
        fields = selection.fields
        if fields is None:
            return None
        for requirement in fields.requirements:
            if requirement.operator == selectors.EQUALS:
                return self._router(requirement.field), requirement.value
        return None

    def _router(self, field: str) -> Router:
        """The values of ``field`` an event concerns: the object's, and the replaced version's (a watcher
        whose object left its selection still hears of it, as a DELETED)."""
        router = self._routers.get(field)
        if router is None:

            def route(event: Event) -> set[str]:
                values = {self._selectable(event)[1].get(field, "")}
                if event.type is EventType.MODIFIED and event.prev_value is not None:
                    values.add(self._selectable(event, previous=True)[1].get(field, ""))
                return values

            router = self._routers[field] = route
        return router

    def _selectable(self, event: Event, *, previous: bool = False) -> Selectable:
        """The labels and selectable fields of an event's object (or of the version it replaced), shared
        by every watcher with a selector. Decoding per watcher made the 100 kubelets of a 100-node
        cluster (each watching ``spec.nodeName=<node>``) decode every pod event 200 times. Kept in a
        bounded cache of the latest events rather than on the event, which the store's history retains."""
        key = (event.revision, event.key, previous)
        found = self._selectables.get(key)
        if found is None:
            value = (event.prev_value or b"{}") if previous else event.value
            found = self._selectables[key] = selectable(self.resource, objects.decode(value))
            if len(self._selectables) > SELECTABLE_CACHE:
                del self._selectables[next(iter(self._selectables))]  # the oldest
        return found


class WatchStream:
    """The events of one watch, and whether more are already waiting (so a writer can batch them)."""

    def __init__(self, events: AsyncIterator[WatchEvent], source: Any) -> None:
        self._events = events
        self._source = source

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> WatchEvent:
        return await self._events.__anext__()

    def ready(self) -> bool:
        """Whether the store has already buffered more events for this watch."""
        return bool(getattr(self._source, "backlog", 0))

    async def aclose(self) -> None:
        await self._events.aclose()  # type: ignore[attr-defined]


class _Unchanged(Exception):
    """An update that changes nothing is not written (no new resourceVersion, no event)."""


def _stamped(obj: Obj, api_version: str | None = None) -> Callable[[int], bytes]:
    """The value for the store: the object with its resourceVersion set to the write's revision (and,
    for a custom resource, the apiVersion of its storage version)."""

    def encode(revision: int) -> bytes:
        obj["metadata"]["resourceVersion"] = str(revision)
        if api_version is None or obj.get("apiVersion") == api_version:
            return objects.encode(obj)
        return objects.encode({**obj, "apiVersion": api_version})

    return encode


def _event_object(event: Event, api_version: str | None = None) -> Obj:
    obj: Obj = objects.decode(event.value)
    if api_version:
        obj["apiVersion"] = api_version
    if event.type is EventType.DELETED:
        # A deleted object is reported at the revision of its deletion, as etcd-backed watches do.
        obj["metadata"]["resourceVersion"] = str(event.revision)
    return obj


def selectable(resource: ResourceDef, obj: Obj) -> Selectable:
    """What selectors read of ``obj``: its labels and its selectable fields."""
    labels = (obj.get("metadata") or {}).get("labels")
    fields = selectors.field_set(resource.group, resource.kind, obj)
    custom = resource.extra.get("selectable_fields")
    if isinstance(custom, tuple):
        for path in custom:  # a CRD version's selectableFields
            fields[path] = _field_text(obj, path)
    return labels, fields


def _field_text(obj: Obj, path: str) -> str:
    """A selectable field's value as selectors compare it: strings as they are, booleans and numbers as
    JSON writes them, a missing field as ``""``."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _event_frame(event: Event) -> bytes:
    """The JSON watch line, built from the stored bytes without re-encoding when possible."""
    value = objects.encode(_event_object(event)) if event.type is EventType.DELETED else event.value
    return b'{"type":"' + event.type.value.encode() + b'","object":' + value + b"}\n"


def _parse_revision(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{text}"') from None
    if value < 0:
        raise errors.bad_request(f'invalid resource version "{text}"')
    return value


def _namespace_from(selection: Selection) -> str | None:
    """``metadata.namespace=X`` in a field selector narrows a list to one namespace's keys."""
    if selection.fields is None:
        return None
    return selection.fields.requires_exact_match("metadata.namespace") or None
