"""Exceptions: one class per ``consulnative_result`` code, all under :class:`ConsulNativeError`.

The errcheck in :mod:`consulnative._ffi` turns every non-zero result into one of these, carrying the library's
message (``consulnative_last_error``, read on the failing thread right after the call).
"""

from __future__ import annotations

import builtins
import enum
from typing import Dict, Optional, Type


class Result(enum.IntEnum):
    """The library's result codes (``enum consulnative_result``). Stable numbers, never reused."""

    OK = 0
    NULL_ARGUMENT = 1
    INVALID_ARGUMENT = 2
    AGENT_UNREACHABLE = 3
    AGENT_ERROR = 4
    AGENT_PERMISSION_DENIED = 5
    AGENT_BAD_RESPONSE = 6
    NOT_READY = 7
    TIMEOUT = 8
    HANDSHAKE = 9
    CERTIFICATE_INVALID = 10
    IDENTITY_MISMATCH = 11
    AUTHORIZATION_DENIED = 12
    AUTHORIZATION_FAILED = 13
    IO = 14
    CLOSED = 15
    NO_INSTANCES = 16
    BUFFER_TOO_SMALL = 17
    PANIC = 18
    REJECTED_BY_APPLICATION = 19
    INTERNAL = 20


class ConsulNativeError(Exception):
    """Base class of every error raised by this package.

    Attributes: ``code`` (the :class:`Result`, or the raw number if the library is newer than this binding),
    ``result_name`` (the library's short name for it) and ``message`` (the library's detail: which service,
    which certificate, what the agent answered).
    """

    code: int = -1
    result_name: str = ""
    message: str = ""

    def __str__(self) -> str:
        if self.result_name and self.message:
            return f"{self.message} [{self.result_name}]"
        return self.message or self.result_name or super().__str__()


class NullArgumentError(ConsulNativeError, ValueError):
    """A required argument was missing (``CONSULNATIVE_RESULT_NULL_ARGUMENT``)."""

    code = Result.NULL_ARGUMENT


class InvalidArgumentError(ConsulNativeError, ValueError):
    """An argument was invalid: malformed address, unknown config key, bad PEM... (``INVALID_ARGUMENT``)."""

    code = Result.INVALID_ARGUMENT


class AgentError(ConsulNativeError):
    """The agent answered with an error status (``AGENT_ERROR``); base class of every agent-side problem."""

    code = Result.AGENT_ERROR


class AgentUnreachable(AgentError, builtins.ConnectionError):
    """The Consul agent could not be reached (``AGENT_UNREACHABLE``)."""

    code = Result.AGENT_UNREACHABLE


class AgentPermissionDenied(AgentError, builtins.PermissionError):
    """The agent answered 403: the ACL token lacks a permission (``AGENT_PERMISSION_DENIED``)."""

    code = Result.AGENT_PERMISSION_DENIED


class AgentBadResponse(AgentError):
    """The agent's answer could not be understood (``AGENT_BAD_RESPONSE``)."""

    code = Result.AGENT_BAD_RESPONSE


class NotReady(ConsulNativeError):
    """The service has no usable certificates yet (``NOT_READY``)."""

    code = Result.NOT_READY


class ConsulTimeoutError(ConsulNativeError, builtins.TimeoutError):
    """The operation did not finish in time (``TIMEOUT``). Also a builtin :class:`TimeoutError` (``socket.timeout``)."""

    code = Result.TIMEOUT


# The name the issue asks for; ``consulnative.TimeoutError`` is a subclass of the builtin one.
TimeoutError = ConsulTimeoutError


class HandshakeError(ConsulNativeError, builtins.ConnectionError):
    """The TLS handshake failed (``HANDSHAKE``)."""

    code = Result.HANDSHAKE


class CertificateInvalid(ConsulNativeError):
    """A peer's certificate chain did not verify against the current CA roots (``CERTIFICATE_INVALID``)."""

    code = Result.CERTIFICATE_INVALID


class IdentityMismatch(ConsulNativeError):
    """The peer's SPIFFE identity is not the expected one (``IDENTITY_MISMATCH``)."""

    code = Result.IDENTITY_MISMATCH


class AuthorizationDenied(ConsulNativeError, builtins.PermissionError):
    """The agent's intentions denied the connection (``AUTHORIZATION_DENIED``)."""

    code = Result.AUTHORIZATION_DENIED


class AuthorizationFailed(ConsulNativeError):
    """Authorization could not be decided, so the connection was refused (``AUTHORIZATION_FAILED``)."""

    code = Result.AUTHORIZATION_FAILED


class SocketError(ConsulNativeError, builtins.OSError):
    """An I/O error on a socket (``IO``)."""

    code = Result.IO


class ClosedError(ConsulNativeError):
    """The connection, listener or handle was closed (``CLOSED``), also raised for a Python object after close()."""

    code = Result.CLOSED


class NoInstances(ConsulNativeError):
    """Discovery found no healthy instance, or every instance failed (``NO_INSTANCES``)."""

    code = Result.NO_INSTANCES


class BufferTooSmall(ConsulNativeError):
    """An output buffer was too small (``BUFFER_TOO_SMALL``); the binding retries, so this is rarely seen."""

    code = Result.BUFFER_TOO_SMALL


class LibraryPanic(ConsulNativeError):
    """A Rust panic was caught at the ABI boundary (``PANIC``): a library bug, please report it."""

    code = Result.PANIC


class RejectedByApplication(ConsulNativeError):
    """The application's own peer check refused the peer (``REJECTED_BY_APPLICATION``)."""

    code = Result.REJECTED_BY_APPLICATION


class InternalError(ConsulNativeError):
    """An internal library error that is none of the others (``INTERNAL``)."""

    code = Result.INTERNAL


_BY_CODE: Dict[int, Type[ConsulNativeError]] = {
    cls.code: cls
    for cls in (
        NullArgumentError, InvalidArgumentError, AgentUnreachable, AgentError, AgentPermissionDenied,
        AgentBadResponse, NotReady, ConsulTimeoutError, HandshakeError, CertificateInvalid, IdentityMismatch,
        AuthorizationDenied, AuthorizationFailed, SocketError, ClosedError, NoInstances, BufferTooSmall,
        LibraryPanic, RejectedByApplication, InternalError,
    )
}


def error_class(code: int) -> Type[ConsulNativeError]:
    """The exception class for a result code (:class:`ConsulNativeError` for codes this binding does not know)."""
    return _BY_CODE.get(int(code), ConsulNativeError)


def make_error(code: int, message: str, result_name: Optional[str] = None) -> ConsulNativeError:
    """Builds the exception for ``code`` carrying ``message``."""
    cls = error_class(code)
    exc = cls(message)
    try:
        exc.code = Result(code)
    except ValueError:
        exc.code = int(code)
    exc.result_name = result_name if result_name is not None else ""
    exc.message = message
    return exc
