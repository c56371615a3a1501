"""Pod IPs of the simulated runtime: a range large enough for issue 4's scale, reused, and a clear
error when it runs out."""

from __future__ import annotations

import ipaddress

import pytest

from kbox.kubelet.runtime.fake import FAKE_POD_CIDR, FakeRuntime
from kbox.kubelet.runtime.interface import ContainerRuntimeError, PodRef, SandboxConfig


def _config(n: int) -> SandboxConfig:
    return SandboxConfig(pod=PodRef("default", f"p-{n}", f"uid-{n}"), hostname=f"p-{n}")


async def test_past_65536_pods_ips_stay_unique_and_outside_the_service_range() -> None:
    runtime = FakeRuntime(cluster="c")
    ips = {(await runtime.run_sandbox(_config(n))).ip for n in range(70_000)}
    assert len(ips) == 70_000
    network = ipaddress.ip_network(FAKE_POD_CIDR)
    assert all(ipaddress.ip_address(ip) in network for ip in ips)
    assert not network.overlaps(ipaddress.ip_network("10.96.0.0/12"))


async def test_an_exhausted_range_is_a_clear_error_and_removal_frees_an_address() -> None:
    runtime = FakeRuntime(cluster="c", pod_cidr="10.1.0.0/29")  # 6 hosts, the first kept back
    sandboxes = [await runtime.run_sandbox(_config(n)) for n in range(5)]
    with pytest.raises(ContainerRuntimeError, match="exhausted") as caught:
        await runtime.run_sandbox(_config(5))
    assert caught.value.reason == "IPExhausted"
    await runtime.remove_sandbox(sandboxes[2].id)
    again = await runtime.run_sandbox(_config(6))
    assert again.ip == sandboxes[2].ip
