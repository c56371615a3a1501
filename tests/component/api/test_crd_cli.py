"""``kbox get`` on custom resources: the installed ``kbox`` command resolves a CRD's plural, short name
and kind through discovery right after the CRD is established, and prints the printer columns.

One ``kbox start --runtime fake`` profile for the module (the CLI tests' fixture shape).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.component.cli.conftest import KboxCluster, require_kubectl

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: crontabs.cli.example.com}
spec:
  group: cli.example.com
  scope: Namespaced
  names: {plural: crontabs, kind: CronTab, shortNames: [ct]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Schedule, type: string, jsonPath: .spec.cronSpec}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec: {type: string}
"""

CRONTAB = """
apiVersion: cli.example.com/v1
kind: CronTab
metadata: {name: nightly}
spec: {cronSpec: "@daily"}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KboxCluster]:
    require_kubectl()
    base = tmp_path_factory.mktemp("kbox-crd-cli")
    c = KboxCluster(home=base / "home", kbox_home=base / "kbox-home")
    c.home.mkdir()
    try:
        c.ok("start", "--runtime", "fake", "--port", "0", timeout=180)
        yield c
    finally:
        c.kbox("delete", "--all", timeout=120)  # never leave a cluster process behind


def test_kbox_get_custom_resources(cluster: KboxCluster) -> None:
    cluster.kubectl_ok("apply", "-f", "-", input=CRD)
    cluster.kubectl_ok("wait", "--for=condition=Established", "crd/crontabs.cli.example.com", "--timeout=10s")
    cluster.kubectl_ok("apply", "-f", "-", input=CRONTAB)
    for name in ("ct", "crontabs.cli.example.com"):  # short name, and plural.group
        table = cluster.ok("get", name)
        assert table.splitlines()[0].split() == ["NAME", "SCHEDULE"], table
        assert table.splitlines()[1].split() == ["nightly", "@daily"], table
    assert "crontab.cli.example.com/nightly" in cluster.ok("get", "ct", "-o", "name")
    assert "cronSpec: '@daily'" in cluster.ok("get", "ct", "nightly", "-o", "yaml")
    described = cluster.ok("describe", "ct", "nightly")
    assert "Name:" in described and "nightly" in described and "@daily" in described, described
    cluster.ok("delete", "ct", "nightly")
    empty = cluster.kbox("get", "CronTab")
    assert empty.returncode == 0 and "No resources found" in empty.stderr + empty.stdout
