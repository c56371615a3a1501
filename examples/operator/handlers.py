"""A small kopf operator: a Greeting gets a ConfigMap holding its message.

- create: make the ConfigMap ``<name>-greeting`` (owned by the Greeting, so the garbage collector removes
  it when the Greeting goes) and write ``status.message``;
- update of ``spec.name`` or ``spec.greeting``: rewrite the ConfigMap and ``status.message``;
- delete: kopf holds the Greeting with its finalizer until this handler ran, then removes the finalizer;
  the handler posts an Event saying goodbye.

Run it against a cluster with ``kopf run --standalone examples/operator/handlers.py`` (``KUBECONFIG``
points at the cluster; ``kbox start`` writes one). The test in tests/component/test_kopf_operator.py
runs it against an embedded kbox cluster.
"""

from __future__ import annotations

import os
from typing import Any

import kopf
from kubernetes import client, config

GROUP, VERSION, PLURAL = "example.kbox.dev", "v1", "greetings"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # $KUBECONFIG as it is now (the client reads it once, at import, for its default).
    config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    settings.posting.level = 20  # INFO: the goodbye Event is posted
    settings.watching.server_timeout = 60


def _message(spec: kopf.Spec) -> str:
    return f"{spec.get('greeting', 'Hello')}, {spec['name']}!"


def _configmap(name: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-greeting"},
        "data": {"message": message},
    }


@kopf.on.create(GROUP, VERSION, PLURAL)
def create(spec: kopf.Spec, name: str, namespace: str, patch: kopf.Patch, **_: Any) -> None:
    message = _message(spec)
    configmap = _configmap(name, message)
    kopf.adopt(configmap)  # owner reference to the Greeting
    client.CoreV1Api().create_namespaced_config_map(namespace, configmap)
    patch.status["message"] = message


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def update(spec: kopf.Spec, name: str, namespace: str, patch: kopf.Patch, **_: Any) -> None:
    message = _message(spec)
    client.CoreV1Api().patch_namespaced_config_map(
        f"{name}-greeting", namespace, {"data": {"message": message}}
    )
    patch.status["message"] = message


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete(body: kopf.Body, name: str, **_: Any) -> None:
    kopf.info(body, reason="Goodbye", message=f"Goodbye, {name}!")
