"""Ownership of native handles and of callbacks the library calls.

* :class:`Managed` owns one handle: ``close()``, context manager, and ``__del__`` as a last resort. A blocking
  call holds the handle "in use"; ``close()`` from another thread (or from inside a library callback) never frees
  a handle under a running call: the free happens when the last call returns (the C side forbids ``_free`` racing
  with another call on the same handle).
* Callbacks: the ctypes trampolines are module-level singletons (never collected). Each registration gets an
  integer token passed as ``userdata``; the Python callable lives in :data:`_HANDLERS` until the library's drop
  callback says it no longer needs the token.
* At interpreter exit (``atexit``, while Python still runs normally) every live object is closed, the logger is
  detached, and we wait briefly for outstanding drop callbacks, so no library thread calls into a finalizing
  interpreter.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import time
import weakref
from typing import Any, Callable, ClassVar, Dict, Optional, Protocol

from . import _ffi
from ._errors import ClosedError, Result, make_error

_log = logging.getLogger("consulnative")
_log.addHandler(logging.NullHandler())  # a library never prints unless the application configures logging

# Set while this thread runs a library callback: freeing a handle from there is deferred to a helper thread
# (the header forbids e.g. freeing a service from inside its own change callback).
_in_callback = threading.local()


def in_library_callback() -> bool:
    """True on a library thread while it runs one of our callbacks."""
    return getattr(_in_callback, "depth", 0) > 0


class Managed:
    """Base class of every object that owns a native handle.

    Subclasses set ``_free_fn`` (the ``consulnative_*_free`` function) and may override :meth:`_before_free`
    (e.g. to wake blocked calls) and ``_close_rank`` (the order objects are closed at interpreter exit).
    """

    _free_fn: ClassVar[Callable[[Any], None]]
    _close_rank: ClassVar[int] = 50
    _ptr: Optional[int] = None

    def __init__(self, ptr: int) -> None:
        self._ptr = ptr
        self._lock = threading.Lock()
        self._users = 0
        self._closing = False
        _LIVE.add(self)

    # -- use and close ------------------------------------------------------------------------------------------

    def _acquire(self) -> int:
        with self._lock:
            if self._closing or self._ptr is None:
                raise _closed_error(self)
            self._users += 1
            return self._ptr

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            free_now = self._closing and self._users == 0 and self._ptr is not None
            ptr = self._take_ptr() if free_now else None
        if ptr is not None:
            self._free(ptr)

    def _use(self) -> "_InUse":
        """``with self._use() as ptr:`` keeps the handle alive (not freed) during a native call."""
        return _InUse(self)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closing

    def close(self) -> None:
        """Releases the native handle (idempotent). Calls in progress on other threads finish first."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ never ran
            return
        with lock:
            if self._closing:
                return
            self._closing = True
            ptr = self._ptr
            if ptr is None:
                return
            # _before_free uses the handle too: count it as a user, or a call it wakes (a blocked accept) could
            # return and free the handle while _before_free still uses it.
            self._users += 1
        try:
            self._before_free(ptr)
        finally:
            self._release()  # frees now, or when the last in-flight call returns

    def _take_ptr(self) -> Optional[int]:
        ptr, self._ptr = self._ptr, None
        return ptr

    def _before_free(self, ptr: int) -> None:
        """Hook run once by close() before the handle is freed (may run while other calls are in progress)."""

    def _free(self, ptr: int) -> None:
        free = type(self)._free_fn
        if in_library_callback():
            # Never free from inside a library callback: hand it to a short-lived helper thread.
            threading.Thread(target=free, args=(ptr,), name="consulnative-free", daemon=True).start()
        else:
            free(ptr)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Last resort: nothing can be using the handle (a call in progress holds a reference to self).
        try:
            self.close()
        except Exception:  # pragma: no cover - never raise from __del__
            pass


class _InUse:
    __slots__ = ("_owner", "ptr")

    def __init__(self, owner: Managed) -> None:
        self._owner = owner

    def __enter__(self) -> int:
        self.ptr = self._owner._acquire()
        return self.ptr

    def __exit__(self, *exc: object) -> None:
        self._owner._release()


def _closed_error(obj: object) -> ClosedError:
    return make_error(Result.CLOSED, f"this {type(obj).__name__} is closed", "closed")  # type: ignore[return-value]


class Closable(Protocol):
    """What :func:`close_all` needs of a live object: Managed handles, and DevAgent (a child process, no handle)."""

    @property
    def _close_rank(self) -> int: ...

    def close(self) -> None: ...


_LIVE: "weakref.WeakSet[Closable]" = weakref.WeakSet()


def track(obj: Closable) -> None:
    """Has :func:`close_all` close ``obj`` at interpreter exit (held weakly). Managed objects track themselves."""
    _LIVE.add(obj)

# -- callbacks ------------------------------------------------------------------------------------------------------

_HANDLERS: Dict[int, Callable[..., Any]] = {}
_HANDLERS_LOCK = threading.Lock()
_TOKENS = itertools.count(1)


