"""Every built-in resource type kbox serves, in discovery order."""

from __future__ import annotations

from kbox.api.resource import ResourceDef
from kbox.resources import apps, authentication, authorization, batch, core, misc, policy, storage


def builtin() -> list[ResourceDef]:
    return [
        *core.RESOURCES,
        *storage.RESOURCES,
        *apps.RESOURCES,
        *batch.RESOURCES,
        *misc.RESOURCES,
        *policy.RESOURCES,
        *authentication.RESOURCES,
        *authorization.RESOURCES,
    ]
