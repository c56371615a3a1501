"""The Endpoints and EndpointSlice controllers against the apiserver, fake-runtime kubelets and a test
binder, and the real kubectl: a Deployment's pods appearing in its Service's Endpoints and EndpointSlice
once ready (``kubectl get endpoints`` showing ``IP:PORT``); readiness moving addresses between
``addresses`` and ``notReadyAddresses`` (and the slice conditions), terminating pods dropped;
named target ports resolved per pod into separate subsets; ``publishNotReadyAddresses``; headless
Services with and without ports; Services without a selector left alone; no writes when nothing
changed; deleting a Service removes its Endpoints and slices; Endpoints left over without a Service
removed when the controller starts.

Readiness tests use bare pods bound to ``ghost``, a node without a kubelet, so the test alone writes
their status (a fake-runtime kubelet would rewrite it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kbox.client import interface
from kbox.client.interface import StatusError
from kbox.controllers.deployment import DeploymentController
from kbox.controllers.endpoints import EndpointsController
from kbox.controllers.endpointslice import ENDPOINTSLICES, EndpointSliceController
from kbox.controllers.replicaset import ReplicaSetController
from tests.component.controllers import Cluster, active_pods, cluster, eventually, is_ready, template
from tests.support.apiserver import Kubectl

Obj = dict[str, Any]

NS = "default"


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path) as running:
        running.start(EndpointsController(running.factory, running.client))
        running.start(EndpointSliceController(running.factory, running.client))
        yield running


# -- helpers -----------------------------------------------------------------------------------


def service_body(name: str, selector: dict[str, str] | None, *ports: Obj, **spec: Any) -> Obj:
    body_spec: Obj = {"ports": list(ports), **spec}
    if selector is not None:
        body_spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body_spec}


def port(number: int, target: int | str, name: str = "", protocol: str = "TCP") -> Obj:
    result: Obj = {"port": number, "targetPort": target, "protocol": protocol}
    if name:
        result["name"] = name
    return result


async def create_service(c: Cluster, body: Obj) -> Obj:
    return await c.client.create(interface.SERVICES, body, namespace=NS)


async def ghost_pod(
    c: Cluster,
    name: str,
    labels: dict[str, str],
    *,
    ip: str,
    ready: bool,
    ports: list[Obj] | None = None,
    **spec: Any,
) -> Obj:
    """A pod bound to a node without a kubelet, running with ``ip`` and the given readiness."""
    container: Obj = {"name": "main", "image": "busybox:1"}
    if ports:
        container["ports"] = ports
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": "ghost", "containers": [container], **spec},
    }
    await c.client.create(interface.PODS, body, namespace=NS)
    return await set_ready(c, name, ready, ip=ip)


async def set_ready(c: Cluster, name: str, ready: bool, *, ip: str | None = None) -> Obj:
    status: Obj = {
        "phase": "Running",
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
            }
        ],
    }
    if ip is not None:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return await c.client.patch(interface.PODS, name, {"status": status}, namespace=NS, subresource="status")


async def get_endpoints(c: Cluster, name: str) -> Obj | None:
    try:
        return await c.client.get(interface.ENDPOINTS, name, namespace=NS)
    except StatusError as exc:
        if exc.code == 404:
            return None
        raise


def summary(endpoints: Obj | None) -> list[tuple[list[str], list[str], list[int]]] | None:
    """Each subset as (ready IPs, not-ready IPs, port numbers)."""
    if endpoints is None:
        return None
    return [
        (
            [a["ip"] for a in subset.get("addresses") or []],
            [a["ip"] for a in subset.get("notReadyAddresses") or []],
            [p["port"] for p in subset.get("ports") or []],
        )
        for subset in endpoints.get("subsets") or []
    ]


async def endpoints_become(c: Cluster, name: str, expected: Any, *, timeout: float = 10.0) -> Obj:
    """Wait until :func:`summary` of the Endpoints is ``expected`` (``None``: until they are gone)."""

    async def check() -> Obj | bool:
        current = await get_endpoints(c, name)
        if summary(current) != expected:
            return False
        return current if current is not None else True

    try:
        result: Obj = await eventually(check, timeout=timeout, message=f"endpoints {name} == {expected}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; now {summary(await get_endpoints(c, name))}") from None
    return result


async def get_slices(c: Cluster, service: str) -> list[Obj]:
    result = await c.client.list(
        ENDPOINTSLICES, namespace=NS, label_selector=f"kubernetes.io/service-name={service}"
    )
    items: list[Obj] = result["items"]
    return items


def slice_summary(slices: list[Obj]) -> list[tuple[list[tuple[str, bool, bool, bool]], list[int]]]:
    """Each slice as ([(ip, ready, serving, terminating)], port numbers)."""
    return sorted(
        (
            [
                (
                    e["addresses"][0],
                    e["conditions"]["ready"],
                    e["conditions"]["serving"],
                    e["conditions"]["terminating"],
                )
                for e in s.get("endpoints") or []
            ],
            [p["port"] for p in s.get("ports") or []],
        )
        for s in slices
    )


async def slices_become(c: Cluster, service: str, expected: Any, *, timeout: float = 10.0) -> list[Obj]:
    """Wait until :func:`slice_summary` of the Service's slices is ``expected``."""

    async def check() -> list[Obj] | bool:
        current = await get_slices(c, service)
        if slice_summary(current) != expected:
            return False
        return current or True

    try:
        result = await eventually(check, timeout=timeout, message=f"slices of {service} == {expected}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; now {slice_summary(await get_slices(c, service))}") from None
    return result if isinstance(result, list) else []


