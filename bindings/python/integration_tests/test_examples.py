"""The integration examples run as a user would run them: examples/python/http_adapters.py,
examples/python/asgi_wsgi_servers.py, examples/ruby/rack_server.rb and examples/nginx/demo.sh."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def run(*argv: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO / "bindings" / "python"))
    env.pop("CONSUL_HTTP_ADDR", None)
    out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_the_http_adapters_example_calls_by_name_then_shows_the_denial():
    out = run(sys.executable, "examples/python/http_adapters.py")
    assert "httpx: {'caller': 'web', 'path': '/items', 'query': 'page=2'}" in out
    assert "requests: {'caller': 'web', 'path': '/items', 'query': 'page=3'}" in out
    assert "httpx after deny: ConnectDenied" in out and "Action: DENY" in out


def test_the_servers_example_greets_the_caller_from_wsgi_and_asgi():
    out = run(sys.executable, "examples/python/asgi_wsgi_servers.py")
    assert "WSGI says hello to web (spiffe://" in out and "ASGI says hello to web" in out


def test_the_rack_example_serves_net_http_and_shows_the_denial():
    out = run("ruby", "-w", "-Ibindings/ruby/lib", "examples/ruby/rack_server.rb")
    assert "hello web (spiffe://" in out and "from /hello" in out
    assert "after deny: ConsulNative::AuthorizationDenied" in out


def test_the_nginx_demo_sees_a_new_leaf_after_the_rotation():
    out = run("bash", "examples/nginx/demo.sh")
    answers = [line for line in out.splitlines() if line.startswith("nginx (serial ")]
    assert len(answers) >= 2 and "client certificate SUCCESS" in answers[0]
    assert answers[0].split(")")[0] != answers[-1].split(")")[0], answers
