"""Serving a WSGI application on a Connect listener, with the standard library's :mod:`wsgiref` (HTTP/1.1,
keep-alive, one thread per connection).

>>> with WSGIServer(db, app, "127.0.0.1:8443") as server:      # doctest: +SKIP
...     server.serve_forever()

Every connection is verified and authorized by the agent before the first request is read. Each request's environ
carries the caller's verified identity: ``environ["consulnative.peer"]`` (a :class:`consulnative.Peer`),
``environ["consulnative.peer_uri"]`` and ``environ["consulnative.peer_service"]``; ``REMOTE_ADDR``/``REMOTE_PORT``
are the caller's TCP address. Why not gunicorn: its workers accept from listening sockets they own and have no way
to take an already-verified connection (see ``docs/integrations-python-servers.md``).
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import typing
from typing import IO, Any, Callable, Dict, Iterable, Optional, Set, Tuple
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler

from ._errors import ClosedError, ConsulNativeError

if typing.TYPE_CHECKING:  # pragma: no cover
    from ._common import Address
    from ._conn import Peer
    from ._listener import Listener
    from ._service import Service

WSGIApp = Callable[[Dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_log = logging.getLogger("consulnative.wsgi")
#: Bodies left unread by the application up to this size are drained to keep the connection; larger ones close it.
DRAIN_LIMIT = 1 << 20


class _Body(io.RawIOBase):
    """``wsgi.input``: the request body, bounded by its Content-Length."""

    def __init__(self, rfile: Any, length: int) -> None:
        super().__init__()
        self._rfile, self.remaining = rfile, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), self.remaining)
        if n == 0:
            return 0
        data = self._rfile.read(n)
        view[: len(data)] = data
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return len(data)

    def readline(self, size: Optional[int] = -1) -> bytes:
        limit = self.remaining if size is None or size < 0 else min(size, self.remaining)
        line: bytes = self._rfile.readline(limit) if limit else b""
        self.remaining -= len(line)
        return line

    def drain(self) -> bool:
        """Reads what the application left; False when too much is left (the connection is then closed)."""
        if self.remaining > DRAIN_LIMIT:
            return False
        while self.remaining:
            if not self.read(min(self.remaining, 65536)):
                return False
        return True


class _ServerHandler(ServerHandler):
    http_version = "1.1"
    keep_alive = False

    def close(self) -> None:
        headers = getattr(self, "headers", None)
        status = int((getattr(self, "status", None) or "500").split(" ", 1)[0])
        environ = getattr(self, "environ", None) or {}
        no_body = status in (204, 304) or 100 <= status < 200 or environ.get("REQUEST_METHOD") == "HEAD"
        self.keep_alive = (headers is not None and (no_body or "Content-Length" in headers)
                           and (headers.get("Connection") or "").lower() != "close")
        super().close()


class _Handler(WSGIRequestHandler):
    """One connection: requests in a keep-alive loop."""

    protocol_version = "HTTP/1.1"
    server: "_ServerInfo"  # type: ignore[assignment]
    #: Seconds an idle keep-alive connection is kept.
    timeout = 60

    def handle(self) -> None:
        self.close_connection = True
        self._one_request()
        while not self.close_connection:
            self._one_request()

    def _one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (socket.timeout, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            self.close_connection = True
            return
        if not self.parse_request():
            return
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.send_error(411, "chunked request bodies are not supported: send a Content-Length")
            self.close_connection = True
            return
        try:
            length = max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            self.send_error(400, "bad Content-Length")
            self.close_connection = True
            return
        body = _Body(self.rfile, length)
        stdin, stdout = typing.cast(IO[bytes], io.BufferedReader(body)), typing.cast(IO[bytes], self.wfile)
        handler = _ServerHandler(stdin, stdout, self.get_stderr(), self.get_environ(), multithread=True)
        setattr(handler, "request_handler", self)  # wsgiref's ServerHandler logs through it
        handler.run(self.server.app)
        if not handler.keep_alive or not body.drain():
            self.close_connection = True

    def get_environ(self) -> Dict[str, Any]:
        env: Dict[str, Any] = super().get_environ()
        peer = self.server.peers.get(id(self.request))
        if peer is not None:
            env["consulnative.peer"] = peer
            env["consulnative.peer_uri"] = peer.uri
            env["consulnative.peer_service"] = peer.service
        env["REMOTE_ADDR"], env["REMOTE_PORT"] = self.client_address[0], str(self.client_address[1])
        return env

    def address_string(self) -> str:
        return str(self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:
        _log.info("%s %s", self.client_address[0], format % args)


class _ServerInfo:
    """What wsgiref's handler reads from its server."""

    def __init__(self, app: WSGIApp, address: Tuple[str, int]) -> None:
        self.app = app
        self.base_environ = {"SERVER_NAME": address[0], "GATEWAY_INTERFACE": "CGI/1.1",
                             "SERVER_PORT": str(address[1]), "REMOTE_HOST": "", "CONTENT_LENGTH": "",
                             "SCRIPT_NAME": ""}
        self.peers: Dict[int, "Peer"] = {}

    def get_app(self) -> WSGIApp:
        return self.app


class WSGIServer:
    """A WSGI application served on a Connect listener of ``service`` bound to ``address``.

    :meth:`serve_forever` blocks; :meth:`start` runs it on a daemon thread; :meth:`close` stops accepting and
    closes open connections. ``listener`` gives the counts and refusal callbacks.
    """

    def __init__(self, service: "Service", app: WSGIApp, address: "Address" = "127.0.0.1:0") -> None:
        self.listener: "Listener" = service.listen(address)
        self._info = _ServerInfo(app, self.listener.address)
        self._socks: Set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def address(self) -> Tuple[str, int]:
        """The bound ``(host, port)``."""
        return self.listener.address

    def serve_forever(self) -> None:
        """Accepts verified connections and serves each on its own thread until :meth:`close`."""
        while True:
            try:
                conn = self.listener.accept()
            except (ClosedError, ConsulNativeError):
                return
            try:
                peer, peer_addr = conn.peer, conn.getpeername()
                sock = conn.detach()
            except ConsulNativeError as exc:
                _log.warning("cannot serve a connection: %s", exc)
                conn.close()
                continue
            with self._lock:
                if self._closed:
                    sock.close()
                    return
                self._socks.add(sock)
                self._info.peers[id(sock)] = peer
            threading.Thread(target=self._serve, args=(sock, peer_addr), name="consulnative-wsgi",
                             daemon=True).start()

    def _serve(self, sock: socket.socket, peer_addr: Tuple[str, int]) -> None:
        try:
            _Handler(sock, peer_addr, self._info)  # type: ignore[arg-type]
        except OSError:
            pass
        finally:
            with self._lock:
                self._socks.discard(sock)
                self._info.peers.pop(id(sock), None)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def start(self) -> "WSGIServer":
        """Runs :meth:`serve_forever` on a daemon thread; returns self."""
        threading.Thread(target=self.serve_forever, name="consulnative-wsgi-accept", daemon=True).start()
        return self

    def close(self) -> None:
        """Stops accepting and shuts open connections down."""
        with self._lock:
            self._closed = True
            socks = list(self._socks)
        self.listener.close()
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "WSGIServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_wsgi(service: "Service", app: WSGIApp, address: "Address" = "127.0.0.1:0") -> None:
    """Serves ``app`` on a Connect listener at ``address`` until interrupted."""
    with WSGIServer(service, app, address) as server:
        server.serve_forever()
