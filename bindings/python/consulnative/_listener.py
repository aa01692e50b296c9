"""Listener and Refusal: a listening Connect endpoint and what it tells about refused connections."""

from __future__ import annotations

import json
from ctypes import byref, c_uint64, c_void_p
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from . import _ffi
from ._common import interruptible, split_address
from ._conn import Conn
from ._errors import ClosedError, ConsulNativeError, ConsulTimeoutError, Result, make_error
from ._managed import (
    DROP_TRAMPOLINE, NULL_DROP, NULL_PEER_CHECK, NULL_REFUSAL, PEER_CHECK_TRAMPOLINE, REFUSAL_TRAMPOLINE, Managed,
    forget_handler, register_handler,
)

_lib = _ffi.lib


@dataclass(frozen=True)
class Refusal:
    """A refused inbound connection, as told to :meth:`Listener.on_refused`."""

    result: int
    """Why, as a :class:`Result` (e.g. ``Result.AUTHORIZATION_DENIED``)."""
    peer_address: Tuple[str, int]
    peer_uri: Optional[str]
    """The client's SPIFFE URI, or None if the handshake failed before it was known."""
    message: str
    """The detail (for a denial, the agent's reason). A refusal that stands for several the callback could not be
    told about one by one (it was too slow: more than the ``refusal_queue`` config key were waiting) starts with
    ``"N refusals dropped"``; see :attr:`dropped`."""

    @property
    def dropped(self) -> int:
        """How many refusals this one stands for when the callback did not keep up (0 for a single refusal)."""
        count, sep, _ = self.message.partition(" refusals dropped")
        return int(count) if sep and count.isdigit() else 0

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
        seconds (None: forever; 0: only a connection already waiting) and :class:`ClosedError` once the listener
        is closed (also from another thread). Refused connections never come out of here: see
        :meth:`on_refused`. The GIL is released while waiting."""
        out = c_void_p()
        with self._use() as ptr:
            interruptible(lambda ms: _lib.consulnative_listener_accept(ptr, ms, byref(out)), timeout,
                          ConsulTimeoutError)
        return Conn(out.value)  # type: ignore[arg-type]

    def __iter__(self) -> "Listener":
        return self

    def __next__(self) -> "Conn":
        """Iterating accepts connections until the listener is closed."""
        try:
            return self.accept()
        except ClosedError:
            raise StopIteration from None

    def on_refused(self, callback: Optional[Callable[[Refusal], None]]) -> None:
        """Calls ``callback(refusal)`` for each refused connection (denied by intentions, no or foreign
        certificate, handshake timeout, peer check...), in order, on the listener's own refusal thread: a slow
        callback never delays handshakes or authorization. When it falls more than ``refusal_queue`` (a client
        config key, default 256) refusals behind, the others are counted and reported in one :class:`Refusal`
        whose :attr:`Refusal.dropped` says how many. ``None`` clears it."""
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
        """Installs the application's own check, run after the agent allowed a client on one of the listener's
        peer check threads (``peer_check_threads`` config key, default 2): ``check(peer_uri, peer_service)``
        returns True to admit it; False (or an exception) refuses it with :class:`RejectedByApplication`. No
        answer within the client's ``authorize_timeout_ms`` refuses it too. ``None`` clears it."""
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

    @property
    def stats(self) -> Dict[str, Any]:
        """What the listener's bounds did (``consulnative_listener_stats``): ``accepted``, ``refused``,
        ``refusals_dropped`` (refusals the callback got only as a count), ``handshakes_cut`` (cut while every
        handshake slot was taken), ``accept_errors`` (e.g. no descriptors left), ``saturated``, ``in_progress``,
        ``waiting`` (admitted, not yet accepted), and ``limits`` (the ones it runs with: ``max_handshakes``,
        ``accept_queue``, ``refusal_queue``, ``max_authorizations``, ``peer_check_threads``,
        ``busy_handshake_timeout_ms``; set them as client config keys)."""
        with self._use() as ptr:
            stats: Dict[str, Any] = json.loads(_ffi.read_text(_lib.consulnative_listener_stats, ptr))
        return stats

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
