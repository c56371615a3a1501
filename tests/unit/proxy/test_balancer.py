"""The proxy's pure parts: round robin and ClientIP affinity in the Balancer, reading ready endpoints
out of EndpointSlices, and which Services get a proxy at all."""

from __future__ import annotations

from kbox.proxy.balancer import Balancer, Endpoint
from kbox.proxy.proxier import affinity_timeout, proxied, ready_endpoints

A, B, C = Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80), Endpoint("10.0.0.3", 80)


def test_round_robin_and_endpoint_changes() -> None:
    balancer = Balancer("svc")
    assert balancer.pick("1.1.1.1") is None
    balancer.set_endpoints([A, B, C])
    assert [balancer.pick("1.1.1.1") for _ in range(6)] == [A, B, C, A, B, C]
    balancer.set_endpoints([A, C])  # B stops being ready: it leaves the rotation at once
    assert B not in {balancer.pick("1.1.1.1") for _ in range(4)}
    assert balancer.pick("1.1.1.1", exclude=frozenset({A, C})) is None
    assert balancer.pick("1.1.1.1", exclude=frozenset({A})) == C


def test_client_ip_affinity_with_timeout() -> None:
    now = [0.0]
    balancer = Balancer("svc", affinity_timeout=10, clock=lambda: now[0])
    balancer.set_endpoints([A, B, C])
    first = balancer.pick("1.1.1.1")
    other = balancer.pick("2.2.2.2")
    assert first != other
    assert {balancer.pick("1.1.1.1") for _ in range(5)} == {first}
    now[0] = 9.0
    assert balancer.pick("1.1.1.1") == first  # each use refreshes the affinity
    now[0] = 18.5
    assert balancer.pick("1.1.1.1") == first
    now[0] = 40.0  # expired: the next pick rotates
    balancer.pick("1.1.1.1")
    assert first is not None
    remaining = [e for e in (A, B, C) if e != first]
    balancer.set_endpoints(remaining)  # the held endpoint is gone: the client moves
    assert balancer.pick("1.1.1.1") in remaining


def slice_(
    ports: list[dict[str, object]], endpoints: list[dict[str, object]], name: str = "s"
) -> dict[str, object]:
    return {"metadata": {"name": name}, "ports": ports, "endpoints": endpoints}


def test_ready_endpoints_by_port_name_and_protocol() -> None:
    slices = [
        slice_(
            [
                {"name": "http", "port": 8080, "protocol": "TCP"},
                {"name": "dns", "port": 5353, "protocol": "UDP"},
            ],
            [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
                {"addresses": ["10.0.0.3"], "conditions": {}},  # unknown readiness counts as ready
            ],
        ),
        slice_([{"name": "http", "port": 9090}], [{"addresses": ["10.0.0.4"]}], name="t"),
    ]
    assert ready_endpoints(slices, "http", "TCP") == [
        Endpoint("10.0.0.1", 8080),
        Endpoint("10.0.0.3", 8080),
        Endpoint("10.0.0.4", 9090),
    ]
    assert ready_endpoints(slices, "dns", "UDP") == [Endpoint("10.0.0.1", 5353), Endpoint("10.0.0.3", 5353)]
    assert ready_endpoints(slices, "dns", "TCP") == []


def test_which_services_are_proxied() -> None:
    def svc(labels: dict[str, str] | None = None, **spec: object) -> dict[str, object]:
        return {"metadata": {"labels": labels or {}}, "spec": spec}

    assert proxied(svc(clusterIP="10.96.0.5"))
    assert not proxied(svc(clusterIP="None"))
    assert not proxied(svc(type="ExternalName", externalName="example.org"))
    assert not proxied(svc({"service.kubernetes.io/service-proxy-name": "other"}, clusterIP="10.96.0.10"))
    assert affinity_timeout(svc(sessionAffinity="ClientIP")) == 10800
    assert (
        affinity_timeout(
            svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 30}})
        )
        == 30
    )
    assert affinity_timeout(svc(sessionAffinity="None")) is None
