"""Continue tokens for paginated lists.

A token is opaque to clients: URL-safe base64 of a small JSON object holding the revision of the first
page and the last key returned, the shape kube-apiserver uses. Every later page is read at that same
revision, so a paginated list is one consistent snapshot even while writes go on; once that revision
leaves the retained history, the token has expired (410 Gone on the API).
"""

from __future__ import annotations

import base64
import binascii

import msgspec

from kbox.store import errors


class _Token(msgspec.Struct, frozen=True):
    rv: int
    start: str


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Token)


def encode(*, revision: int, last_key: str) -> str:
    """The token for the page after ``last_key`` at ``revision``."""
    raw = _encoder.encode(_Token(rv=revision, start=last_key))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, *, prefix: str) -> tuple[int, str]:
    """Return ``(revision, last_key)``; raise :class:`errors.InvalidContinue` for anything malformed."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        parsed = _decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise errors.InvalidContinue(f"invalid continue token: {exc}") from None
    if parsed.rv <= 0 or not parsed.start.startswith(prefix):
        raise errors.InvalidContinue("continue token does not belong to this list")
    return parsed.rv, parsed.start
