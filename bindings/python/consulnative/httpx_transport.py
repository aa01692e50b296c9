"""httpx transports that reach Connect services by name: ``http+consul://db/path`` (see
:mod:`consulnative.http_client` for the URL form). Needs the ``httpx`` extra (``pip install consulnative[httpx]``).

>>> client = httpx.Client(mounts={"http+consul://": ConnectTransport(web)})        # doctest: +SKIP
>>> client.get("http+consul://db/health").text                                     # doctest: +SKIP

Connections are httpcore pools (the engine of httpx's own transport) whose network backend dials through Connect:
each pooled connection is a verified mutual-TLS connection to one instance of the service, reused while it is kept
alive. The server's identity is ``response.extensions["network_stream"].get_extra_info("consulnative_peer")``. A
server that hangs up before answering because the agent denies the call raises :class:`ConnectDenied` (an
``httpx.ConnectError`` and a :class:`consulnative.AuthorizationDenied`) with the agent's reason. The async transport
runs on asyncio.
"""

from __future__ import annotations

import asyncio
import select
import socket
import typing
from typing import Any, AsyncIterator, Iterator, Optional

import httpcore
import httpx

from ._errors import AuthorizationDenied, ConsulNativeError, ConsulTimeoutError
from .http_client import SCHEME, dial_socket, explain_refusal

if typing.TYPE_CHECKING:  # pragma: no cover
    from ._conn import Peer
    from ._service import Service

PEER_KEY = "consulnative_peer"


class ConnectDenied(httpx.ConnectError, AuthorizationDenied):
    """The destination hung up and the agent says why: its intentions deny this service (the agent's reason is the
    message)."""


def _readable(sock: socket.socket) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _dial(service: "Service", host: str, timeout: Optional[float], datacenter: Optional[str]
          ) -> "tuple[socket.socket, Peer]":
    try:
        return dial_socket(service, host, timeout, datacenter=datacenter)
    except ConsulTimeoutError as exc:
        raise httpcore.ConnectTimeout(str(exc)) from exc
    except ConsulNativeError as exc:
        raise httpcore.ConnectError(str(exc)) from exc


class _Stream(httpcore.NetworkStream):
    def __init__(self, sock: socket.socket, peer: "Peer") -> None:
        self._sock, self._peer = sock, peer

    def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        self._sock.settimeout(timeout)
        try:
            return self._sock.recv(max_bytes)
        except socket.timeout as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        self._sock.settimeout(timeout)
        try:
            self._sock.sendall(buffer)
        except socket.timeout as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    def close(self) -> None:
        self._sock.close()

    def get_extra_info(self, info: str) -> Any:
        if info == PEER_KEY:
            return self._peer
        if info == "socket":
            return self._sock
        if info == "is_readable":
            return _readable(self._sock)
        return None


class _Backend(httpcore.NetworkBackend):
    def __init__(self, service: "Service", datacenter: Optional[str]) -> None:
        self._service, self._datacenter = service, datacenter

    def connect_tcp(self, host: str, port: int, timeout: Optional[float] = None, local_address: Optional[str] = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        sock, peer = _dial(self._service, host, timeout, self._datacenter)
        return _Stream(sock, peer)


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: "Peer") -> None:
        self._reader, self._writer, self._peer = reader, writer, peer

    async def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        try:
            return await asyncio.wait_for(self._reader.read(max_bytes), timeout)
        except asyncio.TimeoutError as exc:
            raise httpcore.ReadTimeout("read timed out") from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        try:
            self._writer.write(buffer)
            await asyncio.wait_for(self._writer.drain(), timeout)
        except asyncio.TimeoutError as exc:
            raise httpcore.WriteTimeout("write timed out") from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass

    def get_extra_info(self, info: str) -> Any:
        if info == PEER_KEY:
            return self._peer
        if info == "is_readable":
            sock = self._writer.get_extra_info("socket")
            return self._reader.at_eof() or (sock is not None and _readable(sock))
        return self._writer.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, service: "Service", datacenter: Optional[str]) -> None:
        self._service, self._datacenter = service, datacenter

    async def connect_tcp(self, host: str, port: int, timeout: Optional[float] = None,
                          local_address: Optional[str] = None, socket_options: Any = None
                          ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        sock, peer = await loop.run_in_executor(None, _dial, self._service, host, timeout, self._datacenter)
        try:
            sock.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
        return _AsyncStream(reader, writer, peer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _core_request(request: httpx.Request) -> httpcore.Request:
    if request.url.scheme != SCHEME:
        raise httpx.UnsupportedProtocol(f"a Connect transport serves {SCHEME}:// URLs, not {request.url}",
                                        request=request)
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(scheme=b"http", host=request.url.raw_host, port=None, target=request.url.raw_path),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


def _httpx_error(exc: Exception, request: httpx.Request) -> Exception:
    cls = getattr(httpx, type(exc).__name__, httpx.TransportError)
    if not (isinstance(cls, type) and issubclass(cls, httpx.TransportError)):
        cls = httpx.TransportError
    return cls(str(exc), request=request)


def _denied(service: "Service", request: httpx.Request) -> Optional[ConnectDenied]:
    denied = explain_refusal(service, request.url.host)
    if denied is None:
        return None
    error = ConnectDenied(str(denied), request=request)
    error.code, error.result_name, error.message = denied.code, denied.result_name, denied.message
    return error


_HANGUPS = (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError)


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Any, request: httpx.Request) -> None:
        self._stream, self._request = stream, request

    def __iter__(self) -> Iterator[bytes]:
        try:
            for part in self._stream:
                yield part
        except httpcore.TimeoutException as exc:
            raise _httpx_error(exc, self._request) from exc
        except httpcore.NetworkError as exc:
            raise _httpx_error(exc, self._request) from exc

    def close(self) -> None:
        if hasattr(self._stream, "close"):
            self._stream.close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, stream: Any, request: httpx.Request) -> None:
        self._stream, self._request = stream, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except (httpcore.TimeoutException, httpcore.NetworkError) as exc:
            raise _httpx_error(exc, self._request) from exc

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


