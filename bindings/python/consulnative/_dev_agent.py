"""DevAgent: the ``consulnative-dev-agent`` binary run as a child process, for tests and demos.

The agent is started the way Consul's own test helpers start ``consul agent -dev``: a child process on a free
loopback port, whose address is read from the one line it prints when ready. Its stdin is a pipe we never write
to: the agent exits when that pipe closes, so it never outlives this process, even one killed with SIGKILL.
Intentions, CA rotation, faults and ad-hoc leaves are HTTP calls to it (standard library only).

Where the binary comes from, first match wins:

1. the ``CONSULNATIVE_DEV_AGENT`` environment variable (a path to the binary);
2. the copy inside this package (``consulnative/consulnative-dev-agent``), which the wheel ships;
3. ``consulnative-dev-agent`` in the directory of the loaded ``libconsulnative`` (symlinks resolved), where
   ``cargo build`` puts it;
4. ``consulnative-dev-agent`` on ``$PATH`` (where the C tarball's ``bin/`` or ``make install`` put it).
"""

from __future__ import annotations

import http.client
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import IO, Any, Dict, Optional, Union

from . import _ffi
from ._client import Client
from ._common import split_address
from ._errors import ConsulNativeError, Result, make_error
from ._managed import track

ENV_VAR = "CONSULNATIVE_DEV_AGENT"
TOKEN_ENV_VAR = "CONSUL_DEV_AGENT_TOKEN"  # read by the binary: a token on the command line would show in `ps`
BINARY_NAME = "consulnative-dev-agent.exe" if sys.platform == "win32" else "consulnative-dev-agent"
_READY = b"consulnative-dev-agent listening on http://"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def packaged_binary() -> Path:
    """The copy of the binary inside this package (what the wheel installs)."""
    return Path(__file__).resolve().parent / BINARY_NAME


def find_binary(library_path: Optional[str] = None) -> str:
    """The path of the ``consulnative-dev-agent`` binary (see the module doc for the search order).

    ``library_path`` defaults to the loaded library. Raises :class:`FileNotFoundError` naming every place tried.
    """
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        if not _is_executable(Path(explicit)):
            raise FileNotFoundError(f"{ENV_VAR}={explicit!r} is not an executable file")
        return explicit
    packaged = packaged_binary()
    if _is_executable(packaged):
        return str(packaged)
    lib = Path(library_path if library_path is not None else _ffi.LIBRARY_PATH).resolve()
    beside = lib.parent / BINARY_NAME
    if _is_executable(beside):
        return str(beside)
    on_path = shutil.which(BINARY_NAME)
    if on_path:
        return on_path
    raise FileNotFoundError(
        f"cannot find the {BINARY_NAME} binary; tried: ${ENV_VAR} (not set), {packaged} (the copy a wheel "
        f"installs), {beside} (beside the loaded {lib.name}), and $PATH. Install the consulnative wheel (it ships "
        f"the binary), or build it with `cargo build` (it lands beside the library in target/debug), or set "
        f"{ENV_VAR} to its path"
    )


def _go_duration(seconds: float) -> str:
    """Seconds as a Go duration in whole milliseconds (``1.5`` -> ``"1500ms"``)."""
    return f"{int(round(seconds * 1000))}ms"


def _error(code: Result, message: str) -> ConsulNativeError:
    return make_error(code, message, _ffi.result_name(code))


# An HTTP error status from the agent -> the result the in-process agent gave for the same mistake.
_STATUS_RESULTS = {400: Result.INVALID_ARGUMENT, 403: Result.AGENT_PERMISSION_DENIED}
_FAULT_KINDS = ("status", "malformed", "delay", "backwards_index")


