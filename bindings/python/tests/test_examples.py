"""The examples in examples/python run against a dev agent: an http.server service and a client calling it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import consulnative

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "python"


def _env(agent: consulnative.DevAgent) -> dict:
    env = dict(os.environ)
    env["CONSUL_HTTP_ADDR"] = agent.address
    package_root = str(Path(consulnative.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def test_http_server_example_serves_the_http_client_example_through_discovery(agent):
    agent.allow("web", "api")
    env = _env(agent)
    server = subprocess.Popen([sys.executable, "-X", "dev", str(EXAMPLES / "http_server.py"), "--name", "api"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        assert "api listening on 127.0.0.1:" in line, line + server.stderr.read()  # type: ignore[union-attr]
        client = subprocess.run([sys.executable, "-X", "dev", str(EXAMPLES / "http_client.py"), "--as", "web", "api",
                                 "/hello"], env=env, capture_output=True, text=True, timeout=30)
        assert client.returncode == 0, client.stderr
        status, body = client.stdout.strip().split(" ", 1)
        assert status == "200"
        answer = json.loads(body)
        assert answer["hello"] == "web" and answer["path"] == "/hello" and answer["from"] == "api"
        assert answer["caller_uri"].endswith("/svc/web")

        agent.deny("web", "api")  # the same client is now refused before any HTTP is exchanged
        denied = subprocess.run([sys.executable, "-X", "dev", str(EXAMPLES / "http_client.py"), "--as", "web", "api"],
                                env=env, capture_output=True, text=True, timeout=30)
        assert denied.returncode != 0
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, err


def test_asyncio_example_echoes_with_the_caller_identity():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(consulnative.__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-X", "dev", str(EXAMPLES / "asyncio_echo.py")], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["web: hello", "web: connect"]
