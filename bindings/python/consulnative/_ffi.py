"""Loading ``libconsulnative`` and declaring every exported function.

Where the library comes from, first match wins:

1. the ``CONSULNATIVE_LIB`` environment variable (a path to the shared library);
2. a copy beside this package (``consulnative/libconsulnative.so``), as a wheel would ship it;
3. the project's build output: ``target/debug`` then ``target/release`` of the repository holding this checkout.

Every function gets ``argtypes`` and ``restype``; every function returning a ``consulnative_result`` gets one
``errcheck`` that raises the matching :class:`~consulnative.ConsulNativeError` with ``consulnative_last_error``
(read on the same thread, right after the failing call). ctypes releases the GIL around every call into a
``CDLL``, so blocking calls (accept, dial, read, wait_ready) never stall other Python threads.
"""

from __future__ import annotations

import ctypes
import math
import numbers
import os
import sys
from ctypes import POINTER, c_char_p, c_int32, c_int64, c_size_t, c_uint16, c_uint32, c_uint64, c_void_p
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

from ._errors import Result, make_error

ENV_VAR = "CONSULNATIVE_LIB"

if sys.platform == "darwin":
    _LIB_NAME = "libconsulnative.dylib"
elif sys.platform == "win32":
    _LIB_NAME = "consulnative.dll"
else:
    _LIB_NAME = "libconsulnative.so"


def candidate_paths() -> List[Path]:
    """The places the library is looked for, in order (the environment variable is handled separately)."""
    here = Path(__file__).resolve().parent
    repo = here.parents[2]  # bindings/python/consulnative -> repository root
    return [here / _LIB_NAME, repo / "target" / "debug" / _LIB_NAME, repo / "target" / "release" / _LIB_NAME]


def _find_library() -> str:
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        if not Path(explicit).is_file():
            raise OSError(f"{ENV_VAR}={explicit!r} does not name a file")
        return explicit
    tried = candidate_paths()
    for path in tried:
        if path.is_file():
            return str(path)
    raise OSError(
        f"cannot find {_LIB_NAME}: set {ENV_VAR}, or build it with `cargo build` (looked in "
        + ", ".join(str(p) for p in tried)
        + ")"
    )


LIBRARY_PATH = _find_library()
lib = ctypes.CDLL(LIBRARY_PATH)

# Opaque handles are plain pointers on the Python side.
HANDLE = c_void_p
OUT_HANDLE = POINTER(c_void_p)
OUT_SIZE = POINTER(c_size_t)

# Callback types (userdata first, as in the header).
LOG_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_uint32, c_char_p)
REFUSAL_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_uint32, c_char_p, c_char_p, c_char_p)
DROP_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p)
PEER_CHECK_CALLBACK = ctypes.CFUNCTYPE(c_int32, c_void_p, c_char_p, c_char_p)
EVENT_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_uint32)
PEM_FILES_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_uint32, c_char_p)


def _last_error_text() -> str:
    """The calling thread's last error message (``consulnative_last_error``), retrying if it grows."""
    n = c_size_t(0)
    size = 256
    while True:
        buf = ctypes.create_string_buffer(size)
        rc = lib.consulnative_last_error(buf, size, ctypes.byref(n))  # no errcheck on this one
        if rc == Result.OK:
            return buf.raw[: n.value].decode("utf-8", "replace")
        if rc != Result.BUFFER_TOO_SMALL:
            return ""
        size = n.value + 1


def _result_name(code: int) -> str:
    raw = lib.consulnative_result_name(code)
    return raw.decode("utf-8", "replace") if raw else ""


def errcheck(result: int, func: Any, args: Tuple[Any, ...]) -> int:
    """Turns a non-zero ``consulnative_result`` into an exception carrying the library's message."""
    if result == Result.OK:
        return result
    message = _last_error_text()  # first: nothing else may run on this thread before we read it
    raise make_error(result, message or f"{func.__name__} failed", _result_name(result))


