"""Third-party Consul clients against the dev agent binary (target/debug/consulnative-dev-agent).

One dev agent per test module, started as a child process; py-consul is imported normally, python-consul2 (which
also installs a package named `consul`) from its own directory through `python_consul2()`.
"""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BINARY = Path(os.environ.get("CONSULNATIVE_DEV_AGENT", ROOT / "target/debug/consulnative-dev-agent"))


class Agent:
    """A running dev agent: its address and process."""

    def __init__(self, *args):
        if not BINARY.exists():
            pytest.exit(f"{BINARY} is missing: build it with `cargo build -p consulnative-devagent`", 2)
        self.proc = subprocess.Popen(
            [str(BINARY), "--http-addr", "127.0.0.1:0", "--exit-on-stdin-eof", "--node-name", "node-a", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        prefix = "consulnative-dev-agent listening on http://"
        assert line.startswith(prefix), line
        self.host, port = line[len(prefix):].rsplit(":", 1)
        self.port = int(port)

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def agent():
    a = Agent()
    yield a
    a.stop()


def python_consul2():
    """The `consul` package of python-consul2, imported under its own name without disturbing py-consul's."""
    path = os.environ.get("PYTHON_CONSUL2_PATH")
    if not path:
        pytest.skip("PYTHON_CONSUL2_PATH is not set (scripts/test-devagent-clients.sh sets it)")
    saved = {k: v for k, v in sys.modules.items() if k == "consul" or k.startswith("consul.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, path)
    try:
        mod = importlib.import_module("consul")
        loaded = {k: v for k, v in sys.modules.items() if k == "consul" or k.startswith("consul.")}
    finally:
        sys.path.remove(path)
        for k in loaded:
            del sys.modules[k]
        sys.modules.update(saved)
    return mod
