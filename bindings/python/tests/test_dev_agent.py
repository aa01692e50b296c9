"""DevAgent runs the consulnative-dev-agent binary as a child process: finding it, its lifetime, its controls."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import consulnative
from consulnative import _dev_agent
from conftest import FAST, eventually

BINARY = _dev_agent.BINARY_NAME


def _fake_binary(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / BINARY
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_the_binary_is_found_from_the_variable_then_beside_the_library_then_on_the_path(tmp_path, monkeypatch):
    monkeypatch.delenv(_dev_agent.ENV_VAR, raising=False)
    # beside the library, symlinks resolved: the binary sits beside the real file, not beside the link
    real = tmp_path / "real"
    beside = _fake_binary(real)
    (real / "libconsulnative.so").write_bytes(b"")
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "libconsulnative.so").symlink_to(real / "libconsulnative.so")
    empty_path = tmp_path / "empty-path"
    empty_path.mkdir()
    monkeypatch.setenv("PATH", str(empty_path))
    assert _dev_agent.find_binary(str(tmp_path / "link" / "libconsulnative.so")) == str(beside)
    # on $PATH when not beside the library
    lonely_lib = tmp_path / "lonely" / "libconsulnative.so"
    lonely_lib.parent.mkdir()
    lonely_lib.write_bytes(b"")
    on_path = _fake_binary(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert _dev_agent.find_binary(str(lonely_lib)) == str(on_path)
    # the variable wins over both
    explicit = _fake_binary(tmp_path / "explicit")
    monkeypatch.setenv(_dev_agent.ENV_VAR, str(explicit))
    assert _dev_agent.find_binary(str(tmp_path / "link" / "libconsulnative.so")) == str(explicit)


def test_a_missing_binary_is_a_clear_error_saying_what_was_tried_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.delenv(_dev_agent.ENV_VAR, raising=False)
    lib = tmp_path / "libconsulnative.so"
    lib.write_bytes(b"")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(FileNotFoundError) as err:
        _dev_agent.find_binary(str(lib))
    text = str(err.value)
    assert _dev_agent.ENV_VAR in text and str(tmp_path / BINARY) in text and "$PATH" in text
    assert "cargo build" in text
    monkeypatch.setenv(_dev_agent.ENV_VAR, str(tmp_path / "no-such-agent"))
    with pytest.raises(FileNotFoundError, match=_dev_agent.ENV_VAR):
        consulnative.DevAgent()


def test_the_token_reaches_the_agent_through_its_environment_never_its_command_line(monkeypatch):
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("needs /proc")
    monkeypatch.setenv(_dev_agent.TOKEN_ENV_VAR, "inherited-token")  # must not leak into a token-less agent
    with consulnative.DevAgent(token="s3cret-token") as agent:
        pid = agent._process.pid  # type: ignore[union-attr]
        assert b"s3cret-token" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"{_dev_agent.TOKEN_ENV_VAR}=s3cret-token".encode() in environ
        agent.allow("web", "db")  # intentions need intentions:write: the controls send the token
        agent.delete_intention("web", "db")
    with consulnative.DevAgent() as agent, agent.client(**FAST) as client:
        client.register("web", port=1)  # no token required: the inherited variable was not passed on


def test_stop_ends_and_reaps_the_process_and_the_controls_then_raise_closed():
    agent = consulnative.DevAgent()
    proc = agent._process
    assert proc is not None and proc.poll() is None
    address = agent.address
    agent.stop()
    assert proc.returncode is not None, "reaped"
    agent.stop()  # idempotent
    assert agent.address == address and repr(agent).endswith("stopped>")
    with pytest.raises(consulnative.ClosedError, match="stopped"):
        agent.allow("web", "db")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(consulnative._common.split_address(address), timeout=2).close()
    agent.close()
    agent.close()
    assert agent.closed and repr(agent) == "<consulnative.DevAgent closed>"
    with pytest.raises(consulnative.ClosedError):
        agent.address


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_the_agent_does_not_outlive_a_parent_killed_without_cleanup():
    script = textwrap.dedent(
        """
        import os, signal, consulnative
        agent = consulnative.DevAgent()
        print(agent._process.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no close: only the stdin pipe tells the agent
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(consulnative.__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pid = int(proc.stdout.strip())
    assert eventually(lambda: _gone(pid), 5), f"dev agent {pid} outlived its parent"


def test_control_errors_raise_with_the_agents_answer(agent):
    with pytest.raises(consulnative.InvalidArgumentError, match='unknown fault endpoint "bogus"') as err:
        agent.set_fault("bogus", "status", 500)
    assert "HTTP 400" in err.value.message and agent.address in err.value.message
    with pytest.raises(consulnative.InvalidArgumentError, match='invalid status "99"'):
        agent.set_fault("all", "status", 99)
    with pytest.raises(consulnative.InvalidArgumentError, match="unknown fault kind"):
        agent.set_fault("all", "sideways")
    agent.clear_faults()


def test_a_failed_start_says_why():
    with pytest.raises(consulnative.InvalidArgumentError, match="at least 1s"):
        consulnative.DevAgent(leaf_ttl=0.5)
    with pytest.raises(ValueError):
        consulnative.DevAgent(leaf_ttl=-1)
    with pytest.raises(consulnative.InvalidArgumentError, match="http-addr"):
        consulnative.DevAgent("not an address")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        host, port = busy.getsockname()
        with pytest.raises(consulnative.SocketError, match="in use"):
            consulnative.DevAgent(f"{host}:{port}")


def test_leaf_ttl_reaches_the_agent():
    with consulnative.DevAgent(leaf_ttl=90) as agent, agent.client(**FAST) as client, client.service("web") as web:
        web.wait_ready(10)
        assert web.status()["leaf_valid_before"] - time.time() < 120


def test_the_trust_domain_stays_readable_while_the_roots_endpoint_is_faulted(agent):
    agent.set_fault("roots", "status", 500, "down")
    assert agent.trust_domain.endswith(".consul")
    agent.clear_faults()