def errcheck_text(result: int, func: Any, args: Tuple[Any, ...]) -> int:
    """Like :func:`errcheck`, but lets ``BUFFER_TOO_SMALL`` through for the (buf, len, out_n) retry loop."""
    if result == Result.BUFFER_TOO_SMALL:
        return result
    return errcheck(result, func, args)


# name: (restype, argtypes, kind) where kind is "check", "text" (buf/len/out_n convention) or None.
_RESULT = c_uint32
_SIGNATURES = {
    # configuration and client
    "consulnative_config_new": (_RESULT, [OUT_HANDLE], "check"),
    "consulnative_config_set": (_RESULT, [HANDLE, c_char_p, c_char_p], "check"),
    "consulnative_config_free": (None, [HANDLE], None),
    "consulnative_client_new": (_RESULT, [HANDLE, OUT_HANDLE], "check"),
    "consulnative_client_free": (None, [HANDLE], None),
    "consulnative_client_register": (
        _RESULT, [HANDLE, c_char_p, c_char_p, c_char_p, c_uint16, c_char_p, c_char_p], "check"),
    "consulnative_client_deregister": (_RESULT, [HANDLE, c_char_p], "check"),
    "consulnative_client_pass_ttl": (_RESULT, [HANDLE, c_char_p, c_char_p], "check"),
    # connections (buffers as void*: ABI-identical to uint8_t*, and accepts bytes and ctypes arrays)
    "consulnative_conn_read": (_RESULT, [HANDLE, c_void_p, c_size_t, c_int64, OUT_SIZE], "check"),
    "consulnative_conn_write": (_RESULT, [HANDLE, c_void_p, c_size_t, c_int64, OUT_SIZE], "check"),
    "consulnative_conn_shutdown": (_RESULT, [HANDLE, c_int64], "check"),
    "consulnative_conn_close": (_RESULT, [HANDLE, c_int64], "check"),
    "consulnative_conn_info": (_RESULT, [HANDLE, c_void_p, c_size_t, OUT_SIZE], "text"),
    "consulnative_conn_handoff": (_RESULT, [HANDLE, POINTER(c_int32)], "check"),
    "consulnative_conn_free": (None, [HANDLE], None),
    # library-wide
    "consulnative_version": (c_char_p, [], None),
    "consulnative_result_name": (c_char_p, [c_uint32], None),
    "consulnative_last_error": (_RESULT, [c_void_p, c_size_t, OUT_SIZE], None),  # checked by hand (see above)
    "consulnative_set_logger": (_RESULT, [LOG_CALLBACK, c_void_p, c_uint32], "check"),
    # listeners
    "consulnative_listener_address": (_RESULT, [HANDLE, c_void_p, c_size_t, OUT_SIZE], "text"),
    "consulnative_listener_accept": (_RESULT, [HANDLE, c_int64, OUT_HANDLE], "check"),
    "consulnative_listener_on_refused": (_RESULT, [HANDLE, REFUSAL_CALLBACK, c_void_p, DROP_CALLBACK], "check"),
    "consulnative_listener_set_peer_check": (
        _RESULT, [HANDLE, PEER_CHECK_CALLBACK, c_void_p, DROP_CALLBACK], "check"),
    "consulnative_listener_counts": (_RESULT, [HANDLE, POINTER(c_uint64), POINTER(c_uint64)], "check"),
    "consulnative_listener_close": (None, [HANDLE], None),
    "consulnative_listener_free": (None, [HANDLE], None),
    # services
    "consulnative_service_new": (_RESULT, [HANDLE, c_char_p, OUT_HANDLE], "check"),
    "consulnative_service_free": (None, [HANDLE], None),
    "consulnative_service_wait_ready": (_RESULT, [HANDLE, c_int64], "check"),
    "consulnative_service_status": (_RESULT, [HANDLE, c_void_p, c_size_t, OUT_SIZE], "text"),
    "consulnative_service_pem": (_RESULT, [HANDLE, c_uint32, c_void_p, c_size_t, OUT_SIZE], "text"),
    "consulnative_service_add_callback": (
        _RESULT, [HANDLE, EVENT_CALLBACK, c_void_p, DROP_CALLBACK, POINTER(c_uint64)], "check"),
    "consulnative_service_remove_callback": (_RESULT, [HANDLE, c_uint64], "check"),
    "consulnative_service_write_pem_files": (
        _RESULT, [HANDLE, c_char_p, PEM_FILES_CALLBACK, c_void_p, DROP_CALLBACK, POINTER(c_uint64)], "check"),
    "consulnative_service_authorize": (_RESULT, [HANDLE, c_char_p, c_void_p, c_size_t, OUT_SIZE], "text"),
    "consulnative_service_listen": (_RESULT, [HANDLE, c_char_p, c_char_p, OUT_HANDLE], "check"),
    "consulnative_service_dial": (_RESULT, [HANDLE, c_char_p, c_char_p, c_char_p, c_int64, OUT_HANDLE], "check"),
    "consulnative_service_dial_address": (
        _RESULT, [HANDLE, c_char_p, c_char_p, c_char_p, c_int64, OUT_HANDLE], "check"),
}

