"""A requests transport adapter (urllib3 pools underneath) that reaches Connect services by name:
``http+consul://db/path`` (see :mod:`consulnative.http_client` for the URL form). Needs the ``requests`` extra
(``pip install consulnative[requests]``).

>>> session = requests.Session()                                            # doctest: +SKIP
>>> session.mount("http+consul://", ConnectAdapter(web))                    # doctest: +SKIP
>>> session.get("http+consul://db/health", params={"full": 1}).json()       # doctest: +SKIP

One urllib3 connection pool per destination service; each pooled connection is a verified mutual-TLS connection to
an instance of it, kept alive between requests. A server that hangs up before answering because the agent denies
the call raises :class:`ConnectDenied` (a ``requests.ConnectionError`` and a :class:`consulnative.AuthorizationDenied`)
with the agent's reason.
"""

from __future__ import annotations

import socket
import threading
import typing
from typing import Any, Dict, Mapping, Optional, Union

import requests
import requests.adapters
import urllib3
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.util import parse_url

from ._errors import AuthorizationDenied, ConsulNativeError, ConsulTimeoutError
from .http_client import SCHEME, dial_socket, explain_refusal

if typing.TYPE_CHECKING:  # pragma: no cover
    from ._conn import Peer
    from ._service import Service


class ConnectDenied(requests.exceptions.ConnectionError, AuthorizationDenied):
    """The destination hung up and the agent says why: its intentions deny this service (the agent's reason is the
    message)."""


class ConnectHTTPConnection(HTTPConnection):
    """A urllib3 connection whose ``connect`` dials a Connect service (the pool's host) instead of TCP."""

    def __init__(self, *args: Any, consulnative_service: "Service", consulnative_datacenter: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.consulnative_service = consulnative_service
        self.consulnative_datacenter = consulnative_datacenter
        self.peer: "Optional[Peer]" = None

    def _new_conn(self) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        try:
            sock, self.peer = dial_socket(self.consulnative_service, self.host, timeout,
                                          datacenter=self.consulnative_datacenter)
        except ConsulTimeoutError as exc:
            raise urllib3.exceptions.ConnectTimeoutError(self, str(exc)) from exc
        except ConsulNativeError as exc:
            raise urllib3.exceptions.NewConnectionError(self, str(exc)) from exc
        sock.settimeout(timeout)
        return sock


class ConnectHTTPConnectionPool(HTTPConnectionPool):
    """A urllib3 pool of :class:`ConnectHTTPConnection` to one service."""

    scheme = SCHEME
    ConnectionCls = ConnectHTTPConnection


class ConnectAdapter(requests.adapters.HTTPAdapter):
    """Mount on ``"http+consul://"``: requests to ``http+consul://<service>/...`` go over Connect, dialed as
    ``service``. ``datacenter`` picks where instances are discovered; ``pool_maxsize`` bounds the kept-alive
    connections per destination service."""

    def __init__(self, service: "Service", *, datacenter: Optional[str] = None, pool_maxsize: int = 10,
                 pool_block: bool = False, max_retries: Union[int, urllib3.Retry] = 0) -> None:
        self.service = service
        self.datacenter = datacenter
        self._pools: Dict[str, ConnectHTTPConnectionPool] = {}
        self._pools_lock = threading.Lock()
        self._connect_maxsize, self._connect_block = pool_maxsize, pool_block
        super().__init__(pool_maxsize=pool_maxsize, pool_block=pool_block, max_retries=max_retries)

    def _pool(self, url: str) -> ConnectHTTPConnectionPool:
        parsed = parse_url(url)
        if (parsed.scheme or "").lower() != SCHEME or not parsed.host:
            raise requests.exceptions.InvalidURL(f"a Connect adapter serves {SCHEME}://<service>/ URLs, not {url}")
        with self._pools_lock:
            pool = self._pools.get(parsed.host)
            if pool is None:
                pool = ConnectHTTPConnectionPool(parsed.host, 80, maxsize=self._connect_maxsize,
                                                 block=self._connect_block,
                                                 consulnative_service=self.service,
                                                 consulnative_datacenter=self.datacenter)
                self._pools[parsed.host] = pool
            return pool

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: Any,
                                        proxies: Optional[Mapping[str, str]] = None, cert: Any = None
                                        ) -> ConnectHTTPConnectionPool:
        """The pool of the service the request's URL names (TLS is Connect's: ``verify``/``cert`` are unused)."""
        return self._pool(request.url or "")

    def get_connection(self, url: Any, proxies: Optional[Mapping[str, str]] = None) -> ConnectHTTPConnectionPool:
        """The pool of the service ``url`` names (for requests before 2.32)."""
        return self._pool(url)

    def request_url(self, request: requests.PreparedRequest, proxies: Any) -> str:
        """The path and query: proxies never apply to Connect."""
        return request.path_url

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Optional[Mapping[str, str]] = None) -> requests.Response:
        """Sends as :class:`requests.adapters.HTTPAdapter` does, never through a proxy; a hang-up the agent's
        intentions explain raises :class:`ConnectDenied`."""
        try:
            return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies={})
        except requests.exceptions.ConnectionError as exc:
            reason = exc.args[0] if exc.args else None
            reason = getattr(reason, "reason", reason)
            if isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)):
                raise  # the dial itself failed: the library's message says why
            host = parse_url(request.url or "").host
            denied = explain_refusal(self.service, host) if host else None
            if denied is None:
                raise
            error = ConnectDenied(str(denied), request=request)
            error.code, error.result_name, error.message = denied.code, denied.result_name, denied.message
            raise error from exc

    def close(self) -> None:
        """Closes every pool and its kept-alive connections."""
        with self._pools_lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        super().close()
