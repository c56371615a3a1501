"""Which endpoint a new connection (or UDP flow) of one Service port goes to.

A :class:`Balancer` holds the ready endpoints of one Service port and picks one per new connection:
round robin, or with ``sessionAffinity: ClientIP`` the endpoint this client IP got last time, for as long
as that endpoint stays ready and the affinity has not timed out (``sessionAffinityConfig.clientIP
.timeoutSeconds``, 10800 by default, refreshed on every use as kube-proxy does).

The proxier replaces the endpoint list in place when an EndpointSlice changes; connections already
relayed keep their endpoint (they hold the socket, not the balancer), so only new connections move.
An endpoint that stops being ready leaves the rotation at once, and affinities pointing at it are
dropped the next time they are looked up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

DEFAULT_AFFINITY_TIMEOUT = 10800.0


class Endpoint(NamedTuple):
    """An address and port that serves a Service port."""

    ip: str
    port: int


class Balancer:
    """The ready endpoints of one Service port, and the choice among them."""

    def __init__(
        self,
        name: str,
        *,
        affinity_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``affinity_timeout``: ``None`` for round robin, else ClientIP affinity for that many seconds."""
        self.name = name
        self.affinity_timeout = affinity_timeout
        self._clock = clock
        self._endpoints: tuple[Endpoint, ...] = ()
        self._ready: frozenset[Endpoint] = frozenset()
        self._next = 0
        self._affinity: dict[str, tuple[Endpoint, float]] = {}

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self._endpoints

    def set_endpoints(self, endpoints: Sequence[Endpoint]) -> None:
        """Replace the ready endpoints (order kept, duplicates dropped); the rotation continues."""
        unique = tuple(dict.fromkeys(endpoints))
        if unique == self._endpoints:
            return
        self._endpoints = unique
        self._ready = frozenset(unique)
        if self._next >= len(unique):
            self._next = 0

    def set_affinity(self, timeout: float | None) -> None:
        if timeout != self.affinity_timeout:
            self.affinity_timeout = timeout
            self._affinity.clear()

    def pick(self, client_ip: str, *, exclude: frozenset[Endpoint] = frozenset()) -> Endpoint | None:
        """The endpoint for a new connection from ``client_ip``; ``None`` when none is ready.

        ``exclude``: endpoints that just refused this connection (the relay retries elsewhere)."""
        endpoints = self._endpoints
        if not endpoints:
            return None
        now = self._clock() if self.affinity_timeout is not None else 0.0
        if self.affinity_timeout is not None:
            held = self._affinity.get(client_ip)
            if held is not None:
                endpoint, expires = held
                if expires > now and endpoint in self._ready and endpoint not in exclude:
                    self._affinity[client_ip] = (endpoint, now + self.affinity_timeout)
                    return endpoint
                del self._affinity[client_ip]
        for _ in range(len(endpoints)):
            index = self._next % len(endpoints)
            self._next = index + 1
            endpoint = endpoints[index]
            if endpoint not in exclude:
                if self.affinity_timeout is not None:
                    if len(self._affinity) > 65536:
                        self._expire(now)
                    self._affinity[client_ip] = (endpoint, now + self.affinity_timeout)
                return endpoint
        return None

    def _expire(self, now: float) -> None:
        self._affinity = {ip: held for ip, held in self._affinity.items() if held[1] > now}
