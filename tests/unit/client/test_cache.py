"""The informer cache: keys (``ns/name``, ``name`` when cluster-scoped), objects stored as given, the
built-in namespace index and added indexes (node name, owner UID) kept current through add, update and
delete, indexes added late, and ``replace`` reporting what a re-list changed, with tombstones for objects
that vanished. Leaves the reflector and informers to the component tests."""

from __future__ import annotations

from typing import Any

import pytest

from kbox.client import cache


def pod(
    name: str,
    *,
    namespace: str | None = "default",
    node: str = "",
    rv: str = "1",
    owners: tuple[str, ...] = (),
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "resourceVersion": rv}
    if namespace:
        metadata["namespace"] = namespace
    if owners:
        metadata["ownerReferences"] = [{"uid": uid, "kind": "ReplicaSet", "name": uid} for uid in owners]
    return {"metadata": metadata, "spec": {"nodeName": node} if node else {}}


def test_keys_and_helpers() -> None:
    assert cache.key_of(pod("a")) == "default/a"
    assert cache.key_of({"metadata": {"name": "node-1"}}) == "node-1"
    assert cache.split_key("default/a") == ("default", "a")
    assert cache.split_key("node-1") == (None, "node-1")
    tombstone = cache.DeletedFinalStateUnknown("default/a", pod("a"))
    assert cache.key_of(tombstone) == "default/a"
    assert cache.deleted_object(tombstone) is tombstone.obj
    assert cache.deleted_object(tombstone.obj) is tombstone.obj


def test_objects_are_stored_as_given() -> None:
    indexer = cache.Indexer()
    a = pod("a")
    assert indexer.add(a) is None
    assert indexer.get("default/a") is a
    assert indexer.list()[0] is a
    assert indexer.by_index(cache.NAMESPACE, "default")[0] is a
    assert indexer.get("default/missing") is None
    assert "default/a" in indexer and len(indexer) == 1 and indexer.keys() == ["default/a"]


def test_namespace_index_follows_writes() -> None:
    indexer = cache.Indexer()
    indexer.add(pod("a", namespace="one"))
    indexer.add(pod("b", namespace="one"))
    indexer.add(pod("c", namespace="two"))
    indexer.add({"metadata": {"name": "node-1"}})  # cluster-scoped: not filed under a namespace
    assert sorted(cache.key_of(o) for o in indexer.by_index(cache.NAMESPACE, "one")) == ["one/a", "one/b"]
    assert sorted(indexer.index_values(cache.NAMESPACE)) == ["one", "two"]
    assert indexer.delete("one/a") is not None
    assert indexer.index_keys(cache.NAMESPACE, "one") == ["one/b"]
    indexer.delete(pod("b", namespace="one"))
    assert indexer.by_index(cache.NAMESPACE, "one") == []
    assert "one" not in indexer.index_values(cache.NAMESPACE)  # empty buckets are dropped
    assert indexer.delete("one/none") is None
    with pytest.raises(KeyError):
        indexer.by_index("no-such-index", "x")


def test_node_and_owner_indexes_move_with_updates() -> None:
    indexer = cache.Indexer(indexers={cache.NODE_NAME: cache.by_node_name})
    indexer.add(pod("a"))
    assert indexer.by_index(cache.NODE_NAME, "node-1") == []
    old = indexer.update(pod("a", node="node-1", rv="2"))
    assert old is not None and old["metadata"]["resourceVersion"] == "1"
    assert indexer.index_keys(cache.NODE_NAME, "node-1") == ["default/a"]
    indexer.update(pod("a", node="node-2", rv="3"))
    assert indexer.index_keys(cache.NODE_NAME, "node-1") == []
    assert indexer.index_keys(cache.NODE_NAME, "node-2") == ["default/a"]

    indexer.add(pod("b", owners=("rs-1", "rs-2")))
    indexer.add_index(cache.OWNER_UID, cache.by_owner_uid)  # late: built over what is cached
    assert indexer.index_keys(cache.OWNER_UID, "rs-2") == ["default/b"]
    indexer.update(pod("b", owners=("rs-2",), rv="2"))
    assert indexer.index_keys(cache.OWNER_UID, "rs-1") == []
    assert indexer.index_keys(cache.OWNER_UID, "rs-2") == ["default/b"]
    indexer.delete("default/b")
    assert indexer.index_keys(cache.OWNER_UID, "rs-2") == []


def test_add_index_twice() -> None:
    indexer = cache.Indexer()
    indexer.add_index(cache.NODE_NAME, cache.by_node_name)
    indexer.add_index(cache.NODE_NAME, cache.by_node_name)  # the same function again: a no-op
    with pytest.raises(ValueError, match="already exists"):
        indexer.add_index(cache.NODE_NAME, lambda obj: [])
    assert sorted(indexer.indexes) == [cache.NAMESPACE, cache.NODE_NAME]


def test_replace_reports_changes_and_rebuilds_indexes() -> None:
    indexer = cache.Indexer(indexers={cache.NODE_NAME: cache.by_node_name})
    kept, changed, gone = pod("kept", node="n1"), pod("changed", node="n1"), pod("gone", node="n1")
    for obj in (kept, changed, gone):
        indexer.add(obj)
    fresh = pod("new", node="n2")
    changes = indexer.replace([pod("kept", node="n1"), pod("changed", node="n2", rv="5"), fresh], "9")
    assert changes.added == [fresh]
    assert [
        (old["metadata"]["name"], new["metadata"]["resourceVersion"]) for old, new in changes.updated
    ] == [("changed", "5")]
    assert changes.deleted == [cache.DeletedFinalStateUnknown("default/gone", gone)]
    assert indexer.resource_version == "9"
    assert indexer.get("default/kept") is kept  # unchanged objects keep their dict
    assert sorted(indexer.keys()) == ["default/changed", "default/kept", "default/new"]
    assert indexer.index_keys(cache.NODE_NAME, "n1") == ["default/kept"]
    assert sorted(indexer.index_keys(cache.NODE_NAME, "n2")) == ["default/changed", "default/new"]
    empty = indexer.replace([], "10")
    assert len(empty.deleted) == 3 and len(indexer) == 0
    assert indexer.index_values(cache.NODE_NAME) == [] and indexer.index_values(cache.NAMESPACE) == []
