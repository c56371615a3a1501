"""The kubelet's side of ``pods/log|exec|attach|portforward``: find the pod's container in the runtime
and hand the stream to it. The apiserver's streaming handlers speak the client protocols on top."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from kbox.api import errors
from kbox.api.nodeconnection import ExecSession, LogOptions, NodeConnection
from kbox.kubelet.runtime.interface import ContainerRuntimeError, ContainerStatus

if TYPE_CHECKING:
    from kbox.kubelet.kubelet import Kubelet, PodState


class KubeletConnection(NodeConnection):
    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet

    def _state(self, namespace: str, pod: str) -> PodState:
        for state in self.kubelet.states.values():
            if state.namespace == namespace and state.name == pod:
                return state
        raise errors.bad_request(f'pod "{pod}" is not running on node "{self.kubelet.name}"')

    def _container(
        self, namespace: str, pod: str, container: str, *, previous: bool = False
    ) -> ContainerStatus:
        state = self._state(namespace, pod)
        found = (state.previous if previous else state.current).get(container)
        if found is None:
            if previous:
                raise errors.bad_request(
                    f'previous terminated container "{container}" in pod "{pod}" not found'
                )
            raise errors.bad_request(
                f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating'
            )
        return found

    async def logs(
        self, namespace: str, pod: str, container: str, options: LogOptions
    ) -> AsyncIterator[bytes]:
        target = self._container(namespace, pod, container, previous=options.previous)
        try:
            async for chunk in self.kubelet.runtime.logs(target.id, options):
                yield chunk
        except ContainerRuntimeError as exc:
            raise errors.bad_request(str(exc)) from None

    async def exec(
        self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> ExecSession:
        target = self._container(namespace, pod, container)
        if target.state != "running":
            raise errors.bad_request(f'container "{container}" in pod "{pod}" is not running')
        try:
            return await self.kubelet.runtime.exec(target.id, command, stdin=stdin, tty=tty)
        except ContainerRuntimeError as exc:
            raise errors.bad_request(str(exc)) from None

    async def attach(
        self, namespace: str, pod: str, container: str, *, stdin: bool, tty: bool
    ) -> ExecSession:
        target = self._container(namespace, pod, container)
        try:
            return await self.kubelet.runtime.attach(target.id, stdin=stdin, tty=tty)
        except ContainerRuntimeError as exc:
            raise errors.bad_request(str(exc)) from None

    async def port_forward(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        state = self._state(namespace, pod)
        if state.sandbox is None:
            raise errors.bad_request(f'pod "{pod}" has no sandbox yet')
        try:
            return await self.kubelet.runtime.port_forward(state.sandbox, port)
        except ContainerRuntimeError as exc:
            raise errors.bad_request(str(exc)) from None
