"""One pod's sync: sandbox, init containers in order, app containers per the restart policy with
back-off, and the status that results. Level-triggered: it reads the runtime's state every time and
derives what to do from it, so a crash or a restart anywhere converges.
"""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kbox.api import quantity
from kbox.api.errors import StatusError
from kbox.client import interface
from kbox.kubelet import dns, hooks, memoryfs, serviceenv, status, volumes
from kbox.kubelet.runtime import interface as rt
from kbox.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerRuntimeError,
    Mount,
    PodRef,
    SandboxConfig,
)

if TYPE_CHECKING:
    from kbox.kubelet.kubelet import Kubelet, PodState


def fingerprint(listed: list[rt.ContainerStatus]) -> tuple[tuple[str, str, bool], ...]:
    """A pod's app containers as the relist compares them: by name, id and whether they run."""
    return tuple(sorted((c.name, c.id, c.state == "running") for c in listed))


Obj = dict[str, Any]
_log = logging.getLogger(__name__)
_SECRETS = interface.Resource("", "v1", "secrets")
CLAIM_RETRY = 1.0
"""Seconds before a pod waiting for its claims to be bound looks again."""
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


async def sync_pod(kubelet: Kubelet, pod: Obj, state: PodState) -> float | None:
    """Make the runtime match ``pod``; returns when to sync again (back-off expiry), if needed."""
    spec = pod.get("spec") or {}
    runtime = kubelet.runtime
    # Containers of a sandbox that died (or was stopped by ``kbox stop``): their successors in the new
    # sandbox are restarts, counted as such, and a policy that would not restart them is respected.
    lost: dict[str, rt.ContainerStatus] = {}
    if state.sandbox is None:
        # The kubelet mounts a claim only once it is bound: until then the pod waits, and says why.
        problem = await volumes.claim_problem(kubelet.client, pod)
        if problem is not None:
            kubelet.event(pod, "Warning", "FailedMount", problem)
            return CLAIM_RETRY
    if state.sandbox is None or not state.sandbox.ready:
        if state.sandbox is not None:
            await runtime.remove_sandbox(state.sandbox.id)
            lost = dict(state.current)
            state.current.clear()
        state.sandbox = await runtime.run_sandbox(_sandbox_config(kubelet, pod))
    await _refresh_volumes(kubelet, pod)
    listed = await runtime.list_containers(state.sandbox.id)
    state.fingerprint = fingerprint(listed)
    for container in listed:
        _track(state, container)
    policy = spec.get("restartPolicy", "Always")
    wake: list[float] = []

    init_done = True
    for container in spec.get("initContainers") or []:
        current = state.current.get(container["name"])
        if current is not None and current.state == "exited" and current.exit_code == 0:
            continue
        init_done = False
        if current is None or current.state == "exited":
            failed = current is not None and current.exit_code != 0
            if not failed or policy != "Never":
                again = current is not None or container["name"] in lost
                delay = await _start_or_back_off(kubelet, pod, state, container, restart=again)
                if delay:
                    wake.append(delay)
        break

    if init_done:
        for container in spec.get("containers") or []:
            current = state.current.get(container["name"])
            if current is not None and current.state == "running":
                current = await _kill_unhealthy(kubelet, pod, state, container, current)
            if current is not None and current.state in ("created", "running"):
                state.waiting.pop(container["name"], None)
                continue
            gone = lost.get(container["name"]) if current is None else None
            if current is not None and current.state == "exited":
                killed = kubelet.probes.killed(state.uid, current.id)
                failed = current.exit_code != 0 or killed
                restart = policy == "Always" or (policy == "OnFailure" and failed)
                if not restart:
                    continue
            elif gone is not None:  # ended with its sandbox: exited as it was, or killed
                failed = gone.state != "exited" or gone.exit_code != 0
                if not (policy == "Always" or (policy == "OnFailure" and failed)):
                    continue
            again = current is not None or gone is not None
            delay = await _start_or_back_off(kubelet, pod, state, container, restart=again)
            if delay:
                wake.append(delay)

    kubelet.probes.sync(pod, state)
    _report(kubelet, pod, state)
    # Mounted ConfigMaps and Secrets need no polling: their changes re-sync the pod (configwatch).
    # Service account tokens are renewed by a sync at 80% of their lifetime.
    renew = volumes.token_refresh_in(
        pod,
        lambda volume: volumes.read(memoryfs.api_volume_dir(kubelet.settings.state_dir, state.uid, volume)),
    )
    if renew is not None:
        wake.append(renew)
    return min(wake) if wake else None


