"""``kbox start`` benchmark: time to ready and idle memory of the cluster process, against etcd alone.

kbox: the installed ``kbox`` command, as a user runs it: ``kbox start -p bench --runtime <fake|docker>
--port 0`` with a fresh temporary ``KBOX_HOME`` and ``HOME`` each run (so nothing is reused: new
certificates, token, database and kubeconfig), timed from just before exec to the command's exit, which
it makes once the API answers and every node is Ready. The cluster process (its pid is in
``$KBOX_HOME/bench/kbox.pid``) is then left idle for 10 s and its memory read: VmRSS from
/proc/<pid>/status and Pss from /proc/<pid>/smaps_rollup (RSS with shared pages divided among their
users). Then ``kbox delete -p bench`` stops it and removes its containers and network.

etcd: Debian's ``etcd`` (package etcd-server), a fresh data dir and free loopback ports each run, timed
from just before exec to ``/health`` answering ``{"health":"true"}`` (polled every 2 ms), then idle 10 s
and its memory read the same way; killed by pid. etcd is only the store a real control plane needs
before its apiserver can even start. Runs interleave (fake, docker, etcd), one warm-up of each not
counted. Targets (issue 5): ``kbox start`` to ready faster than etcd alone; idle memory under 150 MiB.

Prints a Markdown section; ``--write`` puts it into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_bench import ensure_etcd, etcd_version, running_etcd
from store_bench import write_section

ROOT = Path(__file__).resolve().parent.parent
KBOX = Path(os.environ.get("KBOX", ROOT / ".venv" / "bin" / "kbox"))
RUNS = 5
IDLE_S = 10.0
PROFILE = "bench"
MEMORY_TARGET_MIB = 150.0
SECTION = "## kbox start (`bench/start_bench.py`)"


def memory(pid: int) -> dict[str, float]:
    """VmRSS and Pss of ``pid`` in MiB."""
    figures: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            figures["rss"] = int(line.split()[1]) / 1024
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            figures["pss"] = int(line.split()[1]) / 1024
    return figures


def kbox_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KBOX_") and k != "KUBECONFIG"}
    env.update({"HOME": str(home), "KBOX_HOME": str(home / ".kbox"), "NO_COLOR": "1"})
    return env


def api_listening(log: Path, wall_start: float) -> float | None:
    """Seconds from ``wall_start`` (epoch) to the cluster's log line saying the apiserver listens."""
    for line in log.read_text(errors="replace").splitlines():
        if "apiserver listening on" in line:
            stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp() - wall_start
    return None


def kbox_run(runtime: str, directory: Path) -> dict[str, float]:
    """One ``kbox start`` in a fresh home: seconds to ready (and to the apiserver listening, from the
    cluster's log), then idle memory; always deleted after."""
    home = Path(tempfile.mkdtemp(prefix=f"start-{runtime}-", dir=directory))
    env = kbox_env(home)
    command = [str(KBOX), "start", "-p", PROFILE, "--runtime", runtime, "--port", "0"]
    command += ["--wait-timeout", "120"]
    try:
        wall_start = time.time()
        started = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        ready = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(
                f"kbox start --runtime {runtime} failed: {(result.stderr or result.stdout)[-2000:]}"
            )
        pid = int((home / ".kbox" / PROFILE / "kbox.pid").read_text().strip())
        time.sleep(IDLE_S)
        api = api_listening(home / ".kbox" / PROFILE / "kbox.log", wall_start)
        return {"ready": ready, "api": ready if api is None else api, **memory(pid)}
    finally:
        subprocess.run(
            [str(KBOX), "delete", "-p", PROFILE], env=env, capture_output=True, text=True, timeout=120
        )
        shutil.rmtree(home, ignore_errors=True)


def etcd_run(directory: Path) -> dict[str, float]:
    """Seconds from exec to ``/health`` true, then idle memory; etcd is stopped by pid afterwards."""
    with running_etcd(directory) as (process, ready):
        time.sleep(IDLE_S)
        return {"ready": ready, **memory(process.pid)}


