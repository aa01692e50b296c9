"""Fixtures of the third-party integration tests (scripts/test-integrations.sh): a dev agent, ready services, the
`consulnative` CLI and nginx run from a temporary prefix (own config, pid and log files; stopped at the end)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List

import pytest

import consulnative

FAST = {"blocking_wait_ms": 2000, "retry_max_ms": 300}
REPO = Path(__file__).resolve().parents[3]


def eventually(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def whoami(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app answering with the caller's verified identity and what it asked."""
    body = json.dumps({
        "peer": environ.get("consulnative.peer_service"), "uri": environ.get("consulnative.peer_uri"),
        "path": environ["PATH_INFO"], "query": environ["QUERY_STRING"], "body": environ["wsgi.input"].read().decode(),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def agent() -> Iterator[consulnative.DevAgent]:
    with consulnative.DevAgent() as a:
        yield a


@pytest.fixture
def client(agent: consulnative.DevAgent) -> Iterator[consulnative.Client]:
    with agent.client(**FAST) as c:
        yield c


@pytest.fixture
def ready(client: consulnative.Client) -> Iterator[Callable[[str], consulnative.Service]]:
    made: List[consulnative.Service] = []

    def make(name: str) -> consulnative.Service:
        svc = client.service(name)
        svc.wait_ready(timeout=10)
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.close()


def cli_path() -> str:
    path = os.environ.get("CONSULNATIVE_CLI") or str(REPO / "target" / "debug" / "consulnative")
    assert Path(path).is_file(), f"build the CLI first (cargo build): {path}"
    return path


class Helper:
    """`consulnative pem-files` running as a child process."""

    def __init__(self, agent: consulnative.DevAgent, service: str, directory: Path, *reload: str) -> None:
        env = dict(os.environ, CONSUL_HTTP_ADDR=agent.address)
        self.log = open(directory.parent / f"helper-{service}.log", "w+")
        self.proc = subprocess.Popen([cli_path(), "pem-files", "--service", service, "--dir", str(directory), *reload],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        assert eventually(lambda: (directory / "key.pem").exists() or self.proc.poll() is not None, 15)
        assert self.proc.poll() is None, self.output()

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def helper(agent: consulnative.DevAgent) -> Iterator[Callable[..., Helper]]:
    started: List[Helper] = []

    def start(service: str, directory: Path, *reload: str) -> Helper:
        h = Helper(agent, service, directory, *reload)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()


class Nginx:
    """nginx from Debian's package, run in the foreground from its own prefix (config, pid, logs, temp dirs)."""

    def __init__(self, prefix: Path, http_block: str) -> None:
        self.prefix = prefix
        for d in ("logs", "tmp"):
            (prefix / d).mkdir(parents=True, exist_ok=True)
        self.pid_file = prefix / "logs" / "nginx.pid"
        temp = "".join(f"{name}_temp_path {prefix}/tmp/{name};\n" for name in
                       ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (prefix / "nginx.conf").write_text(f"""
worker_processes 1;
pid {self.pid_file};
error_log {prefix}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/logs/access.log;
    {temp}
    {http_block}
}}
""")
        binary = os.environ.get("CONSULNATIVE_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                      "-e", str(prefix / "logs" / "error.log"), "-g", "daemon off;"],
                                     env={k: v for k, v in os.environ.items() if k != "NGINX"},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        assert eventually(lambda: self.pid_file.exists() or self.proc.poll() is not None, 10), self.errors()
        assert self.proc.poll() is None, self.errors()

    def errors(self) -> str:
        log = self.prefix / "logs" / "error.log"
        return log.read_text() if log.exists() else ""

    def reloads(self) -> int:
        return self.errors().count("reconfiguring")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[str], Nginx]]:
    started: List[Nginx] = []

    def start(http_block: str, name: str = "nginx") -> Nginx:
        n = Nginx(tmp_path / name, http_block)
        started.append(n)
        return n

    yield start
    for n in started:
        n.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
