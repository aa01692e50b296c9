"""Library-wide functions, error mapping, logging, and coverage of the whole C header by the binding."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import List

import pytest

import consulnative
from consulnative import _ffi
from conftest import eventually

REPO = Path(__file__).resolve().parents[3]
HEADER = REPO / "include" / "consulnative.h"
PACKAGE = Path(consulnative.__file__).resolve().parent


def test_version_is_the_library_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", consulnative.version())
    cargo = (REPO / "Cargo.toml").read_text()
    assert f'version = "{consulnative.version()}"' in cargo


def test_every_result_code_has_a_name_and_its_own_exception_class():
    classes = set()
    for code in consulnative.Result:
        name = consulnative.result_name(code)
        assert name and name != "unknown result", code
        if code == consulnative.Result.OK:
            continue
        cls = consulnative.error_class(code)
        assert cls is not consulnative.ConsulNativeError, code
        assert issubclass(cls, consulnative.ConsulNativeError)
        assert cls.code == code
        classes.add(cls)
    assert len(classes) == len(consulnative.Result) - 1
    assert consulnative.result_name(999) == "unknown result"
    assert consulnative.error_class(999) is consulnative.ConsulNativeError
    assert issubclass(consulnative.TimeoutError, TimeoutError)
    assert issubclass(consulnative.AgentUnreachable, consulnative.AgentError)
    assert issubclass(consulnative.AgentPermissionDenied, consulnative.AgentError)


def test_result_codes_match_the_header():
    text = HEADER.read_text()
    for m in re.finditer(r"CONSULNATIVE_RESULT_(\w+) = (\d+)", text):
        assert consulnative.Result[m.group(1)] == int(m.group(2))
    assert len(re.findall(r"CONSULNATIVE_RESULT_\w+ = \d+", text)) == len(consulnative.Result)


def test_the_error_message_is_read_on_the_failing_thread():
    with pytest.raises(consulnative.InvalidArgumentError) as err:
        consulnative.Client(no_such_key="x")
    assert "no_such_key" in err.value.message
    assert consulnative.last_error() == err.value.message
    other: List[str] = []
    t = threading.Thread(target=lambda: other.append(consulnative.last_error()))
    t.start()
    t.join()
    assert "no_such_key" not in other[0], "last_error is per thread"


def test_library_log_lines_reach_python_logging(ready, caplog):
    caplog.set_level(logging.DEBUG, logger="consulnative")
    consulnative.set_logger(level=logging.DEBUG)
    try:
        db, web = ready("db"), ready("web")
        with db.listen() as listener:
            pass
        assert eventually(lambda: any("listening on" in r.getMessage() for r in caplog.records), 5)
        assert any(r.levelno == logging.INFO and r.name == "consulnative" for r in caplog.records)
        caplog.clear()
        consulnative.set_logger(None)  # back to the library default: nothing reaches Python
        with db.listen():
            pass
        assert not [r for r in caplog.records if "listening on" in r.getMessage()]
    finally:
        consulnative.set_logger()  # the package default: WARNING and up


def test_refused_connections_are_logged_as_warnings_by_default(agent, ready, caplog):
    caplog.set_level(logging.WARNING, logger="consulnative")
    agent.deny("web", "db")
    db, web = ready("db"), ready("web")
    with db.listen() as listener:
        try:
            with web.dial("db", address=listener.address, timeout=5) as out:
                out.settimeout(3)
                out.recv(1)
        except consulnative.ConsulNativeError:
            pass
        assert eventually(lambda: any("refused a connection" in r.getMessage() for r in caplog.records), 5)
    record = next(r for r in caplog.records if "refused a connection" in r.getMessage())
    assert record.levelno == logging.WARNING


def _header_functions() -> List[str]:
    return re.findall(r"^\S.*?\b(consulnative_\w+)\(", HEADER.read_text(), flags=re.M)


# The in-process dev agent is leaving the library (DevAgent runs the consulnative-dev-agent binary instead): the
# binding must not declare these, or importing it would fail against a library without them.
DEV_AGENT_PREFIX = "consulnative_dev_agent_"


def test_every_function_in_the_header_is_declared_and_used_by_the_binding():
    exported = {f for f in _header_functions() if not f.startswith(DEV_AGENT_PREFIX)}
    assert len(exported) > 35
    assert not [f for f in _ffi.DECLARED if f.startswith(DEV_AGENT_PREFIX)]
    assert exported == set(_ffi.DECLARED), exported ^ set(_ffi.DECLARED)
    sources = "\n".join(p.read_text() for p in PACKAGE.glob("*.py") if p.name != "_ffi.py")
    ffi_src = (PACKAGE / "_ffi.py").read_text()
    ffi_body = ffi_src.split("_SIGNATURES = {", 1)[0] + ffi_src.split("DECLARED = frozenset", 1)[1]
    unused = sorted(f for f in exported if f"lib.{f}" not in sources and f"lib.{f}" not in ffi_body)
    assert not unused, f"exported but unused by the binding: {unused}"
