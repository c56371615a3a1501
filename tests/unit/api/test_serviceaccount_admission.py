"""The ServiceAccount admission plugin on pod creates, through the pipeline (in-memory store, no HTTP):
the default account, the kube-api-access projected volume in kube-apiserver's shape mounted in every
container and init container, automountServiceAccountToken on the pod and on the account, a missing
account refused as kube-apiserver refuses it, mirror pods, image pull secrets, and the plugin turned
off. The pod and its kubelet-side token are in tests/component/api/test_service_account_tokens.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kbox.api import admission
from kbox.api.catalog import Catalog
from kbox.api.errors import StatusError
from kbox.api.pipeline import Pipeline
from kbox.resources import registry
from kbox.store.memory import MemoryStore

Obj = dict[str, Any]
PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture
async def catalog() -> AsyncIterator[Catalog]:
    store = MemoryStore()
    await store.start()
    catalog = Catalog(store, registry.builtin())
    namespaces = catalog.lookup("", "v1", "namespaces")
    assert namespaces is not None
    await namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    await _account(catalog, "default")
    yield catalog
    await store.close()


async def _account(catalog: Catalog, name: str, **fields: Any) -> None:
    accounts = catalog.lookup("", "v1", "serviceaccounts")
    assert accounts is not None
    await accounts.create(
        "default", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}, **fields}
    )


def _pod(name: str = "web", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox"}], **spec},
    }


async def _create(catalog: Catalog, pod: Obj) -> Obj:
    pipeline = Pipeline(catalog)
    return await pipeline.create(pipeline.resolve("", "v1", "pods"), "default", pod)


async def test_default_account_and_token_volume(catalog: Catalog) -> None:
    pod = _pod(initContainers=[{"name": "init", "image": "busybox"}])
    created = await _create(catalog, pod)
    spec = created["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    [volume] = spec["volumes"]
    assert re.fullmatch(r"kube-api-access-[a-z0-9]{5}", volume["name"])
    assert volume == {
        "name": volume["name"],
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }
    mount = {"name": volume["name"], "readOnly": True, "mountPath": PATH}
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert spec["initContainers"][0]["volumeMounts"] == [mount]


async def test_existing_mount_at_the_token_path_is_kept(catalog: Catalog) -> None:
    own = {"name": "mine", "mountPath": PATH}
    pod = _pod(
        containers=[
            {"name": "a", "image": "busybox", "volumeMounts": [own]},
            {"name": "b", "image": "busybox"},
        ],
        volumes=[{"name": "mine", "emptyDir": {}}],
    )
    spec = (await _create(catalog, pod))["spec"]
    assert spec["containers"][0]["volumeMounts"] == [own]
    [added] = [v for v in spec["volumes"] if v["name"] != "mine"]
    assert spec["containers"][1]["volumeMounts"] == [
        {"name": added["name"], "readOnly": True, "mountPath": PATH}
    ]
    # Every container mounting something at the path already: no volume at all.
    alone = _pod("alone", containers=[{"name": "a", "image": "busybox", "volumeMounts": [own]}])
    alone["spec"]["volumes"] = [{"name": "mine", "emptyDir": {}}]
    assert [v["name"] for v in (await _create(catalog, alone))["spec"]["volumes"]] == ["mine"]


async def test_automount_choice(catalog: Catalog) -> None:
    await _account(catalog, "quiet", automountServiceAccountToken=False)
    quiet = (await _create(catalog, _pod("a", serviceAccountName="quiet")))["spec"]
    assert "volumes" not in quiet
    assert quiet["containers"][0].get("volumeMounts") in (None, [])
    # The pod's choice wins over the account's, both ways.
    loud = (await _create(catalog, _pod("b", serviceAccountName="quiet", automountServiceAccountToken=True)))[
        "spec"
    ]
    assert loud["volumes"][0]["name"].startswith("kube-api-access-")
    off = (await _create(catalog, _pod("c", automountServiceAccountToken=False)))["spec"]
    assert "volumes" not in off


async def test_missing_account_is_forbidden(catalog: Catalog) -> None:
    with pytest.raises(StatusError) as refused:
        await _create(catalog, _pod(serviceAccountName="nope"))
    assert refused.value.code == 403
    assert refused.value.reason == "Forbidden"
    assert refused.value.message == (
        'pods "web" is forbidden: error looking up service account default/nope: serviceaccount "nope" not found'
    )


async def test_missing_default_account_is_waited_for_then_forbidden(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = catalog.lookup("", "v1", "serviceaccounts")
    assert accounts is not None
    await accounts.delete("default", "default")
    monkeypatch.setattr(admission, "DEFAULT_ACCOUNT_WAIT", (0.01, 0.01))
    with pytest.raises(StatusError) as refused:
        await _create(catalog, _pod())
    assert 'serviceaccount "default" not found' in refused.value.message


async def test_image_pull_secrets_come_from_the_account(catalog: Catalog) -> None:
    await _account(catalog, "puller", imagePullSecrets=[{"name": "registry"}])
    spec = (await _create(catalog, _pod(serviceAccountName="puller")))["spec"]
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    own = await _create(catalog, _pod("own", serviceAccountName="puller", imagePullSecrets=[{"name": "x"}]))
    assert own["spec"]["imagePullSecrets"] == [{"name": "x"}]


async def test_mirror_pods(catalog: Catalog) -> None:
    mirror = _pod("static")
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    spec = (await _create(catalog, mirror))["spec"]
    assert "volumes" not in spec  # no token for a mirror pod (the pod strategy still names "default")
    named = _pod("static2", serviceAccountName="default")
    named["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    with pytest.raises(StatusError, match="a mirror pod may not reference service accounts"):
        await _create(catalog, named)


async def test_plugin_turned_off(catalog: Catalog) -> None:
    catalog.admission_disabled.add("ServiceAccount")
    spec = (await _create(catalog, _pod(serviceAccountName="nope")))["spec"]
    assert spec["serviceAccountName"] == "nope"
    assert "volumes" not in spec


def test_existing_token_volume_is_reused() -> None:
    spec: Obj = {
        "containers": [{"name": "a", "image": "x"}],
        "volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": []}}],
    }
    admission.mount_token(spec)
    assert [v["name"] for v in spec["volumes"]] == ["kube-api-access-abcde"]
    assert spec["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-abcde"


def test_malformed_specs_are_left_to_validation() -> None:
    for spec in ({"containers": "x"}, {"containers": [1, None]}, {"volumes": "x", "containers": []}):
        admission.mount_token(spec)  # no exception: validation reports these
