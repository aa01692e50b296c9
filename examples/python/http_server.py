#!/usr/bin/env python3
"""A Connect-native HTTP service on the standard library's http.server.

Every connection is mutual TLS with a Consul Connect identity, authorized by the agent's intentions before the
handler runs; the handler sees the plaintext through a real socket (the descriptor handoff) and knows who called.

    CONSUL_HTTP_ADDR=127.0.0.1:8500 python3 examples/python/http_server.py --name api --listen 127.0.0.1:0

It registers itself with the agent (so clients can find it by name) and deregisters on Ctrl-C or SIGTERM.
Run from a checkout: PYTHONPATH=bindings/python (the library is found in target/debug).
"""

from __future__ import annotations

import argparse
import http.server
import json
import signal
import socketserver
import sys

import consulnative


class ConnectHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """http.server over a consulnative listener instead of a plain TCP socket."""

    daemon_threads = True

    def __init__(self, listener: consulnative.Listener, handler: type) -> None:
        super().__init__(listener.address, handler, bind_and_activate=False)
        self.socket.close()  # TCPServer made a socket we never use: the listener owns the port
        self.listener = listener
        self.server_name, self.server_port = listener.address

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        for conn in self.listener:  # verified and authorized connections; ends when the listener closes
            peer = conn.peer
            sock = conn.detach()  # a plain socket carrying the plaintext
            # client_address carries the caller's identity: (SPIFFE URI, service name)
            self.process_request(sock, (peer.uri, peer.service))

    def shutdown(self) -> None:
        self.listener.close()

    def server_close(self) -> None:
        self.listener.close()


class Hello(http.server.BaseHTTPRequestHandler):
    server: ConnectHTTPServer

    def do_GET(self) -> None:
        uri, caller = self.client_address
        body = json.dumps({"hello": caller, "caller_uri": uri, "path": self.path, "from": self.server.service_name})
        data = (body + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="api", help="this service's name")
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port to listen on (port 0: any)")
    parser.add_argument("--no-register", action="store_true", help="do not register with the agent")
    args = parser.parse_args()
    # Stop cleanly (deregister) on Ctrl-C and on SIGTERM, also when started in the background with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    with consulnative.Client() as client, client.service(args.name) as svc:  # agent from CONSUL_HTTP_ADDR etc.
        svc.wait_ready(timeout=30)
        with svc.listen(args.listen) as listener:
            host, port = listener.address
            service_id = f"{args.name}-{port}"
            if not args.no_register:
                client.register(args.name, port=port, id=service_id, address=host)
            server = ConnectHTTPServer(listener, Hello)
            server.service_name = args.name  # type: ignore[attr-defined]
            print(f"{args.name} listening on {host}:{port} as {svc.spiffe_id}", flush=True)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
            finally:
                if not args.no_register:
                    client.deregister(service_id)
                server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
