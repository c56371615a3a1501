"""Who is asking: the authenticated user of the request being served.

The authentication middleware (``kbox/api/app.py``) sets :data:`current_user` for the length of one
request; code deeper in the pipeline (SelfSubjectReview, access reviews) reads it without the user being
threaded through every call. In-process components (``LocalClient``) are kbox's own control plane and
run as the administrator, which is also the default when nothing set the variable.

kbox has no RBAC: every authenticated user may do everything. The user only answers "who am I".
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user, shaped as Kubernetes' ``UserInfo`` (username, uid, groups, extra)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)

    def to_json(self) -> dict[str, object]:
        """``status.userInfo`` of a SelfSubjectReview (empty fields left out, as Kubernetes does)."""
        body: dict[str, object] = {"username": self.username}
        if self.uid:
            body["uid"] = self.uid
        if self.groups:
            body["groups"] = list(self.groups)
        if self.extra:
            body["extra"] = {key: list(values) for key, values in self.extra.items()}
        return body


ADMIN = UserInfo("kubernetes-admin", groups=("system:masters", "system:authenticated"))
"""The holder of the cluster's bearer token (the kubeconfig user): an administrator."""

current_user: contextvars.ContextVar[UserInfo] = contextvars.ContextVar("kbox_current_user", default=ADMIN)


def user() -> UserInfo:
    """The user of the request being served (the administrator for in-process calls)."""
    return current_user.get()


@contextlib.contextmanager
def acting_as(who: UserInfo) -> Iterator[None]:
    """Serve the block as ``who``."""
    token = current_user.set(who)
    try:
        yield
    finally:
        current_user.reset(token)