class DevAgent:
    """A Consul-compatible dev agent (Connect CA, intentions, catalog, ACL, fault injection) for tests and demos:
    the ``consulnative-dev-agent`` binary as a child process, stopped with :meth:`close` (or ``with``) and never
    left running after this process ends.

    ``address`` None picks a free loopback port; ``token`` makes leaf, authorize, register and intention calls
    require it (passed to the agent through its environment, never its command line); ``default_allow`` decides
    connections no intention matches; ``leaf_ttl`` in seconds (0: the agent's default, 72 hours; the agent takes
    at least 1 second). The binary is found as described in :mod:`consulnative._dev_agent`
    (``CONSULNATIVE_DEV_AGENT``, the package's copy, beside the library, ``$PATH``). Failures of the test
    controls raise a :class:`ConsulNativeError` carrying the agent's answer (an HTTP 400 as
    :class:`InvalidArgumentError`).
    """

    _close_rank = 90  # closed last at interpreter exit, after everything that talks to it

    #: Seconds to wait for the agent's ready line.
    START_TIMEOUT = 30.0
    #: Seconds :meth:`stop` waits after closing stdin, then again after SIGTERM, before SIGKILL.
    STOP_WAIT = 2.0
    #: Seconds a test-control HTTP call may take.
    REQUEST_TIMEOUT = 10.0

    _process: Optional["subprocess.Popen[bytes]"] = None

    def __init__(self, address: Optional[str] = None, *, token: Optional[str] = None, default_allow: bool = True,
                 leaf_ttl: float = 0) -> None:
        self._lock = threading.Lock()
        self._stopped = False
        self._closed = False
        self._token = token or None
        self._trust_domain: Optional[str] = None
        self._address = ""
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address: expected str, got {type(address).__name__}")
        if token is not None and not isinstance(token, str):
            raise TypeError(f"token: expected str, got {type(token).__name__}")
        if leaf_ttl < 0:
            raise ValueError("leaf_ttl must be >= 0 seconds (0: the agent's default)")
        args = [find_binary(), "--http-addr", address or "127.0.0.1:0", "--exit-on-stdin-eof"]
        if not default_allow:
            args += ["--default-policy", "deny"]
        if leaf_ttl:
            args += ["--leaf-ttl", _go_duration(leaf_ttl)]
        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV_VAR}  # no inherited token either
        if self._token:
            env[TOKEN_ENV_VAR] = self._token
        self._stderr: IO[bytes] = tempfile.TemporaryFile(prefix="consulnative-dev-agent-")
        try:
            # stdin: a pipe we never write to; the agent exits at its EOF, i.e. when this process ends.
            # start_new_session: a terminal's Ctrl-C reaches only us, and our cleanup may still need the agent.
            self._process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=self._stderr, env=env, start_new_session=True)
            self._address = self._await_ready(self._process)
        except BaseException:
            self._stopped = self._closed = True
            self._end()
            raise
        track(self)

    def _await_ready(self, proc: "subprocess.Popen[bytes]") -> str:
        """Reads the agent's ready line (bounded by START_TIMEOUT) and returns the address in it."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        line = b""
        deadline = time.monotonic() + self.START_TIMEOUT
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in line:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _error(Result.TIMEOUT, f"{BINARY_NAME} printed no ready line within "
                                                 f"{self.START_TIMEOUT:g} s{self._stderr_tail()}")
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    break  # EOF: it exited
                line += chunk
        first = line.split(b"\n", 1)[0]
        if b"\n" in line and first.startswith(_READY):
            return first[len(_READY):].strip().decode("ascii")
        try:
            code = proc.wait(self.STOP_WAIT)
        except subprocess.TimeoutExpired:
            code = None
        what = f"exited with status {code}" if code is not None else f"printed {line!r}"
        # Exit status 2 is a usage error (a bad address, a leaf TTL under 1 s...), 1 a failed start (port in use).
        result = {2: Result.INVALID_ARGUMENT, 1: Result.IO}.get(code if code is not None else -1, Result.INTERNAL)
        raise _error(result, f"{BINARY_NAME} did not start: it {what}{self._stderr_tail()}")

    def _stderr_tail(self) -> str:
        """What the agent wrote to stderr (its first lines: the usage text after them is noise), for errors."""
        try:
            self._stderr.seek(0)
            text = self._stderr.read(8192).decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        text = text.split("\nUsage:", 1)[0].strip()
        return f": {text}" if text else ""

    def __repr__(self) -> str:
        state = "closed" if self._closed else self._address + (" stopped" if self._stopped else "")
        return f"<consulnative.DevAgent {state}>"

    # -- lifetime -----------------------------------------------------------------------------------------------

    def _end(self) -> None:
        """Ends the child: EOF on its stdin, then SIGTERM, then SIGKILL, each after a bounded wait; reaps it."""
        proc = self._process
        if proc is not None:
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            try:
                proc.wait(self.STOP_WAIT)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(self.STOP_WAIT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._stderr.close()

    def stop(self) -> None:
        """Stops the agent (its port closes; clients see it as down) and reaps the process. Idempotent;
        :attr:`address` stays readable, the test controls raise :class:`ClosedError`."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._end()

    def close(self) -> None:
        """Stops the agent (:meth:`stop`); idempotent."""
        self.stop()
        self._closed = True

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> "DevAgent":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_lock", None) is None or self._process is None:
            return  # __init__ failed before starting anything (it cleaned up itself)
        try:
            self.close()
        except Exception:  # pragma: no cover - never raise from __del__
            pass

    # -- what it is ---------------------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """The agent's HTTP address as ``ip:port`` (usable as ``Client(address=...)`` or ``CONSUL_HTTP_ADDR``)."""
        if self._closed:
            raise _closed("closed")
        return self._address

    @property
    def trust_domain(self) -> str:
        """The CA's trust domain (``<uuid>.consul``); it survives CA rotations, so it is asked once."""
        if self._trust_domain is None:
            roots = json.loads(self._request("GET", "/v1/agent/connect/ca/roots"))
            self._trust_domain = str(roots["TrustDomain"])
        return self._trust_domain

    def client(self, **config: Any) -> Client:
        """A :class:`Client` of this agent (extra config keys as for :class:`Client`)."""
        return Client(address=self.address, **config)

    # -- test controls ------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, query: Optional[Dict[str, Union[str, int]]] = None,
                 body: Any = None) -> bytes:
        """One HTTP call to the agent; a transport failure or an error status raises with the agent's answer."""
        if self._stopped:
            raise _closed("closed" if self._closed else "stopped")
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"X-Consul-Token": self._token} if self._token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        host, port = split_address(self._address)
        conn = http.client.HTTPConnection(host, port, timeout=self.REQUEST_TIMEOUT)
        where = f"dev agent {self._address}: {method} {target}"
        try:
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        except socket.timeout as e:
            raise _error(Result.TIMEOUT, f"{where}: no answer within {self.REQUEST_TIMEOUT:g} s") from e
        except (OSError, http.client.HTTPException) as e:
            raise _error(Result.AGENT_UNREACHABLE, f"{where}: {e}") from e
        finally:
            conn.close()
        if not 200 <= resp.status < 300:
            answer = payload.decode("utf-8", "replace").strip()
            raise _error(_STATUS_RESULTS.get(resp.status, Result.AGENT_ERROR),
                         f"{where}: HTTP {resp.status}: {answer}")
        return payload

    def set_intention(self, source: str, destination: str, allow: bool) -> None:
        """Creates or replaces the intention ``source => destination`` (``"*"`` for either)."""
        self._request("PUT", "/v1/connect/intentions/exact", {"source": source, "destination": destination},
                      {"Action": "allow" if allow else "deny"})

    def allow(self, source: str, destination: str) -> None:
        """An allow intention ``source => destination``."""
        self.set_intention(source, destination, True)

    def deny(self, source: str, destination: str) -> None:
        """A deny intention ``source => destination``."""
        self.set_intention(source, destination, False)

    def delete_intention(self, source: str, destination: str) -> None:
        """Deletes the intention ``source => destination`` (no-op if absent)."""
        self._request("DELETE", "/v1/connect/intentions/exact", {"source": source, "destination": destination})

    def rotate_ca(self) -> None:
        """Rotates the CA: new active root, old one kept, cross-signed intermediate, every leaf reissued."""
        self._request("PUT", "/_devagent/rotate-ca")

    def set_fault(self, endpoint: str, kind: str, value: int = 0, body: Optional[str] = None) -> None:
        """Makes the agent misbehave until :meth:`clear_faults`. ``endpoint``: ``"all"``, ``"roots"``, ``"leaf"``,
        ``"authorize"``. ``kind``: ``"status"`` (answer HTTP ``value`` with ``body``, empty if None),
        ``"malformed"``, ``"delay"`` (``value`` ms late), ``"backwards_index"``."""
        value = int(value)
        if kind not in _FAULT_KINDS:
            raise _error(Result.INVALID_ARGUMENT, f"unknown fault kind {kind!r} ({'|'.join(_FAULT_KINDS)})")
        if value < 0:
            raise _error(Result.INVALID_ARGUMENT, f"fault value must be >= 0, got {value}")
        query: Dict[str, Union[str, int]] = {"endpoint": endpoint}
        if kind == "status":
            query.update(status=value, body=body or "")
        elif kind == "malformed":
            query["malformed"] = 1
        elif kind == "delay":
            query["delay"] = f"{value}ms"
        else:
            query["reset_index"] = 1
        try:
            _ = self.trust_domain  # asked now, while the roots endpoint answers: a fault may hide it later
        except ConsulNativeError:
            pass
        self._request("PUT", "/_devagent/fault", query)

    def clear_faults(self) -> None:
        """Clears every fault."""
        self._request("DELETE", "/_devagent/fault")

    def issue_leaf(self, service: str, not_before: Optional[float] = None, not_after: Optional[float] = None
                   ) -> Dict[str, Any]:
        """Signs an ad-hoc leaf for ``service`` with the active CA, valid between two Unix times (default: a
        minute ago to an hour from now; may be in the past), as the agent's leaf JSON (``CertPEM``,
        ``PrivateKeyPEM``, ``SerialNumber``, ``ServiceURI``...)."""
        now = time.time()
        query: Dict[str, Union[str, int]] = {
            "not_before": int(now - 60 if not_before is None else not_before),
            "not_after": int(now + 3600 if not_after is None else not_after),
        }
        leaf: Dict[str, Any] = json.loads(
            self._request("GET", "/_devagent/issue-leaf/" + urllib.parse.quote(service, safe=""), query))
        return leaf


def _closed(state: str) -> ConsulNativeError:
    return make_error(Result.CLOSED, f"this DevAgent is {state}", _ffi.result_name(Result.CLOSED))

