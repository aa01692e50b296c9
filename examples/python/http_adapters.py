"""httpx, requests and http.client calling a Connect service by name (http+consul://db/...), served by the WSGI
helper; then a deny intention and the exception each client raises. Self-contained: starts a dev agent.

    PYTHONPATH=bindings/python python3 examples/python/http_adapters.py      # needs: pip install httpx requests
"""

import json

import httpx
import requests

import consulnative
from consulnative.http_client import ConnectHTTPConnection
from consulnative.httpx_transport import ConnectTransport
from consulnative.requests_adapter import ConnectAdapter
from consulnative.wsgi import WSGIServer


def app(environ, start_response):
    """Answers with the caller's verified identity."""
    body = json.dumps({"caller": environ["consulnative.peer_service"], "path": environ["PATH_INFO"],
                       "query": environ["QUERY_STRING"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


with consulnative.DevAgent() as agent, agent.client() as client:
    with client.service("db") as db, client.service("web") as web:
        db.wait_ready(10)
        web.wait_ready(10)
        with WSGIServer(db, app, "127.0.0.1:0") as server:
            server.start()
            client.register("db", port=server.address[1], address="127.0.0.1")  # so "db" is found by name

            with httpx.Client(mounts={"http+consul://": ConnectTransport(web)}) as http:
                print("httpx:", http.get("http+consul://db/items", params={"page": 2}).json())
            with requests.Session() as session:
                session.mount("http+consul://", ConnectAdapter(web))
                print("requests:", session.get("http+consul://db/items", params={"page": 3}).json())
            conn = ConnectHTTPConnection(web, "db", timeout=5)
            conn.request("GET", "/plain")
            print("http.client:", json.loads(conn.getresponse().read()), "server:", conn.peer.uri)
            conn.close()

            agent.deny("web", "db")
            with httpx.Client(mounts={"http+consul://": ConnectTransport(web)}) as http:
                try:
                    http.get("http+consul://db/items")
                except consulnative.AuthorizationDenied as denied:  # also an httpx.ConnectError
                    print("httpx after deny:", type(denied).__name__, "-", denied.message)
            print("server accepted/refused:", server.listener.counts)
