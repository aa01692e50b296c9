"""Helpers shared by the object modules: addresses, ALPN lists and interruptible waits."""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Callable, Iterable, Optional, Tuple, Type, Union

from . import _ffi
from ._errors import ConsulNativeError, make_error

Address = Union[str, Tuple[str, int]]


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


def alpn_arg(alpn: Union[None, str, Iterable[str]]) -> Optional[bytes]:
    if alpn is None:
        return None
    if isinstance(alpn, str):
        return _ffi.cstr(alpn)
    return _ffi.cstr(",".join(alpn))


# Signal handlers (Ctrl-C) run only in the main thread, between bytecodes: a wait there is cut into slices so a
# KeyboardInterrupt is raised within this many seconds. Other threads wait in one call.
WAIT_SLICE = 0.25
SLICE_MS = int(WAIT_SLICE * 1000)
MAIN_IDENT = threading.main_thread().ident


def go_duration(seconds: float) -> str:
    """A duration as the library writes it in messages (``2s``, ``1500ms``, ``5m``, ``1h``)."""
    ms = int(round(seconds * 1000))
    if ms == 0 or ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


# The waited time in the library's timeout messages: "accept timed out after 242ms", "... (waited 242ms)".
_WAITED = re.compile(r"(timed out after |waited )[0-9.]+(?:ms|s|m|h)")


def _with_real_timeout(exc: ConsulNativeError, timeout: float) -> ConsulNativeError:
    """``exc`` (from the last slice of a sliced wait) saying the caller's whole timeout, not the slice's."""
    message = _WAITED.sub(lambda m: m.group(1) + go_duration(timeout), exc.message, count=1)
    if message == exc.message:
        return exc
    return make_error(exc.code, message, exc.result_name)


def interruptible(call: Callable[[int], Any], timeout: Optional[float],
                  sliced_error: Type[BaseException]) -> Any:
    """Runs ``call(timeout_ms)``; on the main thread as a series of short waits (``sliced_error`` meaning "nothing
    happened yet", which the library guarantees for accept, read and wait_ready), so signals are handled. The error
    of the last slice reports the whole ``timeout``, as a single wait would."""
    _ffi.timeout_ms(timeout)  # validates
    if threading.current_thread() is not threading.main_thread() or (timeout is not None and timeout <= WAIT_SLICE):
        return call(_ffi.timeout_ms(timeout))
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = WAIT_SLICE
        if deadline is not None and timeout is not None:
            remaining = deadline - time.monotonic()
            if remaining <= WAIT_SLICE:
                try:
                    return call(_ffi.timeout_ms(max(remaining, 0.0)))
                except sliced_error as e:
                    if isinstance(e, ConsulNativeError):
                        raise _with_real_timeout(e, timeout) from None
                    raise
        try:
            return call(_ffi.timeout_ms(step))
        except sliced_error:
            continue  # pending signal handlers run here
