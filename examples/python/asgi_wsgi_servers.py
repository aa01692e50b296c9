"""A WSGI app and an ASGI app served on Connect listeners, each told the caller's identity; called with the
standard library's http.client over Connect. Self-contained: starts a dev agent; standard library only.

    PYTHONPATH=bindings/python python3 examples/python/asgi_wsgi_servers.py
"""

import asyncio
import threading

import consulnative
from consulnative.asgi import serve_asgi
from consulnative.http_client import ConnectHTTPConnection
from consulnative.wsgi import WSGIServer


def wsgi_app(environ, start_response):
    body = f"WSGI says hello to {environ['consulnative.peer_service']} ({environ['consulnative.peer_uri']})\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope, receive, send):
    await receive()
    peer = scope["consulnative.peer"]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": f"ASGI says hello to {peer.service}\n".encode()})


def get(web, target):
    conn = ConnectHTTPConnection(web, target, timeout=5)
    conn.request("GET", "/")
    text = conn.getresponse().read().decode().strip()
    conn.close()
    return text


with consulnative.DevAgent() as agent, agent.client() as client:
    with client.service("wsgi-api") as wsgi_svc, client.service("asgi-api") as asgi_svc, \
            client.service("web") as web:
        for svc in (wsgi_svc, asgi_svc, web):
            svc.wait_ready(10)
        with WSGIServer(wsgi_svc, wsgi_app) as wsgi_server:
            wsgi_server.start()
            client.register("wsgi-api", port=wsgi_server.address[1], address="127.0.0.1")
            print(get(web, "wsgi-api"))

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        asgi_server = asyncio.run_coroutine_threadsafe(serve_asgi(asgi_svc, asgi_app), loop).result(10)
        client.register("asgi-api", port=asgi_server.address[1], address="127.0.0.1")
        print(get(web, "asgi-api"))
        asgi_server.close()
        asyncio.run_coroutine_threadsafe(asgi_server.wait_closed(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
