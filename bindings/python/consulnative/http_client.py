"""HTTP over Connect with the standard library: :class:`ConnectHTTPConnection`, an :class:`http.client.HTTPConnection`
whose host is a Connect service name, and the URL form every HTTP adapter of this package uses.

URLs name services as ``http+consul://<service>/<path>?<query>``: the scheme says "HTTP carried over Consul
Connect" (as ``http+unix://`` and ``http+docker://`` do for other transports in the requests world), the host is the
destination service, found through the agent's catalog and checked against its SPIFFE identity. A client on which
no Connect adapter is mounted refuses such a URL instead of sending plaintext to whatever ``db`` resolves to.

>>> conn = ConnectHTTPConnection(web, "db", timeout=5)            # doctest: +SKIP
>>> conn.request("GET", "/health"); conn.getresponse().read()     # doctest: +SKIP
"""

from __future__ import annotations

import http.client
import socket
from typing import TYPE_CHECKING, Any, Optional, Tuple
from urllib.parse import urlsplit

from ._errors import AuthorizationDenied, ConsulNativeError

if TYPE_CHECKING:  # pragma: no cover
    from ._common import Address
    from ._conn import Peer
    from ._service import Service

#: http.client's "no timeout given" marker.
_DEFAULT_TIMEOUT: Any = getattr(socket, "_GLOBAL_DEFAULT_TIMEOUT")

#: The URL scheme of Connect services.
SCHEME = "http+consul"


def split_url(url: str) -> Tuple[str, str]:
    """``"http+consul://db/a?b=1"`` -> ``("db", "/a?b=1")``; raises :class:`ValueError` for another form."""
    parts = urlsplit(url)
    if parts.scheme.lower() != SCHEME:
        raise ValueError(f"not a Connect URL: {url!r} (expected {SCHEME}://<service>/<path>)")
    if not parts.hostname or parts.port is not None or parts.username is not None:
        raise ValueError(f"a Connect URL names a service and nothing else before the path: {url!r}")
    path = parts.path or "/"
    return parts.hostname, path + (f"?{parts.query}" if parts.query else "")


def explain_refusal(service: "Service", target: str) -> Optional[AuthorizationDenied]:
    """After ``target`` hung up before answering: the agent's denial of ``service`` => ``target``, if that is why
    (the listener refuses unauthorized clients by closing the connection, with no HTTP answer to read)."""
    try:
        service.authorize(target)
    except AuthorizationDenied as denied:
        return denied
    except ConsulNativeError:
        return None
    return None


def dial_socket(service: "Service", target: str, timeout: Optional[float], *, datacenter: Optional[str] = None,
                address: "Optional[Address]" = None) -> Tuple[socket.socket, "Peer"]:
    """Dials ``target`` and hands the verified connection over as a plain socket carrying the HTTP bytes."""
    if address is not None:
        conn = service.dial(target, timeout, address=address)
    else:
        conn = service.dial(target, timeout, datacenter=datacenter)
    peer = conn.peer
    sock = conn.detach()
    return sock, peer


class ConnectHTTPConnection(http.client.HTTPConnection):
    """An :class:`http.client.HTTPConnection` to Connect service ``target``, dialed as ``service``: the server's
    identity is checked at connect time, the ``Host`` header is the service name, keep-alive works as usual.

    ``peer`` is the server's verified identity once connected. A server that hangs up before answering because the
    agent denied ``service`` => ``target`` raises :class:`~consulnative.AuthorizationDenied` with the agent's
    reason. ``address`` dials a fixed ``host:port`` instead of discovering instances.
    """

    def __init__(self, service: "Service", target: str, timeout: Any = _DEFAULT_TIMEOUT, *,
                 datacenter: Optional[str] = None, address: "Optional[Address]" = None,
                 blocksize: int = 8192) -> None:
        super().__init__(target, 80, timeout=timeout, blocksize=blocksize)
        self.service = service
        self.target = target
        self.datacenter = datacenter
        self.address = address
        self.peer: "Optional[Peer]" = None

    def connect(self) -> None:
        """Dials the service (discovery, mutual TLS, identity check) instead of a TCP connect."""
        timeout = None if self.timeout is _DEFAULT_TIMEOUT else self.timeout
        sock, self.peer = dial_socket(self.service, self.target, timeout, datacenter=self.datacenter,
                                      address=self.address)
        sock.settimeout(timeout)
        self.sock = sock

    def getresponse(self) -> http.client.HTTPResponse:
        """As :meth:`http.client.HTTPConnection.getresponse`; a hang-up the agent's intentions explain raises
        :class:`~consulnative.AuthorizationDenied`."""
        try:
            return super().getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            denied = explain_refusal(self.service, self.target)
            if denied is not None:
                raise denied from exc
            raise
