"""nginx (Debian's package) with the files `consulnative pem-files` keeps: as a Connect server that the library's
dialer reaches through a CA rotation, and as a Connect client of a library listener that authorizes it."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import List, Optional, Tuple

import consulnative
from consulnative.wsgi import WSGIServer

from conftest import eventually, free_port, whoami


def get_over_connect(web: consulnative.Service, target: str) -> Tuple[str, str]:
    """GET / on `target` dialed through the catalog; returns (the server's leaf serial, the body)."""
    with web.dial(target, timeout=5) as conn:
        conn.settimeout(5)
        conn.sendall(f"GET / HTTP/1.0\r\nHost: {target}\r\n\r\n".encode())
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        assert conn.peer.serial is not None
        return conn.peer.serial, data.decode()


def serials(helper_output: str) -> List[str]:
    return re.findall(r"leaf serial (\S+) ", helper_output)


def test_nginx_serves_connect_clients_with_the_helpers_files_through_a_ca_rotation(agent, client, ready, helper,
                                                                                   nginx, tmp_path):
    tls = tmp_path / "nginx-tls"
    port = free_port()
    nginx_pid = tmp_path / "nginx" / "logs" / "nginx.pid"
    files = helper("nginx", tls, "--signal", "HUP", "--pid-file", str(nginx_pid))
    server = nginx(f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {tls}/cert.pem;
        ssl_certificate_key {tls}/key.pem;
        ssl_client_certificate {tls}/roots.pem;
        ssl_verify_client on;
        ssl_verify_depth 3;
        ssl_session_tickets off;
        location / {{ return 200 "verify=$ssl_client_verify client=$ssl_client_serial\\n"; }}
    }}""")
    client.register("nginx", port=port, address="127.0.0.1")
    web = ready("web")

    first_serial, body = get_over_connect(web, "nginx")  # identity checked: the dial expects svc/nginx
    assert body.startswith("HTTP/1.1 200") and "verify=SUCCESS" in body, body
    assert first_serial == serials(files.output())[-1]

    results: List[Tuple[Optional[str], str]] = []
    stop = threading.Event()

    def keep_calling() -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                results.append(get_over_connect(web, "nginx"))
            except Exception as exc:  # any failure is a test failure below
                results.append((None, repr(exc)))
            time.sleep(0.02)

    caller = threading.Thread(target=keep_calling, daemon=True)
    caller.start()
    reloads = server.reloads()
    agent.rotate_ca()
    new_serial = eventually(lambda: [s for s in serials(files.output()) if s != first_serial][-1:], 20)
    assert new_serial, files.output()
    assert eventually(lambda: server.reloads() > reloads, 10), server.errors()
    assert eventually(lambda: any(s == serials(files.output())[-1] for s, _ in results[-5:]), 15), results[-5:]
    time.sleep(0.3)
    stop.set()
    caller.join(10)
    failures = [r for r in results if r[0] is None or "verify=SUCCESS" not in r[1]]
    assert not failures, failures[:3]
    assert len(results) >= 5
    assert "[emerg]" not in server.errors() and "[crit]" not in server.errors()
    latest, body = get_over_connect(web, "nginx")
    assert latest == serials(files.output())[-1] and "verify=SUCCESS" in body


def test_nginx_as_a_connect_client_is_verified_and_authorized_by_the_listener(agent, client, ready, helper, nginx,
                                                                              tmp_path):
    db = ready("db")
    tls = tmp_path / "nginx-tls"
    plain = free_port()
    helper("nginx", tls)
    refusals: List[consulnative.Refusal] = []
    with WSGIServer(db, whoami) as upstream:
        upstream.listener.on_refused(refusals.append)
        upstream.start()
        nginx(f"""
    server {{
        listen 127.0.0.1:{plain};
        location / {{
            proxy_pass https://127.0.0.1:{upstream.address[1]};
            proxy_ssl_certificate {tls}/cert.pem;
            proxy_ssl_certificate_key {tls}/key.pem;
            proxy_ssl_session_reuse off;
        }}
    }}""")
        with urllib.request.urlopen(f"http://127.0.0.1:{plain}/hello?x=1", timeout=10) as response:
            answer = json.loads(response.read())
        assert answer["peer"] == "nginx"
        assert answer["uri"] == f"spiffe://{agent.trust_domain}/ns/default/dc/dc1/svc/nginx"
        assert (answer["path"], answer["query"]) == ("/hello", "x=1")

        agent.deny("nginx", "db")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{plain}/again", timeout=10)
            raise AssertionError("a denied nginx got an answer")
        except urllib.error.HTTPError as exc:
            assert exc.code == 502
        assert eventually(lambda: refusals, 10)
        assert refusals[0].peer_uri is not None and refusals[0].peer_uri.endswith("/svc/nginx")
        assert "Action: DENY" in refusals[0].message
        assert upstream.listener.counts[0] == 1


def test_pem_files_never_show_a_mismatched_pair_to_a_reader_during_rotations(agent, helper, tmp_path):
    import ssl

    tls = tmp_path / "tls"
    files = helper("web", tls)
    stop = threading.Event()
    seen = {"pairs": 0, "mismatched": 0, "partial": 0, "retried": 0}

    def read_loop() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                generation = Path(tls / "cert.pem").resolve().parent  # one generation: the documented way
                cert, key = (generation / "cert.pem").read_text(), (generation / "key.pem").read_text()
            except FileNotFoundError:
                seen["retried"] += 1  # removed two switches later: read again
                continue
            if not (cert.rstrip().endswith("-----END CERTIFICATE-----") and key.rstrip().endswith("KEY-----")):
                seen["partial"] += 1
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            try:
                context.load_cert_chain(generation / "cert.pem", generation / "key.pem")
            except FileNotFoundError:
                seen["retried"] += 1
                continue
            except ssl.SSLError:
                seen["mismatched"] += 1
            seen["pairs"] += 1

    reader = threading.Thread(target=read_loop, daemon=True)
    reader.start()
    for _ in range(4):
        before = len(set(serials(files.output())))
        agent.rotate_ca()
        assert eventually(lambda: len(set(serials(files.output()))) > before, 20), files.output()
        time.sleep(0.2)
    stop.set()
    reader.join(10)
    assert seen["pairs"] > 20, seen
    assert seen["mismatched"] == 0 and seen["partial"] == 0, seen
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_cert_chain(tls / "cert.pem", tls / "key.pem")  # the plain names, once settled
