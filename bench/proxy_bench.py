"""Services benchmark: kube-proxy's relay and the cluster DNS server, in one run.

The proxy and the DNS server run as they do in kbox (in one asyncio process with an apiserver; Services
and EndpointSlices come through the API), with ClusterIPs mapped to 127.x addresses
(``ProxySettings.cluster_ip_bind``) so the run needs neither root nor Docker. Endpoints and clients are
separate processes, so neither competes with the proxy for its event loop:

- **bulk TCP throughput**: one connection reading ``BULK_BYTES`` from an endpoint that sends as fast as
  it can, through the ClusterIP, and directly to the endpoint (its "pod IP"), best of three each; the
  figure is the ratio. Target: at least 50% of direct. The proxy's own CPU time per GiB is shown too:
  on a 2-core machine the relayed transfer runs three busy processes and two loopback TCP connections
  where the direct one runs two and one, so the ratio is bounded by the kernel's share, not the proxy's.
- **new connections per second** through the ClusterIP: ``CONNECT_CLIENTS`` client processes connect,
  read one byte and close in a loop for ``CONNECT_SECONDS``; the same directly, for reference. Target:
  at least 2,000/s.
- **DNS queries per second** over UDP, ``DNS_OUTSTANDING`` in flight, names of Services in the cluster
  zone, with the p99 latency. Target: at least 5,000/s.

Prints a Markdown section; ``--write`` puts it into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from store_bench import write_section

SECTION = "## Services (`bench/proxy_bench.py`)"
BULK_BYTES = 512 * 1024 * 1024
CONNECT_SECONDS = 3.0
CONNECT_CLIENTS = 4
DNS_QUERIES = 30_000
DNS_OUTSTANDING = 32
CHUNK = 1024 * 1024


# -- endpoint processes -------------------------------------------------------------------------------


def bulk_source(ports: Any) -> None:
    """Sends ``BULK_BYTES`` on every connection, one thread each (blocking sockets: no loop in the way)."""
    server = socket.create_server(("127.0.0.1", 0), backlog=128)
    ports.put(server.getsockname()[1])
    buffer = b"\0" * CHUNK

    def send(conn: socket.socket) -> None:
        with conn:
            left = BULK_BYTES
            while left > 0:
                conn.sendall(buffer[: min(left, CHUNK)])
                left -= CHUNK

    while True:
        conn, _ = server.accept()
        threading.Thread(target=send, args=(conn,), daemon=True).start()


def greeter(ports: Any) -> None:
    """Answers every connection with one byte and closes it (a blocking accept loop: cheap per connection)."""
    server = socket.create_server(("127.0.0.1", 0), backlog=1024)
    ports.put(server.getsockname()[1])
    while True:
        conn, _ = server.accept()
        try:
            conn.send(b"x")
        except OSError:
            pass
        conn.close()


# -- client processes ---------------------------------------------------------------------------------


def read_all(host: str, port: int) -> float:
    """Seconds to read everything the bulk endpoint sends on one connection."""
    with socket.create_connection((host, port)) as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * CHUNK)
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        got = 0
        started = time.perf_counter()
        while True:
            n = conn.recv_into(view)
            if not n:
                break
            got += n
        elapsed = time.perf_counter() - started
    if got != BULK_BYTES:
        raise RuntimeError(f"read {got} bytes, expected {BULK_BYTES}")
    return elapsed


def connect_many(host: str, port: int) -> int:
    """Connect, read one byte, close, in a loop of blocking sockets (several of these run at once) for
    ``CONNECT_SECONDS``; how many rounds were done."""
    done = 0
    deadline = time.perf_counter() + CONNECT_SECONDS
    while time.perf_counter() < deadline:
        with socket.create_connection((host, port)) as conn:
            if conn.recv(1) != b"x":
                raise RuntimeError("no greeting through the proxy")
        done += 1
    return done


def query_many(host: str, port: int, names: list[str]) -> tuple[float, list[float]]:
    """Seconds for ``DNS_QUERIES`` UDP queries with ``DNS_OUTSTANDING`` in flight, and each latency."""
    import dns.message

    wires = [dns.message.make_query(name, "A").to_wire() for name in names]

    async def run() -> tuple[float, list[float]]:
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        todo = iter(range(DNS_QUERIES))

        async def worker() -> None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            await loop.sock_connect(sock, (host, port))
            try:
                for i in todo:
                    wire = wires[i % len(wires)]
                    sent = time.perf_counter()
                    await loop.sock_sendall(sock, wire)
                    answer = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
                    latencies.append(time.perf_counter() - sent)
                    if answer[:2] != wire[:2]:
                        raise RuntimeError("answer to another query")
            finally:
                sock.close()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(DNS_OUTSTANDING)))
        return time.perf_counter() - started, latencies

    return asyncio.run(run())


# -- the run ------------------------------------------------------------------------------------------


def loopback_for(cluster_ip: str) -> str:
    parts = cluster_ip.split(".")
    return f"127.{parts[1]}.{parts[2]}.{parts[3]}"


async def measure(bulk_port: int, greeter_port: int, pool: ProcessPoolExecutor) -> dict[str, float]:
    from kbox.addons.dns import DnsServer, DnsSettings
    from kbox.client.interface import SERVICES
    from kbox.client.local import LocalClient
    from kbox.proxy import KubeProxy, ProxySettings
    from kbox.proxy.proxier import ENDPOINTSLICES
    from kbox.util import aiotasks
    from tests.support.apiserver import served

    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="kbox-proxy-bench-") as tmp:
        async with served(Path(tmp)) as s:
            client = LocalClient(s.plane.catalog)
            ips: dict[str, str] = {}
            for name, port in (("bulk", bulk_port), ("hello", greeter_port)):
                svc = await client.create(
                    SERVICES,
                    {"metadata": {"name": name}, "spec": {"ports": [{"name": "tcp", "port": 80}]}},
                    namespace="default",
                )
                ips[name] = loopback_for(svc["spec"]["clusterIP"])
                await client.create(
                    ENDPOINTSLICES,
                    {
                        "metadata": {"name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
                        "addressType": "IPv4",
                        "ports": [{"name": "tcp", "port": port, "protocol": "TCP"}],
                        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
                    },
                    namespace="default",
                )
            for i in range(20):  # a zone with some names in it
                await client.create(
                    SERVICES,
                    {"metadata": {"name": f"svc-{i}"}, "spec": {"ports": [{"port": 80}]}},
                    namespace="default",
                )
            proxy = KubeProxy(client, ProxySettings(cluster_ip_bind=loopback_for))
            dns_server = DnsServer(client, DnsSettings(listen="127.0.0.1", port=0, upstreams=()))
            tasks = [
                aiotasks.create_guarded_task(proxy.run(), name="bench/kube-proxy"),
                aiotasks.create_guarded_task(dns_server.run(), name="bench/coredns"),
            ]
            try:
                ready_by = loop.time() + 30
                while not (
                    proxy.healthy()
                    and dns_server.healthy()
                    and all(("TCP", ip, 80) in proxy.listeners for ip in ips.values())
                    and all(proxy.services[f"default/{n}"].balancers["tcp/TCP"].endpoints for n in ips)
                ):
                    if loop.time() > ready_by:
                        raise RuntimeError("the proxy and DNS server did not get ready in 30 s")
                    await asyncio.sleep(0.05)
                direct = min(
                    [await loop.run_in_executor(pool, read_all, "127.0.0.1", bulk_port) for _ in range(3)]
                )
                cpu_before = time.process_time()
                proxied = min([await loop.run_in_executor(pool, read_all, ips["bulk"], 80) for _ in range(3)])
                proxy_cpu = (time.process_time() - cpu_before) / 3 / (BULK_BYTES / 2**30)
                connections = sum(
                    await asyncio.gather(
                        *(
                            loop.run_in_executor(pool, connect_many, ips["hello"], 80)
                            for _ in range(CONNECT_CLIENTS)
                        )
                    )
                )
                direct_connections = sum(
                    await asyncio.gather(
                        *(
                            loop.run_in_executor(pool, connect_many, "127.0.0.1", greeter_port)
                            for _ in range(CONNECT_CLIENTS)
                        )
                    )
                )
                names = [f"svc-{i}.default.svc.cluster.local" for i in range(20)]
                assert dns_server.address is not None
                dns_seconds, latencies = await loop.run_in_executor(
                    pool, query_many, "127.0.0.1", dns_server.address[1], names
                )
            finally:
                await aiotasks.stop(tasks, title="bench")
    latencies.sort()
    return {
        "direct_mbps": BULK_BYTES / direct / 1e6,
        "proxied_mbps": BULK_BYTES / proxied / 1e6,
        "proxy_cpu_per_gib": proxy_cpu,
        "cps": connections / CONNECT_SECONDS,
        "direct_cps": direct_connections / CONNECT_SECONDS,
        "qps": DNS_QUERIES / dns_seconds,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "p50_ms": statistics.median(latencies) * 1000,
    }


def run() -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    endpoints = [context.Process(target=bulk_source, args=(ports,), daemon=True)]
    endpoints.append(context.Process(target=greeter, args=(ports,), daemon=True))
    endpoints[0].start()
    bulk_port = ports.get(timeout=30)
    endpoints[1].start()
    greeter_port = ports.get(timeout=30)
    try:
        with ProcessPoolExecutor(max_workers=CONNECT_CLIENTS, mp_context=context) as pool:
            return asyncio.run(measure(bulk_port, greeter_port, pool))
    finally:
        for process in endpoints:
            process.terminate()
            process.join(5)


def section(f: dict[str, float]) -> str:
    ratio = f["proxied_mbps"] / f["direct_mbps"]

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    return (
        f"{SECTION}\n\n"
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}. kube-proxy and the DNS server in one process with an in-memory"
        " apiserver; ClusterIPs mapped to 127.x addresses; endpoints and clients in other processes.\n\n"
        "| figure | measured | target | met |\n| --- | --- | --- | --- |\n"
        f"| bulk TCP through a ClusterIP vs direct to the endpoint ({BULK_BYTES // 2**20} MiB, best of 3) |"
        f" {f['proxied_mbps']:,.0f} vs {f['direct_mbps']:,.0f} MB/s = {ratio:.0%} | ≥ 50% | {met(ratio >= 0.5)} |\n"
        f"| CPU time of the proxy's process per GiB relayed (user + system) | {f['proxy_cpu_per_gib']:.2f} s | | |\n"
        f"| new connections through a ClusterIP ({CONNECT_CLIENTS} clients, connect/read/close for"
        f" {CONNECT_SECONDS:.0f} s; direct: {f['direct_cps']:,.0f}/s) |"
        f" {f['cps']:,.0f}/s | ≥ 2,000/s | {met(f['cps'] >= 2000)} |\n"
        f"| DNS queries over UDP ({DNS_QUERIES:,}, {DNS_OUTSTANDING} in flight), p50 / p99 latency |"
        f" {f['qps']:,.0f}/s, {f['p50_ms']:.2f} / {f['p99_ms']:.2f} ms | ≥ 5,000/s | {met(f['qps'] >= 5000)} |\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="update this BENCHMARKS.md")
    args = parser.parse_args()
    text = section(run())
    print(text)
    if args.write:
        write_section(args.write, text, heading="## Services (")
