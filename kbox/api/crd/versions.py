"""Kubernetes' "kube-aware" ordering of version names (``CompareKubeAwareVersionStrings``).

Discovery lists a CRD's versions in this order and the first is the group's preferred version: GA
versions first (``v2`` before ``v1``), then betas (``v1beta2`` before ``v1beta1``), then alphas, then
names that do not look like Kubernetes versions, alphabetically.
"""

from __future__ import annotations

import re

_VERSION = re.compile(r"^v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?$")
_LEVEL = {None: 0, "beta": 1, "alpha": 2}


def priority(name: str) -> tuple[int, int, int, str]:
    """A sort key: sorting ascending puts the highest-priority version first."""
    match = _VERSION.match(name)
    if match is None:
        return (3, 0, 0, name)
    major = int(match.group(1))
    minor = int(match.group(3) or 0)
    return (_LEVEL[match.group(2)], -major, -minor, "")


def by_priority(names: list[str]) -> list[str]:
    return sorted(names, key=priority)