# -- tests -------------------------------------------------------------------------------------


async def test_deployment_pods_become_endpoints(c: Cluster, tmp_path: Path) -> None:
    c.start(ReplicaSetController(c.factory, c.client))
    c.start(DeploymentController(c.factory, c.client))
    labels = {"app": "web"}
    pod_template = template(labels)
    pod_template["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
    await c.client.create(
        interface.DEPLOYMENTS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": pod_template},
        },
        namespace=NS,
    )
    await create_service(c, service_body("web", labels, port(80, "http", name="http")))

    async def ready_pods() -> list[Obj] | None:
        current = await active_pods(c.client, "app=web")
        return current if len(current) == 2 and all(is_ready(p) for p in current) else None

    pods = await eventually(ready_pods, message="2 ready pods")
    ips = sorted((p["status"]["podIP"] for p in pods), key=lambda ip: tuple(map(int, ip.split("."))))
    endpoints = await endpoints_become(c, "web", [(ips, [], [8080])])
    subset = endpoints["subsets"][0]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    by_name = {p["metadata"]["name"]: p for p in pods}
    for address in subset["addresses"]:
        pod = by_name[address["targetRef"]["name"]]
        assert address == {
            "ip": pod["status"]["podIP"],
            "nodeName": pod["spec"]["nodeName"],
            "targetRef": {
                "kind": "Pod",
                "namespace": NS,
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            },
        }
    assert "endpoints.kubernetes.io/last-change-trigger-time" in endpoints["metadata"]["annotations"]

    (slice_,) = await slices_become(c, "web", [([(ip, True, True, False) for ip in ips], [8080])])
    service = await c.client.get(interface.SERVICES, "web", namespace=NS)
    assert slice_["metadata"]["name"].startswith("web-") and slice_["addressType"] == "IPv4"
    assert slice_["metadata"]["labels"] == {
        "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    assert slice_["metadata"]["ownerReferences"][0]["uid"] == service["metadata"]["uid"]
    assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    for endpoint in slice_["endpoints"]:
        pod = by_name[endpoint["targetRef"]["name"]]
        assert endpoint["nodeName"] == pod["spec"]["nodeName"]
        assert endpoint["targetRef"]["uid"] == pod["metadata"]["uid"]

    kubectl = Kubectl(c.server.kubeconfig, tmp_path / "kubectl-cache")
    out = await kubectl.ok("get", "endpoints", "web")
    assert out.split("\n")[0].split()[:2] == ["NAME", "ENDPOINTS"]
    assert f"{ips[0]}:8080,{ips[1]}:8080" in out

    # Scaled to one, the address of the removed pod goes.
    await c.client.patch(interface.DEPLOYMENTS, "web", {"spec": {"replicas": 1}}, namespace=NS)

    async def one_left() -> list[Obj] | None:
        current = await active_pods(c.client, "app=web")
        return current if len(current) == 1 else None

    (survivor,) = await eventually(one_left, message="1 pod left")
    await endpoints_become(c, "web", [([survivor["status"]["podIP"]], [], [8080])])
    (after,) = await slices_become(c, "web", [([(survivor["status"]["podIP"], True, True, False)], [8080])])
    assert after["metadata"]["uid"] == slice_["metadata"]["uid"]  # updated in place


async def test_readiness_moves_addresses_and_terminating_pods_go(c: Cluster) -> None:
    labels = {"app": "ready"}
    await create_service(c, service_body("ready", labels, port(80, 8080)))
    await ghost_pod(c, "a", labels, ip="10.9.0.1", ready=True)
    await ghost_pod(c, "b", labels, ip="10.9.0.2", ready=False)
    # No IP yet: not listed at all.
    await c.client.create(
        interface.PODS,
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "no-ip", "labels": labels},
         "spec": {"nodeName": "ghost", "containers": [{"name": "main", "image": "busybox:1"}]}},
        namespace=NS,
    )  # fmt: skip
    endpoints = await endpoints_become(c, "ready", [(["10.9.0.1"], ["10.9.0.2"], [8080])])
    assert endpoints["subsets"][0]["notReadyAddresses"][0]["targetRef"]["name"] == "b"

    (first,) = await slices_become(
        c, "ready", [([("10.9.0.1", True, True, False), ("10.9.0.2", False, False, False)], [8080])]
    )

    await set_ready(c, "b", True)
    await set_ready(c, "a", False)
    await endpoints_become(c, "ready", [(["10.9.0.2"], ["10.9.0.1"], [8080])])
    await slices_become(
        c, "ready", [([("10.9.0.1", False, False, False), ("10.9.0.2", True, True, False)], [8080])]
    )

    # A graceful delete on a node without a kubelet leaves the pod terminating: it leaves the Endpoints,
    # and stays in the slice as terminating (still serving).
    await c.client.delete(interface.PODS, "b", namespace=NS)
    await endpoints_become(c, "ready", [([], ["10.9.0.1"], [8080])])
    await slices_become(
        c, "ready", [([("10.9.0.1", False, False, False), ("10.9.0.2", False, True, True)], [8080])]
    )
    await c.client.delete(interface.PODS, "a", namespace=NS)
    await endpoints_become(c, "ready", [])
    await c.client.delete(interface.PODS, "a", namespace=NS, grace_period_seconds=0)
    await c.client.delete(interface.PODS, "b", namespace=NS, grace_period_seconds=0)
    # The last pod gone, one empty slice remains: the same one.
    (last,) = await slices_become(c, "ready", [([], [])])
    assert last["metadata"]["uid"] == first["metadata"]["uid"]


