"""The pod address allocator and the network view of kbox-wired pod networking (the wiring itself is
exercised on Docker by tests/e2e/test_docker_runtime.py)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from kbox.kubelet.runtime import podnet


def _subnet(cidr: str = "172.30.0.0/24", gateway: str = "172.30.0.1") -> podnet.Subnet:
    return podnet.Subnet("br-0123456789ab", ipaddress.IPv4Network(cidr), ipaddress.IPv4Address(gateway))


def test_addresses_come_from_the_upper_half_and_skip_those_in_use() -> None:
    allocator = podnet.Allocator(_subnet())
    allocator.reserve(["172.30.0.128", "", "172.30.0.130"])
    assert [allocator.take() for _ in range(3)] == ["172.30.0.129", "172.30.0.131", "172.30.0.132"]


def test_a_released_address_is_not_handed_out_again_at_once() -> None:
    allocator = podnet.Allocator(_subnet("172.30.0.0/29", "172.30.0.1"))  # upper half: .4 .5 .6
    first = [allocator.take() for _ in range(3)]
    assert first == ["172.30.0.4", "172.30.0.5", "172.30.0.6"]
    with pytest.raises(podnet.WiringError, match="no free pod address"):
        allocator.take()
    allocator.release("172.30.0.5")
    assert allocator.take() == "172.30.0.5"


def test_the_gateway_is_never_handed_out() -> None:
    allocator = podnet.Allocator(_subnet("172.30.0.0/29", "172.30.0.5"))
    assert {allocator.take(), allocator.take()} == {"172.30.0.4", "172.30.0.6"}


def test_the_network_view_of_a_docker_inspection() -> None:
    info = {
        "Id": "0123456789abcdef",
        "Driver": "bridge",
        "IPAM": {
            "Config": [
                {"Subnet": "fd00::/64", "Gateway": "fd00::1"},
                {"Subnet": "172.30.0.0/16", "Gateway": "172.30.0.1"},
            ]
        },
        "Options": {},
    }
    assert podnet.subnet_of(info) == podnet.Subnet(
        "br-0123456789ab", ipaddress.IPv4Network("172.30.0.0/16"), ipaddress.IPv4Address("172.30.0.1")
    )
    named = {**info, "Options": {"com.docker.network.bridge.name": "kbox0"}}
    assert podnet.subnet_of(named).bridge == "kbox0"  # type: ignore[union-attr]
    assert podnet.subnet_of({**info, "Driver": "macvlan"}) is None
    assert podnet.subnet_of({**info, "IPAM": {"Config": [{"Subnet": "172.30.0.0/16"}]}}) is None


def test_one_allocator_per_network_in_the_process() -> None:
    try:
        first = podnet.register("kbox-test-net", _subnet(), ["172.30.0.200"])
        again = podnet.register("kbox-test-net", _subnet(), ["172.30.0.201"])
        assert again is first and {"172.30.0.200", "172.30.0.201"} <= first.used
        podnet.forget("kbox-test-net")
        assert podnet.allocator("kbox-test-net") is None
    finally:
        podnet.forget("kbox-test-net")


def test_docker_networking_can_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KBOX_POD_NETWORK", "docker")
    assert not podnet.can_wire()


def test_host_nameservers_pods_can_reach(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# only a local stub\nnameserver 127.0.0.53\noptions edns0\n")
    assert not podnet.host_servers_reachable(str(conf))
    conf.write_text("nameserver 127.0.0.53\nnameserver 10.255.255.53 # the site's\n")
    assert podnet.host_servers_reachable(str(conf))
    conf.write_text("nameserver ::1\nnameserver fe80::1%eth0\n")
    assert podnet.host_servers_reachable(str(conf))
    assert not podnet.host_servers_reachable(str(tmp_path / "missing"))