async def _kill_unhealthy(
    kubelet: Kubelet, pod: Obj, state: PodState, container: Obj, current: rt.ContainerStatus
) -> rt.ContainerStatus:
    """Stop a running container whose liveness (or startup) probe failed; it then restarts as if it
    had exited (restart policy, restart count, back-off). Returns the container's state afterwards."""
    kind = kubelet.probes.failed(state.uid, container, current.id)
    if not kind:
        return current
    name = container["name"]
    probe = container.get(f"{kind}Probe") or {}
    grace = probe.get("terminationGracePeriodSeconds")
    if grace is None:
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    kubelet.event(
        pod,
        "Normal",
        "Killing",
        f"Container {name} failed {kind} probe, will be restarted",
        field_path=_field_path(pod, name),
    )
    kubelet.probes.mark_killed(state.uid, current.id)
    await kubelet.runtime.stop_container(current.id, float(grace))
    stopped = await kubelet.runtime.container_status(current.id)
    state.current[name] = stopped
    return stopped


async def _start_or_back_off(
    kubelet: Kubelet, pod: Obj, state: PodState, container: Obj, *, restart: bool
) -> float | None:
    name = container["name"]
    now = kubelet.now()
    until = state.backoff_until.get(name, 0.0)
    if restart and now < until:
        previous_reason = state.waiting.get(name, ("", ""))[0]
        pulling = previous_reason in ("ErrImagePull", "ImagePullBackOff")
        delay = state.backoff_delay.get(name, kubelet.settings.backoff_base)
        where = f"{pod['metadata']['name']}_{pod['metadata']['namespace']}({state.uid})"
        if pulling:
            state.waiting[name] = (
                "ImagePullBackOff",
                f'Back-off pulling image "{container.get("image", "")}"',
            )
        else:
            message = f"back-off {int(delay)}s restarting failed container={name} pod={where}"
            state.waiting[name] = ("CrashLoopBackOff", message)
        return until - now
    try:
        await _start(
            kubelet, pod, state, container, restart_count=state.restarts.get(name, 0) + (1 if restart else 0)
        )
    except ContainerRuntimeError as exc:
        if exc.unavailable:
            raise  # the runtime is down: not this container's failure (the kubelet pauses the pod)
        state.waiting[name] = (exc.reason, str(exc))
        kubelet.event(
            pod, "Warning", "Failed", f"Error: {exc.reason}: {exc}", field_path=_field_path(pod, name)
        )
        return _back_off(kubelet, state, name)
    if restart:
        state.restarts[name] = state.restarts.get(name, 0) + 1
        _back_off(kubelet, state, name)
    state.waiting.pop(name, None)
    return None


def _back_off(kubelet: Kubelet, state: PodState, name: str) -> float:
    """Arm the next restart delay: 10 s doubling up to 5 min (configurable)."""
    delay = state.backoff_delay.get(name)
    delay = kubelet.settings.backoff_base if delay is None else min(delay * 2, kubelet.settings.backoff_max)
    state.backoff_delay[name] = delay
    state.backoff_until[name] = kubelet.now() + delay
    return delay


