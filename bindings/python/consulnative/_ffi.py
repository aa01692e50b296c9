"""Loading ``libconsulnative`` and declaring every exported function.

Where the library comes from, first match wins:

1. the ``CONSULNATIVE_LIB`` environment variable (a path to the shared library);
2. the copy inside this package (``consulnative/libconsulnative.so``), which the wheel ships;
3. the system's loader: ``libconsulnative.so.<ABI_MAJOR>`` by its soname (``LD_LIBRARY_PATH``, the ldconfig
   cache, the default directories: a ``make install`` or the C tarball), then whatever
   ``ctypes.util.find_library("consulnative")`` finds;
4. a source checkout's build output: ``target/debug`` then ``target/release`` of the repository holding this
   package.

When nothing is found, the :class:`OSError` lists every place tried and how to fix it. A library whose major
version is not :data:`ABI_MAJOR` is refused: its functions may not have the signatures declared here.

Every function gets ``argtypes`` and ``restype``; every function returning a ``consulnative_result`` gets one
``errcheck`` that raises the matching :class:`~consulnative.ConsulNativeError` with ``consulnative_last_error``
(read on the same thread, right after the failing call). ctypes releases the GIL around every call into a
``CDLL``, so blocking calls (accept, dial, read, wait_ready) never stall other Python threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import numbers
import os
import sys
from ctypes import POINTER, c_char_p, c_int32, c_int64, c_size_t, c_uint16, c_uint32, c_uint64, c_void_p
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

from ._errors import Result, make_error

ENV_VAR = "CONSULNATIVE_LIB"

#: The C ABI these declarations are written for: the library's major version, which is its soname's
#: (``libconsulnative.so.0``). It changes only on an ABI break, and then this binding changes with it.
ABI_MAJOR = 0

if sys.platform == "darwin":
    _LIB_NAME = "libconsulnative.dylib"
    _SONAME = f"libconsulnative.{ABI_MAJOR}.dylib"
elif sys.platform == "win32":
    _LIB_NAME = _SONAME = "consulnative.dll"
else:
    _LIB_NAME = "libconsulnative.so"
    _SONAME = f"libconsulnative.so.{ABI_MAJOR}"


def packaged_path() -> Path:
    """The copy of the library inside this package (what the wheel installs)."""
    return Path(__file__).resolve().parent / _LIB_NAME


def checkout_paths() -> List[Path]:
    """A source checkout's build output, debug first."""
    repo = Path(__file__).resolve().parents[3]  # bindings/python/consulnative/_ffi.py -> repository root
    return [repo / "target" / "debug" / _LIB_NAME, repo / "target" / "release" / _LIB_NAME]


def candidate_paths() -> List[Path]:
    """The files looked for, in order, around the system loader (which goes between the two groups); the
    environment variable is handled separately."""
    return [packaged_path(), *checkout_paths()]


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", c_char_p), ("dli_fbase", c_void_p), ("dli_sname", c_char_p), ("dli_saddr", c_void_p)]


def _file_of(handle: ctypes.CDLL, fallback: str) -> str:
    """The file a library opened by name was loaded from (``dladdr`` on one of its functions)."""
    try:
        dladdr = ctypes.CDLL(None).dladdr
        dladdr.argtypes = [c_void_p, POINTER(_DlInfo)]
        dladdr.restype = ctypes.c_int
        info = _DlInfo()
        address = ctypes.cast(handle.consulnative_version, c_void_p)
        if dladdr(address, ctypes.byref(info)) and info.dli_fname:
            return os.fsdecode(info.dli_fname)
    except (OSError, AttributeError):
        pass
    return fallback


def _check_abi(handle: ctypes.CDLL, where: str) -> None:
    fn = handle.consulnative_version
    fn.restype = c_char_p
    fn.argtypes = []
    found = (fn() or b"").decode("utf-8", "replace")
    if found.split(".", 1)[0] != str(ABI_MAJOR):
        raise OSError(
            f"{where} is libconsulnative {found}, but this binding is written for the ABI of major version "
            f"{ABI_MAJOR} ({_SONAME}): install matching versions, or set {ENV_VAR} to a library of that ABI"
        )


def _open_file(path: Path, why: str) -> Tuple[ctypes.CDLL, str]:
    try:
        handle = ctypes.CDLL(str(path))
    except OSError as e:
        raise OSError(f"{path} ({why}) exists but cannot be loaded: {e}") from e
    _check_abi(handle, str(path))
    return handle, str(path)


def _load() -> Tuple[ctypes.CDLL, str]:
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        if not Path(explicit).is_file():
            raise OSError(f"{ENV_VAR}={explicit!r} does not name a file: point it at a {_LIB_NAME}, or unset it")
        return _open_file(Path(explicit), ENV_VAR)
    tried = [f"${ENV_VAR} (not set)"]

    packaged = packaged_path()
    if packaged.is_file():
        return _open_file(packaged, "the copy inside the package")
    tried.append(f"{packaged} (the copy a wheel installs): no such file")

    # find_library runs ldconfig (and maybe the compiler): asked only when the soname alone was not found.
    system: List[Tuple[Callable[[], Optional[str]], str]] = [
        (lambda: _SONAME, "the system loader"),
        (lambda: ctypes.util.find_library("consulnative"), "ctypes.util.find_library('consulnative')"),
    ]
    for lookup, how in system:
        name = lookup()
        if not name:
            tried.append(f"{how}: nothing")
            continue
        try:
            handle = ctypes.CDLL(name)
        except OSError as e:
            tried.append(f"{how}, {name}: {e}")
            continue
        where = _file_of(handle, name)
        _check_abi(handle, where)
        return handle, where

    for candidate in checkout_paths():
        if candidate.is_file():
            return _open_file(candidate, "a source checkout's build output")
    checkout = " and ".join(str(p) for p in checkout_paths())
    tried.append(f"{checkout} (a source checkout's build output): no such files")
    raise OSError(
        f"cannot find {_LIB_NAME}. Tried, in order: " + "; ".join(tried) + ". Fix: install the consulnative "
        f"wheel (`pip install ./bindings/python`, or the one `scripts/package.sh` writes to dist/: it ships the "
        f"library), or install the C library so the loader finds {_SONAME} (the tarball or `make install`, then "
        f"ldconfig or LD_LIBRARY_PATH), or run `cargo build` in the source checkout, or set {ENV_VAR} to the path "
        f"of {_LIB_NAME}."
    )


lib, LIBRARY_PATH = _load()

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
    "consulnative_listener_stats": (_RESULT, [HANDLE, c_void_p, c_size_t, OUT_SIZE], "text"),
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
