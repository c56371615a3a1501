"""Shell completion for ``kbox get`` and ``kbox describe`` arguments, from the running cluster.

The first argument completes to resource types the server lists (plurals, and ``TYPE/NAME`` once a
slash is typed), later ones to object names of that type in the namespace given so far. Completion
must never get in the way: a cluster that is not running, slow (over two seconds) or failing simply
offers nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click
from click.shell_completion import CompletionItem

from kbox.cli.kube import session

TIMEOUT = 2.0


def complete_args(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """click's ``shell_complete`` callback for the ``ARGS`` of get and describe."""
    params = ctx.params
    typed: tuple[str, ...] = tuple(params.get("args") or ())
    try:
        words = asyncio.run(
            asyncio.wait_for(
                _candidates(params.get("profile"), params.get("namespace"), typed, incomplete), TIMEOUT
            )
        )
    except Exception:  # completion never fails loudly: no cluster, no answer, nothing offered
        return []
    return [CompletionItem(word) for word in words if word.startswith(incomplete)]


async def _candidates(
    profile: str | None, namespace: str | None, typed: tuple[str, ...], incomplete: str
) -> list[str]:
    async with session.connect(profile) as api:
        if not typed and "/" in incomplete:
            kind = incomplete.split("/", 1)[0]
            return [f"{kind}/{name}" for name in await _names(api, kind, namespace)]
        if not typed:
            resources = await api.resources()
            return sorted({r.plural for r in resources if r.preferred and "list" in r.verbs})
        return await _names(api, typed[0].split(",")[0], namespace)


async def _names(api: session.Api, kind: str, namespace: str | None) -> list[str]:
    info = await api.resolve(kind)
    listing: Any = await api.request("GET", info.path(namespace or api.namespace), params={"limit": "500"})
    return sorted((item.get("metadata") or {}).get("name", "") for item in (listing or {}).get("items") or [])
