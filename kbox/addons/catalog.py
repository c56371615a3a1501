"""Every addon kbox has, and how each is built for a cluster.

An addon is listed here only when it really runs: ``kbox addons list`` and ``kbox start --addons``
offer exactly these names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbox.addons.manager import Addon

if TYPE_CHECKING:
    from kbox.cluster import Cluster


def addon_names() -> list[str]:
    """Names of the addons kbox can run, for option checking before a cluster exists."""
    return sorted(_DESCRIPTIONS)


_DESCRIPTIONS: dict[str, str] = {}
_COMPONENTS: dict[str, list[str]] = {}


def description(name: str) -> str:
    return _DESCRIPTIONS.get(name, "")


def components_of(name: str) -> list[str]:
    """Names of the addon's components (its pods in kube-system are named after them)."""
    return list(_COMPONENTS.get(name, []))


def addons_for(cluster: Cluster) -> dict[str, Addon]:
    """The addons bound to ``cluster`` (their components use its clients and settings)."""
    return {}
