"""The apiserver's only road into the cluster network: an HTTP CONNECT proxy on a unix socket.

kube-apiserver sends all of its "cluster" egress (pods/proxy, services/proxy, kubelet endpoints) here
(`--egress-selector-config-file`). Loopback destinations, such as kwok's kubelet endpoint, go through;
everything else is refused and logged. Pod and service addresses are simulated with no host behind
them, so the apiserver never dials them on the host network.

Run as `python -m kaic.localcluster.egress SOCKET`; the launcher starts and stops it.
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


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    method, target, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    host, _, port = target.rpartition(":")
    if method != "CONNECT" or not port.isdigit() or not is_loopback(host):
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


async def serve(socket_path: str) -> None:
    server = await asyncio.start_unix_server(_handle, socket_path)
    print(f"egress proxy on {socket_path}: loopback only", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    asyncio.run(serve(sys.argv[1]))


if __name__ == "__main__":
    main()
