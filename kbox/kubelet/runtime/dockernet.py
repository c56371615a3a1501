"""The cluster's Docker network: one user-defined bridge per kbox cluster (``kbox-<cluster>``), where
every non-host-network pod sandbox gets its IP, which the host reaches directly. It is created on
first use (another runtime of the same cluster may be quicker: a 409 is fine) and removed with the
cluster (``kbox delete``). It carries the cluster label, so cleanup finds exactly what kbox made.
"""

from __future__ import annotations

import contextlib
import logging

import aiodocker

from kbox.kubelet.runtime import interface
from kbox.kubelet.runtime.dockererrors import translated

_log = logging.getLogger(__name__)


def default_name(cluster: str) -> str:
    return f"kbox-{cluster}"


async def ensure(docker: aiodocker.Docker, *, network: str, cluster: str) -> None:
    """Create the bridge network ``network`` labelled with ``cluster`` unless it exists."""
    with translated(f"creating Docker network {network}"):
        try:
            await docker.networks.get(network)
            return
        except aiodocker.DockerError as e:
            if e.status != 404:
                raise
        config = {
            "Name": network,
            "Driver": "bridge",
            "CheckDuplicate": True,
            "Labels": {interface.LABEL_CLUSTER: cluster},
        }
        try:
            await docker.networks.create(config)
            _log.info("created Docker network %s for cluster %s", network, cluster)
        except aiodocker.DockerError as e:
            if e.status != 409:  # another runtime of this cluster was quicker
                raise


async def remove_all(docker: aiodocker.Docker, *, cluster: str) -> None:
    """Remove every network labelled with ``cluster`` (those still in use stay)."""
    with translated(f"removing the networks of cluster {cluster}"):
        networks = await docker.networks.list(filters={"label": f"{interface.LABEL_CLUSTER}={cluster}"})
        for net in networks:
            with contextlib.suppress(aiodocker.DockerError):
                await (await docker.networks.get(net["Id"])).delete()
