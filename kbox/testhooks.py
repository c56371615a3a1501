"""Fault injection for end-to-end tests of supervision, off unless ``KBOX_TEST_HOOKS=1``.

A test of ``kbox start`` cannot reach into the cluster process, so the hook is an API object: creating
or changing the ConfigMap ``kube-system/kbox-test-hooks`` with ``data.crash: <component>`` makes that
component's current run raise (``Supervisor.inject_crash``), exactly as if it had failed by itself:
the traceback is logged, the restart recorded and shown on its mirror pod. The process only watches
for it when started with the environment variable set, so no user cluster can be crashed this way.
"""

from __future__ import annotations

import logging
import os

from kbox import supervisor
from kbox.client.interface import CONFIGMAPS, Client, Obj, StatusError

_log = logging.getLogger(__name__)

ENV = "KBOX_TEST_HOOKS"
CONFIGMAP = "kbox-test-hooks"


def enabled() -> bool:
    return os.environ.get(ENV, "") == "1"


class TestHooks:
    """Watches ``kube-system/kbox-test-hooks`` and injects the crashes it asks for."""

    name = "test-hooks"

    def __init__(self, client: Client, supervised: supervisor.Supervisor) -> None:
        self.client = client
        self.supervisor = supervised
        self._watching = False
        self._done: set[str] = set()  # resourceVersions already acted on

    def healthy(self) -> bool:
        return self._watching

    async def run(self) -> None:
        _log.warning(
            "%s=1: test hooks are on (ConfigMap kube-system/%s can crash components)", ENV, CONFIGMAP
        )
        try:
            while True:
                listing = await self.client.list(
                    CONFIGMAPS, namespace="kube-system", field_selector=f"metadata.name={CONFIGMAP}"
                )
                for item in listing.get("items") or []:
                    self._done.add(item["metadata"]["resourceVersion"])  # old requests are not replayed
                self._watching = True
                try:
                    async for event in self.client.watch(
                        CONFIGMAPS,
                        namespace="kube-system",
                        field_selector=f"metadata.name={CONFIGMAP}",
                        resource_version=listing["metadata"]["resourceVersion"],
                    ):
                        if event.type in ("ADDED", "MODIFIED"):
                            self._act(event.object)
                except StatusError as exc:
                    if exc.code != 410:
                        raise
        finally:
            self._watching = False

    def _act(self, configmap: Obj) -> None:
        version = configmap["metadata"]["resourceVersion"]
        if version in self._done:
            return
        self._done.add(version)
        target = str((configmap.get("data") or {}).get("crash", "")).strip()
        if not target:
            return
        if self.supervisor.inject_crash(target):
            _log.warning("test hook: crashing component %s", target)
        else:
            _log.warning("test hook: no running component named %s", target)
