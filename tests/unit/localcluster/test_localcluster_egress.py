"""The egress proxy passes loopback CONNECTs and refuses every other destination."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest

from kaic.localcluster import egress


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("127.0.0.1", True), ("localhost", True), ("[::1]", True), ("100.64.0.1", False), ("10.0.0.1", False)],
)
def test_only_loopback_is_allowed(host: str, allowed: bool) -> None:
    assert egress.is_loopback(host) is allowed


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("100.64.128.7", True),
        ("100.64.0.7", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_named_networks_are_allowed_besides_loopback(host: str, allowed: bool) -> None:
    assert egress.is_allowed(host, (ipaddress.ip_network("100.64.128.0/24"),)) is allowed


async def _connect_through(socket_path: Path, target: str) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    writer.close()
    return status


def test_proxy_refuses_pod_addresses_and_tunnels_loopback(tmp_path: Path) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        socket_path = tmp_path / "egress.sock"
        target = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = target.sockets[0].getsockname()[1]
        proxy = asyncio.create_task(egress.serve(str(socket_path)))
        while not socket_path.exists():
            await asyncio.sleep(0.01)
        refused = await _connect_through(socket_path, "100.64.0.1:80")
        tunnelled = await _connect_through(socket_path, f"127.0.0.1:{port}")
        proxy.cancel()
        target.close()
        return refused, tunnelled

    refused, tunnelled = asyncio.run(scenario())
    assert refused.startswith(b"HTTP/1.1 403")
    assert tunnelled.startswith(b"HTTP/1.1 200")
