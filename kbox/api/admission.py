"""Admission: checks that depend on other objects, run after decoding and before the store.

NamespaceLifecycle, as kube-apiserver enables it by default: an object cannot be created in a namespace
that does not exist (404) or that is being deleted (403). Service address allocation runs here too,
since it reads other Services.

ServiceAccount (plugin/pkg/admission/serviceaccount in kube-apiserver): a new pod runs as
``spec.serviceAccountName`` (``default`` when unset), which must exist (403 otherwise; ``default`` is
waited for a moment, since the ServiceAccounts controller makes it just after its namespace). Unless
the pod or its ServiceAccount sets ``automountServiceAccountToken: false``, the pod gets the projected
volume ``kube-api-access-<5 random>`` (a bound token, the cluster CA from ConfigMap ``kube-root-ca.crt``,
the namespace) mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container
and init container that does not mount something there already. Mirror pods may reference neither
ServiceAccounts nor secrets. An apiserver may run without the plugin (``Catalog.admission_disabled``),
as envtest runs kube-apiserver.

DefaultStorageClass: a new PersistentVolumeClaim without ``storageClassName`` gets the default class.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from kbox.api import errors, objects
from kbox.api.catalog import Catalog
from kbox.api.registry import GenericStore


async def admit_create(
    catalog: Catalog, generic: GenericStore, namespace: str | None, obj: dict[str, Any] | None
) -> None:
    """Refuse creates into a missing or terminating namespace; allocate a new Service's addresses;
    give a new pod its ServiceAccount and token volume (or refuse it)."""
    await _namespace_lifecycle(catalog, generic, namespace, obj)
    if obj is not None and generic.resource.group == "" and generic.resource.plural == "services":
        await catalog.service_allocator.allocate(generic, obj)
    if obj is not None and _is_claim(generic):
        await default_storage_class(catalog, obj)
        return
    if obj is not None and mutates_created(catalog, generic):
        if DEFAULT_TOLERATION_SECONDS not in catalog.admission_disabled:
            default_tolerations(catalog, obj)
        if SERVICE_ACCOUNT not in catalog.admission_disabled:
            await _service_account(catalog, namespace or "", obj)


def mutates_created(catalog: Catalog, generic: GenericStore) -> bool:
    """Whether admission changes a new object of this type (so a server-side apply that creates one
    must let admission see it): pods, while the ServiceAccount plugin runs, and claims (their class)."""
    resource = generic.resource
    if _is_claim(generic):
        return True  # DefaultStorageClass
    return (
        resource.group == ""
        and resource.plural == "pods"
        and not {SERVICE_ACCOUNT, DEFAULT_TOLERATION_SECONDS} <= catalog.admission_disabled
    )


async def _namespace_lifecycle(
    catalog: Catalog, generic: GenericStore, namespace: str | None, obj: dict[str, Any] | None
) -> None:
    resource = generic.resource
    if not resource.namespaced or namespace is None:
        return
    namespaces = catalog.lookup("", "v1", "namespaces")
    if namespaces is None:
        return
    try:
        ns = await namespaces.get(None, namespace)
    except errors.StatusError as exc:
        if exc.code == 404:
            raise errors.not_found("", "namespaces", namespace) from None
        raise
    if ns.get("metadata", {}).get("deletionTimestamp") or ns.get("status", {}).get("phase") == "Terminating":
        name = (obj or {}).get("metadata", {}).get("name", "")
        raise errors.StatusError(
            f'{resource.qualified_name} "{name}" is forbidden: unable to create new content in namespace '
            f"{namespace} because it is being terminated",
            403,
            "Forbidden",
            {
                "name": name,
                "group": resource.group,
                "kind": resource.plural,
                "causes": [
                    {
                        "reason": "NamespaceTerminating",
                        "message": f"namespace {namespace} is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            },
        )


# -- DefaultTolerationSeconds ----------------------------------------------------------------------

DEFAULT_TOLERATION_SECONDS = "DefaultTolerationSeconds"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"


def default_tolerations(catalog: Catalog, pod: dict[str, Any]) -> None:
    """plugin/pkg/admission/defaulttolerationseconds: a new pod without a NoExecute toleration of the
    not-ready or unreachable taint (a toleration with an empty key or effect counts) gets one with
    ``operator: Exists`` and the cluster's default tolerationSeconds (300 s), so taint-based eviction
    moves it off a failed node after five minutes rather than at once."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    if not isinstance(tolerations, list):
        return  # validation reports it
    seconds = {
        TAINT_NOT_READY: catalog.default_not_ready_toleration_seconds,
        TAINT_UNREACHABLE: catalog.default_unreachable_toleration_seconds,
    }
    added = []
    for key, value in seconds.items():
        covered = any(
            isinstance(t, dict)
            and (t.get("key") or "") in ("", key)
            and (t.get("effect") or "") in ("", "NoExecute")
            for t in tolerations
        )
        if not covered:
            added.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": value}
            )
    if added:
        spec["tolerations"] = [*tolerations, *added]


# -- DefaultStorageClass -------------------------------------------------------------------------

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def _is_claim(generic: GenericStore) -> bool:
    return generic.resource.group == "" and generic.resource.plural == "persistentvolumeclaims"


