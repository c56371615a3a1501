"""Server-side printing: the ``meta.k8s.io/v1`` ``Table`` that ``kubectl get`` renders verbatim.

kubectl has no client-side printers for built-in kinds: it asks for a Table and prints its cells as they
come, so every cell (``AGE``, ``STATUS``, ``RESTARTS`` …) is computed here, the way kube-apiserver's
printers do it. A kind's printer is a list of ``Column`` definitions plus a function from one object to
its cells. Like kube-apiserver, kbox always produces the wide cells; ``priority: 1`` columns are the ones
kubectl hides unless asked for ``-o wide``.

``to_table`` wraps the rows into a Table. Each row carries the object as ``includeObject`` asks:
``Metadata`` (the default: a ``PartialObjectMetadata`` holding the full ``metadata``, which kubectl needs
for ``-A``'s NAMESPACE column, ``--show-labels`` and ``-L``), ``Object`` (the whole object, for
``--sort-by``) or ``None``. A watch sends the column definitions in its first event only
(``include_columns=False`` afterwards).

Kinds without a printer get kube-apiserver's default convertor: ``Name`` and ``Created At`` (type
``date``), the latter an RFC 3339 creation timestamp in UTC.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kbox.api import errors

Obj = dict[str, Any]

__all__ = [
    "Column",
    "Printer",
    "format_label_selector",
    "format_labels",
    "human_duration",
    "printer_for",
    "register_printer",
    "short_human_duration",
    "to_table",
]

INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")

_MICRO = 1_000_000
_MINUTE = 60 * _MICRO
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_YEAR = 365 * _DAY


# --------------------------------------------------------------------------------------------------------
# Durations


def _micros(delta: datetime.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * _MICRO + delta.microseconds


def _truncated_seconds(micros: int) -> int:
    """Whole seconds, truncated toward zero as Go's ``int(d.Seconds())`` is."""
    return micros // _MICRO if micros >= 0 else -(-micros // _MICRO)


def human_duration(delta: datetime.timedelta) -> str:
    """A duration as ``kubectl get`` shows ages, with two or three significant figures.

    Seconds up to two minutes (``119s``), then minutes and seconds below ten minutes (``3m10s``), minutes
    below three hours (``179m``), hours and minutes below eight hours (``7h59m``), hours below two days
    (``47h``), days and hours below eight days (``2d1h``), days below two years (``729d``), years and days
    below eight years (``2y1d``), then years. Up to a second in the future (clock skew) reads ``0s``;
    further is ``<invalid>``.
    """
    micros = _micros(delta)
    seconds = _truncated_seconds(micros)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 2 * 60:
        return f"{seconds}s"
    minutes = micros // _MINUTE
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 3 * 60:
        return f"{minutes}m"
    hours = micros // _HOUR
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 8 * 24:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    days = hours // 24
    if days < 2 * 365:
        return f"{days}d"
    if days < 8 * 365:
        rest = days % 365
        return f"{days // 365}y{rest}d" if rest else f"{days // 365}y"
    return f"{days // 365}y"


def short_human_duration(delta: datetime.timedelta) -> str:
    """The one-unit form (``59s``, ``1m``, ``23h``, ``364d``, ``1y``), with the same skew tolerance."""
    micros = _micros(delta)
    seconds = _truncated_seconds(micros)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    if micros < _HOUR:
        return f"{micros // _MINUTE}m"
    if micros < _DAY:
        return f"{micros // _HOUR}h"
    if micros < _YEAR:
        return f"{micros // _DAY}d"
    return f"{micros // _YEAR}y"


