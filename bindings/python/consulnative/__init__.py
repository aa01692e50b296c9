"""consulnative: Consul Connect-native services for Python, over ``libconsulnative``.

>>> import consulnative
>>> with consulnative.DevAgent() as agent, agent.client() as client:      # doctest: +SKIP
...     with client.service("db") as db, client.service("web") as web:
...         db.wait_ready(10); web.wait_ready(10)
...         listener = db.listen("127.0.0.1:0")
...         out = web.dial("db", address=listener.address, timeout=5)
...         conn = listener.accept(timeout=5)
...         out.sendall(b"ping"); conn.recv(4)
b'ping'

Objects own their native handles: use ``with`` or ``close()``; ``__del__`` frees what is left. Every timeout is
in seconds with one meaning: ``None`` waits forever, ``0`` does not wait, a negative number raises
:class:`ValueError` (as :meth:`socket.socket.settimeout`). Every failure is a :class:`ConsulNativeError` subclass
carrying the library's message. Library log lines go to ``logging.getLogger("consulnative")`` (see :func:`set_logger`).
"""

from __future__ import annotations

from . import aio
from ._errors import (
    AgentBadResponse, AgentError, AgentPermissionDenied, AgentUnreachable, AuthorizationDenied, AuthorizationFailed,
    BufferTooSmall, CertificateInvalid, ClosedError, ConsulNativeError, ConsulTimeoutError, HandshakeError,
    IdentityMismatch, InternalError, InvalidArgumentError, LibraryPanic, NoInstances, NotReady, NullArgumentError,
    RejectedByApplication, Result, SocketError, TimeoutError, error_class,
)
from ._ffi import LIBRARY_PATH, last_error, result_name, version
from ._managed import close_all, set_logger
from ._client import Client
from ._conn import Conn, Peer
from ._dev_agent import DevAgent
from ._listener import Listener, Refusal
from ._pem_files import PemFilesChange
from ._service import Event, PemKind, Service
from .aio import ConnectServer

#: This package's version: the library's, one number for both (the workspace version in the repository's
#: Cargo.toml, which is also the wheel's and the soname's major).
__version__ = version()

__all__ = [
    "AgentBadResponse", "AgentError", "AgentPermissionDenied", "AgentUnreachable", "AuthorizationDenied",
    "AuthorizationFailed", "BufferTooSmall", "CertificateInvalid", "Client", "ClosedError", "Conn", "ConnectServer",
    "ConsulNativeError", "ConsulTimeoutError", "DevAgent", "Event", "HandshakeError", "IdentityMismatch",
    "InternalError", "InvalidArgumentError", "LIBRARY_PATH", "LibraryPanic", "Listener", "NoInstances", "NotReady",
    "NullArgumentError", "PemFilesChange", "PemKind", "Peer", "Refusal", "RejectedByApplication", "Result", "Service",
    "SocketError", "TimeoutError", "aio", "close_all", "error_class", "last_error", "result_name", "set_logger", "version",
]

# Library log lines -> logging.getLogger("consulnative"), warnings and errors by default.
set_logger()