for _name, (_restype, _argtypes, _kind) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes
    if _kind == "check":
        _fn.errcheck = errcheck
    elif _kind == "text":
        _fn.errcheck = errcheck_text

DECLARED = frozenset(_SIGNATURES)


def read_text(fn: Callable[..., int], *args: Any) -> str:
    """Calls a (buf, len, out_n) function: once to size, then to fill, again if the text grew in between."""
    n = c_size_t(0)
    buf: Optional[ctypes.Array[ctypes.c_char]] = None
    size = 0
    while True:
        rc = fn(*args, buf, size, ctypes.byref(n))
        if rc == Result.OK:
            assert buf is not None or n.value == 0
            return buf.raw[: n.value].decode("utf-8") if buf is not None else ""
        # BUFFER_TOO_SMALL (any other code raised in the errcheck): retry with room for the text and its NUL.
        size = n.value + 1
        buf = ctypes.create_string_buffer(size)


def cstr(value: Optional[str]) -> Optional[bytes]:
    """A Python string as a C string argument (None stays NULL)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    return value.encode("utf-8")


# Above this many milliseconds (about 290 million years) a timeout means "forever" (the library's -1).
_MAX_TIMEOUT_MS = 2**62


def timeout_ms(timeout: Optional[float]) -> int:
    """A timeout in seconds to the library's milliseconds, with the one meaning every public method of the
    binding gives it (as the Ruby binding does): ``None`` waits forever (-1), ``0`` does not wait, a negative
    number or NaN raises :class:`ValueError` (as :meth:`socket.socket.settimeout` does), a non-number
    :class:`TypeError`. A positive timeout waits at least 1 ms; infinity, or more than the library can count,
    is forever."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"timeout must be None or a number of seconds, not {type(timeout).__name__}")
    seconds = float(timeout)
    if math.isnan(seconds):
        raise ValueError("timeout must not be NaN")
    if seconds < 0:
        raise ValueError(f"timeout must be None (wait forever) or >= 0 seconds (0: do not wait), got {timeout!r}")
    if seconds == 0:
        return 0
    if math.isinf(seconds) or seconds * 1000 > _MAX_TIMEOUT_MS:
        return -1
    return max(1, math.ceil(seconds * 1000))


def version() -> str:
    """The library version (``consulnative_version``), e.g. ``"0.1.0"``."""
    raw = lib.consulnative_version()
    return raw.decode("utf-8") if raw else ""


def result_name(code: int) -> str:
    """The library's short name for a result code (``consulnative_result_name``)."""
    return _result_name(int(code))


def last_error() -> str:
    """The message of the last failed call on this thread (``consulnative_last_error``)."""
    return _last_error_text()