async def test_named_target_ports_are_resolved_per_pod(c: Cluster) -> None:
    labels = {"app": "named"}
    await create_service(
        c, service_body("named", labels, port(80, "http", name="web"), port(9090, 9100, name="metrics"))
    )
    await ghost_pod(
        c, "p1", labels, ip="10.9.1.1", ready=True, ports=[{"name": "http", "containerPort": 8080}]
    )
    await ghost_pod(
        c, "p2", labels, ip="10.9.1.2", ready=True, ports=[{"name": "http", "containerPort": 8080}]
    )
    await ghost_pod(
        c, "p3", labels, ip="10.9.1.3", ready=False, ports=[{"name": "http", "containerPort": 8081}]
    )
    # Without the named port the pod is listed for the numeric port only.
    await ghost_pod(c, "p4", labels, ip="10.9.1.4", ready=True)
    # A UDP port of that name does not match a TCP service port.
    await ghost_pod(
        c, "p5", labels, ip="10.9.1.5", ready=True,
        ports=[{"name": "http", "containerPort": 7000, "protocol": "UDP"}],
    )  # fmt: skip
    endpoints = await endpoints_become(
        c,
        "named",
        [
            (["10.9.1.1", "10.9.1.2"], [], [8080, 9100]),
            ([], ["10.9.1.3"], [8081, 9100]),
            (["10.9.1.4", "10.9.1.5"], [], [9100]),
        ],
    )
    assert endpoints["subsets"][0]["ports"] == [
        {"name": "web", "port": 8080, "protocol": "TCP"},
        {"name": "metrics", "port": 9100, "protocol": "TCP"},
    ]
    await slices_become(
        c,
        "named",
        [
            ([("10.9.1.1", True, True, False), ("10.9.1.2", True, True, False)], [8080, 9100]),
            ([("10.9.1.3", False, False, False)], [8081, 9100]),
            ([("10.9.1.4", True, True, False), ("10.9.1.5", True, True, False)], [9100]),
        ],
    )


