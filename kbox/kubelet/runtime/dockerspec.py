"""What the Docker runtime sends to and reads from Docker: container names, labels, the create
bodies of sandboxes and app containers, and the statuses parsed back from inspections and lists.

Pure functions of the kubelet's configs and Docker's JSON, so the mapping from a pod to Docker's API
can be read (and checked) in one place, apart from the calls that carry it out.

Names follow dockershim: ``k8s_POD_<pod>_<ns>_<uid>_0`` and ``k8s_<container>_<pod>_<ns>_<uid>_<restart
count>``. App containers inherit the sandbox's labels plus :data:`LABEL_SANDBOX_ID`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from kbox.kubelet.runtime import interface, podnet, sandboximage
from kbox.kubelet.runtime.interface import (
    ContainerBrief,
    ContainerConfig,
    ContainerStatus,
    PodRef,
    SandboxConfig,
    SandboxStatus,
)

LABEL_SANDBOX_ID = "io.kbox.sandbox-id"  # on app containers: the sandbox whose namespaces they join

# Kubernetes' defaults for container log rotation (containerLogMaxSize, containerLogMaxFiles); json-file
# is forced so that logs can be read back whatever the daemon's default driver is.
LOG_CONFIG = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "5"}}
_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def epoch(text: str | None) -> float:
    """An RFC 3339 time as Docker writes it (nanoseconds, ``Z``) → seconds since the epoch; 0 if unset."""
    if not text or text.startswith("0001-01-01"):
        return 0.0
    m = _TIME_RE.match(text)
    if m is None:
        return 0.0
    zone = "+00:00" if m[3] == "Z" else m[3]
    return datetime.fromisoformat(m[1] + zone).timestamp() + (float("0." + m[2]) if m[2] else 0.0)


def sandbox_name(pod: PodRef) -> str:
    return f"k8s_POD_{pod.name}_{pod.namespace}_{pod.uid}_0"


def container_name(pod: PodRef, name: str, attempt: int) -> str:
    return f"k8s_{name}_{pod.name}_{pod.namespace}_{pod.uid}_{attempt}"


def label_filter(**labels: str) -> str:
    """Docker's ``filters`` parameter matching every one of ``labels``."""
    return json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})


def is_latest(image: str) -> bool:
    """Whether ``image`` names the ``latest`` tag (explicitly or by having none, and no digest)."""
    last = image.rsplit("/", 1)[-1]
    return "@" not in last and (":" not in last or last.endswith(":latest"))


def sandbox_body(
    config: SandboxConfig, *, cluster: str, network: str, image: str, pod_ip: str = ""
) -> dict[str, Any]:
    """The create body of a pod's sandbox container; with ``pod_ip`` it starts with no network and
    kbox wires its namespace to the cluster bridge with that address (:mod:`.podnet`)."""
    pod = config.pod
    labels = {
        **config.labels,
        interface.LABEL_CLUSTER: cluster,
        interface.LABEL_NAMESPACE: pod.namespace,
        interface.LABEL_POD_NAME: pod.name,
        interface.LABEL_POD_UID: pod.uid,
        interface.LABEL_CONTAINER_NAME: "POD",
        interface.LABEL_RESTART_COUNT: "0",
        interface.LABEL_KIND: "sandbox",
    }
    if pod_ip:
        labels[podnet.LABEL_POD_IP] = pod_ip
    host_config: dict[str, Any] = {
        "NetworkMode": "host" if config.host_network else "none" if pod_ip else network,
        "IpcMode": "shareable",  # app containers join it
        "LogConfig": LOG_CONFIG,
    }
    if not config.host_network:
        # On the Docker network, its embedded resolver forwards to these; with no Docker network
        # (wired by kbox), Docker writes them into the sandbox's resolv.conf. Either way the app
        # containers share that file, unless the kubelet mounts its own.
        if config.dns_servers:
            host_config["Dns"] = list(config.dns_servers)
        if config.dns_searches:
            host_config["DnsSearch"] = list(config.dns_searches)
        if config.dns_options:
            host_config["DnsOptions"] = list(config.dns_options)
    return {
        "Image": image,
        "Hostname": config.hostname,
        "Labels": labels,
        "HostConfig": host_config,
    }


