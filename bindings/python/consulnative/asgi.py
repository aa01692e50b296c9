"""Serving an ASGI application (HTTP) on a Connect listener with asyncio: a small HTTP/1.1 server (keep-alive,
Content-Length and chunked bodies both ways) over :func:`consulnative.aio.start_server`.

>>> server = await serve_asgi(db, app, "127.0.0.1", 8443)      # doctest: +SKIP
>>> await server.serve_forever()                               # doctest: +SKIP

Every connection is verified and authorized by the agent before its first request is read. Each request's scope
carries the caller's verified identity as ``scope["consulnative.peer"]`` (a :class:`consulnative.Peer`); ``client``
is the caller's TCP address. No lifespan events and no WebSocket. Why not uvicorn or hypercorn: both serve only
sockets they listen on (``sockets=``, ``fd``, ``uds``, ``bind``) and have no public way to take an accepted,
already-verified connection, nor to put a per-connection identity in the scope (see
``docs/integrations-python-servers.md``).
"""

from __future__ import annotations

import asyncio
import logging
import typing
from typing import Any, Awaitable, Callable, Dict, List, MutableMapping, Optional, Tuple
from urllib.parse import unquote

from .aio import PEER_ADDRESS_KEY, PEER_KEY, ConnectServer, start_server

if typing.TYPE_CHECKING:  # pragma: no cover
    from ._service import Service

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]
_log = logging.getLogger("consulnative.asgi")
MAX_HEAD = 64 * 1024
#: Seconds an idle keep-alive connection is kept.
KEEP_ALIVE = 60.0


class _BadRequest(Exception):
    pass


async def _read_head(reader: asyncio.StreamReader) -> Optional[Tuple[str, str, str, List[Tuple[bytes, bytes]]]]:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), KEEP_ALIVE)
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
        return None
    except asyncio.LimitOverrunError as exc:
        raise _BadRequest("request head too large") from exc
    lines = head[:-4].split(b"\r\n")
    try:
        method, target, version = lines[0].decode("latin-1").split(" ")
    except ValueError as exc:
        raise _BadRequest("bad request line") from exc
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise _BadRequest("bad header line")
        headers.append((name.lower(), value.strip()))
    return method, target, version, headers


async def _read_body(reader: asyncio.StreamReader, headers: List[Tuple[bytes, bytes]]) -> bytes:
    values = dict(headers)
    if b"chunked" in values.get(b"transfer-encoding", b"").lower():
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return bytes(body)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    length = values.get(b"content-length")
    if length is None:
        return b""
    try:
        n = int(length)
    except ValueError as exc:
        raise _BadRequest("bad Content-Length") from exc
    return await reader.readexactly(n) if n > 0 else b""


def _status_line(status: int) -> bytes:
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


class _Response:
    """The ``send`` side of one request: headers, then a Content-Length body or a chunked one."""

    def __init__(self, writer: asyncio.StreamWriter, head_only: bool, keep_alive: bool) -> None:
        self.writer, self.head_only, self.keep_alive = writer, head_only, keep_alive
        self.started = self.finished = self.chunked = False
        self.done = asyncio.Event()
        self._status = 200
        self._headers: List[Tuple[bytes, bytes]] = []

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start" and not self.started:
            self.started = True
            self._status = int(message["status"])
            self._headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])]
        elif kind == "http.response.body" and self.started and not self.finished:
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if not hasattr(self, "_head_sent"):
                self._head_sent = True
                names = {k for k, _ in self._headers}
                if b"content-length" not in names:
                    if more:
                        self.chunked = True
                        self._headers.append((b"transfer-encoding", b"chunked"))
                    else:
                        self._headers.append((b"content-length", str(len(body)).encode()))
                if (dict(self._headers).get(b"connection") or b"").lower() == b"close":
                    self.keep_alive = False
                if not self.keep_alive:
                    self._headers.append((b"connection", b"close"))
                head = _status_line(self._status) + b"".join(k + b": " + v + b"\r\n" for k, v in self._headers)
                self.writer.write(head + b"\r\n")
            if not self.head_only and body:
                self.writer.write(b"%x\r\n%s\r\n" % (len(body), body) if self.chunked else body)
            if not more:
                if self.chunked and not self.head_only:
                    self.writer.write(b"0\r\n\r\n")
                self.finished = True
                self.done.set()
            await self.writer.drain()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} at this point of the response")


async def _serve_connection(app: ASGIApp, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            server_address: Tuple[str, int]) -> None:
    peer = writer.get_extra_info(PEER_KEY)
    client = writer.get_extra_info(PEER_ADDRESS_KEY)
    while True:
        try:
            head = await _read_head(reader)
            if head is None:
                return
            method, target, version, headers = head
            body = await _read_body(reader, headers)
        except (_BadRequest, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.write(_status_line(400) + b"content-length: 0\r\nconnection: close\r\n\r\n")
            _log.info("bad request from %s: %s", peer.uri if peer else "?", exc)
            return
        connection = dict(headers).get(b"connection", b"").lower()
        keep_alive = (version == "HTTP/1.1" and connection != b"close") or connection == b"keep-alive"
        path, _, query = target.partition("?")
        scope: Dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": version.split("/", 1)[-1], "method": method, "scheme": "http",
            "path": unquote(path), "raw_path": path.encode("latin-1"), "query_string": query.encode("latin-1"),
            "root_path": "", "headers": headers, "client": client, "server": server_address,
            "consulnative.peer": peer,
        }
        response = _Response(writer, method == "HEAD", keep_alive)
        delivered = asyncio.Event()

        async def receive() -> Message:
            if not delivered.is_set():
                delivered.set()
                return {"type": "http.request", "body": body, "more_body": False}
            await response.done.wait()
            return {"type": "http.disconnect"}

        try:
            await app(scope, receive, response.send)
        except Exception:
            _log.exception("the ASGI application raised")
            if not response.started:
                await response.send({"type": "http.response.start", "status": 500, "headers": []})
            if not response.finished:
                response.keep_alive = False
                await response.send({"type": "http.response.body", "body": b""})
            return
        if not response.finished:
            if not response.started:
                await response.send({"type": "http.response.start", "status": 500, "headers": []})
            await response.send({"type": "http.response.body", "body": b""})
        if not response.keep_alive:
            return


class ASGIServer:
    """A running ASGI server from :func:`serve_asgi`: ``address``, ``listener``, ``close()``,
    ``await wait_closed()``, ``await serve_forever()``, ``async with``."""

    def __init__(self, server: ConnectServer) -> None:
        self._server = server
        self.listener = server.listener

    @property
    def address(self) -> Tuple[str, int]:
        """The bound ``(host, port)``."""
        return self._server.address

    def close(self) -> None:
        """Stops accepting (requests being served finish)."""
        self._server.close()

    async def wait_closed(self) -> None:
        """Waits until closed."""
        await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Serves until cancelled or closed."""
        await self._server.serve_forever()

    async def __aenter__(self) -> "ASGIServer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


async def serve_asgi(service: "Service", app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> ASGIServer:
    """Listens on ``host:port`` for Connect clients and serves ``app`` to each verified, authorized connection."""
    holder: List[Tuple[str, int]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_connection(app, reader, writer, holder[0])

    server = await start_server(service, handler, host, port)
    holder.append(server.address)
    return ASGIServer(server)