async def _start(kubelet: Kubelet, pod: Obj, state: PodState, container: Obj, *, restart_count: int) -> None:
    runtime = kubelet.runtime
    assert state.sandbox is not None
    name = container["name"]
    field_path = _field_path(pod, name)
    image = container.get("image", "")
    await runtime.ensure_image(image, container.get("imagePullPolicy", "IfNotPresent"))
    kubelet.event(
        pod,
        "Normal",
        "Pulled",
        f'Container image "{image}" already present on machine',
        field_path=field_path,
    )
    config = await container_config(kubelet, pod, container, restart_count=restart_count)
    old = state.current.get(name)
    container_id = await runtime.create_container(state.sandbox, config)
    kubelet.event(pod, "Normal", "Created", f"Created container {name}", field_path=field_path)
    await runtime.start_container(container_id)
    kubelet.event(pod, "Normal", "Started", f"Started container {name}", field_path=field_path)
    post_start = hooks.handler(container, "postStart")
    if post_start is not None:
        grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds") or 30)
        result = await hooks.run(kubelet, state.uid, container, post_start, container_id, limit=grace)
        if not result.success:
            # As the kubelet does: the container is killed, and the restart policy decides what next.
            message = f"PostStartHook failed: {result.message}"
            kubelet.event(pod, "Warning", "FailedPostStartHook", message, field_path=field_path)
            await runtime.stop_container(container_id, grace)
    if old is not None and old.id != container_id:
        state.previous[name] = old
        # Keep one terminated instance for `kubectl logs --previous`; older ones go.
        for stale in [c for c in await runtime.list_containers(state.sandbox.id) if c.name == name]:
            if stale.id not in (container_id, old.id):
                await runtime.remove_container(stale.id)
    state.current[name] = await runtime.container_status(container_id)


def _track(state: PodState, container: rt.ContainerStatus) -> None:
    current = state.current.get(container.name)
    if current is None or current.id == container.id or container.restart_count > current.restart_count:
        if current is not None and current.id != container.id:
            state.previous[container.name] = current
        state.current[container.name] = container
        state.restarts[container.name] = max(state.restarts.get(container.name, 0), container.restart_count)


def _report(kubelet: Kubelet, pod: Obj, state: PodState) -> None:
    spec = pod.get("spec") or {}
    assert state.sandbox is not None
    prefix = kubelet.runtime.name if kubelet.runtime.name != "fake" else "fake"

    def view(container: Obj, is_init: bool = False) -> status.ContainerView:
        name = container["name"]
        current = state.current.get(name)
        waiting = state.waiting.get(name)
        return status.ContainerView(
            name=name,
            image=container.get("image", ""),
            current=current,
            previous=state.previous.get(name),
            waiting_reason=waiting[0] if waiting else "",
            waiting_message=waiting[1] if waiting else "",
            restart_count=state.restarts.get(name, 0),
            ready=current is not None
            and current.state == "running"
            and not waiting
            and (is_init or kubelet.probes.ready(state.uid, container, current.id)),
        )

    pod_view = status.PodView(
        pod_ip=state.sandbox.ip,
        host_ip=kubelet.address,
        start_time=state.start_time,
        init=[view(c, True) for c in spec.get("initContainers") or []],
        containers=[view(c) for c in spec.get("containers") or []],
        runtime_prefix=prefix,
    )
    previous = kubelet.status.last(state.uid) or pod.get("status")
    kubelet.status.set(state.uid, state.namespace, state.name, status.pod_status(pod, pod_view, previous))


def _pod_dns(kubelet: Kubelet, pod: Obj) -> dns.PodDns:
    settings = kubelet.settings
    return dns.pod_dns(
        pod,
        cluster_dns=list(settings.cluster_dns),
        cluster_domain=settings.cluster_domain,
        host=kubelet.host_dns,
    )


def _hostname(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("hostname") or pod["metadata"]["name"][:63])


def _sandbox_config(kubelet: Kubelet, pod: Obj) -> SandboxConfig:
    metadata = pod["metadata"]
    spec = pod.get("spec") or {}
    owners = metadata.get("ownerReferences") or []
    owner_kind = next((o.get("kind", "") for o in owners if o.get("controller")), "")
    pod_dns = _pod_dns(kubelet, pod)
    for reason, message in pod_dns.warnings:
        kubelet.event(pod, "Warning", reason, message)
    resolver = dns.DnsConfig() if pod_dns.runtime_default else pod_dns.config
    return SandboxConfig(
        pod=PodRef(metadata["namespace"], metadata["name"], metadata["uid"]),
        hostname=_hostname(pod),
        labels={rt.LABEL_NODE: kubelet.name},
        dns_servers=resolver.nameservers,
        dns_searches=resolver.searches,
        dns_options=resolver.options,
        host_network=bool(spec.get("hostNetwork")),
        annotations=dict(metadata.get("annotations") or {}),
        owner_kind=owner_kind,
        runtime_dns=pod_dns.runtime_default,
    )


