"""Client: one Consul agent's configuration and the CA roots watch its services share."""

from __future__ import annotations

from ctypes import byref, c_void_p
from typing import Any, Dict, Iterable, Optional, Union

from . import _ffi
from ._managed import Managed
from ._service import Service

_lib = _ffi.lib
cstr = _ffi.cstr


def _config_value(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Client(Managed):
    """A client of one Consul agent (``consulnative_client``); owns the CA roots watch its services share.

    Configuration starts from the ``CONSUL_*`` environment variables (``CONSUL_HTTP_ADDR``, ``CONSUL_HTTP_TOKEN``,
    ``CONSUL_CACERT``...); ``address``, ``token`` and any other config key given here win. Keys: ``address``,
    ``token``, ``token_file``, ``datacenter``, ``namespace``, ``partition``, ``http_auth``, ``ca_file``,
    ``ca_path``, ``client_cert``, ``client_key``, ``tls_server_name``, ``tls_verify`` (bool), and durations in
    milliseconds ``request_timeout_ms``, ``blocking_wait_ms``, ``retry_max_ms``, ``handshake_timeout_ms``,
    ``authorize_timeout_ms``. Limits of every listener (positive whole numbers): ``max_handshakes`` (256:
    connections between accept and admission; beyond it new ones wait in the kernel backlog), ``accept_queue``
    (128), ``refusal_queue`` (256: refusals waiting for the refusal callback), ``max_authorizations`` (16),
    ``peer_check_threads`` (2), ``busy_handshake_timeout_ms`` (1000: handshakes cut when every slot is taken);
    of peer certificate chains: ``max_chain_certs`` (8) and ``max_chain_bytes`` (32768). An unknown key or a bad
    value raises :class:`InvalidArgumentError`.

    Services made from a client keep working after the client is closed.
    """

    _free_fn = _lib.consulnative_client_free
    _close_rank = 40

    def __init__(self, address: Optional[str] = None, token: Optional[str] = None, **config: Any) -> None:
        settings: Dict[str, Any] = {}
        if address is not None:
            settings["address"] = address
        if token is not None:
            settings["token"] = token
        settings.update(config)
        cfg = c_void_p()
        _lib.consulnative_config_new(byref(cfg))
        try:
            for key, value in settings.items():
                _lib.consulnative_config_set(cfg, cstr(key), cstr(_config_value(value)))
            out = c_void_p()
            _lib.consulnative_client_new(cfg, byref(out))
        finally:
            _lib.consulnative_config_free(cfg)
        super().__init__(out.value)  # type: ignore[arg-type]

    def service(self, name: str) -> "Service":
        """Starts watching the leaf certificate of service ``name``; call :meth:`Service.wait_ready` next."""
        out = c_void_p()
        with self._use() as ptr:
            _lib.consulnative_service_new(ptr, cstr(name), byref(out))
        return Service(out.value, name)  # type: ignore[arg-type]

    def register(self, name: str, port: int, *, id: Optional[str] = None, address: Optional[str] = None,
                 tags: Union[None, str, Iterable[str]] = None, check: Optional[str] = None) -> None:
        """Registers a Connect-native service with the agent.

        ``check``: None for none, ``"tcp"`` or ``"tcp:<interval ms>"``, or ``"ttl:<ttl ms>"`` (its check ID is
        ``service:<id>``; keep it passing with :meth:`pass_ttl`). ``id`` defaults to the name, ``address`` to the
        agent's. ``tags`` is a list or a comma-separated string.
        """
        tag_text = tags if tags is None or isinstance(tags, str) else ",".join(tags)
        with self._use() as ptr:
            _lib.consulnative_client_register(ptr, cstr(name), cstr(id), cstr(address), int(port), cstr(tag_text),
                                              cstr(check))

    def deregister(self, service_id: str) -> None:
        """Deregisters a service by its ID."""
        with self._use() as ptr:
            _lib.consulnative_client_deregister(ptr, cstr(service_id))

    def pass_ttl(self, check_id: str, note: Optional[str] = None) -> None:
        """Marks a TTL check passing (for a ``"ttl:..."`` registration the ID is ``service:<id>``)."""
        with self._use() as ptr:
            _lib.consulnative_client_pass_ttl(ptr, cstr(check_id), cstr(note))
