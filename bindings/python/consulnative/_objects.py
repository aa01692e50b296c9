"""Client, Service, Listener, Conn and DevAgent: Python objects over the library's handles."""

from __future__ import annotations

import ctypes
import enum
import io
import json
import socket
import threading
import time
import weakref
from ctypes import byref, c_int32, c_size_t, c_uint64, c_void_p
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Type, Union

from . import _ffi
from ._errors import ConsulNativeError, ConsulTimeoutError, NotReady, Result, make_error
from ._managed import (
    DROP_TRAMPOLINE, EVENT_TRAMPOLINE, NULL_DROP, NULL_PEER_CHECK, NULL_REFUSAL, PEER_CHECK_TRAMPOLINE,
    REFUSAL_TRAMPOLINE, Managed, forget_handler, register_handler,
)

_lib = _ffi.lib
cstr = _ffi.cstr
Address = Union[str, Tuple[str, int]]


class Event(enum.IntEnum):
    """What a service change callback is told (``enum consulnative_event``)."""

    LEAF_ROTATED = 1
    ROOTS_CHANGED = 2
    WATCH_ERROR = 3


class PemKind(enum.IntEnum):
    """Which PEM document :meth:`Service.pem` returns (``enum consulnative_pem_kind``)."""

    LEAF_CHAIN = 1
    LEAF_KEY = 2
    ROOTS = 3