async def test_publish_not_ready_addresses_lists_every_pod_as_ready(c: Cluster) -> None:
    labels = {"app": "pub"}
    await create_service(
        c, service_body("pub", labels, port(53, 53, protocol="UDP"), publishNotReadyAddresses=True)
    )
    await ghost_pod(c, "r", labels, ip="10.9.2.1", ready=True)
    await ghost_pod(c, "n", labels, ip="10.9.2.2", ready=False)
    endpoints = await endpoints_become(c, "pub", [(["10.9.2.1", "10.9.2.2"], [], [53])])
    assert endpoints["subsets"][0]["ports"] == [{"port": 53, "protocol": "UDP"}]
    await slices_become(
        c, "pub", [([("10.9.2.1", True, True, False), ("10.9.2.2", True, False, False)], [53])]
    )
    # Even terminating pods stay listed, and ready.
    await c.client.delete(interface.PODS, "n", namespace=NS)
    await endpoints_become(c, "pub", [(["10.9.2.1", "10.9.2.2"], [], [53])])
    await slices_become(
        c, "pub", [([("10.9.2.1", True, True, False), ("10.9.2.2", True, False, True)], [53])]
    )


async def test_headless_services(c: Cluster) -> None:
    labels = {"app": "db"}
    await create_service(c, service_body("db", labels, clusterIP="None"))
    await create_service(c, service_body("db-ports", labels, port(5432, 5432, name="pg"), clusterIP="None"))
    await ghost_pod(c, "db-0", labels, ip="10.9.3.1", ready=True, hostname="db-0", subdomain="db")
    endpoints = await endpoints_become(c, "db", [(["10.9.3.1"], [], [])])
    assert "ports" not in endpoints["subsets"][0]
    assert endpoints["subsets"][0]["addresses"][0]["hostname"] == "db-0"
    assert endpoints["metadata"]["labels"] == {"service.kubernetes.io/headless": ""}
    with_ports = await endpoints_become(c, "db-ports", [(["10.9.3.1"], [], [5432])])
    assert "hostname" not in with_ports["subsets"][0]["addresses"][0]  # subdomain names another service
    (slice_,) = await slices_become(c, "db", [([("10.9.3.1", True, True, False)], [])])
    assert slice_["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert slice_["endpoints"][0]["hostname"] == "db-0"


async def test_services_without_selector_are_left_alone(c: Cluster) -> None:
    kubernetes = await get_endpoints(c, "kubernetes")
    assert kubernetes is not None
    await create_service(c, service_body("external", None, port(80, 80)))
    manual = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "external"},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80, "protocol": "TCP"}]}],
    }
    await c.client.create(interface.ENDPOINTS, manual, namespace=NS)
    # Hand-made Endpoints created before their Service are kept too.
    early = {**manual, "metadata": {"name": "early"}}
    await c.client.create(interface.ENDPOINTS, early, namespace=NS)
    await create_service(c, service_body("early", None, port(80, 80)))
    # A later Service with a selector is synced after those events; once its Endpoints exist the others
    # have been looked at.
    labels = {"app": "later"}
    await create_service(c, service_body("later", labels, port(80, 80)))
    await ghost_pod(c, "later", labels, ip="10.9.4.1", ready=True)
    await endpoints_become(c, "later", [(["10.9.4.1"], [], [80])])
    for name in ("external", "early"):
        current = await get_endpoints(c, name)
        assert current is not None and current["subsets"] == manual["subsets"], name
    await slices_become(c, "later", [([("10.9.4.1", True, True, False)], [80])])
    after = await get_endpoints(c, "kubernetes")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == kubernetes["metadata"]["resourceVersion"]
    for name in ("external", "early"):
        assert await get_slices(c, name) == [], name
    # The kubernetes Service's one slice is the apiserver's own (kube-proxy's way to it), untouched here.
    [own] = await get_slices(c, "kubernetes")
    assert "endpointslice.kubernetes.io/managed-by" not in own["metadata"]["labels"]


