"""Service: one service identity, its leaf certificate and the CA roots, kept fresh; listen and dial."""

from __future__ import annotations

import enum
import json
import os
import weakref
from ctypes import byref, c_uint64, c_void_p
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Optional, Union

from . import _ffi
from ._common import Address, alpn_arg, interruptible, join_address
from ._conn import Conn
from ._errors import ConsulNativeError, NotReady
from ._listener import Listener
from ._managed import DROP_TRAMPOLINE, EVENT_TRAMPOLINE, Managed, forget_handler, register_handler

if TYPE_CHECKING:  # pragma: no cover
    from ._pem_files import PathLike, PemFilesChange

_lib = _ffi.lib
cstr = _ffi.cstr


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
        and the last agent error) after ``timeout`` seconds (None: wait forever; 0: check once, without waiting)."""
        with self._use() as ptr:
            interruptible(lambda ms: _lib.consulnative_service_wait_ready(ptr, ms), timeout, NotReady)

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

    def write_pem_files(self, directory: "PathLike", on_change: Optional[Callable[["PemFilesChange"], None]] = None
                        ) -> int:
        """Keeps ``<directory>/cert.pem`` (leaf and intermediates), ``key.pem`` (mode 0600) and ``roots.pem`` fresh
        for a program with its own TLS stack (``consulnative_service_write_pem_files``). Writes at once when the
        service is ready (a write error raises), then after every rotation; the three names are symlinks switched
        together by one rename. ``on_change(PemFilesChange)`` runs after every write, the first included (on a
        library thread afterwards). Returns an id: :meth:`remove_callback` stops the rewrites."""
        from ._pem_files import PEM_FILES_TRAMPOLINE, make_dispatch

        path = os.fspath(directory)
        token = register_handler(make_dispatch(path, on_change))
        out = c_uint64()
        try:
            with self._use() as ptr:
                _lib.consulnative_service_write_pem_files(ptr, cstr(path), PEM_FILES_TRAMPOLINE, token,
                                                          DROP_TRAMPOLINE, byref(out))
        except BaseException:
            forget_handler(token)
            raise
        self._callback_ids[out.value] = token
        return out.value

    def authorize(self, destination: str) -> str:
        """Asks the agent whether this service (its current leaf) may connect to ``destination``, as the
        destination's listener will (``consulnative_service_authorize``). Returns the agent's reason; raises
        :class:`AuthorizationDenied` with it when denied, :class:`NotReady` before the leaf arrives."""
        with self._use() as ptr:
            return _ffi.read_text(_lib.consulnative_service_authorize, ptr, cstr(destination))

    def listen(self, address: Address = "127.0.0.1:0", *, alpn: Union[None, str, Iterable[str]] = None
               ) -> "Listener":
        """Listens for Connect clients on ``address`` (``"127.0.0.1:0"``, ``("::1", 8443)``). Every connection
        is verified and authorized by the agent before :meth:`Listener.accept` returns it."""
        out = c_void_p()
        with self._use() as ptr:
            _lib.consulnative_service_listen(ptr, cstr(join_address(address)), alpn_arg(alpn), byref(out))
        return Listener(out.value)  # type: ignore[arg-type]

    def dial(self, service: Optional[str] = None, timeout: Optional[float] = None, *,
             address: Optional[Address] = None, datacenter: Optional[str] = None,
             alpn: Union[None, str, Iterable[str]] = None) -> "Conn":
        """Opens a mutual-TLS connection to ``service``.

        Without ``address``: through the agent's catalog (healthy connect-native instances, next on failure);
        raises :class:`NoInstances` if none. With ``address`` (``"host:port"`` or a tuple): directly, and the
        server must present ``service`` (a service name or a full ``spiffe://`` URI), else
        :class:`IdentityMismatch`. ``timeout`` in seconds (None: no timeout; negative: :class:`ValueError`).
        """
        if service is None:
            raise TypeError("dial() needs the service to reach (and, with address=, the identity to expect)")
        out = c_void_p()
        with self._use() as ptr:
            if address is None:
                _lib.consulnative_service_dial(ptr, cstr(service), cstr(datacenter), alpn_arg(alpn),
                                               _ffi.timeout_ms(timeout), byref(out))
            else:
                if datacenter is not None:
                    raise TypeError("datacenter= only applies to dialing through the catalog")
                _lib.consulnative_service_dial_address(ptr, cstr(join_address(address)), cstr(service), alpn_arg(alpn),
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
