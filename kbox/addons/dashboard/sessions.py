"""Who may use the dashboard: one-time login tickets and browser sessions, both holding a user's token.

The dashboard never has rights of its own: every read and write it makes for a browser carries the
bearer token that browser logged in with. A token reaches the server in one of two ways:

- ``kbox dashboard`` posts the profile's token (``Authorization: Bearer``) to ``/_/tickets`` and gets a
  one-time ticket back, short-lived and good for one use; it prints ``/login?ticket=...``. Opening that
  link trades the ticket for a session. The token itself never appears in a URL or a browser history.
- The login page posts a token the user pastes.

Either way the token is checked against the apiserver first (see ``upstream.Upstream.who_am_i``). A
session is a random id in an ``HttpOnly``, ``SameSite=Strict`` cookie, mapped here to the token; it
lives in memory only, so a restart of the kbox process logs everyone out (``kbox dashboard`` again).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

TICKET_TTL = 60.0
SESSION_TTL = 12 * 3600.0
MAX_TICKETS = 256
MAX_SESSIONS = 1024


@dataclass
class Session:
    """A logged-in browser: the token its requests carry, and who the apiserver says it is."""

    id: str
    token: str
    username: str
    expires: float


class Sessions:
    """Tickets and sessions in memory, expired lazily (``clock`` is injectable for tests)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._tickets: dict[str, tuple[str, float]] = {}
        self._sessions: dict[str, Session] = {}

    def new_ticket(self, token: str) -> str:
        """A one-time ticket standing for ``token`` for :data:`TICKET_TTL` seconds."""
        self._expire()
        if len(self._tickets) >= MAX_TICKETS:  # oldest first: dicts keep insertion order
            self._tickets.pop(next(iter(self._tickets)))
        ticket = secrets.token_urlsafe(24)
        self._tickets[ticket] = (token, self.clock() + TICKET_TTL)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The token behind ``ticket``, once; ``None`` if unknown, used or expired."""
        entry = self._tickets.pop(ticket, None)
        if entry is None or entry[1] < self.clock():
            return None
        return entry[0]

    def open(self, token: str, username: str) -> Session:
        self._expire()
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        session = Session(secrets.token_urlsafe(32), token, username, self.clock() + SESSION_TTL)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires < self.clock():
            self._sessions.pop(session_id, None)
            return None
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def _expire(self) -> None:
        now = self.clock()
        for ticket in [t for t, (_, expires) in self._tickets.items() if expires < now]:
            del self._tickets[ticket]
        for sid in [s for s, session in self._sessions.items() if session.expires < now]:
            del self._sessions[sid]