class ConnectTransport(httpx.BaseTransport):
    """A synchronous httpx transport for ``http+consul://<service>/...`` URLs, dialing as ``service``.

    ``datacenter`` picks where instances are discovered; ``max_connections``, ``max_keepalive_connections`` and
    ``keepalive_expiry`` (seconds) size the pool as for ``httpx.HTTPTransport``. Close it (or the client) to close
    pooled connections; the service stays yours.
    """

    def __init__(self, service: "Service", *, datacenter: Optional[str] = None, max_connections: int = 10,
                 max_keepalive_connections: Optional[int] = None, keepalive_expiry: Optional[float] = 5.0) -> None:
        self.service = service
        self._pool = httpcore.ConnectionPool(max_connections=max_connections,
                                             max_keepalive_connections=max_keepalive_connections,
                                             keepalive_expiry=keepalive_expiry,
                                             network_backend=_Backend(service, datacenter))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Sends ``request`` on a pooled (or new) verified connection to the service the URL names."""
        core = _core_request(request)
        try:
            response = self._pool.handle_request(core)
        except _HANGUPS as exc:
            denied = _denied(self.service, request)
            if denied is not None:
                raise denied from exc
            raise _httpx_error(exc, request) from exc
        except httpcore.ConnectError as exc:
            raise _httpx_error(exc, request) from exc
        except (httpcore.TimeoutException, httpcore.ProtocolError, httpcore.NetworkError) as exc:
            raise _httpx_error(exc, request) from exc
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Body(response.stream, request), extensions=response.extensions)

    def close(self) -> None:
        """Closes every pooled connection."""
        self._pool.close()


class AsyncConnectTransport(httpx.AsyncBaseTransport):
    """The asyncio counterpart of :class:`ConnectTransport` (for ``httpx.AsyncClient``): dials run in the loop's
    thread executor, then the connection is an asyncio stream."""

    def __init__(self, service: "Service", *, datacenter: Optional[str] = None, max_connections: int = 10,
                 max_keepalive_connections: Optional[int] = None, keepalive_expiry: Optional[float] = 5.0) -> None:
        self.service = service
        self._pool = httpcore.AsyncConnectionPool(max_connections=max_connections,
                                                  max_keepalive_connections=max_keepalive_connections,
                                                  keepalive_expiry=keepalive_expiry,
                                                  network_backend=_AsyncBackend(service, datacenter))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Sends ``request`` on a pooled (or new) verified connection to the service the URL names."""
        core = _core_request(request)
        try:
            response = await self._pool.handle_async_request(core)
        except _HANGUPS as exc:
            loop = asyncio.get_running_loop()
            denied = await loop.run_in_executor(None, _denied, self.service, request)
            if denied is not None:
                raise denied from exc
            raise _httpx_error(exc, request) from exc
        except (httpcore.TimeoutException, httpcore.ProtocolError, httpcore.NetworkError) as exc:
            raise _httpx_error(exc, request) from exc
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_AsyncBody(response.stream, request), extensions=response.extensions)

    async def aclose(self) -> None:
        """Closes every pooled connection."""
        await self._pool.aclose()
