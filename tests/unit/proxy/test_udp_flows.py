"""The UDP relay's flows on loopback: one flow per client address, replies from the listener's address,
the least recently used flow closed beyond the limit, idle flows swept, and datagrams dropped while the
Service has no ready endpoint."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from kbox.proxy.balancer import Balancer, Endpoint
from kbox.proxy.relay import UdpListener
from tests.support.wait import eventually


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(b"echo:" + data, addr)


async def exchange(port: int, data: bytes) -> tuple[bytes, Any]:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, data)
        reply = await asyncio.wait_for(loop.sock_recv(sock, 100), 5)
        return reply, sock.getpeername()


async def test_flows_limit_idle_and_no_endpoints() -> None:
    loop = asyncio.get_running_loop()
    echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    balancer = Balancer("udp")
    listener = UdpListener("udp", "127.0.0.1", 0, balancer, idle_timeout=0.5, max_flows=2)
    await listener.start()
    try:
        port = listener.port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as lost:
            lost.sendto(b"nobody", ("127.0.0.1", port))
            await eventually(lambda: listener.dropped == 1, message="dropped without endpoints")
        balancer.set_endpoints([Endpoint("127.0.0.1", echo.get_extra_info("sockname")[1])])
        for word in (b"a", b"b", b"c"):  # three clients (source ports), two flows at most
            reply, peer = await exchange(port, word)
            assert reply == b"echo:" + word and peer == ("127.0.0.1", port)
            assert len(listener.flows) <= 2
        await eventually(lambda: not listener.flows, message="idle flows are swept")
    finally:
        listener.close()
        echo.close()
