"""Mounted ConfigMaps and Secrets follow their objects through watches, not polling.

A pod's configMap, secret and projected volumes are files the kubelet writes (see
:mod:`kbox.kubelet.volumes`); when the object behind them changes, the pod must re-sync so the files
are rewritten (atomic swap, running containers see the new content). Instead of re-reading every such
volume of every running pod every few seconds, the kubelet keeps an index from ``(kind, namespace,
name)`` to the pods that mount it, and shared informers on ConfigMaps and Secrets turn each change
into one re-sync of exactly those pods.

The informers start lazily, on the first pod that mounts such an object: a node (or a thousand
simulated ones) without such pods watches nothing. With a factory shared between kubelets (and
controllers), one watch per kind serves the whole process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kbox.client import cache, interface
from kbox.client.informer import InformerFactory, Registration

_log = logging.getLogger(__name__)
Obj = dict[str, Any]
Ref = tuple[str, str, str]  # ("configmaps" or "secrets", namespace, name)

SECRETS = interface.Resource("", "v1", "secrets")
_RESOURCES = {"configmaps": interface.CONFIGMAPS, "secrets": SECRETS}


def references(pod: Obj) -> set[Ref]:
    """The ConfigMaps and Secrets whose content ``pod``'s volumes hold."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    found: set[Ref] = set()

    def add(source: Obj | None, kind: str, key: str) -> None:
        name = (source or {}).get(key)
        if name:
            found.add((kind, namespace, str(name)))

    for volume in (pod.get("spec") or {}).get("volumes") or []:
        add(volume.get("configMap"), "configmaps", "name")
        add(volume.get("secret"), "secrets", "secretName")
        for source in (volume.get("projected") or {}).get("sources") or []:
            add(source.get("configMap"), "configmaps", "name")
            add(source.get("secret"), "secrets", "name")
    return found


class ConfigWatch:
    """Calls ``on_change(uid)`` for each pod mounting a ConfigMap or Secret that changed."""

    def __init__(self, factory: InformerFactory, on_change: Callable[[str], None]) -> None:
        self._factory = factory
        self._on_change = on_change
        self._pods: dict[Ref, set[str]] = {}
        self._refs: dict[str, set[Ref]] = {}
        self._registrations: dict[str, Registration] = {}

    def track(self, uid: str, pod: Obj) -> None:
        """Index ``pod``'s references (call on every add or update of the pod)."""
        refs = references(pod)
        old = self._refs.get(uid, set())
        if refs == old:
            return
        for ref in old - refs:
            self._unlink(uid, ref)
        for ref in refs - old:
            self._pods.setdefault(ref, set()).add(uid)
            self._watch(ref[0])
        if refs:
            self._refs[uid] = refs
        else:
            self._refs.pop(uid, None)

    def forget(self, uid: str) -> None:
        for ref in self._refs.pop(uid, set()):
            self._unlink(uid, ref)

    def close(self) -> None:
        """Stop receiving notifications (the factory's owner stops the informers)."""
        for registration in self._registrations.values():
            registration.remove()
        self._registrations.clear()

    @property
    def watched(self) -> set[str]:
        return set(self._registrations)

    def _unlink(self, uid: str, ref: Ref) -> None:
        pods = self._pods.get(ref)
        if pods is not None:
            pods.discard(uid)
            if not pods:
                del self._pods[ref]

    def _watch(self, kind: str) -> None:
        if kind in self._registrations:
            return
        informer = self._factory.informer(_RESOURCES[kind])

        def changed(obj: Obj | cache.DeletedFinalStateUnknown) -> None:
            if isinstance(obj, cache.DeletedFinalStateUnknown):
                namespace, name = cache.split_key(obj.key)
            else:
                metadata = obj.get("metadata") or {}
                namespace, name = metadata.get("namespace"), metadata.get("name", "")
            for uid in tuple(self._pods.get((kind, namespace or "", name), ())):
                self._on_change(uid)

        def updated(old: Obj, new: Obj) -> None:
            if (old.get("metadata") or {}).get("resourceVersion") != (new.get("metadata") or {}).get(
                "resourceVersion"
            ):
                changed(new)

        self._registrations[kind] = informer.add_handler(on_add=changed, on_update=updated, on_delete=changed)
        self._factory.start()
        _log.debug("kubelet watches %s for mounted volumes", kind)
