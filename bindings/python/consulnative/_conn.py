"""Conn and Peer: an established mutual-TLS connection, socket-like, and the verified identity of its peer."""

from __future__ import annotations

import ctypes
import io
import json
import os
import socket
import threading
from ctypes import byref, c_int32, c_size_t
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from . import _ffi
from ._common import MAIN_IDENT, SLICE_MS, interruptible, split_address
from ._errors import ConsulNativeError, ConsulTimeoutError
from ._managed import Managed

_lib = _ffi.lib
_conn_read = _lib.consulnative_conn_read
_conn_write = _lib.consulnative_conn_write


@dataclass(frozen=True)
class Peer:
    """The verified identity of the other side of a :class:`Conn`."""

    uri: str
    service: str
    namespace: Optional[str]
    partition: Optional[str]
    datacenter: Optional[str]
    trust_domain: Optional[str]
    serial: Optional[str]


class Conn(Managed):
    """An established mutual-TLS connection with a verified (inbound: authorized) peer (``consulnative_conn``).

    Socket-like: :meth:`recv`, :meth:`recv_into`, :meth:`send`, :meth:`sendall`, :meth:`makefile`,
    :meth:`settimeout`, :meth:`shutdown`, :meth:`close`, context manager. :meth:`detach` gives a real
    :class:`socket.socket` (for asyncio and selectors). One thread may read while another writes.
    """

    _free_fn = _lib.consulnative_conn_free
    _close_rank = 20

    #: Seconds :meth:`close` waits at most for the TLS close_notify to leave when no timeout is set.
    CLOSE_TIMEOUT = 1.0

    def __init__(self, ptr: int) -> None:
        super().__init__(ptr)
        self._timeout: Optional[float] = None
        self._info: Dict[str, Any] = json.loads(_ffi.read_text(_lib.consulnative_conn_info, ptr))

    def __repr__(self) -> str:
        return f"<consulnative.Conn peer={self.peer.uri!r}{' closed' if self.closed else ''}>"

    # -- identity
    def info(self) -> Dict[str, Any]:
        """The connection details (``consulnative_conn_info``): ``peer`` {uri, service, namespace, partition,
        datacenter, trust_domain, serial}, ``local_address``, ``peer_address``, ``alpn``."""
        with self._use() as ptr:
            self._info = json.loads(_ffi.read_text(_lib.consulnative_conn_info, ptr))
        return self._info

    @property
    def peer(self) -> Peer:
        """The peer's verified identity."""
        p = self._info["peer"]
        return Peer(p.get("uri"), p.get("service"), p.get("namespace"), p.get("partition"), p.get("datacenter"),
                    p.get("trust_domain"), p.get("serial"))

    @property
    def alpn(self) -> Optional[str]:
        """The negotiated ALPN protocol, if any."""
        alpn: Optional[str] = self._info.get("alpn")
        return alpn

    def getpeername(self) -> Tuple[str, int]:
        """The peer's TCP address."""
        return split_address(self._info["peer_address"])

    def getsockname(self) -> Tuple[str, int]:
        """Our TCP address."""
        return split_address(self._info["local_address"])

    # -- timeouts
    def settimeout(self, timeout: Optional[float]) -> None:
        """Timeout in seconds for recv/send (None: block; 0: do not wait; negative: :class:`ValueError`, as for
        :meth:`socket.socket.settimeout`). On expiry they raise :class:`TimeoutError`."""
        _ffi.timeout_ms(timeout)  # validates
        self._timeout = timeout

    def gettimeout(self) -> Optional[float]:
        """The current timeout in seconds (None: blocking)."""
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        """``setblocking(True)`` is ``settimeout(None)``; ``False`` is ``settimeout(0)``."""
        self.settimeout(None if flag else 0.0)

    # -- data
    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Reads into a writable buffer; returns the count, 0 meaning the peer closed its side."""
        if flags:
            raise ValueError("flags are not supported")
        view = memoryview(buffer).cast("B")
        if nbytes <= 0 or nbytes > len(view):
            nbytes = len(view)
        if nbytes == 0:
            return 0
        arr = (ctypes.c_ubyte * nbytes).from_buffer(view)
        n = c_size_t(0)
        with self._use() as ptr:
            interruptible(lambda ms: _lib.consulnative_conn_read(ptr, arr, nbytes, ms, byref(n)), self._timeout,
                          ConsulTimeoutError)
        return n.value

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Reads up to ``bufsize`` bytes; ``b""`` means the peer closed its side."""
        if flags:
            raise ValueError("flags are not supported")
        buf = ctypes.create_string_buffer(max(bufsize, 1))
        n = c_size_t(0)
        if self._timeout is None:
            # Fast path (the common blocking recv): no closure, no per-call thread lookups; same slicing rule.
            ptr = self._acquire()
            try:
                if threading.get_ident() != MAIN_IDENT:
                    _conn_read(ptr, buf, bufsize, -1, byref(n))
                else:
                    while True:
                        try:
                            _conn_read(ptr, buf, bufsize, SLICE_MS, byref(n))
                            break
                        except ConsulTimeoutError:
                            continue  # pending signal handlers run here
            finally:
                self._release()
            # A c_char array slice is bytes (typeshed says list): only the n bytes read, no copy of the whole buffer.
            return buf[: n.value]  # type: ignore[return-value]
        with self._use() as ptr:
            interruptible(lambda ms: _lib.consulnative_conn_read(ptr, buf, bufsize, ms, byref(n)), self._timeout,
                          ConsulTimeoutError)
        return buf.raw[: n.value]

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Writes all of ``data`` and flushes it."""
        self.send(data, flags)

    def send(self, data: Any, flags: int = 0) -> int:
        """Writes ``data`` (the library always writes everything or fails); returns the count."""
        if flags:
            raise ValueError("flags are not supported")
        raw = data if isinstance(data, bytes) else bytes(memoryview(data).cast("B"))
        n = c_size_t(0)
        ptr = self._acquire()
        try:
            _conn_write(ptr, raw, len(raw), -1 if self._timeout is None else _ffi.timeout_ms(self._timeout), byref(n))
        finally:
            self._release()
        return n.value

    def shutdown(self, how: int = socket.SHUT_WR) -> None:
        """Ends our sending side (TLS close_notify, TCP half-close); the peer reads end of stream. Reading stays
        possible. ``SHUT_RD`` alone does nothing (the library has no read shutdown)."""
        if how == socket.SHUT_RD:
            return
        with self._use() as ptr:
            _lib.consulnative_conn_shutdown(ptr, _ffi.timeout_ms(self._timeout))

    def close(self) -> None:
        """Closes the connection (``consulnative_conn_close``): sends TLS close_notify, waiting at most the
        timeout set with :meth:`settimeout` (``CLOSE_TIMEOUT``, 1 s, when none is set: a peer that stops reading
        cannot hold close() forever), then shuts the socket down both ways, so the peer reads end of stream and a
        :meth:`recv` blocked in another thread raises :class:`ClosedError`. Idempotent. The handle itself is freed
        once no call is using it."""
        super().close()

    def _before_free(self, ptr: int) -> None:
        timeout = self.CLOSE_TIMEOUT if self._timeout is None else self._timeout
        try:
            _lib.consulnative_conn_close(ptr, _ffi.timeout_ms(timeout))
        except ConsulNativeError:
            pass  # close_notify not sent (peer gone, timeout): the library closed the connection anyway

    def makefile(self, mode: str = "r", buffering: Optional[int] = None, *, encoding: Optional[str] = None,
                 errors: Optional[str] = None, newline: Optional[str] = None) -> Any:
        """A file object over the connection, like :meth:`socket.socket.makefile` (``"rb"``, ``"wb"``,
        ``"rwb"``, text modes). Closing the file does not close the connection."""
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b)")
        reading, writing, binary = "r" in mode, "w" in mode, "b" in mode
        if not reading and not writing:
            raise ValueError("mode must include r or w")
        raw = _ConnIO(self, reading, writing)
        if buffering is None:
            buffering = -1
        if buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        stream: Any
        if reading and writing:
            stream = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            stream = io.BufferedReader(raw, buffering)
        else:
            stream = io.BufferedWriter(raw, buffering)
        if binary:
            return stream
        text = io.TextIOWrapper(stream, encoding, errors, newline)
        text.mode = mode  # type: ignore[misc]
        return text

    def detach(self) -> socket.socket:
        """Hands the connection over as a real :class:`socket.socket` carrying the plaintext
        (``consulnative_conn_handoff``): the library keeps the TLS stream on its runtime. EOF and half-close pass
        through. This object is closed afterwards; :attr:`peer` stays readable. Use it with asyncio, selectors,
        ``http.client``..."""
        fd = c_int32(-1)
        with self._use() as ptr:
            _lib.consulnative_conn_handoff(ptr, byref(fd))
        try:
            sock = socket.socket(fileno=fd.value)
        except BaseException:
            os.close(fd.value)
            raise
        self.close()
        return sock

    def fileno(self) -> int:
        """A TLS connection has no plaintext descriptor of its own: use :meth:`detach`."""
        raise io.UnsupportedOperation("a consulnative.Conn has no file descriptor; use conn.detach()")


class _ConnIO(io.RawIOBase):
    """Raw I/O over a :class:`Conn` (for :meth:`Conn.makefile`)."""

    def __init__(self, conn: Conn, reading: bool, writing: bool) -> None:
        super().__init__()
        self._conn, self._reading, self._writing = conn, reading, writing

    def readable(self) -> bool:
        return self._reading

    def writable(self) -> bool:
        return self._writing

    def readinto(self, b: Any) -> int:
        return self._conn.recv_into(b)

    def write(self, b: Any) -> int:
        return self._conn.send(b)
