"""Standard-library integrations: PEM files kept fresh through rotations, authorize, http.client over Connect to
the WSGI and ASGI servers with the caller's identity per request."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List

import pytest

import consulnative
from consulnative.asgi import serve_asgi
from consulnative.http_client import ConnectHTTPConnection, split_url
from consulnative.wsgi import WSGIServer

from conftest import eventually


def whoami(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps({
        "peer": environ["consulnative.peer_service"], "uri": environ["consulnative.peer_uri"],
        "path": environ["PATH_INFO"], "query": environ["QUERY_STRING"], "body": environ["wsgi.input"].read().decode(),
        "remote": environ["REMOTE_ADDR"],
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def test_pem_files_are_written_private_and_rewritten_after_a_ca_rotation(agent, ready, tmp_path):
    web = ready("web")
    changes: List[consulnative.PemFilesChange] = []
    web.write_pem_files(tmp_path / "tls", on_change=changes.append)
    assert [c.leaf_serial for c in changes] == [web.status()["leaf_serial"]]
    tls = tmp_path / "tls"
    assert stat.S_IMODE(os.stat(tls / "key.pem").st_mode) == 0o600
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_cert_chain(tls / "cert.pem", tls / "key.pem")  # OpenSSL checks the key matches the leaf
    old_roots = (tls / "roots.pem").read_text()
    agent.rotate_ca()
    assert eventually(lambda: changes[-1].leaf_serial != changes[0].leaf_serial
                      and (tls / "roots.pem").read_text() != old_roots, 15)
    assert all(c.ok for c in changes)
    context.load_cert_chain(tls / "cert.pem", tls / "key.pem")
    assert (tls / "roots.pem").read_text().count("BEGIN CERTIFICATE") == 2  # old and new root during rotation


def test_removing_the_writer_stops_the_rewrites(agent, ready, tmp_path):
    web = ready("web")
    changes: List[consulnative.PemFilesChange] = []
    writer = web.write_pem_files(tmp_path, on_change=changes.append)
    web.remove_callback(writer)
    agent.rotate_ca()
    assert eventually(lambda: web.status()["leaf_serial"] != changes[0].leaf_serial, 15)
    assert len(changes) == 1


def test_an_unwritable_directory_raises_with_the_path(ready, tmp_path):
    web = ready("web")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(consulnative.ConsulNativeError, match="PEM directory"):
        web.write_pem_files(blocker / "tls")


def test_authorize_returns_the_agents_reason_and_raises_when_denied(agent, ready):
    web = ready("web")
    assert web.authorize("db")
    agent.deny("web", "db")
    with pytest.raises(consulnative.AuthorizationDenied, match="Action: DENY"):
        web.authorize("db")


def test_connect_urls_name_a_service_and_a_path():
    assert split_url("http+consul://db/a/b?c=1") == ("db", "/a/b?c=1")
    assert split_url("http+consul://db") == ("db", "/")
    for bad in ("http://db/", "http+consul://db:80/", "http+consul://u@db/"):
        with pytest.raises(ValueError):
            split_url(bad)


def test_http_client_reaches_the_wsgi_server_which_sees_the_caller(client, ready):
    db, web = ready("db"), ready("web")
    with WSGIServer(db, whoami) as server:
        server.start()
        client.register("db", port=server.address[1], address="127.0.0.1")
        conn = ConnectHTTPConnection(web, "db", timeout=5)
        conn.request("GET", "/hello?x=1")
        answer = json.loads(conn.getresponse().read())
        assert answer["peer"] == "web" and answer["uri"] == web.spiffe_id
        assert (answer["path"], answer["query"], answer["remote"]) == ("/hello", "x=1", "127.0.0.1")
        assert conn.peer is not None and conn.peer.service == "db"
        first = conn.sock
        conn.request("POST", "/echo", body=b"payload")
        assert json.loads(conn.getresponse().read())["body"] == "payload"
        assert conn.sock is first, "the connection is kept alive between requests"
        assert server.listener.counts == (1, 0)
        conn.close()


def test_a_deny_intention_makes_http_client_raise_authorization_denied(agent, client, ready):
    db, web = ready("db"), ready("web")
    agent.deny("web", "db")
    with WSGIServer(db, whoami) as server:
        server.start()
        client.register("db", port=server.address[1], address="127.0.0.1")
        conn = ConnectHTTPConnection(web, "db", timeout=5)
        with pytest.raises(consulnative.AuthorizationDenied, match="web => db denied by the agent"):
            conn.request("GET", "/")
            conn.getresponse()


def test_the_asgi_server_streams_a_chunked_answer_with_the_callers_identity(client, ready):
    db, web = ready("db"), ready("web")

    async def app(scope: Dict[str, Any], receive: Any, send: Any) -> None:
        request = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": scope["consulnative.peer"].service.encode(),
                    "more_body": True})
        await send({"type": "http.response.body", "body": b" " + scope["path"].encode() + b" " + request["body"]})

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(serve_asgi(db, app), loop).result(10)
    try:
        client.register("db", port=server.address[1], address="127.0.0.1")
        conn = ConnectHTTPConnection(web, "db", timeout=5)
        for n in range(2):
            conn.request("POST", f"/call{n}", body=b"hi")
            response = conn.getresponse()
            assert response.getheader("Transfer-Encoding") == "chunked"
            assert response.read() == f"web /call{n} hi".encode()
        assert server.listener.counts == (1, 0)
        conn.close()
    finally:
        server.close()
        asyncio.run_coroutine_threadsafe(server.wait_closed(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_pem_files_paths_accept_pathlib(ready, tmp_path):
    web = ready("web")
    web.write_pem_files(Path(tmp_path))
    assert (tmp_path / "cert.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
