"""``kbox service`` through the installed command against ``kbox start --runtime fake``: NodePort URLs
(with ``--url`` and as a table), https for ports named so, and one-line errors for a missing Service,
headless and ExternalName Services, and a ClusterIP-only Service whose address this host does not have.
The URLs answering through kube-proxy is covered with Docker in tests/e2e/test_services_docker.py."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.component.cli.conftest import KboxCluster, one_line_error


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KboxCluster]:
    base = tmp_path_factory.mktemp("kbox-service")
    c = KboxCluster(home=base / "home", kbox_home=base / "kbox-home", profile="svctest")
    c.home.mkdir()
    try:
        c.ok("start", "--runtime", "fake", "--port", "0", timeout=180)
        yield c
    finally:
        c.kbox("delete", "--all", timeout=120)


MANIFEST = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 8443, targetPort: 8443}
---
apiVersion: v1
kind: Service
metadata: {name: inner}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: example.org}
"""


def test_service_urls(cluster: KboxCluster) -> None:
    ns = cluster.namespace("svc")
    cluster.kubectl_ok("apply", "-n", ns, "-f", "-", input=MANIFEST)
    web = json.loads(cluster.kubectl_ok("get", "service", "web", "-n", ns, "-o", "json"))
    node_ports = [p["nodePort"] for p in web["spec"]["ports"]]

    urls = cluster.ok("service", "web", "-n", ns, "--url").split()
    assert urls == [f"http://127.0.0.1:{node_ports[0]}", f"https://127.0.0.1:{node_ports[1]}"]

    table = cluster.ok("service", "web", "-n", ns)
    lines = table.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "TARGET", "PORT", "URL"]
    assert lines[1].split() == [ns, "web", "http/8080", f"http://127.0.0.1:{node_ports[0]}"]

    missing = one_line_error(cluster.kbox("service", "nope", "-n", ns))
    assert f'service "nope" was not found in namespace "{ns}"' in missing
    assert "headless" in one_line_error(cluster.kbox("service", "db", "-n", ns))
    assert "ExternalName for example.org" in one_line_error(cluster.kbox("service", "ext", "-n", ns))

    inner = json.loads(cluster.kubectl_ok("get", "service", "inner", "-n", ns, "-o", "json"))
    result = cluster.kbox("service", "inner", "-n", ns, "--url")
    if result.returncode == 0:  # this host has the ClusterIP: kube-proxy runs as root in the cluster
        assert result.stdout.split() == [f"http://{inner['spec']['clusterIP']}:80"]
    else:
        assert "not reachable from this host" in one_line_error(result)