async def default_storage_class(catalog: Catalog, claim: dict[str, Any]) -> None:
    """A new claim that names no class (the field absent, not ``""``) gets the default StorageClass:
    the one annotated ``is-default-class: "true"``, the newest when several are (as Kubernetes 1.28+)."""
    spec = claim.get("spec")
    if not isinstance(spec, dict) or spec.get("storageClassName") is not None:
        return
    classes = catalog.lookup("storage.k8s.io", "v1", "storageclasses")
    if classes is None:
        return
    page = await classes.list(None)
    defaults = [
        c
        for c in page.items
        if str(((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION, "")).lower()
        == "true"
    ]
    if defaults:
        newest = max(
            defaults, key=lambda c: (c["metadata"].get("creationTimestamp") or "", c["metadata"]["name"])
        )
        spec["storageClassName"] = newest["metadata"]["name"]


# -- ServiceAccount ------------------------------------------------------------------------------

SERVICE_ACCOUNT = "ServiceAccount"
DEFAULT_ACCOUNT = "default"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION = 3607  # kube-apiserver's "warn only" bound token lifetime, as it injects it
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DEFAULT_ACCOUNT_WAIT = (0.1, 0.1, 0.2, 0.2, 0.2, 0.2, 0.5, 0.5)  # seconds between lookups of "default"


def token_volume(name: str) -> dict[str, Any]:
    """The projected volume the plugin adds (its shape in kube-apiserver, defaultMode 0644)."""
    return {
        "name": name,
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
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


async def _service_account(catalog: Catalog, namespace: str, pod: dict[str, Any]) -> None:
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec")
    if not isinstance(spec, dict) or not isinstance(metadata, dict):
        return  # validation reports it
    if MIRROR_ANNOTATION in (metadata.get("annotations") or {}):
        _check_mirror_pod(metadata.get("name", ""), spec)
        return
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_ACCOUNT
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    account = await _lookup_account(catalog, namespace, name)
    if account is None:
        raise _forbidden(
            metadata,
            f'error looking up service account {namespace}/{name}: serviceaccount "{name}" not found',
        )
    if _automount(account, spec):
        mount_token(spec, _volume_name)
    if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [
            {"name": ref.get("name", "")} for ref in account["imagePullSecrets"] if isinstance(ref, dict)
        ]


def _volume_name() -> str:
    return objects.generate_name(VOLUME_PREFIX)


def _automount(account: dict[str, Any], spec: dict[str, Any]) -> bool:
    """The pod's preference wins, then the ServiceAccount's; mounting is the default."""
    for choice in (spec.get("automountServiceAccountToken"), account.get("automountServiceAccountToken")):
        if isinstance(choice, bool):
            return choice
    return True


def mount_token(spec: dict[str, Any], new_name: Any = _volume_name) -> None:
    """Add the token volume (once) and mount it in each container without a mount at the token path."""
    volumes = spec.get("volumes")
    if volumes is not None and not isinstance(volumes, list):
        return
    existing = next(
        (
            v.get("name")
            for v in volumes or []
            if isinstance(v, dict) and str(v.get("name", "")).startswith(VOLUME_PREFIX)
        ),
        None,
    )
    name = existing or new_name()
    needed = False
    for kind in ("initContainers", "containers"):
        containers = spec.get(kind)
        if not isinstance(containers, list):
            continue
        for container in containers:
            if not isinstance(container, dict):
                continue
            mounts = container.get("volumeMounts")
            if mounts is None:
                mounts = container["volumeMounts"] = []
            if not isinstance(mounts, list):
                continue
            if any(isinstance(m, dict) and m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                continue
            mounts.append({"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH})
            needed = True
    if needed and existing is None:
        spec["volumes"] = [*(volumes or []), token_volume(name)]


async def _lookup_account(catalog: Catalog, namespace: str, name: str) -> dict[str, Any] | None:
    accounts = catalog.lookup("", "v1", "serviceaccounts")
    if accounts is None:
        return None
    waits = DEFAULT_ACCOUNT_WAIT if name == DEFAULT_ACCOUNT else ()
    for attempt in range(len(waits) + 1):
        if attempt:
            await asyncio.sleep(waits[attempt - 1])
        try:
            return copy.deepcopy(await accounts.get(namespace, name))
        except errors.StatusError as exc:
            if exc.code != 404:
                raise
    return None


def _check_mirror_pod(name: str, spec: dict[str, Any]) -> None:
    metadata = {"name": name}
    if spec.get("serviceAccountName") or spec.get("serviceAccount"):
        raise _forbidden(metadata, "a mirror pod may not reference service accounts")
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        if "secret" in volume:
            raise _forbidden(metadata, "a mirror pod may not reference secrets")
        for source in (volume.get("projected") or {}).get("sources") or []:
            if isinstance(source, dict) and "secret" in source:
                raise _forbidden(metadata, "a mirror pod may not reference secrets")
            if isinstance(source, dict) and "serviceAccountToken" in source:
                raise _forbidden(metadata, "a mirror pod may not use ServiceAccountToken volume projections")


def _forbidden(metadata: dict[str, Any], why: str) -> errors.StatusError:
    """kube-apiserver's admission refusal: ``pods "NAME" is forbidden: WHY``."""
    name = str(metadata.get("name") or metadata.get("generateName") or "")
    return errors.StatusError(
        f'pods "{name}" is forbidden: {why}', 403, "Forbidden", {"name": name, "kind": "pods"}
    )
