"""The parts of ``describe node`` that add up pods: taints, the non-terminated pods on the node with
their requests and limits as shares of the allocatable, and the totals.

Quantities are added as numbers and printed back in Kubernetes' canonical form (``100m``, ``192Mi``,
``2k``), keeping the binary or decimal style of the first quantity seen, as kubectl's sums do.
"""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kbox.api import quantity
from kbox.cli.kube.describe import Writer, write_lines

if TYPE_CHECKING:
    from kbox.cli.kube.session import Api

Obj = dict[str, Any]
_BINARY = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_STANDARD = ("cpu", "memory", "ephemeral-storage", "storage", "pods")


class Amount:
    """A sum of quantities that prints like the Kubernetes Quantity it would be."""

    def __init__(self) -> None:
        self.value = Decimal(0)
        self.binary: bool | None = None

    def add(self, text: Any) -> None:
        try:
            value = quantity.parse(text)
        except ValueError:
            return
        if self.binary is None:
            self.binary = str(text).strip().endswith(_BINARY)
        self.value += value

    def __str__(self) -> str:
        return format_quantity(self.value, binary=bool(self.binary))


def format_quantity(value: Decimal, *, binary: bool = False) -> str:
    """Canonical text: the largest suffix that keeps an integer, binary for byte counts written so."""
    if value == 0:
        return "0"
    if binary and value == value.to_integral_value():
        number, exponent = int(value), 0
        while abs(number) >= 1024 and number % 1024 == 0 and exponent < len(_BINARY):
            number //= 1024
            exponent += 1
        return f"{number}{_BINARY[exponent - 1]}" if exponent else str(number)
    nanos = math.ceil(value * Decimal(10) ** 9)
    exponent = -9
    while nanos % 1000 == 0 and exponent < 18:
        nanos //= 1000
        exponent += 3
    return f"{nanos}{_DECIMAL[exponent]}"


def write_taints(w: Writer, taints: list[Obj]) -> None:
    ordered = sorted(taints, key=lambda t: f"{t.get('effect', '')},{t.get('key', '')}")
    write_lines(w, "Taints", [taint_text(taint) for taint in ordered])


def taint_text(taint: Obj) -> str:
    """``key=value:Effect``: a taint, and the start of a toleration, as kubectl prints them."""
    text = str(taint.get("key", ""))
    if taint.get("value"):
        text += f"={taint['value']}"
    if taint.get("effect"):
        text += f":{taint['effect']}"
    return text


async def pods_on(api: Api, node: str) -> list[Obj]:
    """Every pod bound to ``node`` that has not finished."""
    selector = f"spec.nodeName={node},status.phase!=Failed,status.phase!=Succeeded"
    pods: list[Obj] = []
    token = ""
    while True:
        params = {"fieldSelector": selector, "limit": "500"}
        if token:
            params["continue"] = token
        page = await api.request("GET", "/api/v1/pods", params=params)
        pods.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return pods


def pod_totals(pod: Obj, field: str) -> dict[str, Amount]:
    """A pod's ``requests`` or ``limits``: its containers added up, or its largest init container if
    that is more, plus the pod overhead."""
    spec = pod.get("spec") or {}
    totals: dict[str, Amount] = {}
    for container in spec.get("containers") or []:
        for name, value in ((container.get("resources") or {}).get(field) or {}).items():
            totals.setdefault(name, Amount()).add(value)
    for container in spec.get("initContainers") or []:
        for name, value in ((container.get("resources") or {}).get(field) or {}).items():
            try:
                amount = quantity.parse(value)
            except ValueError:
                continue
            if name not in totals or amount > totals[name].value:
                replaced = Amount()
                replaced.add(value)
                totals[name] = replaced
    for name, value in (spec.get("overhead") or {}).items():
        totals.setdefault(name, Amount()).add(value)
    return totals


def _share(amount: Amount, total: Decimal) -> str:
    percent = int(amount.value / total * 100) if total else 0
    return f"{amount} ({percent}%)"


def write_resources(w: Writer, node: Obj, pods: list[Obj], now: datetime.datetime) -> None:
    from kbox.cli.kube.describe import since

    status = node.get("status") or {}
    allocatable = status.get("allocatable") or status.get("capacity") or {}

    def base(name: str) -> Decimal:
        try:
            return quantity.parse(allocatable.get(name, "0"))
        except ValueError:
            return Decimal(0)

    w.write(0, f"Non-terminated Pods:\t({len(pods)} in total)\n")
    w.write(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
    w.write(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n")
    requests: dict[str, Amount] = {}
    limits: dict[str, Amount] = {}
    for pod in pods:
        metadata = pod.get("metadata") or {}
        own_requests, own_limits = pod_totals(pod, "requests"), pod_totals(pod, "limits")
        cells = [
            _share(own.get(name) or Amount(), base(name))
            for own in (own_requests, own_limits)
            for name in ("cpu", "memory")
        ]
        cpu_req, mem_req, cpu_lim, mem_lim = cells
        w.write(
            1,
            f"{metadata.get('namespace', '')}\t{metadata.get('name', '')}\t\t{cpu_req}\t{cpu_lim}\t"
            f"{mem_req}\t{mem_lim}\t{since(metadata.get('creationTimestamp'), now)}\n",
        )
        for own, total in ((own_requests, requests), (own_limits, limits)):
            for name, amount in own.items():
                total.setdefault(name, Amount())
                if total[name].binary is None:
                    total[name].binary = amount.binary
                total[name].value += amount.value
    w.write(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n")
    w.write(1, "Resource\tRequests\tLimits\n")
    w.write(1, "--------\t--------\t------\n")
    for name in ("cpu", "memory", "ephemeral-storage"):
        w.write(
            1,
            f"{name}\t{_share(requests.get(name) or Amount(), base(name))}\t"
            f"{_share(limits.get(name) or Amount(), base(name))}\n",
        )
    for name in sorted(k for k in allocatable if k.startswith("hugepages-")):
        w.write(
            1,
            f"{name}\t{_share(requests.get(name) or Amount(), base(name))}\t"
            f"{_share(limits.get(name) or Amount(), base(name))}\n",
        )
    for name in sorted(k for k in allocatable if k not in _STANDARD and not k.startswith("hugepages-")):
        if "/" in name:  # extended resources (vendor.com/gpu)
            w.write(1, f"{name}\t{requests.get(name) or Amount()}\t{limits.get(name) or Amount()}\n")
