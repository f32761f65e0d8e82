"""The apiserver's only road into the cluster network: an HTTP CONNECT proxy on a unix socket.

kube-apiserver sends all of its "cluster" egress (pods/proxy, services/proxy, kubelet endpoints) here
(`--egress-selector-config-file`). Loopback destinations, such as kwok's kubelet endpoint, go through;
so do the networks named on the command line (the real node's pod subnet, whose addresses exist on
this host's bridge); everything else is refused and logged. kwok's pod and service addresses are
simulated with no host behind them, so the apiserver never dials them on the host network.

Run as `python -m kaic.localcluster.egress SOCKET [NETWORK ...]`; the launcher starts and stops it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys

FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_allowed(host: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    if is_loopback(host):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return any(address in network for network in networks)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> None:
    try:
        request = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    method, target, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    host, _, port = target.rpartition(":")
    if method != "CONNECT" or not port.isdigit() or not is_allowed(host, networks):
        print(f"refused {method} {target}", flush=True)
        writer.write(FORBIDDEN)
        await writer.drain()
        writer.close()
        return
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(host.strip("[]"), int(port))
    except OSError as error:
        print(f"failed {target}: {error}", flush=True)
        writer.write(BAD_GATEWAY)
        await writer.drain()
        writer.close()
        return
    writer.write(ESTABLISHED)
    await writer.drain()
    await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


async def serve(socket_path: str, networks: tuple[str, ...] = ()) -> None:
    allowed = tuple(ipaddress.ip_network(network) for network in networks)
    server = await asyncio.start_unix_server(lambda r, w: _handle(r, w, allowed), socket_path)
    print(f"egress proxy on {socket_path}: {', '.join(('loopback', *networks))} only", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    asyncio.run(serve(sys.argv[1], tuple(sys.argv[2:])))


if __name__ == "__main__":
    main()
