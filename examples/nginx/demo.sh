#!/usr/bin/env bash
# nginx as a Connect service on the files `consulnative pem-files` keeps, through a CA rotation. Starts a dev agent,
# the helper and nginx (Debian's package) from a temporary prefix, dials nginx by name with the Python binding,
# rotates the CA, dials again, and stops everything. Run from anywhere after `cargo build`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/debug"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
work=$(mktemp -d)
pids=()
cleanup() {
  [ -f "$work/nginx/nginx.pid" ] && kill -QUIT "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/consulnative-dev-agent" --http-addr 127.0.0.1:0 --addr-file "$work/agent.addr" >/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/agent.addr" ] && break; sleep 0.05; done
export CONSUL_HTTP_ADDR="$(cat "$work/agent.addr")"

mkdir -p "$work/nginx/tmp"
"$bin/consulnative" pem-files --service nginx --dir "$work/tls" --signal HUP --pid-file "$work/nginx/nginx.pid" &
pids+=($!)
for _ in $(seq 100); do [ -e "$work/tls/key.pem" ] && break; sleep 0.05; done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s|@PREFIX@|$work/nginx|g" -e "s|@TLS@|$work/tls|g" -e "s|@PORT@|$port|g" \
  "$root/examples/nginx/connect-server.conf" > "$work/nginx/nginx.conf"
env -u NGINX "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/nginx/nginx.pid" ] && break; sleep 0.05; done

"$bin/consulnative" status nginx

PYTHONPATH="$root/bindings/python" CONSULNATIVE_LIB="$bin/libconsulnative.so" python3 - "$port" <<'PY'
import os, sys, time, urllib.request
import consulnative

def call(web):
    with web.dial("nginx", timeout=5) as conn:          # the server must present nginx's SPIFFE identity
        conn.settimeout(5)
        conn.sendall(b"GET / HTTP/1.0\r\nHost: nginx\r\n\r\n")
        body = b""
        while chunk := conn.recv(65536):
            body += chunk
        print(f"nginx (serial {conn.peer.serial}) answered: {body.decode().splitlines()[-1]}")
        return conn.peer.serial

client = consulnative.Client()
client.register("nginx", port=int(sys.argv[1]), address="127.0.0.1")
with client.service("web") as web:
    web.wait_ready(10)
    before = call(web)
    urllib.request.urlopen(urllib.request.Request(f"http://{os.environ['CONSUL_HTTP_ADDR']}/_devagent/rotate-ca",
                                                  method="PUT"), timeout=5).read()
    print("CA rotated; waiting for the helper to rewrite the files and nginx to reload")
    for _ in range(100):
        time.sleep(0.1)
        if call(web) != before:
            break
    else:
        sys.exit("nginx never presented a new leaf")
PY
