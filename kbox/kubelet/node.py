"""The Node object a kubelet registers and keeps fresh: capacity from the host, a complete nodeInfo
(client libraries' models require every field), addresses, labels and conditions; and its Lease in
``kube-node-lease``, the cheap heartbeat the node lifecycle controller watches.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from kbox.api import objects
from kbox.api.version import GIT_VERSION

Obj = dict[str, Any]
MAX_PODS = 110
LEASE_SECONDS = 40


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


@cache
def host_facts() -> dict[str, str]:
    """Facts of this machine, read once."""
    machine_id = _read("/etc/machine-id") or uuid.uuid5(uuid.NAMESPACE_DNS, socket.gethostname()).hex
    os_image = "Linux"
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_image = line.split("=", 1)[1].strip('"')
    memory_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    machine = platform.machine().lower()
    return {
        "machineID": machine_id,
        "systemUUID": _read("/sys/class/dmi/id/product_uuid") or machine_id,
        "bootID": _read("/proc/sys/kernel/random/boot_id") or machine_id,
        "kernelVersion": platform.release(),
        "osImage": os_image,
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine),
        "memory": f"{memory_kib}Ki",
        "cpu": str(os.cpu_count() or 1),
    }


def node_object(
    name: str,
    *,
    address: str,
    runtime_version: str,
    control_plane: bool,
    state_dir: Path,
    labels: dict[str, str] | None = None,
) -> Obj:
    facts = host_facts()
    disk = shutil.disk_usage(state_dir if state_dir.exists() else "/")
    capacity = {
        "cpu": facts["cpu"],
        "memory": facts["memory"],
        "ephemeral-storage": f"{disk.total // 1024}Ki",
        "pods": str(MAX_PODS),
        "hugepages-2Mi": "0",
    }
    node_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": facts["architecture"],
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": facts["architecture"],
        **(labels or {}),
    }
    if control_plane:
        node_labels["node-role.kubernetes.io/control-plane"] = ""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kbox.io/runtime": runtime_version},
        },
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": facts["machineID"],
                "systemUUID": facts["systemUUID"],
                "bootID": facts["bootID"],
                "kernelVersion": facts["kernelVersion"],
                "osImage": facts["osImage"],
                "containerRuntimeVersion": runtime_version,
                "kubeletVersion": GIT_VERSION,
                "kubeProxyVersion": GIT_VERSION,
                "operatingSystem": "linux",
                "architecture": facts["architecture"],
            },
            "conditions": conditions(ready=True, message="kubelet is posting ready status"),
            "images": [],
        },
    }


def conditions(*, ready: bool, message: str, previous: list[Obj] | None = None) -> list[Obj]:
    now = objects.timestamp()
    old = {c.get("type"): c for c in previous or []}

    def condition(kind: str, status: str, reason: str, text: str) -> Obj:
        before = old.get(kind)
        moment = before["lastTransitionTime"] if before and before.get("status") == status else now
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": text,
            "lastHeartbeatTime": now,
            "lastTransitionTime": moment,
        }

    return [
        condition(
            "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"
        ),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        condition(
            "Ready", "True" if ready else "False", "KubeletReady" if ready else "KubeletNotReady", message
        ),
    ]


def lease_object(node: str, node_uid: str) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node,
            "namespace": "kube-node-lease",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}],
        },
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": objects.micro_timestamp(),
        },
    }


def host_address() -> str:
    """This host's address as nodes report it (127.0.0.1 when it has no other)."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
    return address
