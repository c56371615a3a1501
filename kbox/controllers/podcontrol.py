"""Creating and deleting an owner's pods with the events Kubernetes records for it (pkg/controller's
``RealPodControl`` in shape), shared by the ReplicaSet, DaemonSet and Job controllers.

Each write is recorded on the owner, as ``kubectl describe`` shows it: ``SuccessfulCreate`` "Created
pod: <name>" or ``FailedCreate`` "Error creating: <reason>", ``SuccessfulDelete`` "Deleted pod: <name>"
or ``FailedDelete`` "Error deleting: <reason>". Deletes carry the pod's uid as a precondition
(:func:`kbox.controllers.meta.delete_exact`), so never hit a namesake made since the cache saw it; a pod
gone already records nothing. (The StatefulSet controller words its events differently, as upstream's.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kbox.client.interface import PODS, Client, Obj, StatusError
from kbox.controllers import meta

EventSink = Callable[[Obj, str, str, str], None]
"""``(owner, type, reason, message)``: the controller's event recorder (which may be switched off)."""


class PodControl:
    """Pod writes on behalf of an owner, each recorded as an event on the owner."""

    def __init__(self, client: Client, event: EventSink) -> None:
        self.client = client
        self.event = event

    async def create(self, owner: Obj, pod: Obj) -> Obj:
        """Create ``pod`` in the owner's namespace; the pod as created (a failure is raised)."""
        try:
            created: Obj = await self.client.create(PODS, pod, namespace=owner["metadata"]["namespace"])
        except StatusError as exc:
            self.event(owner, "Warning", "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        return created

    async def delete(self, owner: Obj, pod: Obj, **options: Any) -> bool:
        """Delete exactly ``pod``; False when it was gone or replaced already (a failure is raised)."""
        try:
            gone = await meta.delete_exact(self.client, PODS, pod, **options)
        except StatusError as exc:
            self.event(owner, "Warning", "FailedDelete", f"Error deleting: {exc.message}")
            raise
        if gone:
            self.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        return gone