# --------------------------------------------------------------------------------------------------------
# Small accessors: objects are plain decoded JSON, so every field may be missing or null.


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _path(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _parse_time(value: Any) -> datetime.datetime | None:
    """An RFC 3339 ``Time`` or ``MicroTime``; ``None`` when unset (Go's zero time) or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment


def _aware(now: datetime.datetime) -> datetime.datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=datetime.UTC)


def _since(value: Any, now: datetime.datetime) -> str:
    """Time elapsed since a timestamp, as ages are shown; ``<unknown>`` when it is unset."""
    moment = _parse_time(value)
    if moment is None:
        return "<unknown>"
    return human_duration(_aware(now) - moment)


def _age(obj: Obj, now: datetime.datetime) -> str:
    return _since(_path(obj, "metadata", "creationTimestamp"), now)


def _name(obj: Obj) -> str:
    return _str(_path(obj, "metadata", "name"))


def _bool_ptr(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return "<unset>"


def _int_or_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    return _str(value)


def _more(items: list[str], total: int, limit: int, empty: str) -> str:
    """``a,b,c + 2 more...`` when ``total`` exceeds the ``limit`` shown; ``empty`` for none."""
    text = ",".join(items)
    if total > limit:
        return f"{text} + {total - limit} more..."
    return text or empty


# --------------------------------------------------------------------------------------------------------
# Labels and selectors


def format_labels(labels: Any) -> str:
    """``k1=v1,k2=v2`` sorted on the joined pairs, or ``<none>``."""
    pairs = sorted(f"{key}={value}" for key, value in _dict(labels).items())
    return ",".join(pairs) or "<none>"


_SELECTOR_OPERATORS = {"In": " in ", "NotIn": " notin ", "Exists": "", "DoesNotExist": ""}


def _selector_string(selector: Any) -> str | None:
    """A ``LabelSelector`` in selector syntax, requirements sorted by key; ``""`` for a nil or empty one,
    ``None`` when it is not a valid selector."""
    if not isinstance(selector, dict):
        return ""
    requirements: list[tuple[str, str]] = []
    for key, value in _dict(selector.get("matchLabels")).items():
        requirements.append((str(key), f"{key}={value}"))
    for expression in _list(selector.get("matchExpressions")):
        expression = _dict(expression)
        key = _str(expression.get("key"))
        operator = _str(expression.get("operator"))
        values = [str(v) for v in _list(expression.get("values"))]
        if operator not in _SELECTOR_OPERATORS:
            return None
        if operator in ("In", "NotIn"):
            if not values:
                return None
            requirements.append((key, f"{key}{_SELECTOR_OPERATORS[operator]}({','.join(sorted(values))})"))
        elif values:
            return None
        else:
            requirements.append((key, key if operator == "Exists" else f"!{key}"))
    requirements.sort(key=lambda requirement: requirement[0])
    return ",".join(text for _, text in requirements)


def format_label_selector(selector: Any) -> str:
    """A ``LabelSelector`` as kubectl's SELECTOR columns show it: ``app=web``, ``tier in (a,b)``,
    ``<none>`` when nil or empty, ``<error>`` when invalid."""
    text = _selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def _containers(pod_spec: Any) -> tuple[str, str]:
    """The CONTAINERS and IMAGES cells: names and images, comma-separated, in spec order."""
    containers = [_dict(c) for c in _list(_dict(pod_spec).get("containers"))]
    return ",".join(_str(c.get("name")) for c in containers), ",".join(
        _str(c.get("image")) for c in containers
    )


# --------------------------------------------------------------------------------------------------------
# Columns and printers


@dataclass(frozen=True)
class Column:
    """One ``TableColumnDefinition``. ``priority`` 0 columns always print; 1 only with ``-o wide``."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        """The JSON form; every field is present, as the Go struct has no ``omitempty``."""
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


CellsFn = Callable[[Obj, datetime.datetime], list[Any]]
ConditionsFn = Callable[[Obj], list[Obj]]


class Printer:
    """A kind's columns and the function that turns one object into that many cells."""

    def __init__(self, columns: Sequence[Column], cells: CellsFn, conditions: ConditionsFn | None = None):
        self.columns: list[Column] = list(columns)
        self._cells = cells
        self._conditions = conditions

    def row(self, obj: Obj, now: datetime.datetime) -> list[Any]:
        """The cells of ``obj``'s row, one per column (wide ones included), as of ``now``."""
        return self._cells(obj, now)

    def row_conditions(self, obj: Obj) -> list[Obj]:
        """``TableRowCondition``s for the row (a finished pod is ``Completed``); usually none."""
        return self._conditions(obj) if self._conditions else []

    def definitions(self) -> list[dict[str, Any]]:
        return [column.definition() for column in self.columns]


NAME = Column("Name", format="name", description="Name of the object, unique within its namespace.")
AGE = Column("Age", description="Time since the object was created.")
CONTAINERS = Column("Containers", priority=1, description="Names of the containers in the pod template.")
IMAGES = Column("Images", priority=1, description="Images of the containers in the pod template.")
SELECTOR = Column("Selector", priority=1, description="Label selector for the pods this object manages.")


# --- default (kube-apiserver's generic convertor) --------------------------------------------------------


def _rfc3339_utc(value: Any) -> str:
    moment = _parse_time(value)
    if moment is None:
        return "0001-01-01T00:00:00Z"
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _default_cells(obj: Obj, now: datetime.datetime) -> list[Any]:
    return [_name(obj), _rfc3339_utc(_path(obj, "metadata", "creationTimestamp"))]


DEFAULT_PRINTER = Printer(
    [NAME, Column("Created At", type="date", description="When the object was created.")],
    _default_cells,
)


# --- Pod ------------------------------------------------------------------------------------------------


def _restartable(container: Obj | None) -> bool:
    """A sidecar: an init container with ``restartPolicy: Always``."""
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_status(conditions: Any, kind: str) -> str | None:
    for condition in _list(conditions):
        condition = _dict(condition)
        if condition.get("type") == kind:
            return _str(condition.get("status"))
    return None


def _later(current: datetime.datetime | None, state: Any) -> datetime.datetime | None:
    """The later of ``current`` and a last-termination state's ``finishedAt``."""
    finished = _parse_time(_path(state, "terminated", "finishedAt"))
    if finished is not None and (current is None or current < finished):
        return finished
    return current


def _terminated_reason(terminated: Obj, prefix: str) -> str:
    if _str(terminated.get("reason")):
        return prefix + _str(terminated.get("reason"))
    if _int(terminated.get("signal")):
        return f"{prefix}Signal:{_int(terminated.get('signal'))}"
    return f"{prefix}ExitCode:{_int(terminated.get('exitCode'))}"


def _pod_cells(pod: Obj, now: datetime.datetime) -> list[Any]:
    spec = _dict(pod.get("spec"))
    status = _dict(pod.get("status"))
    conditions = status.get("conditions")
    phase = _str(status.get("phase"))
    reason = _str(status.get("reason")) or phase
    for condition in _list(conditions):
        condition = _dict(condition)
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = [_dict(c) for c in _list(spec.get("initContainers"))]
    init_by_name = {_str(c.get("name")): c for c in init_specs}
    total = len(_list(spec.get("containers"))) + sum(1 for c in init_specs if _restartable(c))
    ready = 0
    restarts = 0
    last_restart: datetime.datetime | None = None
    sidecar_restarts = 0
    sidecar_last_restart: datetime.datetime | None = None

    initializing = False
    for index, container in enumerate(_dict(c) for c in _list(status.get("initContainerStatuses"))):
        count = _int(container.get("restartCount"))
        restarts += count
        last_restart = _later(last_restart, container.get("lastState"))
        sidecar = _restartable(init_by_name.get(_str(container.get("name"))))
        if sidecar:
            sidecar_restarts += count
            sidecar_last_restart = _later(sidecar_last_restart, container.get("lastState"))
        state = _dict(container.get("state"))
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if isinstance(terminated, dict) and _int(terminated.get("exitCode")) == 0:
            continue
        if sidecar and container.get("started") is True:
            if container.get("ready") is True:
                ready += 1
            continue
        if isinstance(terminated, dict):
            reason = _terminated_reason(terminated, "Init:")
        elif isinstance(waiting, dict) and _str(waiting.get("reason")) not in ("", "PodInitializing"):
            reason = "Init:" + _str(waiting.get("reason"))
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_status(conditions, "Initialized") == "True":
        restarts = sidecar_restarts
        last_restart = sidecar_last_restart
        has_running = False
        for container in reversed([_dict(c) for c in _list(status.get("containerStatuses"))]):
            restarts += _int(container.get("restartCount"))
            last_restart = _later(last_restart, container.get("lastState"))
            state = _dict(container.get("state"))
            waiting = state.get("waiting")
            terminated = state.get("terminated")
            if isinstance(waiting, dict) and _str(waiting.get("reason")):
                reason = _str(waiting.get("reason"))
            elif isinstance(terminated, dict):
                reason = _terminated_reason(terminated, "")
            elif container.get("ready") is True and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        # A pod whose last container completed while another still runs is not complete.
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_status(conditions, "Ready") == "True" else "NotReady"

    if _path(pod, "metadata", "deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration(_aware(now) - last_restart)} ago)"

    pod_ips = _list(status.get("podIPs"))
    pod_ip = _str(_dict(pod_ips[0]).get("ip")) if pod_ips else _str(status.get("podIP"))
    gates = _list(spec.get("readinessGates"))
    gates_cell = "<none>"
    if gates:
        passed = sum(
            1
            for gate in gates
            if _condition_status(conditions, _str(_dict(gate).get("conditionType"))) == "True"
        )
        gates_cell = f"{passed}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _age(pod, now),
        pod_ip or "<none>",
        _str(spec.get("nodeName")) or "<none>",
        _str(status.get("nominatedNodeName")) or "<none>",
        gates_cell,
    ]


def _pod_conditions(pod: Obj) -> list[Obj]:
    phase = _path(pod, "status", "phase")
    if phase == "Succeeded":
        return [
            {"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod succeeded."}
        ]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return []


POD_PRINTER = Printer(
    [
        NAME,
        Column("Ready", description="Ready containers out of all containers."),
        Column("Status", description="A summary of the pod's phase and container states."),
        Column("Restarts", description="Container restarts, and how long ago the last one was."),
        AGE,
        Column("IP", priority=1, description="The pod's first IP address."),
        Column("Node", priority=1, description="The node the pod is bound to."),
        Column("Nominated Node", priority=1, description="The node nominated by preemption."),
        Column("Readiness Gates", priority=1, description="Readiness gates that hold, out of all."),
    ],
    _pod_cells,
    _pod_conditions,
)


# --- Node -----------------------------------------------------------------------------------------------


def _node_roles(labels: Any) -> str:
    roles: set[str] = set()
    for key, value in _dict(labels).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key.removeprefix("node-role.kubernetes.io/")
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or "<none>"


def _node_address(status: Obj, kind: str) -> str:
    for address in _list(status.get("addresses")):
        address = _dict(address)
        if address.get("type") == kind:
            return _str(address.get("address"))
    return "<none>"


def _node_cells(node: Obj, now: datetime.datetime) -> list[Any]:
    status = _dict(node.get("status"))
    ready = _condition_status(status.get("conditions"), "Ready")
    states = ["Unknown" if ready is None else "Ready" if ready == "True" else "NotReady"]
    if _path(node, "spec", "unschedulable") is True:
        states.append("SchedulingDisabled")
    info = _dict(status.get("nodeInfo"))
    return [
        _name(node),
        ",".join(states),
        _node_roles(_path(node, "metadata", "labels")),
        _age(node, now),
        _str(info.get("kubeletVersion")),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        _str(info.get("osImage")) or "<unknown>",
        _str(info.get("kernelVersion")) or "<unknown>",
        _str(info.get("containerRuntimeVersion")) or "<unknown>",
    ]


NODE_PRINTER = Printer(
    [
        NAME,
        Column("Status", description="Whether the node is Ready, and whether scheduling is disabled."),
        Column("Roles", description="Roles from the node-role.kubernetes.io/ labels."),
        AGE,
        Column("Version", description="The kubelet's version."),
        Column("Internal-IP", priority=1, description="The node's first InternalIP address."),
        Column("External-IP", priority=1, description="The node's first ExternalIP address."),
        Column("OS-Image", priority=1, description="The operating system image."),
        Column("Kernel-Version", priority=1, description="The kernel version."),
        Column("Container-Runtime", priority=1, description="The container runtime and its version."),
    ],
    _node_cells,
)


# --- Namespace, ConfigMap, Secret, ServiceAccount, Lease, Endpoints, EndpointSlice, PDB, ResourceQuota --

NAMESPACE_PRINTER = Printer(
    [NAME, Column("Status", description="The namespace's phase."), AGE],
    lambda ns, now: [_name(ns), _str(_path(ns, "status", "phase")), _age(ns, now)],
)

CONFIGMAP_PRINTER = Printer(
    [NAME, Column("Data", description="Number of data and binaryData entries."), AGE],
    lambda cm, now: [_name(cm), len(_dict(cm.get("data"))) + len(_dict(cm.get("binaryData"))), _age(cm, now)],
)

SECRET_PRINTER = Printer(
    [
        NAME,
        Column("Type", description="The secret's type."),
        Column("Data", description="Number of data entries."),
        AGE,
    ],
    lambda s, now: [_name(s), _str(s.get("type")) or "Opaque", len(_dict(s.get("data"))), _age(s, now)],
)

SERVICE_ACCOUNT_PRINTER = Printer(
    [NAME, Column("Secrets", description="Number of secrets listed on the service account."), AGE],
    lambda sa, now: [_name(sa), len(_list(sa.get("secrets"))), _age(sa, now)],
)

LEASE_PRINTER = Printer(
    [NAME, Column("Holder", description="Identity of the lease's current holder."), AGE],
    lambda lease, now: [_name(lease), _str(_path(lease, "spec", "holderIdentity")), _age(lease, now)],
)


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _endpoints_cell(endpoints: Obj) -> str:
    subsets = [_dict(s) for s in _list(endpoints.get("subsets"))]
    if not subsets:
        return "<none>"
    limit = 3
    shown: list[str] = []
    total = 0
    for subset in subsets:
        addresses = [_str(_dict(a).get("ip")) for a in _list(subset.get("addresses"))]
        ports = [_dict(p) for p in _list(subset.get("ports"))]
        if not ports:  # headless services may have no ports
            total += len(addresses)
            shown.extend(addresses[: max(0, limit - len(shown))])
            continue
        for port in ports:
            total += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    break
                shown.append(_host_port(ip, _int(port.get("port"))))
    return _more(shown, total, limit, "")


ENDPOINTS_PRINTER = Printer(
    [NAME, Column("Endpoints", description="Up to three ready addresses with their ports."), AGE],
    lambda ep, now: [_name(ep), _endpoints_cell(ep), _age(ep, now)],
)


def _slice_ports(slice_: Obj) -> str:
    ports = [_dict(p) for p in _list(slice_.get("ports"))]
    shown = []
    for port in ports[:3]:
        number = port.get("port")
        if isinstance(number, int) and not isinstance(number, bool):
            shown.append(str(number))
        elif isinstance(port.get("name"), str):
            shown.append(_str(port.get("name")))
        else:
            shown.append("*")
    return _more(shown, len(ports), 3, "<unset>")


def _slice_endpoints(slice_: Obj) -> str:
    addresses = [
        _str(address)
        for endpoint in _list(slice_.get("endpoints"))
        for address in _list(_dict(endpoint).get("addresses"))
    ]
    return _more(addresses[:3], len(addresses), 3, "<unset>")


ENDPOINT_SLICE_PRINTER = Printer(
    [
        NAME,
        Column("AddressType", description="The type of the slice's addresses."),
        Column("Ports", description="Up to three of the slice's ports."),
        Column("Endpoints", description="Up to three of the slice's addresses."),
        AGE,
    ],
    lambda es, now: [
        _name(es),
        _str(es.get("addressType")),
        _slice_ports(es),
        _slice_endpoints(es),
        _age(es, now),
    ],
)


def _pdb_cells(pdb: Obj, now: datetime.datetime) -> list[Any]:
    spec = _dict(pdb.get("spec"))
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    return [
        _name(pdb),
        "N/A" if min_available is None else _int_or_string(min_available),
        "N/A" if max_unavailable is None else _int_or_string(max_unavailable),
        _int(_path(pdb, "status", "disruptionsAllowed")),
        _age(pdb, now),
    ]


PDB_PRINTER = Printer(
    [
        NAME,
        Column("Min Available", description="Pods that must stay available."),
        Column("Max Unavailable", description="Pods that may be unavailable."),
        Column("Allowed Disruptions", type="integer", description="Disruptions allowed right now."),
        AGE,
    ],
    _pdb_cells,
)


def _quota_cells(quota: Obj, now: datetime.datetime) -> list[Any]:
    hard = _dict(_path(quota, "status", "hard"))
    used = _dict(_path(quota, "status", "used"))
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        entry = (
            f"{resource}: {_int_or_string(used.get(resource, '0')) or '0'}/{_int_or_string(hard[resource])}"
        )
        pieces = resource.split(".")
        (limits if len(pieces) > 1 and pieces[0] == "limits" else requests).append(entry)
    return [_name(quota), _age(quota, now), ", ".join(requests), ", ".join(limits)]


RESOURCE_QUOTA_PRINTER = Printer(
    [
        NAME,
        AGE,
        Column("Request", description="Used out of hard quota, for everything but limits.*."),
        Column("Limit", description="Used out of hard quota, for limits.*."),
    ],
    _quota_cells,
)


# --- Service --------------------------------------------------------------------------------------------


def _service_external_ip(spec: Obj, status: Obj) -> str:
    kind = _str(spec.get("type")) or "ClusterIP"
    external = [_str(ip) for ip in _list(spec.get("externalIPs"))]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = set()
        for entry in _list(_path(status, "loadBalancer", "ingress")):
            entry = _dict(entry)
            address = _str(entry.get("ip")) or _str(entry.get("hostname"))
            if address:
                ingress.add(address)
        addresses = sorted(ingress) + external
        return ",".join(addresses) or "<pending>"
    if kind == "ExternalName":
        return _str(spec.get("externalName"))
    return "<unknown>"


def _service_ports(ports: Any) -> str:
    pieces = []
    for port in _list(ports):
        port = _dict(port)
        protocol = _str(port.get("protocol")) or "TCP"
        node_port = _int(port.get("nodePort"))
        if node_port > 0:
            pieces.append(f"{_int(port.get('port'))}:{node_port}/{protocol}")
        else:
            pieces.append(f"{_int(port.get('port'))}/{protocol}")
    return ",".join(pieces) or "<none>"


def _service_cells(svc: Obj, now: datetime.datetime) -> list[Any]:
    spec = _dict(svc.get("spec"))
    cluster_ips = _list(spec.get("clusterIPs"))
    cluster_ip = _str(cluster_ips[0]) if cluster_ips else _str(spec.get("clusterIP"))
    return [
        _name(svc),
        _str(spec.get("type")) or "ClusterIP",
        cluster_ip or "<none>",
        _service_external_ip(spec, _dict(svc.get("status"))),
        _service_ports(spec.get("ports")),
        _age(svc, now),
        format_labels(spec.get("selector")),
    ]


SERVICE_PRINTER = Printer(
    [
        NAME,
        Column("Type", description="How the service is exposed."),
        Column("Cluster-IP", description="The service's cluster IP."),
        Column("External-IP", description="External or load-balancer addresses."),
        Column("Port(s)", description="Ports, with node ports, and protocols."),
        AGE,
        Column("Selector", priority=1, description="Labels of the pods the service routes to."),
    ],
    _service_cells,
)


# --- Events (core v1 and events.k8s.io/v1 alike) -----------------------------------------------------


def _event_cells(
    obj: Obj,
    now: datetime.datetime,
    *,
    regarding: Obj,
    message: str,
    source: Obj,
    first: Any,
    last: Any,
    count: int,
    controller: str,
) -> list[Any]:
    first_seen = _since(first, now) if _parse_time(first) else _since(obj.get("eventTime"), now)
    last_seen = _since(last, now) if _parse_time(last) else first_seen
    series = obj.get("series")
    if isinstance(series, dict):
        last_seen = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events leave the count unset in the newer API
    kind = _str(regarding.get("kind")).lower()
    target = f"{kind}/{_str(regarding.get('name'))}" if _str(regarding.get("name")) else kind
    component = _str(source.get("component")) or controller
    instance = _str(source.get("host")) or _str(obj.get("reportingInstance"))
    return [
        last_seen,
        _str(obj.get("type")),
        _str(obj.get("reason")),
        target,
        _str(regarding.get("fieldPath")),
        f"{component}, {instance}" if instance else component,
        message.strip(),
        first_seen,
        count,
        _name(obj),
    ]


def _core_event_cells(event: Obj, now: datetime.datetime) -> list[Any]:
    return _event_cells(
        event,
        now,
        regarding=_dict(event.get("involvedObject")),
        message=_str(event.get("message")),
        source=_dict(event.get("source")),
        first=event.get("firstTimestamp"),
        last=event.get("lastTimestamp"),
        count=_int(event.get("count")),
        controller=_str(event.get("reportingComponent")),
    )


def _events_v1_cells(event: Obj, now: datetime.datetime) -> list[Any]:
    return _event_cells(
        event,
        now,
        regarding=_dict(event.get("regarding")),
        message=_str(event.get("note")),
        source=_dict(event.get("deprecatedSource")),
        first=event.get("deprecatedFirstTimestamp"),
        last=event.get("deprecatedLastTimestamp"),
        count=_int(event.get("deprecatedCount")),
        controller=_str(event.get("reportingController")),
    )


_EVENT_COLUMNS = [
    Column("Last Seen", description="Time since the event was last observed."),
    Column("Type", description="Normal or Warning."),
    Column("Reason", description="Why the event happened, in one word."),
    Column("Object", description="The object the event is about, as kind/name."),
    Column("Subobject", priority=1, description="The part of the object, such as a container."),
    Column("Source", priority=1, description="The component (and host) that reported the event."),
    Column("Message", description="What happened."),
    Column("First Seen", priority=1, description="Time since the event was first observed."),
    Column("Count", priority=1, description="How many times the event was observed."),
    Column("Name", priority=1, format="name", description="Name of the event object."),
]

EVENT_PRINTER = Printer(_EVENT_COLUMNS, _core_event_cells)
EVENTS_V1_PRINTER = Printer(_EVENT_COLUMNS, _events_v1_cells)


# --- apps -----------------------------------------------------------------------------------------------


def _replicas(spec: Obj) -> int:
    """``spec.replicas``, which defaults to 1 when unset."""
    value = spec.get("replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _deployment_cells(deploy: Obj, now: datetime.datetime) -> list[Any]:
    spec = _dict(deploy.get("spec"))
    status = _dict(deploy.get("status"))
    names, images = _containers(_path(spec, "template", "spec"))
    selector = _selector_string(spec.get("selector"))
    return [
        _name(deploy),
        f"{_int(status.get('readyReplicas'))}/{_replicas(spec)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(deploy, now),
        names,
        images,
        "<invalid>" if selector is None else selector,
    ]


DEPLOYMENT_PRINTER = Printer(
    [
        NAME,
        Column("Ready", description="Ready pods out of desired pods."),
        Column("Up-to-date", description="Pods running the current template."),
        Column("Available", description="Pods available to serve."),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    _deployment_cells,
)


def _replica_set_cells(rs: Obj, now: datetime.datetime) -> list[Any]:
    spec = _dict(rs.get("spec"))
    status = _dict(rs.get("status"))
    names, images = _containers(_path(spec, "template", "spec"))
    return [
        _name(rs),
        _replicas(spec),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age(rs, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


REPLICA_SET_PRINTER = Printer(
    [
        NAME,
        Column("Desired", type="integer", description="Pods wanted."),
        Column("Current", type="integer", description="Pods that exist."),
        Column("Ready", type="integer", description="Pods that are ready."),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    _replica_set_cells,
)


def _daemon_set_cells(ds: Obj, now: datetime.datetime) -> list[Any]:
    spec = _dict(ds.get("spec"))
    status = _dict(ds.get("status"))
    pod_spec = _path(spec, "template", "spec")
    names, images = _containers(pod_spec)
    return [
        _name(ds),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        format_labels(_path(pod_spec, "nodeSelector")),
        _age(ds, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


DAEMON_SET_PRINTER = Printer(
    [
        NAME,
        Column("Desired", type="integer", description="Nodes that should run the daemon pod."),
        Column("Current", type="integer", description="Nodes running at least one daemon pod."),
        Column("Ready", type="integer", description="Nodes whose daemon pod is ready."),
        Column("Up-to-date", type="integer", description="Nodes running the current template."),
        Column("Available", type="integer", description="Nodes whose daemon pod is available."),
        Column("Node Selector", description="The pod template's node selector."),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    _daemon_set_cells,
)


def _stateful_set_cells(sts: Obj, now: datetime.datetime) -> list[Any]:
    spec = _dict(sts.get("spec"))
    names, images = _containers(_path(spec, "template", "spec"))
    ready = _int(_path(sts, "status", "readyReplicas"))
    return [_name(sts), f"{ready}/{_replicas(spec)}", _age(sts, now), names, images]


STATEFUL_SET_PRINTER = Printer(
    [NAME, Column("Ready", description="Ready pods out of desired pods."), AGE, CONTAINERS, IMAGES],
    _stateful_set_cells,
)


def _controller_revision_cells(revision: Obj, now: datetime.datetime) -> list[Any]:
    """The controller as kubectl names it (``daemonset.apps/web``), ``<none>`` for an orphan."""
    controller = "<none>"
    for ref in _list(_path(revision, "metadata", "ownerReferences")):
        if isinstance(ref, dict) and ref.get("controller"):
            group = _str(ref.get("apiVersion")).rpartition("/")[0]
            kind = _str(ref.get("kind")).lower()
            qualified = f"{kind}.{group}" if group else kind
            controller = f"{qualified}/{_str(ref.get('name'))}"
            break
    return [_name(revision), controller, _int(revision.get("revision")), _age(revision, now)]


CONTROLLER_REVISION_PRINTER = Printer(
    [
        NAME,
        Column("Controller", description="The object that owns this revision."),
        Column("Revision", type="integer", description="The revision's number."),
        AGE,
    ],
    _controller_revision_cells,
)


# --- storage: PersistentVolume, PersistentVolumeClaim, StorageClass -------------------------------------

_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def _access_modes(modes: Any) -> str:
    """kubectl's short form in its fixed order (``RWO,ROX``), whatever order the object lists."""
    present = set(_list(modes))
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def _volume_phase(obj: Obj) -> str:
    if _path(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    return _str(_path(obj, "status", "phase"))


def _attributes_class(spec: Obj) -> str:
    name = spec.get("volumeAttributesClassName")
    return name if isinstance(name, str) and name else "<unset>"


def _persistent_volume_cells(pv: Obj, now: datetime.datetime) -> list[Any]:
    spec = _dict(pv.get("spec"))
    claim = _dict(spec.get("claimRef"))
    claim_cell = f"{_str(claim.get('namespace'))}/{_str(claim.get('name'))}" if claim.get("name") else ""
    return [
        _name(pv),
        _str(_path(spec, "capacity", "storage")),
        _access_modes(spec.get("accessModes")),
        _str(spec.get("persistentVolumeReclaimPolicy")),
        _volume_phase(pv),
        claim_cell,
        _str(spec.get("storageClassName")),
        _attributes_class(spec),
        _str(_path(pv, "status", "reason")),
        _age(pv, now),
        _str(spec.get("volumeMode")) or "Filesystem",
    ]


PERSISTENT_VOLUME_PRINTER = Printer(
    [
        NAME,
        Column("Capacity", description="The volume's storage capacity."),
        Column("Access Modes", description="How the volume can be mounted (RWO, ROX, RWX, RWOP)."),
        Column("Reclaim Policy", description="What happens to the volume when its claim is deleted."),
        Column("Status", description="The volume's phase."),
        Column("Claim", description="The claim bound to the volume (namespace/name)."),
        Column("StorageClass", description="The volume's storage class."),
        Column("VolumeAttributesClass", description="The volume's attributes class."),
        Column("Reason", description="Why the volume is in its phase."),
        AGE,
        Column("VolumeMode", priority=1, description="Filesystem or Block."),
    ],
    _persistent_volume_cells,
)


def _persistent_volume_claim_cells(pvc: Obj, now: datetime.datetime) -> list[Any]:
    spec = _dict(pvc.get("spec"))
    status = _dict(pvc.get("status"))
    bound = bool(spec.get("volumeName"))
    return [
        _name(pvc),
        _volume_phase(pvc),
        _str(spec.get("volumeName")),
        _str(_path(status, "capacity", "storage")) if bound else "",
        _access_modes(status.get("accessModes")) if bound else "",
        _str(spec.get("storageClassName")),
        _attributes_class(spec),
        _age(pvc, now),
        _str(spec.get("volumeMode")) or "Filesystem",
    ]


PERSISTENT_VOLUME_CLAIM_PRINTER = Printer(
    [
        NAME,
        Column("Status", description="The claim's phase."),
        Column("Volume", description="The volume bound to the claim."),
        Column("Capacity", description="The bound volume's capacity."),
        Column("Access Modes", description="How the bound volume can be mounted (RWO, ROX, RWX, RWOP)."),
        Column("StorageClass", description="The claim's storage class."),
        Column("VolumeAttributesClass", description="The claim's attributes class."),
        AGE,
        Column("VolumeMode", priority=1, description="Filesystem or Block."),
    ],
    _persistent_volume_claim_cells,
)


_DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def _storage_class_cells(sc: Obj, now: datetime.datetime) -> list[Any]:
    annotations = _dict(_path(sc, "metadata", "annotations"))
    name = _name(sc)
    if any(annotations.get(key) == "true" for key in _DEFAULT_CLASS_ANNOTATIONS):
        name += " (default)"
    return [
        name,
        _str(sc.get("provisioner")),
        _str(sc.get("reclaimPolicy")) or "Delete",
        _str(sc.get("volumeBindingMode")) or "Immediate",
        "true" if sc.get("allowVolumeExpansion") else "false",
        _age(sc, now),
    ]


STORAGE_CLASS_PRINTER = Printer(
    [
        NAME,
        Column("Provisioner", description="The provisioner that makes volumes of this class."),
        Column("ReclaimPolicy", description="What happens to a provisioned volume when its claim goes."),
        Column("VolumeBindingMode", description="When claims of this class are bound."),
        Column("AllowVolumeExpansion", description="Whether claims of this class can grow."),
        AGE,
    ],
    _storage_class_cells,
)


# --- batch ----------------------------------------------------------------------------------------------


def _job_status(job: Obj) -> str:
    conditions = _path(job, "status", "conditions")
    if _condition_status(conditions, "Complete") == "True":
        return "Complete"
    if _condition_status(conditions, "Failed") == "True":
        return "Failed"
    if _path(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    if _condition_status(conditions, "Suspended") == "True":
        return "Suspended"
    if _condition_status(conditions, "FailureTarget") == "True":
        return "FailureTarget"
    return "Running"


def _job_cells(job: Obj, now: datetime.datetime) -> list[Any]:
    spec = _dict(job.get("spec"))
    status = _dict(job.get("status"))
    succeeded = _int(status.get("succeeded"))
    completions = spec.get("completions")
    if isinstance(completions, int) and not isinstance(completions, bool):
        completions_cell = f"{succeeded}/{completions}"
    elif _int(spec.get("parallelism")) > 1:
        completions_cell = f"{succeeded}/1 of {_int(spec.get('parallelism'))}"
    else:
        completions_cell = f"{succeeded}/1"
    started = _parse_time(status.get("startTime"))
    finished = _parse_time(status.get("completionTime"))
    if started is None:
        duration = ""
    elif finished is None:
        duration = human_duration(_aware(now) - started)
    else:
        duration = human_duration(finished - started)
    names, images = _containers(_path(spec, "template", "spec"))
    return [
        _name(job),
        _job_status(job),
        completions_cell,
        duration,
        _age(job, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


JOB_PRINTER = Printer(
    [
        NAME,
        Column("Status", description="Complete, Failed, Suspended, Terminating or Running."),
        Column("Completions", description="Succeeded pods out of the completions wanted."),
        Column("Duration", description="How long the job ran, or has been running."),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    _job_cells,
)


def _cron_job_cells(cj: Obj, now: datetime.datetime) -> list[Any]:
    spec = _dict(cj.get("spec"))
    status = _dict(cj.get("status"))
    last = status.get("lastScheduleTime")
    job_spec = _path(spec, "jobTemplate", "spec")
    names, images = _containers(_path(job_spec, "template", "spec"))
    time_zone = spec.get("timeZone")
    return [
        _name(cj),
        _str(spec.get("schedule")),
        time_zone if isinstance(time_zone, str) else "<none>",
        _bool_ptr(spec.get("suspend")),
        len(_list(status.get("active"))),
        _since(last, now) if last else "<none>",
        _age(cj, now),
        names,
        images,
        format_label_selector(_path(job_spec, "selector")),
    ]


CRON_JOB_PRINTER = Printer(
    [
        NAME,
        Column("Schedule", description="The cron schedule."),
        Column("Timezone", description="The time zone the schedule is read in."),
        Column("Suspend", type="boolean", description="Whether new runs are suspended."),
        Column("Active", type="integer", description="Jobs running now."),
        Column("Last Schedule", description="Time since a job was last scheduled."),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    _cron_job_cells,
)


# --------------------------------------------------------------------------------------------------------
# Registry

_PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "Pod"): POD_PRINTER,
    ("", "Node"): NODE_PRINTER,
    ("", "Namespace"): NAMESPACE_PRINTER,
    ("", "Service"): SERVICE_PRINTER,
    ("", "Endpoints"): ENDPOINTS_PRINTER,
    ("", "ConfigMap"): CONFIGMAP_PRINTER,
    ("", "Secret"): SECRET_PRINTER,
    ("", "ServiceAccount"): SERVICE_ACCOUNT_PRINTER,
    ("", "Event"): EVENT_PRINTER,
    ("", "ResourceQuota"): RESOURCE_QUOTA_PRINTER,
    ("", "PersistentVolume"): PERSISTENT_VOLUME_PRINTER,
    ("", "PersistentVolumeClaim"): PERSISTENT_VOLUME_CLAIM_PRINTER,
    ("storage.k8s.io", "StorageClass"): STORAGE_CLASS_PRINTER,
    ("events.k8s.io", "Event"): EVENTS_V1_PRINTER,
    ("apps", "Deployment"): DEPLOYMENT_PRINTER,
    ("apps", "ReplicaSet"): REPLICA_SET_PRINTER,
    ("apps", "DaemonSet"): DAEMON_SET_PRINTER,
    ("apps", "StatefulSet"): STATEFUL_SET_PRINTER,
    ("apps", "ControllerRevision"): CONTROLLER_REVISION_PRINTER,
    ("batch", "Job"): JOB_PRINTER,
    ("batch", "CronJob"): CRON_JOB_PRINTER,
    ("coordination.k8s.io", "Lease"): LEASE_PRINTER,
    ("discovery.k8s.io", "EndpointSlice"): ENDPOINT_SLICE_PRINTER,
    ("policy", "PodDisruptionBudget"): PDB_PRINTER,
    # LimitRange and CustomResourceDefinition use the default convertor upstream too.
}


def printer_for(group: str, kind: str) -> Printer:
    """The printer for a kind, or the default ``Name``/``Created At`` one."""
    return _PRINTERS.get((group, kind), DEFAULT_PRINTER)


def register_printer(group: str, kind: str, printer: Printer) -> None:
    """Install (or replace) a kind's printer."""
    _PRINTERS[(group, kind)] = printer


# --------------------------------------------------------------------------------------------------------
# Tables


def _row_object(
    obj: Obj, include_object: str, meta_api_version: str, api_version_kind: tuple[str, str] | None
) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        if api_version_kind is None:
            return obj
        api_version, kind = api_version_kind
        return {
            "apiVersion": api_version,
            "kind": kind,
            **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")},
        }
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": meta_api_version,
        "metadata": _dict(obj.get("metadata")),
    }


def to_table(
    printer: Printer,
    objects: Iterable[Obj],
    *,
    now: datetime.datetime,
    resource_version: str,
    include_object: str = "Metadata",
    continue_token: str | None = None,
    remaining_item_count: int | None = None,
    include_columns: bool = True,
    api_version_kind: tuple[str, str] | None = None,
    meta_version: str = "v1",
) -> Obj:
    """A ``Table`` with one row per object, in order.

    ``include_object`` is the request's ``includeObject`` (``""`` means ``Metadata``); anything else is
    a 400. ``api_version_kind`` is stamped on whole objects (``Object``) whose dicts may lack it.
    ``meta_version`` is the ``meta.k8s.io`` version the client negotiated (``v1``, or ``v1beta1``), used
    for the Table and its ``PartialObjectMetadata`` rows. ``include_columns=False`` leaves the column
    definitions empty, as a watch does after its first event.
    """
    include_object = include_object or "Metadata"
    if include_object not in INCLUDE_OBJECT_VALUES:
        raise errors.bad_request(
            f'invalid includeObject "{include_object}": must be one of Metadata, Object, None, or empty'
        )
    api_version = f"meta.k8s.io/{meta_version}"
    rows: list[Obj] = []
    for obj in objects:
        row: Obj = {"cells": printer.row(obj, now)}
        conditions = printer.row_conditions(obj)
        if conditions:
            row["conditions"] = conditions
        row["object"] = _row_object(obj, include_object, api_version, api_version_kind)
        rows.append(row)
    metadata: Obj = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    if remaining_item_count is not None:
        metadata["remainingItemCount"] = remaining_item_count
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": metadata,
        "columnDefinitions": printer.definitions() if include_columns else [],
        "rows": rows,
    }