async def container_config(
    kubelet: Kubelet, pod: Obj, container: Obj, *, restart_count: int
) -> ContainerConfig:
    env = await _environment(kubelet, pod, container)
    values = dict(env)
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    security = container.get("securityContext") or {}
    pod_security = (pod.get("spec") or {}).get("securityContext") or {}
    capabilities = security.get("capabilities") or {}
    run_as_user = security.get("runAsUser", pod_security.get("runAsUser"))
    run_as_group = security.get("runAsGroup", pod_security.get("runAsGroup"))
    return ContainerConfig(
        name=container["name"],
        image=container.get("image", ""),
        command=tuple(_expand(c, values) for c in container.get("command") or ()),
        args=tuple(_expand(a, values) for a in container.get("args") or ()),
        env=tuple(env),
        working_dir=container.get("workingDir", ""),
        mounts=tuple(await _mounts(kubelet, pod, container)),
        memory_limit=int(quantity.parse(limits["memory"])) if "memory" in limits else 0,
        cpu_limit=float(quantity.parse(limits["cpu"])) if "cpu" in limits else 0.0,
        cpu_request=float(quantity.parse(requests["cpu"])) if "cpu" in requests else 0.0,
        run_as_user=run_as_user,
        run_as_group=run_as_group,
        privileged=bool(security.get("privileged")),
        read_only_root=bool(security.get("readOnlyRootFilesystem")),
        cap_add=tuple(capabilities.get("add") or ()),
        cap_drop=tuple(capabilities.get("drop") or ()),
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        restart_count=restart_count,
    )


async def _environment(kubelet: Kubelet, pod: Obj, container: Obj) -> list[tuple[str, str]]:
    """The container's environment: the service variables (KUBERNETES_SERVICE_HOST...), envFrom, then
    env (later entries win), with $(VAR) expansion."""
    namespace = pod["metadata"]["namespace"]
    values: dict[str, str] = dict(await serviceenv.for_pod(kubelet, pod))
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = await _lookup(kubelet, interface.CONFIGMAPS, source["configMapRef"], namespace)
            values.update({prefix + k: v for k, v in (data or {}).get("data", {}).items()})
        elif "secretRef" in source:
            data = await _lookup(
                kubelet, interface.Resource("", "v1", "secrets"), source["secretRef"], namespace
            )
            values.update({prefix + k: _b64(v) for k, v in (data or {}).get("data", {}).items()})
    for entry in container.get("env") or []:
        name = entry.get("name", "")
        if "value" in entry:
            values[name] = _expand(str(entry.get("value", "")), values)
        elif "valueFrom" in entry:
            resolved = await _value_from(kubelet, pod, container, entry["valueFrom"])
            if resolved is not None:
                values[name] = resolved
        else:
            values[name] = ""
    return list(values.items())


