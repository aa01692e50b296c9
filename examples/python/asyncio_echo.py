#!/usr/bin/env python3
"""asyncio on Connect: an echo server and a client in one process, against a dev agent it starts itself (the
consulnative-dev-agent binary as a child process, found beside the library; stopped when this script ends).

    PYTHONPATH=bindings/python python3 examples/python/asyncio_echo.py
"""

from __future__ import annotations

import asyncio

import consulnative


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("consulnative_peer")
    while line := await reader.readline():
        writer.write(f"{peer.service}: {line.decode()}".encode())
        await writer.drain()
    writer.close()


async def main() -> None:
    with consulnative.DevAgent() as agent, agent.client() as client:
        agent.allow("web", "echo")
        with client.service("echo") as server_svc, client.service("web") as client_svc:
            server_svc.wait_ready(10)
            client_svc.wait_ready(10)
            async with await server_svc.start_server(echo, "127.0.0.1", 0) as server:
                reader, writer = await client_svc.open_connection("echo", address=server.address, timeout=5)
                for word in ("hello", "connect"):
                    writer.write(word.encode() + b"\n")
                    print((await reader.readline()).decode().strip())
                writer.close()
                await writer.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