def cli_only() -> float:
    """Seconds for ``kbox version``: the interpreter's start and the CLI's imports, which ``kbox start``
    pays once and the cluster process (``kbox serve``) again."""
    started = time.perf_counter()
    subprocess.run([str(KBOX), "version"], capture_output=True, check=True, timeout=60)
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def docker_version() -> str:
    result = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def measure(runs_wanted: int = RUNS) -> dict[str, Any]:
    ensure_etcd()
    load = [os.getloadavg()[0]]
    runs: dict[str, list[dict[str, float]]] = {"fake": [], "docker": [], "etcd": []}
    cli: list[float] = []
    with tempfile.TemporaryDirectory(
        prefix="kbox-start-bench-", dir=os.environ.get("KBOX_BENCH_DIR")
    ) as name:
        directory = Path(name)
        kbox_run("fake", directory)  # warm-ups (page cache, bytecode, images): not counted
        kbox_run("docker", directory)
        etcd_run(directory)
        for n in range(runs_wanted):
            for runtime in ("fake", "docker"):
                runs[runtime].append(kbox_run(runtime, directory))
            runs["etcd"].append(etcd_run(directory))
            cli.append(cli_only())
            print(
                f"  run {n + 1}/{runs_wanted}: "
                + ", ".join(f"{k} {v[-1]['ready']:.2f} s {v[-1]['rss']:.0f} MiB" for k, v in runs.items()),
                file=sys.stderr,
                flush=True,
            )
    load.append(os.getloadavg()[0])
    return {"runs": runs, "cli": cli, "load": load, "etcd": etcd_version(), "docker": docker_version()}


def section(figures: dict[str, Any]) -> str:
    runs = figures["runs"]
    ready = {k: [r["ready"] for r in v] for k, v in runs.items()}
    e50 = median(ready["etcd"])
    rows = ["| figure | measured | target | met |", "| --- | --- | --- | --- |"]
    for runtime in ("fake", "docker"):
        k50 = median(ready[runtime])
        met = "yes" if k50 < e50 else "**no**"
        api = median([r["api"] for r in runs[runtime]])
        rows.append(
            f"| `kbox start --runtime {runtime}` to ready, median of {len(ready[runtime])} | {k50:.2f} s (max"
            f" {max(ready[runtime]):.2f} s; {100 * k50 / e50:.0f}% of etcd's median; the apiserver listened"
            f" at {api:.2f} s, by the cluster's log) | faster than etcd alone | {met} |"
        )
    rows.append(
        f"| etcd {figures['etcd']} exec to `/health` true, median of {len(ready['etcd'])} | {e50:.2f} s (max"
        f" {max(ready['etcd']):.2f} s) | reference | |"
    )
    rows.append(
        f"| `kbox version` (interpreter start and the CLI's imports, paid by `kbox start` and again by the"
        f" cluster process), median of {len(figures['cli'])} | {median(figures['cli']):.2f} s | | |"
    )
    for runtime in ("fake", "docker"):
        rss = [r["rss"] for r in runs[runtime]]
        pss = [r["pss"] for r in runs[runtime]]
        met = "yes" if max(rss) < MEMORY_TARGET_MIB else "**no**"
        rows.append(
            f"| kbox cluster process ({runtime} runtime) after {IDLE_S:.0f} s idle: RSS, median of {len(rss)} |"
            f" {median(rss):.0f} MiB (max {max(rss):.0f}; PSS {median(pss):.0f} MiB) |"
            f" < {MEMORY_TARGET_MIB:.0f} MiB | {met} |"
        )
    rss = [r["rss"] for r in runs["etcd"]]
    pss = [r["pss"] for r in runs["etcd"]]
    rows.append(
        f"| etcd after {IDLE_S:.0f} s idle: RSS, median of {len(rss)} | {median(rss):.0f} MiB (max {max(rss):.0f};"
        f" PSS {median(pss):.0f} MiB) | reference | |"
    )
    header = (
        f"{SECTION}\n\n"
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, Docker {figures['docker']}. kbox: the installed `kbox start -p"
        f" {PROFILE} --runtime <runtime> --port 0`, a fresh temporary `KBOX_HOME` and `HOME` each run (new"
        " certificates, token, SQLite database), from exec to the command's exit (API answering, the node"
        f" Ready); then {IDLE_S:.0f} s idle, VmRSS and Pss (smaps_rollup) of the cluster process named by"
        " its pid file; then `kbox delete`. etcd: Debian's etcd-server, one member on free loopback ports"
        " with a fresh data dir, exec to `/health` true (polled every 2 ms), the same idle memory reading,"
        " killed by pid. Runs interleave; one warm-up of each not counted. Machine load average (1 min;"
        f" other work shares these cores): {figures['load'][0]:.1f} at the start, {figures['load'][1]:.1f} at"
        " the end.\n\n"
    )
    return header + "\n".join(rows) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", type=Path, help="update this BENCHMARKS.md")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs of each (default {RUNS})")
    args = parser.parse_args()
    text = section(measure(args.runs))
    print(text)
    if args.write:
        write_section(args.write, text + "\n", heading="## kbox start (")
