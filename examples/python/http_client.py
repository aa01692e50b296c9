#!/usr/bin/env python3
"""Calls a Connect-native HTTP service through Consul discovery, with http.client over a detached socket.

    CONSUL_HTTP_ADDR=127.0.0.1:8500 python3 examples/python/http_client.py --as web api /hello

The agent's catalog gives a healthy instance of the target; the library checks the server presents the target's
identity, then hands over a plain socket that http.client uses as if it were any TCP connection.
"""

from __future__ import annotations

import argparse
import http.client
import sys

import consulnative


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="service to call, e.g. api")
    parser.add_argument("path", nargs="?", default="/")
    parser.add_argument("--as", dest="identity", default="web", help="our own service name")
    parser.add_argument("--address", help="host:port to dial directly instead of discovery")
    args = parser.parse_args()

    with consulnative.Client() as client, client.service(args.identity) as svc:
        svc.wait_ready(timeout=30)
        try:
            conn = svc.dial(args.target, timeout=10, address=args.address)
        except consulnative.ConsulNativeError as e:
            print(f"cannot reach {args.target}: {e}", file=sys.stderr)
            return 1
        print(f"connected to {conn.peer.uri}", file=sys.stderr)
        http_conn = http.client.HTTPConnection(args.target)
        http_conn.sock = conn.detach()  # http.client speaks plaintext over the handed-off socket
        http_conn.request("GET", args.path)
        response = http_conn.getresponse()
        print(response.status, response.read().decode().strip())
        http_conn.close()
        return 0 if response.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