def container_body(sandbox: SandboxStatus, config: ContainerConfig, *, cluster: str) -> dict[str, Any]:
    """The create body of an app (or init) container joining ``sandbox``'s namespaces."""
    # The pod's labels come from the sandbox; not its own ones, nor those Docker copied from its image.
    own = {interface.LABEL_KIND, interface.LABEL_CONTAINER_NAME, interface.LABEL_RESTART_COUNT}
    own.update(sandboximage.IMAGE_LABELS)
    labels = {
        **config.labels,
        **{k: v for k, v in sandbox.labels.items() if k not in own},
        interface.LABEL_CLUSTER: cluster,
        interface.LABEL_CONTAINER_NAME: config.name,
        interface.LABEL_RESTART_COUNT: str(config.restart_count),
        interface.LABEL_KIND: "container",
        LABEL_SANDBOX_ID: sandbox.id,
    }
    host: dict[str, Any] = {
        "NetworkMode": f"container:{sandbox.id}",
        "IpcMode": f"container:{sandbox.id}",
        "LogConfig": LOG_CONFIG,
        "Binds": [f"{m.host_path}:{m.container_path}{':ro' if m.read_only else ''}" for m in config.mounts],
        "Privileged": config.privileged,
        "ReadonlyRootfs": config.read_only_root,
        "CapAdd": list(config.cap_add) or None,
        "CapDrop": list(config.cap_drop) or None,
    }
    if config.memory_limit:
        host["Memory"] = host["MemorySwap"] = config.memory_limit  # no swap, as in Kubernetes
    if config.cpu_limit:
        host["NanoCpus"] = round(config.cpu_limit * 1e9)
    if config.cpu_request:
        host["CpuShares"] = max(2, int(config.cpu_request * 1024))  # Kubernetes' milli-CPU → shares
    body: dict[str, Any] = {
        "Image": config.image,
        "Labels": labels,
        "Env": [f"{k}={v}" for k, v in config.env],
        "OpenStdin": config.stdin,
        "StdinOnce": config.stdin_once,
        "Tty": config.tty,
        "HostConfig": host,
    }
    if config.command:  # a given entrypoint also drops the image's Cmd, as Kubernetes wants
        body["Entrypoint"] = list(config.command)
    if config.args:
        body["Cmd"] = list(config.args)
    if config.working_dir:
        body["WorkingDir"] = config.working_dir
    if config.run_as_user is not None or config.run_as_group is not None:
        user = "" if config.run_as_user is None else str(config.run_as_user)
        body["User"] = user if config.run_as_group is None else f"{user}:{config.run_as_group}"
    return body


def sandbox_status(info: dict[str, Any], *, network: str) -> SandboxStatus:
    """From a container inspection or a container list entry (they differ in a few fields)."""
    labels = (info.get("Config") or {}).get("Labels") or info.get("Labels") or {}
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    ip = (networks.get(network) or {}).get("IPAddress") or ""
    if not ip:
        ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
    if not ip:  # wired by kbox (no Docker network): the address it gave is on the sandbox
        ip = labels.get(podnet.LABEL_POD_IP, "")
    state = info.get("State")
    running = state.get("Running", False) if isinstance(state, dict) else state == "running"
    created = info.get("Created")
    return SandboxStatus(
        id=info["Id"],
        pod=PodRef(
            labels.get(interface.LABEL_NAMESPACE, ""),
            labels.get(interface.LABEL_POD_NAME, ""),
            labels.get(interface.LABEL_POD_UID, ""),
        ),
        ready=bool(running),
        ip=ip,
        labels=dict(labels),
        created_at=float(created) if isinstance(created, int | float) else epoch(created),
    )


def container_status(info: dict[str, Any], *, image_id: str) -> ContainerStatus:
    """A container inspection → the kubelet's view (state, exit code and reason, times, labels)."""
    config, state = info["Config"], info["State"]
    labels = config.get("Labels") or {}
    docker_state, code, error = (
        state.get("Status", ""),
        int(state.get("ExitCode") or 0),
        state.get("Error", ""),
    )
    reason = ""
    if docker_state == "created" and error:  # the start failed: Docker keeps it "created"
        status, reason = "exited", "ContainerCannotRun"
    elif docker_state in ("running", "paused", "restarting"):
        status = "running"
    elif docker_state in ("exited", "dead", "removing"):
        status = "exited"
        reason = "OOMKilled" if state.get("OOMKilled") else "Completed" if code == 0 else "Error"
    elif docker_state == "created":
        status = "created"
    else:
        status = "unknown"
    started, finished = epoch(state.get("StartedAt")), epoch(state.get("FinishedAt"))
    if finished and started > finished:  # Docker stamps the start late when the process exits at once
        started = finished
    sandbox_id = labels.get(LABEL_SANDBOX_ID) or info["HostConfig"].get("NetworkMode", "").removeprefix(
        "container:"
    )
    return ContainerStatus(
        id=info["Id"],
        name=labels.get(interface.LABEL_CONTAINER_NAME) or info.get("Name", "").lstrip("/"),
        sandbox_id=sandbox_id,
        state=status,
        image=config.get("Image", ""),
        image_id=image_id,
        exit_code=code if status == "exited" else 0,
        reason=reason,
        message=error,
        created_at=epoch(info.get("Created")),
        started_at=started,
        finished_at=finished,
        restart_count=int(labels.get(interface.LABEL_RESTART_COUNT) or 0),
        labels=dict(labels),
    )


def brief(entry: dict[str, Any]) -> ContainerBrief:
    """A container list entry (not an inspection: the list is one call for the whole node)."""
    labels = entry.get("Labels") or {}
    created = entry.get("Created")
    return ContainerBrief(
        id=entry["Id"],
        pod_uid=labels.get(interface.LABEL_POD_UID, ""),
        name=labels.get(interface.LABEL_CONTAINER_NAME, ""),
        running=entry.get("State") in ("running", "paused", "restarting"),
        sandbox=labels.get(interface.LABEL_KIND) == "sandbox",
        created_at=float(created) if isinstance(created, int | float) else epoch(created),
    )
