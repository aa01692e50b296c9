"""One meaning for every timeout (the Ruby binding's too): None waits forever, 0 does not wait, negative raises."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any, Callable, List

import pytest

import consulnative
from conftest import FAST, free_port


def test_a_negative_or_nan_timeout_raises_value_error_everywhere_before_anything_happens(ready):
    db, web = ready("db"), ready("web")
    with db.listen() as listener:
        out = web.dial("db", address=listener.address, timeout=5)
        with out, listener.accept(timeout=5):
            calls: List[Callable[[Any], Any]] = [
                lambda t: web.wait_ready(t),
                lambda t: web.dial("db", t, address=listener.address),
                lambda t: web.dial("db", timeout=t),
                lambda t: listener.accept(t),
                lambda t: out.settimeout(t),
                lambda t: asyncio.run(web.open_connection("db", t, address=listener.address)),
                lambda t: consulnative.close_all(t),  # validated before anything is closed
            ]
            for call in calls:
                for bad in (-1, -0.001, math.nan):
                    with pytest.raises(ValueError):
                        call(bad)
                with pytest.raises(TypeError):
                    call("5")
            assert out.gettimeout() is None, "a refused timeout leaves the old one"
            assert listener.counts == (1, 0), "no dial happened"
            assert not out.closed


def test_zero_does_not_wait(ready):
    db, web = ready("db"), ready("web")
    with db.listen() as listener:
        start = time.monotonic()
        with pytest.raises(consulnative.TimeoutError):
            listener.accept(0)
        web.wait_ready(0)  # ready already: returns at once
        out = web.dial("db", address=listener.address, timeout=5)
        with out, listener.accept(timeout=5) as conn:
            out.settimeout(0)
            assert out.gettimeout() == 0
            with pytest.raises(consulnative.TimeoutError):
                out.recv(1)
            out.setblocking(True)
            assert out.gettimeout() is None
            conn.sendall(b"x")
            assert out.recv(1) == b"x"
        assert time.monotonic() - start < 2
    with consulnative.Client(address=f"127.0.0.1:{free_port()}", **FAST) as nowhere:
        with nowhere.service("web") as svc:
            start = time.monotonic()
            with pytest.raises(consulnative.NotReady):
                svc.wait_ready(0)
            assert time.monotonic() - start < 1


def test_none_waits_until_something_happens(ready):
    db, web = ready("db"), ready("web")
    with db.listen() as listener:
        accepted: List[consulnative.Conn] = []
        t = threading.Thread(target=lambda: accepted.append(listener.accept(None)))
        t.start()
        time.sleep(0.6)  # longer than a 250 ms wait slice
        assert t.is_alive() and not accepted
        with web.dial("db", None, address=listener.address) as out:
            t.join(5)
            assert accepted and accepted[0].peer.service == "web"
            out.settimeout(None)
            accepted[0].sendall(b"y")
            assert out.recv(1) == b"y"
            accepted[0].close()


def test_tiny_and_huge_timeouts(ready):
    from consulnative import _ffi

    assert _ffi.timeout_ms(None) == -1
    assert _ffi.timeout_ms(0) == 0 and _ffi.timeout_ms(0.0) == 0
    assert _ffi.timeout_ms(0.0001) == 1, "a positive timeout waits, however small"
    assert _ffi.timeout_ms(1.5) == 1500
    assert _ffi.timeout_ms(math.inf) == -1 and _ffi.timeout_ms(1e300) == -1
    web = ready("web")
    web.wait_ready(math.inf)


def test_a_sliced_wait_on_the_main_thread_reports_the_whole_timeout(ready):
    # The main thread waits in 250 ms slices (so Ctrl-C works); the error must still say the caller's timeout.
    assert threading.current_thread() is threading.main_thread()
    db = ready("db")
    with db.listen() as listener:
        with pytest.raises(consulnative.TimeoutError) as caught:
            listener.accept(timeout=0.6)
        assert "timed out after 600ms" in caught.value.message, caught.value.message
    with consulnative.Client(address=f"127.0.0.1:{free_port()}", **FAST) as nowhere:
        with nowhere.service("web") as svc:
            with pytest.raises(consulnative.NotReady) as not_ready:
                svc.wait_ready(0.6)
            assert "waited 600ms" in not_ready.value.message, not_ready.value.message
