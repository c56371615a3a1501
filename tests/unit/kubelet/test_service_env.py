"""Service environment variables as the kubelet sets them: the ``kubernetes`` Service of ``default``
always, the pod's namespace's Services with enableServiceLinks, headless Services left out, and the
Docker-links form of every port. The variables inside a running container are checked on Docker in
tests/e2e/test_incluster_docker.py."""

from __future__ import annotations

from typing import Any

from kbox.kubelet import serviceenv

Obj = dict[str, Any]


def _service(name: str, namespace: str, ip: str, *ports: Obj) -> Obj:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": ip, "ports": list(ports)},
    }


KUBERNETES = _service("kubernetes", "default", "10.96.0.1", {"name": "https", "port": 443, "protocol": "TCP"})
REDIS = _service(
    "redis-primary",
    "team",
    "10.96.0.20",
    {"port": 6379, "protocol": "TCP"},
    {"name": "metrics", "port": 9121},
)
HEADLESS = _service("db", "team", "None", {"port": 5432})
ELSEWHERE = _service("web", "other", "10.96.0.30", {"port": 80})


def test_kubernetes_service_variables() -> None:
    chosen = serviceenv.chosen([KUBERNETES, REDIS, ELSEWHERE], namespace="other", enable_links=False)
    assert dict(serviceenv.variables(chosen)) == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443",
        "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443",
        "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
    }


def test_namespace_services_with_links() -> None:
    chosen = serviceenv.chosen([KUBERNETES, REDIS, HEADLESS, ELSEWHERE], namespace="team", enable_links=True)
    assert [s["metadata"]["name"] for s in chosen] == ["kubernetes", "redis-primary"]
    env = dict(serviceenv.variables(chosen))
    assert env["REDIS_PRIMARY_SERVICE_HOST"] == "10.96.0.20"
    assert env["REDIS_PRIMARY_SERVICE_PORT"] == "6379"
    assert env["REDIS_PRIMARY_SERVICE_PORT_METRICS"] == "9121"
    assert env["REDIS_PRIMARY_PORT"] == "tcp://10.96.0.20:6379"
    assert env["REDIS_PRIMARY_PORT_9121_TCP_ADDR"] == "10.96.0.20"
    assert not any(key.startswith(("DB_", "WEB_")) for key in env)


def test_a_namespace_service_named_kubernetes_wins_in_its_namespace() -> None:
    own = _service("kubernetes", "default", "10.96.0.1", {"port": 443})
    local = _service("kubernetes", "team", "10.96.0.99", {"port": 8443})
    chosen = serviceenv.chosen([own, local], namespace="team", enable_links=True)
    assert dict(serviceenv.variables(chosen))["KUBERNETES_SERVICE_HOST"] == "10.96.0.99"
    chosen = serviceenv.chosen([local, own], namespace="team", enable_links=False)
    assert dict(serviceenv.variables(chosen))["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
