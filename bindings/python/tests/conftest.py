"""Fixtures: a dev agent per test, clients with fast watch timing, ready services, and an eventually() helper."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest

import consulnative

# Short blocking waits and retries, as the Rust ABI tests use.
FAST = {"blocking_wait_ms": 2000, "retry_max_ms": 300}


def eventually(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def echo_server(listener: consulnative.Listener) -> threading.Thread:
    """Accepts connections until the listener closes and echoes each one until EOF."""

    def serve(conn: consulnative.Conn) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except consulnative.ConsulNativeError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def loop() -> None:
        for conn in listener:
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def recv_exact(conn: Any, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out