async def test_no_write_when_nothing_changed(c: Cluster) -> None:
    labels = {"app": "calm"}
    await create_service(c, service_body("calm", labels, port(80, 8080)))
    await ghost_pod(c, "calm", labels, ip="10.9.5.1", ready=True)
    before = await endpoints_become(c, "calm", [(["10.9.5.1"], [], [8080])])
    (before_slice,) = await slices_become(c, "calm", [([("10.9.5.1", True, True, False)], [8080])])
    # Changes the Endpoints do not depend on: a pod annotation, a status field.
    await c.client.patch(interface.PODS, "calm", {"metadata": {"annotations": {"x": "1"}}}, namespace=NS)
    await c.client.patch(
        interface.PODS, "calm", {"status": {"message": "still fine"}}, namespace=NS, subresource="status"
    )
    labels2 = {"app": "calm2"}
    await create_service(c, service_body("calm2", labels2, port(80, 8080)))
    await ghost_pod(c, "calm2", labels2, ip="10.9.5.2", ready=True)
    await endpoints_become(c, "calm2", [(["10.9.5.2"], [], [8080])])
    await slices_become(c, "calm2", [([("10.9.5.2", True, True, False)], [8080])])
    after = await get_endpoints(c, "calm")
    assert after is not None and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    (calm_slice,) = await get_slices(c, "calm")
    assert calm_slice["metadata"]["resourceVersion"] == before_slice["metadata"]["resourceVersion"]
    # Labels follow the Service's.
    await c.client.patch(interface.SERVICES, "calm", {"metadata": {"labels": {"tier": "web"}}}, namespace=NS)

    async def relabelled() -> bool:
        current = await get_endpoints(c, "calm")
        return current is not None and current["metadata"].get("labels") == {"tier": "web"}

    await eventually(relabelled, message="labels copied")


async def test_deleting_the_service_removes_its_endpoints(c: Cluster) -> None:
    labels = {"app": "gone"}
    await create_service(c, service_body("gone", labels, port(80, 8080)))
    await ghost_pod(c, "gone", labels, ip="10.9.6.1", ready=True)
    await endpoints_become(c, "gone", [(["10.9.6.1"], [], [8080])])
    # Deleted by someone else while the Service exists: it comes back.
    await c.client.delete(interface.ENDPOINTS, "gone", namespace=NS)
    await endpoints_become(c, "gone", [(["10.9.6.1"], [], [8080])])
    (slice_,) = await slices_become(c, "gone", [([("10.9.6.1", True, True, False)], [8080])])
    # A slice deleted by someone else comes back too.
    await c.client.delete(ENDPOINTSLICES, slice_["metadata"]["name"], namespace=NS)

    async def replaced() -> bool:
        current = await get_slices(c, "gone")
        return len(current) == 1 and current[0]["metadata"]["uid"] != slice_["metadata"]["uid"]

    await eventually(replaced, message="slice recreated")
    await c.client.delete(interface.SERVICES, "gone", namespace=NS)
    await endpoints_become(c, "gone", None)
    await slices_become(c, "gone", [])


async def test_leftover_endpoints_are_removed_at_start(tmp_path: Path) -> None:
    async with cluster(tmp_path, nodes=1) as c:
        leftover = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "leftover"},
            "subsets": [{"addresses": [{"ip": "10.9.7.1"}], "ports": [{"port": 80, "protocol": "TCP"}]}],
        }
        await c.client.create(interface.ENDPOINTS, leftover, namespace=NS)
        c.start(EndpointsController(c.factory, c.client))
        await endpoints_become(c, "leftover", None)
        assert await get_endpoints(c, "kubernetes") is not None
