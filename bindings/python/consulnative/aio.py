"""asyncio on top of the descriptor handoff.

Dial and accept block inside the library, so they run off the event loop (dial in the loop's thread executor,
accept on a daemon thread per server); each verified connection is then detached into a plain socket
(``consulnative_conn_handoff``) and handed to asyncio's own streams. The peer's identity is available as
``writer.get_extra_info("consulnative_peer")`` (a :class:`~consulnative.Peer`), its TCP address as
``writer.get_extra_info("consulnative_peer_address")``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Set, Tuple

from ._errors import ClosedError
from ._ffi import timeout_ms

if TYPE_CHECKING:  # pragma: no cover
    from ._conn import Conn, Peer
    from ._listener import Listener
    from ._service import Service

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
PEER_KEY = "consulnative_peer"
PEER_ADDRESS_KEY = "consulnative_peer_address"


def _attach_peer(writer: asyncio.StreamWriter, peer: "Peer", address: Optional[Tuple[str, int]] = None) -> None:
    # asyncio has no public way to add transport extras; BaseTransport keeps them in `_extra` (all CPython 3.x).
    extra = getattr(writer.transport, "_extra", None)
    if isinstance(extra, dict):
        extra[PEER_KEY] = peer
        extra[PEER_ADDRESS_KEY] = address


async def _streams(conn: "Conn", limit: int) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    peer = conn.peer
    address = conn.getpeername()
    sock = conn.detach()
    try:
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
    except BaseException:
        sock.close()
        raise
    _attach_peer(writer, peer, address)
    return reader, writer


async def open_connection(service: "Service", target: Optional[str] = None, timeout: Optional[float] = None, *,
                          limit: int = 2**16, **dial_kwargs: Any) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Dials like :meth:`Service.dial` (in the loop's default executor) and returns asyncio ``(reader, writer)``."""
    timeout_ms(timeout)  # a bad timeout raises here, not from the executor
    loop = asyncio.get_running_loop()
    conn = await loop.run_in_executor(None, lambda: service.dial(target, timeout, **dial_kwargs))
    try:
        return await _streams(conn, limit)
    finally:
        conn.close()


class ConnectServer:
    """A running Connect server from :func:`start_server`: ``close()``, ``await wait_closed()``,
    ``async with``, ``await serve_forever()``; ``address`` and ``listener`` (for counts and refusal callbacks)."""

    def __init__(self, listener: "Listener", handler: Handler, limit: int) -> None:
        self.listener = listener
        self._handler = handler
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self._tasks: Set["asyncio.Task[None]"] = set()
        self._closed = asyncio.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"consulnative-accept-{listener.address[1]}",
                                        daemon=True)
        self._thread.start()

    @property
    def address(self) -> Tuple[str, int]:
        """The bound ``(host, port)``."""
        return self.listener.address

    def _accept_loop(self) -> None:
        # A daemon thread rather than the executor: a worker blocked in accept would be joined at interpreter exit.
        while True:
            try:
                conn = self.listener.accept()
            except ClosedError:
                break
            except Exception:  # pragma: no cover - accept fails only when closed
                break
            try:
                self._loop.call_soon_threadsafe(self._spawn, conn)
            except RuntimeError:  # the loop is closed
                conn.close()
                break

    def _spawn(self, conn: "Conn") -> None:
        if self._closed.is_set():
            conn.close()
            return
        task = self._loop.create_task(self._serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: "Conn") -> None:
        try:
            reader, writer = await _streams(conn, self._limit)
        finally:
            conn.close()
        try:
            await self._handler(reader, writer)
        finally:
            if not writer.is_closing():
                writer.close()

    def is_serving(self) -> bool:
        """True until :meth:`close`."""
        return not self._closed.is_set()

    def close(self) -> None:
        """Stops accepting (connections being served continue)."""
        if not self._closed.is_set():
            self._closed.set()
            self.listener.close()

    async def wait_closed(self) -> None:
        """Waits until closed and the accept thread has ended."""
        await self._closed.wait()
        await self._loop.run_in_executor(None, self._thread.join)

    async def serve_forever(self) -> None:
        """Serves until cancelled or closed."""
        try:
            await self._closed.wait()
        finally:
            self.close()

    async def __aenter__(self) -> "ConnectServer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


async def start_server(service: "Service", handler: Handler, host: str = "127.0.0.1", port: int = 0, *,
                       alpn: Any = None, limit: int = 2**16) -> ConnectServer:
    """Listens on ``host:port`` for Connect clients and calls ``await handler(reader, writer)`` for each verified,
    authorized connection, like :func:`asyncio.start_server`."""
    loop = asyncio.get_running_loop()
    listener = await loop.run_in_executor(None, lambda: service.listen((host, port), alpn=alpn))
    return ConnectServer(listener, handler, limit)
