"""Small groups: coordination.k8s.io (Leases), discovery.k8s.io (EndpointSlices), events.k8s.io (Events)."""

from __future__ import annotations

from typing import Any

from kbox.api import errors, validation
from kbox.api.errors import FieldError
from kbox.api.resource import ResourceDef
from kbox.api.strategy import Strategy

Obj = dict[str, Any]


class LeaseStrategy(Strategy):
    pass


class EndpointSliceStrategy(Strategy):
    def validate(self, obj: Obj) -> list[FieldError]:
        types = ["IPv4", "IPv6", "FQDN"]
        if obj.get("addressType") not in types:
            return [errors.not_supported("addressType", obj.get("addressType"), types)]
        return []


class EventsV1Strategy(Strategy):
    def name_errors(self, name: str) -> list[str]:
        return validation.path_segment_name(name)


RESOURCES = [
    ResourceDef("coordination.k8s.io", "v1", "Lease", "leases", True, LeaseStrategy()),
    ResourceDef("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, EndpointSliceStrategy()),
    ResourceDef("events.k8s.io", "v1", "Event", "events", True, EventsV1Strategy(), short_names=("ev",)),
]
