"""httpx (sync and asyncio) and requests calling Connect HTTP services by name (http+consul://), served by the
WSGI and ASGI helpers: the server sees the caller, connections are pooled, a deny intention raises clearly."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Dict

import httpx
import pytest
import requests

import consulnative
from consulnative.asgi import serve_asgi
from consulnative.httpx_transport import AsyncConnectTransport, ConnectDenied as HttpxDenied, ConnectTransport
from consulnative.requests_adapter import ConnectAdapter, ConnectDenied as RequestsDenied
from consulnative.wsgi import WSGIServer

from conftest import whoami


@pytest.fixture
def wsgi_db(client, ready):
    db = ready("db")
    with WSGIServer(db, whoami) as server:
        server.start()
        client.register("db", port=server.address[1], address="127.0.0.1")
        yield server


def test_httpx_calls_the_service_by_name_on_one_kept_alive_connection(ready, wsgi_db):
    web = ready("web")
    with httpx.Client(mounts={"http+consul://": ConnectTransport(web)}, timeout=10) as http:
        for n in range(3):
            response = http.get("http+consul://db/items", params={"n": n})
            assert response.status_code == 200
            answer = response.json()
            assert (answer["peer"], answer["uri"]) == ("web", web.spiffe_id)
            assert (answer["path"], answer["query"]) == ("/items", f"n={n}")
            server_peer = response.extensions["network_stream"].get_extra_info("consulnative_peer")
            assert server_peer.service == "db"
        assert http.post("http+consul://db/echo", content=b"payload").json()["body"] == "payload"
    assert wsgi_db.listener.counts == (1, 0), "four requests, one pooled connection"


def test_httpx_without_the_transport_refuses_connect_urls_instead_of_sending_plaintext():
    with httpx.Client() as http, pytest.raises(httpx.UnsupportedProtocol):
        http.get("http+consul://db/")


def test_async_httpx_calls_an_asgi_service_by_name(client, ready):
    db, web = ready("db"), ready("web")

    async def app(scope: Dict[str, Any], receive: Any, send: Any) -> None:
        request = await receive()
        body = f"{scope['consulnative.peer'].service} {scope['method']} {scope['path']} ".encode() + request["body"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    async def main() -> None:
        server = await serve_asgi(db, app)
        async with server:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: client.register("db", port=server.address[1], address="127.0.0.1"))
            async with httpx.AsyncClient(mounts={"http+consul://": AsyncConnectTransport(web)}, timeout=10) as http:
                answers = [await http.post("http+consul://db/a", content=b"x%d" % n) for n in range(3)]
                assert [r.text for r in answers] == [f"web POST /a x{n}" for n in range(3)]
                concurrent = await asyncio.gather(*(http.get(f"http+consul://db/c{n}") for n in range(4)))
                assert all(r.text.startswith("web GET /c") for r in concurrent)
            accepted, refused = server.listener.counts
            assert refused == 0 and 1 <= accepted <= 5

    asyncio.run(main())


def test_requests_calls_the_service_by_name_with_params_and_keep_alive(ready, wsgi_db):
    web = ready("web")
    with requests.Session() as session:
        session.mount("http+consul://", ConnectAdapter(web))
        for n in range(3):
            answer = session.get("http+consul://db/items", params={"n": n, "q": "a b"}, timeout=10).json()
            assert (answer["peer"], answer["uri"]) == ("web", web.spiffe_id)
            assert answer["query"] == f"n={n}&q=a+b"
        assert session.post("http+consul://db/echo", data=b"payload", timeout=10).json()["body"] == "payload"
    assert wsgi_db.listener.counts == (1, 0)


def test_a_deny_intention_makes_httpx_and_requests_fail_with_the_agents_reason(agent, ready, wsgi_db):
    web = ready("web")
    agent.deny("web", "db")
    with httpx.Client(mounts={"http+consul://": ConnectTransport(web)}, timeout=10) as http:
        with pytest.raises(HttpxDenied) as caught:
            http.get("http+consul://db/")
    assert isinstance(caught.value, httpx.ConnectError) and isinstance(caught.value, consulnative.AuthorizationDenied)
    assert "web => db denied by the agent" in str(caught.value) and "Action: DENY" in str(caught.value)
    with requests.Session() as session:
        session.mount("http+consul://", ConnectAdapter(web))
        with pytest.raises(RequestsDenied) as denied:
            session.get("http+consul://db/", timeout=10)
    assert isinstance(denied.value, requests.ConnectionError)
    assert isinstance(denied.value, consulnative.AuthorizationDenied)
    assert "Action: DENY" in str(denied.value)
    accepted, refused = wsgi_db.listener.counts
    assert accepted == 0 and refused >= 2


def test_a_service_with_no_instances_is_a_connect_error_naming_it(ready):
    web = ready("web")
    with httpx.Client(mounts={"http+consul://": ConnectTransport(web)}, timeout=5) as http:
        with pytest.raises(httpx.ConnectError, match="nowhere"):
            http.get("http+consul://nowhere/")
    with requests.Session() as session:
        session.mount("http+consul://", ConnectAdapter(web))
        with pytest.raises(requests.ConnectionError, match="nowhere"):
            session.get("http+consul://nowhere/", timeout=5)


def test_threads_share_one_requests_adapter(ready, wsgi_db):
    web = ready("web")
    errors = []
    with requests.Session() as session:
        session.mount("http+consul://", ConnectAdapter(web, pool_maxsize=4))

        def call() -> None:
            try:
                for _ in range(5):
                    assert session.get("http+consul://db/t", timeout=10).json()["peer"] == "web"
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert not errors
    accepted, refused = wsgi_db.listener.counts
    assert refused == 0 and accepted <= 4
