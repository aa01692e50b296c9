"""Python's own ssl module against consulnative: a dev-agent leaf admits it; no certificate or a foreign CA does not."""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
import threading
from typing import List, Optional, Tuple

import pytest

import consulnative
from conftest import eventually, recv_exact


def client_context(roots_pem: str, chain_pem: Optional[str] = None, key_pem: Optional[str] = None) -> ssl.SSLContext:
    """A TLS client verifying the server against the Connect roots, optionally presenting a leaf."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # Connect identities are SPIFFE URIs, checked below by hand
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=roots_pem)
    if chain_pem is not None:
        assert key_pem is not None
        with tempfile.TemporaryDirectory() as d:
            cert, key = os.path.join(d, "leaf.pem"), os.path.join(d, "key.pem")
            with open(cert, "w") as f:
                f.write(chain_pem)
            with open(key, "w") as f:
                f.write(key_pem)
            ctx.load_cert_chain(cert, key)
    return ctx


def uri_sans(cert: dict) -> List[str]:
    return [v for k, v in cert.get("subjectAltName", ()) if k == "URI"]


def test_python_ssl_with_a_dev_agent_leaf_connects_to_a_consulnative_listener(agent, ready):
    db, web = ready("db"), ready("web")
    assert "BEGIN CERTIFICATE" in web.leaf_pem()
    assert "PRIVATE KEY" in web.key_pem()
    assert "BEGIN CERTIFICATE" in web.roots_pem()
    ctx = client_context(web.roots_pem(), web.leaf_pem(), web.key_pem())
    with db.listen() as listener:
        with socket.create_connection(listener.address, timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                server_uris = uri_sans(tls.getpeercert())
                assert server_uris and server_uris[0].endswith("/svc/db")
                assert agent.trust_domain in server_uris[0]
                tls.sendall(b"hello from ssl")
                with listener.accept(timeout=5) as conn:
                    assert conn.peer.service == "web"
                    assert conn.peer.uri == web.spiffe_id
                    assert recv_exact(conn, 14) == b"hello from ssl"
                    conn.sendall(b"hello from consulnative")
                    assert recv_exact(tls, 23) == b"hello from consulnative"


def test_consulnative_dialer_reaches_a_python_ssl_server_presenting_the_expected_leaf(ready):
    db, web = ready("db"), ready("web")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cadata=db.roots_pem())
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        for path, text in ((cert, db.leaf_pem()), (key, db.key_pem())):
            with open(path, "w") as f:
                f.write(text)
        server_ctx.load_cert_chain(cert, key)
    got: List[Tuple[List[str], bytes]] = []
    with socket.create_server(("127.0.0.1", 0)) as srv:

        def serve() -> None:
            raw, _ = srv.accept()
            with server_ctx.wrap_socket(raw, server_side=True) as tls:
                data = recv_exact(tls, 4)
                got.append((uri_sans(tls.getpeercert()), data))
                tls.sendall(data.upper())

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        with web.dial("db", address=srv.getsockname(), timeout=5) as out:
            out.sendall(b"ping")
            assert recv_exact(out, 4) == b"PING"
        t.join(5)
    assert got[0][1] == b"ping"
    assert got[0][0][0].endswith("/svc/web")


def _refused_ssl_client(listener: consulnative.Listener, ctx: ssl.SSLContext) -> None:
    """Connects with Python's ssl; the listener must close the connection without handing it out."""
    with socket.create_connection(listener.address, timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"let me in")
                assert tls.recv(16) == b"", "a refused client must not get data"
        except (ssl.SSLError, ConnectionError, OSError):
            pass  # an alert or a reset: refused


def test_python_ssl_client_without_a_certificate_is_refused_with_a_handshake_error(ready):
    db = ready("db")
    refusals: List[consulnative.Refusal] = []
    with db.listen() as listener:
        listener.on_refused(refusals.append)
        _refused_ssl_client(listener, client_context(db.roots_pem()))
        assert eventually(lambda: refusals, 5)
        with pytest.raises(consulnative.TimeoutError):
            listener.accept(timeout=0.3)
    r = refusals[0]
    assert r.result == consulnative.Result.HANDSHAKE, r
    assert r.peer_uri is None
    assert "certificate" in r.message
    assert isinstance(r.error, consulnative.HandshakeError)


def test_leaf_from_a_foreign_ca_is_refused_as_an_invalid_certificate(ready):
    db = ready("db")
    with consulnative.DevAgent() as other:
        foreign = other.issue_leaf("web")
        assert foreign["ServiceURI"].endswith("/svc/web") and other.trust_domain in foreign["ServiceURI"]
    refusals: List[consulnative.Refusal] = []
    with db.listen() as listener:
        listener.on_refused(refusals.append)
        ctx = client_context(db.roots_pem(), foreign["CertPEM"], foreign["PrivateKeyPEM"])
        _refused_ssl_client(listener, ctx)
        assert eventually(lambda: refusals, 5)
        assert listener.counts == (0, 1)
    r = refusals[0]
    assert r.result == consulnative.Result.CERTIFICATE_INVALID, r
    assert isinstance(r.error, consulnative.CertificateInvalid)


def test_expired_leaf_from_the_right_ca_is_refused(agent, ready):
    import time

    db = ready("db")
    now = time.time()
    expired = agent.issue_leaf("web", now - 7200, now - 3600)
    refusals: List[consulnative.Refusal] = []
    with db.listen() as listener:
        listener.on_refused(refusals.append)
        _refused_ssl_client(listener, client_context(db.roots_pem(), expired["CertPEM"], expired["PrivateKeyPEM"]))
        assert eventually(lambda: refusals, 5)
    assert refusals[0].result == consulnative.Result.CERTIFICATE_INVALID
    assert "expired" in refusals[0].message.lower() or "not valid" in refusals[0].message.lower(), refusals[0]
