"""The helpers the workload controllers share: claiming by controller reference (kbox.controllers.refmanager:
release of owned objects that stopped matching, adoption of orphans only after a fresh GET of the owner, the
ownerReferences patch with its resourceVersion precondition, 404/409 skipped, other owners untouched, the
owner's keys for an event), the slow-start batches and availability requeue of kbox.controllers.podutil, the
status patch and selector rule of kbox.controllers.meta. The controllers that use them are covered end to end
in tests/component/controllers/."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from kbox.client.interface import PODS, REPLICASETS, Client, Obj, Resource, StatusError
from kbox.controllers import meta, podutil, refmanager
from kbox.controllers.expectations import Expectations

OWNER: Obj = {
    "metadata": {"name": "web", "namespace": "ns", "uid": "rs-uid", "resourceVersion": "5"},
    "spec": {"selector": {"matchLabels": {"app": "web"}}},
}
REF = meta.owner_reference(OWNER, api_version="apps/v1", kind="ReplicaSet")


class FakeClient:
    """Records get and patch calls; ``owner`` is what a GET of the owner returns (None: 404);
    ``failures`` maps an object name to the status code its patch fails with."""

    def __init__(self, owner: Obj | None = OWNER, failures: dict[str, int] | None = None) -> None:
        self.owner = owner
        self.failures = failures or {}
        self.gets: list[str] = []
        self.patches: list[tuple[Resource, str, Any, dict[str, Any]]] = []

    async def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> Obj:
        self.gets.append(name)
        if self.owner is None:
            raise StatusError("not found", 404, "NotFound")
        return self.owner

    async def patch(self, resource: Resource, name: str, patch: Any, **options: Any) -> Obj:
        self.patches.append((resource, name, patch, options))
        if name in self.failures:
            raise StatusError("nope", self.failures[name], "Failed")
        return {
            "metadata": {"name": name, **patch.get("metadata", {})},
            **{k: v for k, v in patch.items() if k != "metadata"},
        }


def pod(name: str, labels: dict[str, str], *, refs: list[Obj] | None = None, **metadata: Any) -> Obj:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"{name}-uid",
            "resourceVersion": "7",
            "labels": labels,
            "ownerReferences": refs or [],
            **metadata,
        }
    }


async def claim(client: FakeClient, candidates: list[Obj], owner: Obj = OWNER, **options: Any) -> list[Obj]:
    selector = meta.selector_of(owner)
    assert selector is not None
    return await refmanager.claim(
        cast(Client, client),
        PODS,
        candidates,
        owner=owner,
        owner_resource=REPLICASETS,
        owner_ref=REF,
        selector=selector,
        **options,
    )


async def test_claim_keeps_owned_releases_strays_adopts_orphans_and_leaves_others_alone() -> None:
    other = {**REF, "uid": "other-uid", "name": "other"}
    keeper = pod("keeper", {"app": "web"}, refs=[REF])
    stray = pod("stray", {"app": "db"}, refs=[REF, {"kind": "Thing", "uid": "u2", "name": "t"}])
    orphan = pod("orphan", {"app": "web"}, refs=[{"kind": "Thing", "uid": "u2", "name": "t"}])
    foreign = pod("foreign", {"app": "web"}, refs=[other])
    leaving = pod("leaving", {"app": "web"}, deletionTimestamp="2026-01-01T00:00:00Z")
    client = FakeClient()
    claimed = await claim(client, [keeper, stray, orphan, foreign, leaving])
    assert [p["metadata"]["name"] for p in claimed] == ["keeper", "orphan"]
    assert claimed[0] is keeper
    assert client.gets == ["web"]  # one fresh GET before adopting, none for the rest
    released, adopted = client.patches
    assert released[1] == "stray"
    assert released[2] == {
        "metadata": {"ownerReferences": [{"kind": "Thing", "uid": "u2", "name": "t"}], "resourceVersion": "7"}
    }
    assert adopted[1] == "orphan"
    assert adopted[2]["metadata"]["ownerReferences"] == [{"kind": "Thing", "uid": "u2", "name": "t"}, REF]
    assert adopted[2]["metadata"]["resourceVersion"] == "7"


async def test_release_of_the_last_reference_removes_the_field() -> None:
    client = FakeClient()
    await refmanager.release(cast(Client, client), PODS, pod("p", {}, refs=[REF]), OWNER)
    assert client.patches[0][2] == {"metadata": {"ownerReferences": None, "resourceVersion": "7"}}


@pytest.mark.parametrize(
    "fresh",
    [
        None,
        {"metadata": {"uid": "new-uid"}},
        {"metadata": {"uid": "rs-uid", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
    ],
    ids=["gone", "replaced", "deleting"],
)
async def test_no_adoption_unless_a_fresh_get_shows_the_same_owner_alive(fresh: Obj | None) -> None:
    client = FakeClient(owner=fresh)
    assert await claim(client, [pod("orphan", {"app": "web"})]) == []
    assert client.gets == ["web"] and client.patches == []


async def test_an_owner_being_deleted_keeps_what_it_owns_and_adopts_nothing() -> None:
    deleting = {**OWNER, "metadata": {**OWNER["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    stray = pod("stray", {"app": "db"}, refs=[REF])
    client = FakeClient()
    assert await claim(client, [stray, pod("orphan", {"app": "web"})], owner=deleting) == [stray]
    assert client.gets == [] and client.patches == []


async def test_conflicts_and_vanished_objects_are_skipped_other_errors_raise() -> None:
    orphans = [pod("conflict", {"app": "web"}), pod("gone", {"app": "web"}), pod("fine", {"app": "web"})]
    client = FakeClient(failures={"conflict": 409, "gone": 404})
    claimed = await claim(client, orphans)
    assert [p["metadata"]["name"] for p in claimed] == ["fine"]
    with pytest.raises(StatusError):
        await claim(FakeClient(failures={"fine": 500}), orphans[2:])


async def test_adoption_filters_and_extra_changes() -> None:
    client = FakeClient()
    claimed = await claim(
        client,
        [pod("web-0", {"app": "web"}), pod("other", {"app": "web"})],
        adoptable=lambda p: p["metadata"]["name"].startswith("web-"),
        adopt_changes=lambda p: {"finalizers": ["f"]},
    )
    assert [p["metadata"]["name"] for p in claimed] == ["web-0"]
    assert client.patches[0][2]["metadata"]["finalizers"] == ["f"]


class FakeIndexer:
    def __init__(self, objs: list[Obj]) -> None:
        self.objs = objs

    def by_index(self, index: str, value: str) -> list[Obj]:
        return [o for o in self.objs if o["metadata"]["namespace"] == value]


class FakeInformer:
    def __init__(self, objs: list[Obj]) -> None:
        self.indexer = FakeIndexer(objs)


def test_owner_keys() -> None:
    owners = cast(
        Any,
        FakeInformer(
            [
                OWNER,
                {
                    **OWNER,
                    "metadata": {**OWNER["metadata"], "name": "db", "uid": "x"},
                    "spec": {"selector": {"matchLabels": {"app": "db"}}},
                },
            ]
        ),
    )

    def keys(obj: Obj, **options: Any) -> list[str]:
        return refmanager.owner_keys(
            obj, kind="ReplicaSet", group="apps", owners=owners, selector_of=meta.selector_of, **options
        )

    assert keys(pod("p", {}, refs=[REF])) == ["ns/web"]
    assert keys(pod("p", {}, refs=[{**REF, "apiVersion": "example.com/v1"}])) == []
    assert keys(pod("p", {}, refs=[{**REF, "kind": "Job"}])) == []
    assert keys(pod("p", {"app": "db"})) == ["ns/db"]
    assert keys(pod("p", {"app": "db"}), orphans=False) == []
    assert keys(pod("p", {"app": "db"}, deletionTimestamp="2026-01-01T00:00:00Z")) == []


def test_selector_rule_and_status_diff() -> None:
    assert meta.selector_of(OWNER) is not None
    assert meta.selector_of({"spec": {"selector": {}}}) is None  # would select everything
    assert meta.selector_of({"spec": {}}) is None  # selects nothing
    assert meta.selector_of({"spec": {"selector": {"matchLabels": {"bad key!": "x"}}}}) is None
    cache = meta.SelectorCache()
    assert cache(OWNER) is cache(OWNER)
    assert meta.status_diff({"a": 1, "b": 2, "conditions": []}, {"a": 1, "c": 3}) == {
        "c": 3,
        "b": None,
        "conditions": None,
    }
    assert meta.status_diff({"conditions": []}, {}, keep=("conditions",)) == {}


async def test_patch_status_merges_into_the_status_subresource_and_ignores_404() -> None:
    client = FakeClient()
    await meta.patch_status(cast(Client, client), REPLICASETS, OWNER, {"replicas": 2})
    resource, name, patch, options = client.patches[0]
    assert (resource, name, patch) == (REPLICASETS, "web", {"status": {"replicas": 2}})
    assert options["subresource"] == "status" and options["namespace"] == "ns"
    assert (
        await meta.patch_status(cast(Client, FakeClient(failures={"web": 404})), REPLICASETS, OWNER, {})
        is None
    )


async def test_slow_start_doubles_batches_and_stops_at_the_first_failing_one() -> None:
    batches: list[int] = []
    running = 0

    async def create(item: int) -> Obj:
        nonlocal running
        running += 1
        await asyncio.sleep(0)
        batches.append(running)
        running -= 1
        if item == 4:
            raise StatusError("quota", 403, "Forbidden")
        return {"metadata": {"name": str(item)}}

    seen: list[str] = []
    created, failure = await podutil.slow_start(
        list(range(20)), create, on_created=lambda o: seen.append(o["metadata"]["name"])
    )
    assert isinstance(failure, StatusError)
    assert [o["metadata"]["name"] for o in created] == seen == ["0", "1", "2", "3", "5", "6"]
    assert max(batches) == 4  # batches of 1, 2, 4; the third failed, so no batch of 8
    assert len(batches) == 7


def test_availability_and_requeue() -> None:
    def ready(since: str | None) -> Obj:
        condition = {"type": "Ready", "status": "True", "lastTransitionTime": since}
        return {"metadata": {}, "status": {"phase": "Running", "conditions": [condition]}}

    now = meta.epoch("2026-01-01T00:00:10Z")
    assert now is not None
    old, new = ready("2026-01-01T00:00:00Z"), ready("2026-01-01T00:00:08Z")
    assert podutil.is_available(old, 5, now) and not podutil.is_available(new, 5, now)
    assert podutil.next_available([old, new], 5, now) == pytest.approx(3 + podutil.AVAILABILITY_SLACK)
    assert podutil.next_available([old], 5, now) is None
    assert podutil.ready_since(ready(None)) == 0.0
    assert not podutil.is_active({"metadata": {}, "status": {"phase": "Failed"}})


def test_expectations_wait_for_the_cache() -> None:
    class Pods:
        def __init__(self) -> None:
            self.resource_version = "3"
            self.indexer: dict[str, Obj] = {}

    pods = cast(Any, Pods())
    expectations = Expectations(timeout=60)
    made = {"metadata": {"name": "a", "namespace": "ns", "uid": "u", "resourceVersion": "4"}}
    expectations.created("ns/web", made)
    assert not expectations.satisfied("ns/web", pods)
    pods.resource_version = "4"
    assert expectations.satisfied("ns/web", pods)