async def _value_from(kubelet: Kubelet, pod: Obj, container: Obj, source: Obj) -> str | None:
    namespace = pod["metadata"]["namespace"]
    if "fieldRef" in source:
        path = source["fieldRef"].get("fieldPath", "")
        metadata = pod["metadata"]
        state = kubelet.states.get(metadata["uid"])
        fields = {
            "metadata.name": metadata["name"],
            "metadata.namespace": namespace,
            "metadata.uid": metadata["uid"],
            "spec.nodeName": (pod.get("spec") or {}).get("nodeName", ""),
            "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName", ""),
            "status.hostIP": kubelet.address,
            "status.podIP": state.sandbox.ip if state and state.sandbox else "",
        }
        match = re.match(r"metadata\.(labels|annotations)\['(.+)'\]$", path)
        if match:
            return str((metadata.get(match.group(1)) or {}).get(match.group(2), ""))
        return str(fields.get(path, ""))
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"]
        section, _, resource = ref.get("resource", "").partition(".")
        raw = ((container.get("resources") or {}).get(section) or {}).get(resource)
        if raw is None:
            return "0"
        divisor = quantity.parse(ref.get("divisor", "1"))
        value = quantity.parse(raw) / divisor
        return str(int(-(-value // 1)))
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        data = await _lookup(kubelet, interface.CONFIGMAPS, ref, namespace)
        value = (data or {}).get("data", {}).get(ref.get("key", ""))
        return str(value) if value is not None else None
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        data = await _lookup(kubelet, interface.Resource("", "v1", "secrets"), ref, namespace)
        value = (data or {}).get("data", {}).get(ref.get("key", ""))
        return _b64(value) if value is not None else None
    return None


async def _lookup(kubelet: Kubelet, resource: interface.Resource, ref: Obj, namespace: str) -> Obj | None:
    try:
        return await kubelet.client.get(resource, ref.get("name", ""), namespace=namespace)
    except StatusError as exc:
        if exc.code == 404 and ref.get("optional"):
            return None
        raise ContainerRuntimeError(
            f'{resource.plural[:-1]} "{ref.get("name", "")}" not found', reason="CreateContainerConfigError"
        ) from None


def _b64(value: str) -> str:
    return base64.b64decode(value).decode(errors="replace")


def _expand(text: str, values: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known variables are replaced, $$ escapes, unknown ones stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return values.get(name, match.group(0))

    return _VAR.sub(replace, text)


async def _mounts(kubelet: Kubelet, pod: Obj, container: Obj) -> list[Mount]:
    """Bind mounts of the container's volumes: emptyDir (a folder per pod under the kubelet's state;
    ``medium: Memory`` in shared memory), hostPath, and configMap, secret, downwardAPI and projected
    volumes written by :mod:`kbox.kubelet.volumes` (always read-only, as in Kubernetes; all but
    configMap in shared memory, see :mod:`kbox.kubelet.memoryfs`); a persistentVolumeClaim mounts
    its bound volume's folder."""
    by_name = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    uid = pod["metadata"]["uid"]
    mounts: list[Mount] = []
    for mount in container.get("volumeMounts") or []:
        volume = by_name.get(mount.get("name"))
        if volume is None:
            continue
        read_only = bool(mount.get("readOnly"))
        if "emptyDir" in volume:
            source = str(memoryfs.empty_dir(kubelet.settings.state_dir, uid, volume))
        elif "hostPath" in volume:
            source = str(volumes.host_path(volume["hostPath"] or {}))
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"] or {}
            namespace = pod["metadata"]["namespace"]
            source = str(await volumes.claim_path(kubelet.client, volume["name"], namespace, claim))
            read_only = read_only or bool(claim.get("readOnly"))
        elif any(kind in volume for kind in volumes.API_VOLUMES):
            path = memoryfs.api_volume_dir(kubelet.settings.state_dir, uid, volume)
            payload = await _volume_payload(kubelet, pod, volume)
            try:
                volumes.write(path, payload)
            except (OSError, ValueError) as exc:
                raise volumes.config_error(volume["name"], str(exc)) from None
            source = str(path)
            read_only = True
        else:
            continue
        if mount.get("subPath"):
            source = str(Path(source) / mount["subPath"])
        mounts.append(Mount(source, mount.get("mountPath", ""), read_only))
    return mounts + _etc_mounts(kubelet, pod, {m.container_path.rstrip("/") for m in mounts})


def _etc_mounts(kubelet: Kubelet, pod: Obj, taken: set[str]) -> list[Mount]:
    """The kubelet-managed /etc/resolv.conf (unless the runtime's own setup is the same) and, on the pod
    network, /etc/hosts: files under the pod's folder, bind-mounted into each container, as the kubelet
    does. A container that mounts a volume at one of these paths keeps its own."""
    uid = pod["metadata"]["uid"]
    etc = dns.etc_dir(volumes.pod_dir(kubelet.settings.state_dir, uid))
    mounts: list[Mount] = []
    pod_dns = _pod_dns(kubelet, pod)
    try:
        if not pod_dns.runtime_default and "/etc/resolv.conf" not in taken:
            dns.write_atomic(etc / "resolv.conf", pod_dns.config.render())
            mounts.append(Mount(str(etc / "resolv.conf"), "/etc/resolv.conf"))
        state = kubelet.states.get(uid)
        ip = state.sandbox.ip if state is not None and state.sandbox is not None else ""
        if not (pod.get("spec") or {}).get("hostNetwork") and ip and "/etc/hosts" not in taken:
            text = dns.hosts_file(
                pod, pod_ip=ip, hostname=_hostname(pod), cluster_domain=kubelet.settings.cluster_domain
            )
            dns.write_atomic(etc / "hosts", text)
            mounts.append(Mount(str(etc / "hosts"), "/etc/hosts"))
    except OSError as exc:
        raise ContainerRuntimeError(
            f"writing the pod's /etc files failed: {exc}", reason="CreateContainerConfigError"
        ) from None
    return mounts


async def _volume_payload(kubelet: Kubelet, pod: Obj, volume: Obj) -> volumes.Payload:
    """The files of a configMap, secret, downwardAPI or projected volume, read from the API now."""
    name = volume["name"]
    namespace = pod["metadata"]["namespace"]

    async def fetch(resource: interface.Resource, object_name: str) -> Obj | None:
        try:
            return await kubelet.client.get(resource, object_name, namespace=namespace)
        except StatusError as exc:
            if exc.code == 404:
                return None
            raise volumes.config_error(name, str(exc)) from None

    async def configmap(source: Obj, mode: int) -> volumes.Payload:
        found = await fetch(interface.CONFIGMAPS, source.get("name", ""))
        return volumes.configmap_files(name, source, found, mode)

    async def secret(source: Obj, mode: int) -> volumes.Payload:
        found = await fetch(_SECRETS, source.get("secretName") or source.get("name", ""))
        return volumes.secret_files(name, source, found, mode)

    default = volumes.DEFAULT_MODE
    if "configMap" in volume:
        return await configmap(volume["configMap"] or {}, default)
    if "secret" in volume:
        return await secret(volume["secret"] or {}, default)
    if "downwardAPI" in volume:
        return volumes.downward_files(name, volume["downwardAPI"] or {}, pod, default)
    projected = volume.get("projected") or {}
    mode = int(projected.get("defaultMode", default)) & 0o777
    payload: volumes.Payload = {}
    for source in projected.get("sources") or []:
        if "configMap" in source:
            payload.update(await configmap(source["configMap"] or {}, mode))
        elif "secret" in source:
            payload.update(await secret(source["secret"] or {}, mode))
        elif "downwardAPI" in source:
            payload.update(volumes.downward_files(name, source["downwardAPI"] or {}, pod, mode))
        elif "serviceAccountToken" in source:
            written = volumes.read(
                memoryfs.api_volume_dir(kubelet.settings.state_dir, pod["metadata"]["uid"], volume)
            )
            token = await volumes.service_account_token(
                kubelet.client, name, source["serviceAccountToken"] or {}, pod, mode, written
            )
            payload.update(token)
        # clusterTrustBundle: skipped.
    return payload


async def _refresh_volumes(kubelet: Kubelet, pod: Obj) -> bool:
    """Rewrite the pod's configMap, secret, downwardAPI and projected volumes that were set up and
    whose content changed (atomic swap, so running containers see it without a restart). A lookup
    that fails keeps the previous content. Returns whether the pod has such volumes."""
    uid = pod["metadata"]["uid"]
    found = False
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if not any(kind in volume for kind in volumes.API_VOLUMES):
            continue
        found = True
        path = memoryfs.api_volume_dir(kubelet.settings.state_dir, uid, volume)
        if not (path / volumes.DATA_LINK).is_symlink():
            continue  # not set up yet: the container start does it (and reports errors)
        try:
            volumes.write(path, await _volume_payload(kubelet, pod, volume))
        except (ContainerRuntimeError, OSError, ValueError) as exc:
            _log.debug("refreshing volume %s of pod %s kept its content: %s", volume.get("name"), uid, exc)
    return found


def _field_path(pod: Obj, name: str) -> str:
    spec = pod.get("spec") or {}
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            if container.get("name") == name:
                return f"spec.{kind}{{{name}}}"
    return ""
