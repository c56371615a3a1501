"""The dashboard's pure parts: one-time tickets and sessions on an injected clock, the API path guard,
the watch-path guard, YAML documents and the merge patch an edit sends."""

from __future__ import annotations

import pytest

from kbox.addons.dashboard import manifests, proxy, watches
from kbox.addons.dashboard.sessions import SESSION_TTL, TICKET_TTL, Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_ticket_is_good_once_and_only_while_fresh() -> None:
    clock = Clock()
    sessions = Sessions(clock=clock)
    ticket = sessions.new_ticket("tok")
    assert sessions.redeem(ticket) == "tok"
    assert sessions.redeem(ticket) is None
    late = sessions.new_ticket("tok")
    clock.now += TICKET_TTL + 1
    assert sessions.redeem(late) is None
    assert sessions.redeem("made-up") is None


def test_sessions_expire_and_close() -> None:
    clock = Clock()
    sessions = Sessions(clock=clock)
    session = sessions.open("tok", "alice")
    assert sessions.get(session.id) is session
    assert sessions.get(None) is None and sessions.get("other") is None
    clock.now += SESSION_TTL + 1
    assert sessions.get(session.id) is None
    again = sessions.open("tok", "alice")
    sessions.close(again.id)
    assert sessions.get(again.id) is None


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("api/v1/pods", "/api/v1/pods"),
        ("/apis/apps/v1/deployments", "/apis/apps/v1/deployments"),
        ("api", "/api"),
        ("metrics", None),
        ("api/../metrics", None),
        ("apis-x/y", None),
    ],
)
def test_only_api_paths_are_forwarded(tail: str, expected: str | None) -> None:
    assert proxy.api_path(tail) == expected


def test_watch_paths_are_collections_of_the_api() -> None:
    assert watches.valid_path("/api/v1/namespaces/default/pods")
    assert not watches.valid_path("/healthz")
    assert not watches.valid_path("/api/v1/pods?watch=1")
    assert not watches.valid_path(7)


def test_documents_are_checked_before_anything_is_sent() -> None:
    docs = manifests.parse_documents("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n")
    assert [d["metadata"]["name"] for d in docs] == ["a"]
    for text, message in [
        ("", "no objects passed to apply"),
        ("- 1\n", "each YAML document must be a mapping"),
        ("kind: ConfigMap\n", "every object needs apiVersion and kind"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "ConfigMap: metadata.name is required"),
    ]:
        with pytest.raises(ValueError, match=message):
            manifests.parse_documents(text)


def test_an_edit_sends_only_what_changed() -> None:
    before = {"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "spec": {"n": 1, "list": [1, 2]}}
    after = {"metadata": {"name": "a", "labels": {"x": "1", "z": "3"}}, "spec": {"n": 1, "list": [1]}}
    assert manifests.merge_patch(before, after) == {
        "metadata": {"labels": {"y": None, "z": "3"}},
        "spec": {"list": [1]},
    }
    assert manifests.merge_patch(before, before) == {}


def test_the_yaml_shown_leaves_out_managed_fields() -> None:
    text = manifests.to_yaml({"kind": "X", "metadata": {"name": "a", "managedFields": [{"manager": "m"}]}})
    assert "managedFields" not in text and "name: a" in text