def register_handler(fn: Callable[..., Any]) -> int:
    """Keeps ``fn`` alive under a new token (the userdata) until the library's drop callback releases it."""
    token = next(_TOKENS)
    with _HANDLERS_LOCK:
        _HANDLERS[token] = fn
    return token


def forget_handler(token: int) -> None:
    """Releases a token the library never took (registration failed)."""
    with _HANDLERS_LOCK:
        _HANDLERS.pop(token, None)


def _lookup(userdata: Optional[int]) -> Optional[Callable[..., Any]]:
    if userdata is None:
        return None
    with _HANDLERS_LOCK:
        return _HANDLERS.get(userdata)


def _run(userdata: Optional[int], *args: Any) -> Any:
    fn = _lookup(userdata)
    if fn is None:
        return None
    _in_callback.depth = getattr(_in_callback, "depth", 0) + 1
    try:
        return fn(*args)
    finally:
        _in_callback.depth -= 1


def _on_drop(userdata: Optional[int]) -> None:
    if userdata is not None:
        with _HANDLERS_LOCK:
            _HANDLERS.pop(userdata, None)


def _on_event(userdata: Optional[int], event: int) -> None:
    try:
        _run(userdata, event)
    except BaseException:  # an exception must not cross into the library thread
        _log.exception("consulnative: a service event callback raised")


def _on_refused(userdata: Optional[int], result: int, peer_address: Optional[bytes], peer_uri: Optional[bytes],
                message: Optional[bytes]) -> None:
    try:
        _run(userdata, result, _text(peer_address), _text(peer_uri) if peer_uri is not None else None,
             _text(message))
    except BaseException:
        _log.exception("consulnative: a listener refusal callback raised")


def _on_peer_check(userdata: Optional[int], peer_uri: Optional[bytes], peer_service: Optional[bytes]) -> int:
    try:
        verdict = _run(userdata, _text(peer_uri), _text(peer_service))
    except BaseException:
        _log.exception("consulnative: a peer check raised; refusing the peer")
        return 1
    return 0 if verdict else 1


def _text(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", "replace") if raw is not None else ""


# The trampolines: created once, referenced by this module for the life of the process.
DROP_TRAMPOLINE = _ffi.DROP_CALLBACK(_on_drop)
EVENT_TRAMPOLINE = _ffi.EVENT_CALLBACK(_on_event)
REFUSAL_TRAMPOLINE = _ffi.REFUSAL_CALLBACK(_on_refused)
PEER_CHECK_TRAMPOLINE = _ffi.PEER_CHECK_CALLBACK(_on_peer_check)
NULL_REFUSAL = _ffi.REFUSAL_CALLBACK()
NULL_PEER_CHECK = _ffi.PEER_CHECK_CALLBACK()
NULL_DROP = _ffi.DROP_CALLBACK()

# -- logging ------------------------------------------------------------------------------------------------------

_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG}
_logger_target: Optional[logging.Logger] = None


def _on_log(userdata: Optional[int], level: int, message: Optional[bytes]) -> None:
    target = _logger_target
    if target is None:
        return
    try:
        target.log(_LEVELS.get(level, logging.DEBUG), "%s", _text(message))
    except BaseException:  # pragma: no cover - logging must never raise into the library
        pass


LOG_TRAMPOLINE = _ffi.LOG_CALLBACK(_on_log)
NULL_LOG = _ffi.LOG_CALLBACK()


def set_logger(logger: Optional[logging.Logger] = _log, level: int = logging.WARNING) -> None:
    """Sends library log lines at ``level`` and above to ``logger`` (``consulnative_set_logger``).

    ``logger=None`` restores the library default (stderr, only when ``CONSULNATIVE_LOG`` names a level).
    Installed at import with ``logging.getLogger("consulnative")`` and WARNING (refused connections, watch errors).
    """
    global _logger_target
    if logger is None:
        _ffi.lib.consulnative_set_logger(NULL_LOG, None, 0)
        _logger_target = None
        return
    if level <= logging.DEBUG:
        max_level = 4
    elif level <= logging.INFO:
        max_level = 3
    elif level <= logging.WARNING:
        max_level = 2
    else:
        max_level = 1
    _logger_target = logger
    _ffi.lib.consulnative_set_logger(LOG_TRAMPOLINE, None, max_level)


# -- interpreter exit -----------------------------------------------------------------------------------------------


def close_all(wait_drops: Optional[float] = 2.0) -> None:
    """Closes every live object (listeners first, dev agents last), detaches the logger and waits up to
    ``wait_drops`` seconds for the library to release every callback (None: until it has; 0: not at all;
    negative: :class:`ValueError`, as every timeout of this package). Registered with :mod:`atexit`."""
    _ffi.timeout_ms(wait_drops)  # validates before anything is closed
    for obj in sorted(list(_LIVE), key=lambda o: o._close_rank):
        try:
            obj.close()
        except Exception:  # pragma: no cover
            pass
    try:
        set_logger(None)
    except Exception:  # pragma: no cover
        pass
    deadline = None if wait_drops is None else time.monotonic() + wait_drops
    while _HANDLERS and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.01)


atexit.register(close_all)
