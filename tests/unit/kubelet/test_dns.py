"""The pod DNS builder: each dnsPolicy, the ClusterFirst fallback without cluster DNS, dnsConfig
merging, Kubernetes' limits, resolv.conf parsing and rendering, and the managed hosts file."""

from __future__ import annotations

from typing import Any

from kbox.kubelet import dns

HOST = dns.DnsConfig(("127.0.0.53", "192.168.1.1"), ("corp.example", "lab.example"), ("edns0", "ndots:1"))


def _pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": "u1"}, "spec": spec}


def _build(pod: dict[str, Any], cluster_dns: list[str] | None = None) -> dns.PodDns:
    servers = ["10.96.0.10"] if cluster_dns is None else cluster_dns
    return dns.pod_dns(pod, cluster_dns=servers, cluster_domain="cluster.local", host=HOST)


def test_cluster_first_is_the_default() -> None:
    built = _build(_pod())
    assert built.config == dns.DnsConfig(
        ("10.96.0.10",),
        ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lab.example"),
        ("ndots:5",),
    )
    assert not built.runtime_default and not built.warnings
    assert built.config.render() == (
        "nameserver 10.96.0.10\n"
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n"
        "options ndots:5\n"
    )


def test_cluster_first_without_cluster_dns_falls_back_to_default_with_a_warning() -> None:
    built = _build(_pod(dnsPolicy="ClusterFirst"), cluster_dns=[])
    assert built.runtime_default
    assert built.config.nameservers == ("192.168.1.1",)  # the loopback resolver is unreachable
    [(reason, message)] = built.warnings
    assert reason == "MissingClusterDNS"
    assert 'cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.' in message


def test_default_is_the_host_resolver_without_loopback() -> None:
    built = _build(_pod(dnsPolicy="Default"))
    assert built.runtime_default
    assert built.config == dns.DnsConfig(("192.168.1.1",), HOST.searches, HOST.options)


def test_host_network_pods() -> None:
    # ClusterFirst on the host network means Default (the host's file, loopback included)...
    built = _build(_pod(hostNetwork=True))
    assert built.runtime_default and built.config == HOST
    # ... unless the pod asks for ClusterFirstWithHostNet.
    built = _build(_pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"))
    assert built.config.nameservers == ("10.96.0.10",) and not built.runtime_default
    # ClusterFirstWithHostNet off the host network is plain ClusterFirst.
    assert _build(_pod(dnsPolicy="ClusterFirstWithHostNet")).config == _build(_pod()).config


def test_none_takes_only_dns_config() -> None:
    built = _build(
        _pod(
            dnsPolicy="None",
            dnsConfig={
                "nameservers": ["1.1.1.1"],
                "searches": ["a.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
            },
        )
    )
    assert built.config == dns.DnsConfig(("1.1.1.1",), ("a.example",), ("ndots:2", "edns0"))
    assert not built.runtime_default


def test_dns_config_merges_into_every_policy() -> None:
    extra = {
        "nameservers": ["10.96.0.10", "8.8.8.8"],
        "searches": ["extra.example", "svc.cluster.local"],
        "options": [{"name": "ndots", "value": "3"}, {"name": "single-request"}],
    }
    built = _build(_pod(dnsConfig=extra))
    assert built.config.nameservers == ("10.96.0.10", "8.8.8.8")  # duplicates dropped
    assert built.config.searches[-1] == "extra.example"
    assert built.config.searches.count("svc.cluster.local") == 1
    assert built.config.options == ("ndots:3", "single-request")  # the pod's ndots replaces 5
    # With Default, a dnsConfig means the kubelet writes the file (the runtime's own setup is not it).
    built = _build(_pod(dnsPolicy="Default", dnsConfig={"options": [{"name": "ndots", "value": "3"}]}))
    assert not built.runtime_default
    assert built.config.options == ("edns0", "ndots:3")


def test_limits_cut_with_a_warning() -> None:
    extra = {
        "nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3"],
        "searches": [f"s{i}.example" for i in range(40)],
    }
    built = _build(_pod(dnsConfig=extra))
    assert built.config.nameservers == ("10.96.0.10", "1.1.1.1", "2.2.2.2")
    assert len(built.config.searches) == dns.MAX_SEARCHES
    assert [reason for reason, _ in built.warnings] == ["DNSConfigForming", "DNSConfigForming"]
    long = {"searches": ["x" * 250 + f".d{i}" for i in range(10)]}
    built = _build(_pod(dnsPolicy="None", dnsConfig=long))
    assert len(" ".join(built.config.searches)) <= dns.MAX_SEARCH_CHARS
    assert len(built.config.searches) == 8


def test_parse_resolv_conf() -> None:
    text = (
        "# generated\n"
        "nameserver 10.0.0.2\n"
        "nameserver fe80::1%eth0 ; link-local\n"
        "domain old.example\n"
        "search a.example b.example .\n"
        "options ndots:2 timeout:1\n"
        "options rotate\n"
        "sortlist 130.155.160.0\n"
    )
    parsed = dns.parse_resolv_conf(text)
    assert parsed == dns.DnsConfig(
        ("10.0.0.2", "fe80::1%eth0"), ("a.example", "b.example"), ("ndots:2", "timeout:1", "rotate")
    )
    assert dns.parse_resolv_conf(parsed.render()) == parsed
    assert dns.read_host_config("/nonexistent/resolv.conf") == dns.DnsConfig()


def test_hosts_file() -> None:
    pod = _pod(
        hostname="db-0",
        subdomain="db",
        hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}],
    )
    text = dns.hosts_file(pod, pod_ip="10.244.0.7", hostname="db-0", cluster_domain="cluster.local")
    lines = text.splitlines()
    assert lines[0] == "# Kubernetes-managed hosts file."
    assert "127.0.0.1\tlocalhost" in lines
    assert "10.244.0.7\tdb-0.db.shop.svc.cluster.local\tdb-0" in lines
    assert lines[-1] == "10.1.2.3\tfoo.local\tbar.local"
    plain = dns.hosts_file(_pod(), pod_ip="10.244.0.8", hostname="web", cluster_domain="cluster.local")
    assert plain.splitlines()[-1] == "10.244.0.8\tweb"