def split_address(text: str) -> Tuple[str, int]:
    """``"127.0.0.1:8443"`` / ``"[::1]:8443"`` -> ``("127.0.0.1", 8443)`` / ``("::1", 8443)``."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def join_address(address: Address) -> str:
    """``("::1", 8443)`` -> ``"[::1]:8443"``; strings pass through."""
    if isinstance(address, str):
        return address
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _alpn(alpn: Union[None, str, Iterable[str]]) -> Optional[bytes]:
    if alpn is None:
        return None
    if isinstance(alpn, str):
        return cstr(alpn)
    return cstr(",".join(alpn))


# Signal handlers (Ctrl-C) run only in the main thread, between bytecodes: a wait there is cut into slices so a
# KeyboardInterrupt is raised within this many seconds. Other threads wait in one call.
WAIT_SLICE = 0.25
_SLICE_MS = int(WAIT_SLICE * 1000)
_MAIN_IDENT = threading.main_thread().ident
_conn_read = _lib.consulnative_conn_read
_conn_write = _lib.consulnative_conn_write


def _interruptible(call: Callable[[int], Any], timeout: Optional[float],
                   sliced_error: Type[BaseException]) -> Any:
    """Runs ``call(timeout_ms)``; on the main thread as a series of short waits (``sliced_error`` meaning "nothing
    happened yet", which the library guarantees for accept, read and wait_ready), so signals are handled."""
    _ffi.timeout_ms(timeout)  # validates
    if threading.current_thread() is not threading.main_thread() or (timeout is not None and timeout <= WAIT_SLICE):
        return call(_ffi.timeout_ms(timeout))
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = WAIT_SLICE
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= WAIT_SLICE:
                return call(_ffi.timeout_ms(max(remaining, 0.0)))
        try:
            return call(_ffi.timeout_ms(step))
        except sliced_error:
            continue  # pending signal handlers run here


# -- client --------------------------------------------------------------------------------------------------------


def _config_value(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Client(Managed):
    """A client of one Consul agent (``consulnative_client``); owns the CA roots watch its services share.

    Configuration starts from the ``CONSUL_*`` environment variables (``CONSUL_HTTP_ADDR``, ``CONSUL_HTTP_TOKEN``,
    ``CONSUL_CACERT``...); ``address``, ``token`` and any other config key given here win. Keys: ``address``,
    ``token``, ``token_file``, ``datacenter``, ``namespace``, ``partition``, ``http_auth``, ``ca_file``,
    ``ca_path``, ``client_cert``, ``client_key``, ``tls_server_name``, ``tls_verify`` (bool), and durations in
    milliseconds ``request_timeout_ms``, ``blocking_wait_ms``, ``retry_max_ms``, ``handshake_timeout_ms``,
    ``authorize_timeout_ms``. An unknown key or a bad value raises :class:`InvalidArgumentError`.

    Services made from a client keep working after the client is closed.
    """

    _free_fn = _lib.consulnative_client_free
    _close_rank = 40

    def __init__(self, address: Optional[str] = None, token: Optional[str] = None, **config: Any) -> None:
        settings: Dict[str, Any] = {}
        if address is not None:
            settings["address"] = address
        if token is not None:
            settings["token"] = token
        settings.update(config)
        cfg = c_void_p()
        _lib.consulnative_config_new(byref(cfg))
        try:
            for key, value in settings.items():
                _lib.consulnative_config_set(cfg, cstr(key), cstr(_config_value(value)))
            out = c_void_p()
            _lib.consulnative_client_new(cfg, byref(out))
        finally:
            _lib.consulnative_config_free(cfg)
        super().__init__(out.value)  # type: ignore[arg-type]

    def service(self, name: str) -> "Service":
        """Starts watching the leaf certificate of service ``name``; call :meth:`Service.wait_ready` next."""
        out = c_void_p()
        with self._use() as ptr:
            _lib.consulnative_service_new(ptr, cstr(name), byref(out))
        return Service(out.value, name)  # type: ignore[arg-type]

    def register(self, name: str, port: int, *, id: Optional[str] = None, address: Optional[str] = None,
                 tags: Union[None, str, Iterable[str]] = None, check: Optional[str] = None) -> None:
        """Registers a Connect-native service with the agent.

        ``check``: None for none, ``"tcp"`` or ``"tcp:<interval ms>"``, or ``"ttl:<ttl ms>"`` (its check ID is
        ``service:<id>``; keep it passing with :meth:`pass_ttl`). ``id`` defaults to the name, ``address`` to the
        agent's. ``tags`` is a list or a comma-separated string.
        """
        tag_text = tags if tags is None or isinstance(tags, str) else ",".join(tags)
        with self._use() as ptr:
            _lib.consulnative_client_register(ptr, cstr(name), cstr(id), cstr(address), int(port), cstr(tag_text),
                                              cstr(check))

    def deregister(self, service_id: str) -> None:
        """Deregisters a service by its ID."""
        with self._use() as ptr:
            _lib.consulnative_client_deregister(ptr, cstr(service_id))

    def pass_ttl(self, check_id: str, note: Optional[str] = None) -> None:
        """Marks a TTL check passing (for a ``"ttl:..."`` registration the ID is ``service:<id>``)."""
        with self._use() as ptr:
            _lib.consulnative_client_pass_ttl(ptr, cstr(check_id), cstr(note))


# -- service -------------------------------------------------------------------------------------------------------


class Service(Managed):
    """One service identity (``consulnative_service``): its leaf certificate and the CA roots, kept fresh.

    Made by :meth:`Client.service`. Listeners and connections made from it keep working after it is closed.
    """

    _free_fn = _lib.consulnative_service_free
    _close_rank = 30

    def __init__(self, ptr: int, name: str) -> None:
        super().__init__(ptr)
        self.name = name
        self._callback_ids: Dict[int, int] = {}  # library callback id -> our token

    def __repr__(self) -> str:
        return f"<consulnative.Service {self.name!r}{' closed' if self.closed else ''}>"

    def wait_ready(self, timeout: Optional[float] = None) -> None:
        """Waits until the service has a leaf and CA roots that verify; raises :class:`NotReady` (with the reason
        and the last agent error) after ``timeout`` seconds (None: wait forever)."""
        with self._use() as ptr:
            _interruptible(lambda ms: _lib.consulnative_service_wait_ready(ptr, ms), timeout, NotReady)

    def status(self) -> Dict[str, Any]:
        """The status JSON: ``service``, ``ready``, ``not_ready_reason``, ``spiffe_id``, ``leaf_serial``,
        ``leaf_valid_before``, ``trust_domain``, ``active_root_id``, ``roots``, ``last_error``."""
        with self._use() as ptr:
            return json.loads(_ffi.read_text(_lib.consulnative_service_status, ptr))  # type: ignore[no-any-return]

    @property
    def ready(self) -> bool:
        """True when the service has usable certificates."""
        return bool(self.status().get("ready"))

    @property
    def spiffe_id(self) -> Optional[str]:
        """The service's SPIFFE URI (None before the first leaf)."""
        return self.status().get("spiffe_id")

    def pem(self, kind: PemKind) -> str:
        """The current leaf chain, leaf key or CA roots as PEM (raises :class:`NotReady` before they arrive)."""
        with self._use() as ptr:
            return _ffi.read_text(_lib.consulnative_service_pem, ptr, int(kind))

    def leaf_pem(self) -> str:
        """The current leaf certificate followed by its intermediates, as PEM."""
        return self.pem(PemKind.LEAF_CHAIN)

    def key_pem(self) -> str:
        """The current leaf's private key as PEM. Handle it as a secret."""
        return self.pem(PemKind.LEAF_KEY)

    def roots_pem(self) -> str:
        """Every current CA root, as PEM."""
        return self.pem(PemKind.ROOTS)

    def on_event(self, callback: Callable[[Event], None]) -> int:
        """Calls ``callback(event)`` on a library watch thread on leaf rotation, roots change or watch error.
        Returns an id for :meth:`remove_callback`. Keep it short; exceptions are logged, not raised."""

        def dispatch(event: int) -> None:
            try:
                callback(Event(event))
            except ValueError:
                callback(event)  # type: ignore[arg-type]  # an event this binding does not know yet

        return self._add_callback(dispatch)

    def on_rotate(self, callback: Callable[["Service"], None]) -> int:
        """Calls ``callback(service)`` each time a new leaf certificate is in force. Returns an id for
        :meth:`remove_callback`. The service is passed in (held weakly here), so the callback need not capture it."""
        ref = weakref.ref(self)

        def dispatch(event: int) -> None:
            svc = ref()
            if svc is not None and event == Event.LEAF_ROTATED:
                callback(svc)

        return self._add_callback(dispatch)

    def _add_callback(self, dispatch: Callable[[int], None]) -> int:
        token = register_handler(dispatch)
        out = c_uint64()
        try:
            with self._use() as ptr:
                _lib.consulnative_service_add_callback(ptr, EVENT_TRAMPOLINE, token, DROP_TRAMPOLINE, byref(out))
        except BaseException:
            forget_handler(token)
            raise
        self._callback_ids[out.value] = token
        return out.value

    def remove_callback(self, callback_id: int) -> None:
        """Removes a callback added with :meth:`on_event` / :meth:`on_rotate`."""
        with self._use() as ptr:
            _lib.consulnative_service_remove_callback(ptr, callback_id)
        self._callback_ids.pop(callback_id, None)

    def _before_free(self, ptr: int) -> None:
        # Detach our callbacks first, even if a blocked call (wait_ready) delays the free itself.
        for callback_id in list(self._callback_ids):
            try:
                _lib.consulnative_service_remove_callback(ptr, callback_id)
            except ConsulNativeError:
                pass
        self._callback_ids.clear()

    def listen(self, address: Address = "127.0.0.1:0", *, alpn: Union[None, str, Iterable[str]] = None
               ) -> "Listener":
        """Listens for Connect clients on ``address`` (``"127.0.0.1:0"``, ``("::1", 8443)``). Every connection
        is verified and authorized by the agent before :meth:`Listener.accept` returns it."""
        out = c_void_p()
        with self._use() as ptr:
            _lib.consulnative_service_listen(ptr, cstr(join_address(address)), _alpn(alpn), byref(out))
        return Listener(out.value)  # type: ignore[arg-type]

    def dial(self, service: Optional[str] = None, timeout: Optional[float] = None, *,
             address: Optional[Address] = None, datacenter: Optional[str] = None,
             alpn: Union[None, str, Iterable[str]] = None) -> "Conn":
        """Opens a mutual-TLS connection to ``service``.

        Without ``address``: through the agent's catalog (healthy connect-native instances, next on failure);
        raises :class:`NoInstances` if none. With ``address`` (``"host:port"`` or a tuple): directly, and the
        server must present ``service`` (a service name or a full ``spiffe://`` URI), else
        :class:`IdentityMismatch`. ``timeout`` in seconds (None: no timeout).
        """
        if service is None:
            raise TypeError("dial() needs the service to reach (and, with address=, the identity to expect)")
        out = c_void_p()
        with self._use() as ptr:
            if address is None:
                _lib.consulnative_service_dial(ptr, cstr(service), cstr(datacenter), _alpn(alpn),
                                               _ffi.timeout_ms(timeout), byref(out))
            else:
                if datacenter is not None:
                    raise TypeError("datacenter= only applies to dialing through the catalog")
                _lib.consulnative_service_dial_address(ptr, cstr(join_address(address)), cstr(service), _alpn(alpn),
                                                       _ffi.timeout_ms(timeout), byref(out))
        return Conn(out.value)  # type: ignore[arg-type]

    # asyncio helpers (see consulnative.aio)
    async def open_connection(self, service: Optional[str] = None, timeout: Optional[float] = None,
                              **kwargs: Any) -> Any:
        """``reader, writer = await svc.open_connection("db")``: :meth:`dial` in a thread executor, then the
        detached plaintext socket handed to asyncio. Same arguments as :meth:`dial`, plus ``limit``."""
        from .aio import open_connection

        return await open_connection(self, service, timeout, **kwargs)

    async def start_server(self, handler: Callable[..., Any], host: str = "127.0.0.1", port: int = 0,
                           **kwargs: Any) -> Any:
        """``server = await svc.start_server(handler, host, port)``: a Connect listener whose verified
        connections are handed to ``handler(reader, writer)`` as asyncio streams. See :class:`aio.ConnectServer`."""
        from .aio import start_server

        return await start_server(self, handler, host, port, **kwargs)


# -- listener ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A refused inbound connection, as told to :meth:`Listener.on_refused`."""

    result: int
    """Why, as a :class:`Result` (e.g. ``Result.AUTHORIZATION_DENIED``)."""
    peer_address: Tuple[str, int]
    peer_uri: Optional[str]
    """The client's SPIFFE URI, or None if the handshake failed before it was known."""
    message: str
    """The detail (for a denial, the agent's reason)."""

    @property
    def reason(self) -> str:
        """The library's short name of :attr:`result` (``"authorization denied"``)."""
        return _ffi.result_name(self.result)

    @property
    def error(self) -> ConsulNativeError:
        """The refusal as the exception a dial would have raised."""
        return make_error(self.result, self.message, self.reason)


class Listener(Managed):
    """A listening Connect endpoint (``consulnative_listener``). Accepted connections outlive it."""

    _free_fn = _lib.consulnative_listener_free
    _close_rank = 10

    def __init__(self, ptr: int) -> None:
        super().__init__(ptr)
        self._address = _ffi.read_text(_lib.consulnative_listener_address, ptr)
        self._has_refusal_cb = False
        self._has_peer_check = False

    def __repr__(self) -> str:
        return f"<consulnative.Listener {self._address}{' closed' if self.closed else ''}>"

    @property
    def address(self) -> Tuple[str, int]:
        """The bound address as ``(host, port)``, with the real port when bound to port 0."""
        return split_address(self._address)

    @property
    def address_string(self) -> str:
        """The bound address as the library writes it (``"127.0.0.1:41234"``, ``"[::1]:8443"``)."""
        with self._use() as ptr:
            return _ffi.read_text(_lib.consulnative_listener_address, ptr)

    def accept(self, timeout: Optional[float] = None) -> "Conn":
        """Waits for the next verified and authorized connection. Raises :class:`TimeoutError` after ``timeout``
        seconds (None: forever) and :class:`ClosedError` once the listener is closed (also from another thread).
        Refused connections never come out of here: see :meth:`on_refused`. The GIL is released while waiting."""
        out = c_void_p()
        with self._use() as ptr:
            _interruptible(lambda ms: _lib.consulnative_listener_accept(ptr, ms, byref(out)), timeout,
                           ConsulTimeoutError)
        return Conn(out.value)  # type: ignore[arg-type]

    def __iter__(self) -> "Listener":
        return self

    def __next__(self) -> "Conn":
        """Iterating accepts connections until the listener is closed."""
        from ._errors import ClosedError

        try:
            return self.accept()
        except ClosedError:
            raise StopIteration from None

    def on_refused(self, callback: Optional[Callable[[Refusal], None]]) -> None:
        """Calls ``callback(refusal)`` on a library thread for each refused connection (denied by intentions, no
        or foreign certificate, handshake timeout, peer check...). ``None`` clears it."""
        if callback is None:
            with self._use() as ptr:
                _lib.consulnative_listener_on_refused(ptr, NULL_REFUSAL, None, NULL_DROP)
            self._has_refusal_cb = False
            return

        def dispatch(result: int, peer_address: str, peer_uri: Optional[str], message: str) -> None:
            try:
                code: int = Result(result)
            except ValueError:
                code = result
            try:
                addr = split_address(peer_address)
            except ValueError:
                addr = (peer_address, 0)
            callback(Refusal(code, addr, peer_uri, message))

        token = register_handler(dispatch)
        try:
            with self._use() as ptr:
                _lib.consulnative_listener_on_refused(ptr, REFUSAL_TRAMPOLINE, token, DROP_TRAMPOLINE)
        except BaseException:
            forget_handler(token)
            raise
        self._has_refusal_cb = True

    def set_peer_check(self, check: Optional[Callable[[str, str], bool]]) -> None:
        """Installs the application's own check, run on a library thread after the agent allowed a client:
        ``check(peer_uri, peer_service)`` returns True to admit it; False (or an exception) refuses it with
        :class:`RejectedByApplication`. ``None`` clears it."""
        if check is None:
            with self._use() as ptr:
                _lib.consulnative_listener_set_peer_check(ptr, NULL_PEER_CHECK, None, NULL_DROP)
            self._has_peer_check = False
            return
        token = register_handler(check)
        try:
            with self._use() as ptr:
                _lib.consulnative_listener_set_peer_check(ptr, PEER_CHECK_TRAMPOLINE, token, DROP_TRAMPOLINE)
        except BaseException:
            forget_handler(token)
            raise
        self._has_peer_check = True

    @property
    def counts(self) -> Tuple[int, int]:
        """``(accepted, refused)``: connections admitted and refused so far."""
        accepted, refused = c_uint64(), c_uint64()
        with self._use() as ptr:
            _lib.consulnative_listener_counts(ptr, byref(accepted), byref(refused))
        return accepted.value, refused.value

    def _before_free(self, ptr: int) -> None:
        # Wake any blocked accept (it returns CLOSED) and detach our callbacks before the free.
        _lib.consulnative_listener_close(ptr)
        try:
            if self._has_refusal_cb:
                _lib.consulnative_listener_on_refused(ptr, NULL_REFUSAL, None, NULL_DROP)
            if self._has_peer_check:
                _lib.consulnative_listener_set_peer_check(ptr, NULL_PEER_CHECK, None, NULL_DROP)
        except ConsulNativeError:
            pass


# -- connection ----------------------------------------------------------------------------------------------------


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
        """Timeout in seconds for recv/send (None: block). On expiry they raise :class:`TimeoutError`."""
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
            _interruptible(lambda ms: _lib.consulnative_conn_read(ptr, arr, nbytes, ms, byref(n)), self._timeout,
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
                if threading.get_ident() != _MAIN_IDENT:
                    _conn_read(ptr, buf, bufsize, -1, byref(n))
                else:
                    while True:
                        try:
                            _conn_read(ptr, buf, bufsize, _SLICE_MS, byref(n))
                            break
                        except ConsulTimeoutError:
                            continue  # pending signal handlers run here
            finally:
                self._release()
            return buf[: n.value]
        with self._use() as ptr:
            _interruptible(lambda ms: _lib.consulnative_conn_read(ptr, buf, bufsize, ms, byref(n)), self._timeout,
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
            import os

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


# -- dev agent -----------------------------------------------------------------------------------------------------


class DevAgent(Managed):
    """An in-process Consul-compatible dev agent (Connect CA, intentions, catalog, ACL, fault injection), for tests
    and demos. ``address`` None picks a free loopback port; ``token`` makes leaf, authorize, register and intention
    calls require it; ``default_allow`` decides connections no intention matches; ``leaf_ttl`` in seconds
    (0: 72 hours)."""

    _free_fn = _lib.consulnative_dev_agent_free
    _close_rank = 90

    def __init__(self, address: Optional[str] = None, *, token: Optional[str] = None, default_allow: bool = True,
                 leaf_ttl: float = 0) -> None:
        out = c_void_p()
        _lib.consulnative_dev_agent_start(cstr(address), cstr(token), bool(default_allow),
                                          int(round(leaf_ttl * 1000)), byref(out))
        super().__init__(out.value)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.address
        return f"<consulnative.DevAgent {state}>"

    @property
    def address(self) -> str:
        """The agent's HTTP address as ``ip:port`` (usable as ``Client(address=...)`` or ``CONSUL_HTTP_ADDR``)."""
        with self._use() as ptr:
            return _ffi.read_text(_lib.consulnative_dev_agent_address, ptr)

    @property
    def trust_domain(self) -> str:
        """The CA's trust domain (``<uuid>.consul``)."""
        with self._use() as ptr:
            return _ffi.read_text(_lib.consulnative_dev_agent_trust_domain, ptr)

    def client(self, **config: Any) -> Client:
        """A :class:`Client` of this agent (extra config keys as for :class:`Client`)."""
        return Client(address=self.address, **config)

    def set_intention(self, source: str, destination: str, allow: bool) -> None:
        """Creates or replaces the intention ``source => destination`` (``"*"`` for either)."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_set_intention(ptr, cstr(source), cstr(destination), bool(allow))

    def allow(self, source: str, destination: str) -> None:
        """An allow intention ``source => destination``."""
        self.set_intention(source, destination, True)

    def deny(self, source: str, destination: str) -> None:
        """A deny intention ``source => destination``."""
        self.set_intention(source, destination, False)

    def delete_intention(self, source: str, destination: str) -> None:
        """Deletes the intention ``source => destination`` (no-op if absent)."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_delete_intention(ptr, cstr(source), cstr(destination))

    def rotate_ca(self) -> None:
        """Rotates the CA: new active root, old one kept, cross-signed intermediate, every leaf reissued."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_rotate_ca(ptr)

    def set_fault(self, endpoint: str, kind: str, value: int = 0, body: Optional[str] = None) -> None:
        """Makes the agent misbehave until :meth:`clear_faults`. ``endpoint``: ``"all"``, ``"roots"``, ``"leaf"``,
        ``"authorize"``. ``kind``: ``"status"`` (answer HTTP ``value`` with ``body``), ``"malformed"``,
        ``"delay"`` (``value`` ms late), ``"backwards_index"``."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_set_fault(ptr, cstr(endpoint), cstr(kind), int(value), cstr(body))

    def clear_faults(self) -> None:
        """Clears every fault."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_clear_faults(ptr)

    def issue_leaf(self, service: str, not_before: Optional[float] = None, not_after: Optional[float] = None
                   ) -> Dict[str, Any]:
        """Signs an ad-hoc leaf for ``service`` with the active CA, valid between two Unix times (default: a
        minute ago to an hour from now; may be in the past), as the agent's leaf JSON (``CertPEM``,
        ``PrivateKeyPEM``, ``SerialNumber``, ``ServiceURI``...)."""
        now = time.time()
        nb = int(now - 60 if not_before is None else not_before)
        na = int(now + 3600 if not_after is None else not_after)
        with self._use() as ptr:
            text = _ffi.read_text(_lib.consulnative_dev_agent_issue_leaf, ptr, cstr(service), nb, na)
        return json.loads(text)  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stops the agent (its port closes; clients see it as down). Idempotent; :meth:`close` frees it."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_stop(ptr)
