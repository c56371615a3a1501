"""Embedded-cluster benchmark: cold start to ready of ``kbox.testing.Cluster()`` against etcd's start.

kbox: each of 20 starts runs in a fresh ``python -c`` process, which enters ``with Cluster() as c`` (the
form the ``kbox_cluster`` fixture uses) and reports the time from just before ``Cluster()`` to ready (API
answering, node Ready, kube-system pods Running); the parent also times the whole process, from just before
it spawns the interpreter to that report, imports included. etcd: Debian's ``etcd`` (package
``etcd-server``, installed with apt when ``/usr/bin/etcd`` is missing and we are root), 10 runs, each from
just before exec to ``/health`` answering ``{"health":"true"}`` on a loopback port, with a fresh data dir.
That wait is what envtest pays before it even starts kube-apiserver. The runs interleave, so both share the
machine's noise. Target: kbox ready in under 30% of etcd's time.

Run by ``make bench``; prints a Markdown section and, with ``--write``, puts it into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

KBOX_RUNS = 20
ETCD_RUNS = 10
ETCD = os.environ.get("ETCD", "/usr/bin/etcd")
TARGET = 0.30  # kbox p50 / etcd p50
SECTION = "## Embedded cluster ("

CHILD = """
import json, sys, time
from kbox.testing import Cluster
started = time.perf_counter()
cluster = Cluster()
with cluster as c:
    ready = time.perf_counter() - started
    print(json.dumps({"ready": ready, "nodes": len(c.node_names)}), flush=True)
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def kbox_start() -> tuple[float, float]:
    """(Cluster() to ready, process spawn to ready) in seconds, from a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KBOX_")}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    whole = time.perf_counter() - started
    _, err = child.communicate(timeout=60)
    if child.returncode != 0 or not line:
        raise RuntimeError(f"the kbox child failed ({child.returncode}): {err[-2000:]}")
    return float(json.loads(line)["ready"]), whole


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_etcd() -> None:
    if Path(ETCD).exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        sys.exit(f"{ETCD} is missing: install Debian's etcd-server package (apt-get install -y etcd-server)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-q", "etcd-server"], check=True, env=env)
    # The package starts an etcd service where systemd runs; we only need the binary.
    subprocess.run(["systemctl", "stop", "etcd"], check=False, capture_output=True)


def etcd_version() -> str:
    out = subprocess.run([ETCD, "--version"], check=True, capture_output=True, text=True).stdout
    return out.splitlines()[0].split(":", 1)[-1].strip()


@contextlib.contextmanager
def running_etcd(directory: Path) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """A fresh one-member etcd on free loopback ports: yields the process and the seconds from just
    before exec to ``/health`` answering ``{"health":"true"}`` (polled every 2 ms); stops it (SIGTERM,
    SIGKILL after 10 s) and removes its data afterwards. Shared by the benchmarks that compare with etcd."""
    client, peer = free_port(), free_port()
    data = Path(tempfile.mkdtemp(prefix="etcd-", dir=directory))
    client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    args = [
        ETCD,
        "--name=bench",
        f"--data-dir={data}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=bench={peer_url}",
        "--log-level=error",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if process.poll() is not None:
                assert process.stderr is not None
                raise RuntimeError(
                    f"etcd exited with {process.returncode}: {process.stderr.read()[-2000:]!r}"
                )
            try:
                with urllib.request.urlopen(f"{client_url}/health", timeout=1) as response:
                    if json.loads(response.read()).get("health") == "true":
                        break
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.002)
            if time.perf_counter() - started > 30:
                raise RuntimeError("etcd was not healthy after 30 s")
        yield process, time.perf_counter() - started
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data, ignore_errors=True)


def etcd_start(directory: Path) -> float:
    """Seconds from just before exec to ``/health`` answering ``{"health":"true"}``."""
    with running_etcd(directory) as (_, ready):
        return ready


def main() -> str:
    ensure_etcd()
    version = etcd_version()
    kbox_start()  # warm the page cache and bytecode once, for both sides alike: not counted
    with tempfile.TemporaryDirectory(prefix="kbox-bench-", dir=os.environ.get("KBOX_BENCH_DIR")) as name:
        etcd_start(Path(name))
        ready: list[float] = []
        whole: list[float] = []
        etcd: list[float] = []
        for run in range(KBOX_RUNS):  # interleaved: both sides see the same machine
            r, w = kbox_start()
            ready.append(r)
            whole.append(w)
            if run < ETCD_RUNS:
                etcd.append(etcd_start(Path(name)))

    k50, w50, e50 = percentile(ready, 0.5), percentile(whole, 0.5), percentile(etcd, 0.5)
    ratio, whole_ratio = k50 / e50, w50 / e50
    met = "yes" if ratio < TARGET else "**no**"
    ms = 1000.0
    rows = [
        "| figure | measured | target | met |",
        "| --- | --- | --- | --- |",
        f"| kbox `Cluster()` to ready, p50 of {KBOX_RUNS} fresh processes | {k50 * ms:.0f} ms"
        f" (min {min(ready) * ms:.0f}, max {max(ready) * ms:.0f}) | well under 1 s | {'yes' if k50 < 1 else '**no**'} |",
        f"| kbox whole process (interpreter start, imports, `Cluster()` to ready), p50 | {w50 * ms:.0f} ms"
        f" (min {min(whole) * ms:.0f}, max {max(whole) * ms:.0f}) | | |",
        f"| etcd {version} exec to `/health` true, p50 of {ETCD_RUNS} | {e50 * ms:.0f} ms"
        f" (min {min(etcd) * ms:.0f}, max {max(etcd) * ms:.0f}) | reference | |",
        f"| kbox `Cluster()` to ready ÷ etcd to healthy | {100 * ratio:.0f}% | < {100 * TARGET:.0f}% | {met} |",
        f"| kbox whole process ÷ etcd to healthy | {100 * whole_ratio:.0f}% | | |",
    ]
    header = (
        f"## Embedded cluster (`bench/fixture_bench.py`)\n\n"
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}. kbox: `with kbox.testing.Cluster() as c` (fake runtime, one"
        f" node, in-memory store, as the `kbox_cluster` fixture starts it), each start in a fresh `python -c`"
        f" process; ready means API answering, node Ready and kube-system pods Running. etcd: Debian's"
        f" etcd-server {version}, one member on loopback ports with a fresh data dir, polled every 2 ms; its"
        f" health is what envtest waits for before it even starts kube-apiserver. Runs interleave, one warm-up"
        f" of each not counted.\n\n"
    )
    return header + "\n".join(rows) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace the embedded-cluster section of BENCHMARKS.md (or append it), keeping other sections."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\nFigures from `make bench`.\n\n"
    start = text.find(SECTION)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("\n" + text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="update this BENCHMARKS.md")
    args = parser.parse_args()
    section = main()
    print(section)
    if args.write:
        write_section(args.write, section)
