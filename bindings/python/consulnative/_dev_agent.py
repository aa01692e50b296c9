"""DevAgent: a Consul-compatible dev agent for tests and demos."""

from __future__ import annotations

import json
import time
from ctypes import byref, c_void_p
from typing import Any, Dict, Optional

from . import _ffi
from ._client import Client
from ._managed import Managed

_lib = _ffi.lib
cstr = _ffi.cstr


class DevAgent(Managed):
    """An in-process Consul-compatible dev agent (Connect CA, intentions, catalog, ACL, fault injection), for tests
    and demos. ``address`` None picks a free loopback port; ``token`` makes leaf, authorize, register and intention
    calls require it; ``default_allow`` decides connections no intention matches; ``leaf_ttl`` in seconds
    (0: 72 hours)."""

    _free_fn = _lib.consulnative_dev_agent_free
    _close_rank = 90

    def __init__(self, address: Optional[str] = None, *, token: Optional[str] = None, default_allow: bool = True,
                 leaf_ttl: float = 0) -> None:
        out = c_void_p()
        _lib.consulnative_dev_agent_start(cstr(address), cstr(token), bool(default_allow),
                                          int(round(leaf_ttl * 1000)), byref(out))
        super().__init__(out.value)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.address
        return f"<consulnative.DevAgent {state}>"

    @property
    def address(self) -> str:
        """The agent's HTTP address as ``ip:port`` (usable as ``Client(address=...)`` or ``CONSUL_HTTP_ADDR``)."""
        with self._use() as ptr:
            return _ffi.read_text(_lib.consulnative_dev_agent_address, ptr)

    @property
    def trust_domain(self) -> str:
        """The CA's trust domain (``<uuid>.consul``)."""
        with self._use() as ptr:
            return _ffi.read_text(_lib.consulnative_dev_agent_trust_domain, ptr)

    def client(self, **config: Any) -> Client:
        """A :class:`Client` of this agent (extra config keys as for :class:`Client`)."""
        return Client(address=self.address, **config)

    def set_intention(self, source: str, destination: str, allow: bool) -> None:
        """Creates or replaces the intention ``source => destination`` (``"*"`` for either)."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_set_intention(ptr, cstr(source), cstr(destination), bool(allow))

    def allow(self, source: str, destination: str) -> None:
        """An allow intention ``source => destination``."""
        self.set_intention(source, destination, True)

    def deny(self, source: str, destination: str) -> None:
        """A deny intention ``source => destination``."""
        self.set_intention(source, destination, False)

    def delete_intention(self, source: str, destination: str) -> None:
        """Deletes the intention ``source => destination`` (no-op if absent)."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_delete_intention(ptr, cstr(source), cstr(destination))

    def rotate_ca(self) -> None:
        """Rotates the CA: new active root, old one kept, cross-signed intermediate, every leaf reissued."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_rotate_ca(ptr)

    def set_fault(self, endpoint: str, kind: str, value: int = 0, body: Optional[str] = None) -> None:
        """Makes the agent misbehave until :meth:`clear_faults`. ``endpoint``: ``"all"``, ``"roots"``, ``"leaf"``,
        ``"authorize"``. ``kind``: ``"status"`` (answer HTTP ``value`` with ``body``), ``"malformed"``,
        ``"delay"`` (``value`` ms late), ``"backwards_index"``."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_set_fault(ptr, cstr(endpoint), cstr(kind), int(value), cstr(body))

    def clear_faults(self) -> None:
        """Clears every fault."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_clear_faults(ptr)

    def issue_leaf(self, service: str, not_before: Optional[float] = None, not_after: Optional[float] = None
                   ) -> Dict[str, Any]:
        """Signs an ad-hoc leaf for ``service`` with the active CA, valid between two Unix times (default: a
        minute ago to an hour from now; may be in the past), as the agent's leaf JSON (``CertPEM``,
        ``PrivateKeyPEM``, ``SerialNumber``, ``ServiceURI``...)."""
        now = time.time()
        nb = int(now - 60 if not_before is None else not_before)
        na = int(now + 3600 if not_after is None else not_after)
        with self._use() as ptr:
            text = _ffi.read_text(_lib.consulnative_dev_agent_issue_leaf, ptr, cstr(service), nb, na)
        return json.loads(text)  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stops the agent (its port closes; clients see it as down). Idempotent; :meth:`close` frees it."""
        with self._use() as ptr:
            _lib.consulnative_dev_agent_stop(ptr)
