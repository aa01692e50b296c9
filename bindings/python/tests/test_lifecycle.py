"""Objects own their handles: close, context managers, __del__, any drop order, interpreter exit with open handles."""

from __future__ import annotations

import gc
import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import consulnative
from conftest import FAST, eventually, recv_exact

NAMES = ("agent", "client", "service", "listener", "server_conn", "client_conn")


def _world():
    agent = consulnative.DevAgent()
    client = agent.client(**FAST)
    service = client.service("db")
    service.wait_ready(10)
    listener = service.listen()
    client_conn = service.dial("db", address=listener.address, timeout=5)
    server_conn = listener.accept(timeout=5)
    listener.on_refused(lambda r: None)
    listener.set_peer_check(lambda uri, svc: True)
    service.on_rotate(lambda s: None)
    return {"agent": agent, "client": client, "service": service, "listener": listener,
            "server_conn": server_conn, "client_conn": client_conn}


# A sample of drop orders (all 720 would take too long): parents first, children first, and interleavings.
ORDERS = sorted(set(itertools.islice(itertools.permutations(NAMES), 0, 720, 97))
                | {NAMES, tuple(reversed(NAMES))})


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(n[:3] for n in o) for o in ORDERS])
def test_dropping_objects_in_any_order_never_crashes(order):
    objs = _world()
    for name in order:
        del objs[name]  # the last reference: __del__ frees the handle
        gc.collect()
    assert not objs


def test_children_keep_working_after_their_parents_are_closed():
    agent = consulnative.DevAgent()
    client = agent.client(**FAST)
    service = client.service("db")
    service.wait_ready(10)
    client.close()  # services keep their client alive internally
    listener = service.listen()
    out = service.dial("db", address=listener.address, timeout=5)
    conn = listener.accept(timeout=5)
    service.close()  # listeners and connections work after the service is freed
    listener.close()  # accepted connections outlive their listener
    out.sendall(b"still here")
    assert recv_exact(conn, 10) == b"still here"
    for obj in (out, conn, agent):
        obj.close()
        obj.close()  # idempotent
    with pytest.raises(consulnative.ClosedError):
        service.wait_ready(0)
    with pytest.raises(consulnative.ClosedError):
        client.service("x")


@pytest.mark.parametrize("reader_timeout", [None, 30.0], ids=["blocking", "with-timeout"])
def test_close_from_another_thread_wakes_a_blocked_recv_with_closed_and_the_peer_reads_eof(ready, reader_timeout):
    db, web = ready("db"), ready("web")
    with db.listen() as listener:
        out = web.dial("db", address=listener.address, timeout=5)
        conn = listener.accept(timeout=5)
        conn.settimeout(reader_timeout)
        got = []
        started = threading.Event()

        def reader() -> None:
            started.set()
            try:
                got.append(conn.recv(10))
            except consulnative.ConsulNativeError as e:
                got.append(e)

        t = threading.Thread(target=reader)
        t.start()
        assert started.wait(5)
        time.sleep(0.2)  # the read is in flight
        assert t.is_alive()
        start = time.monotonic()
        conn.close()  # wakes the read; the handle is freed only once the read has returned
        t.join(5)
        assert not t.is_alive() and time.monotonic() - start < 3
        assert len(got) == 1 and isinstance(got[0], consulnative.ClosedError), got
        assert conn.closed
        with pytest.raises(consulnative.ClosedError):
            conn.recv(1)
        out.settimeout(5)
        assert out.recv(10) == b"", "the peer reads end of stream"
        conn.close()  # idempotent
        out.close()


def test_freeing_a_service_from_inside_its_own_rotation_callback_is_deferred_safely(agent, client):
    svc = client.service("web")
    svc.wait_ready(10)
    done = threading.Event()

    def close_me(s: consulnative.Service) -> None:
        s.close()  # the header forbids freeing the service inside its callback: the binding defers it
        done.set()

    svc.on_rotate(close_me)
    agent.rotate_ca()
    assert done.wait(10)
    assert eventually(lambda: svc.closed)


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys, threading, logging
    import consulnative
    logging.basicConfig(level=logging.DEBUG)
    consulnative.set_logger(level=logging.DEBUG)
    mode = sys.argv[1]
    agent = consulnative.DevAgent()
    client = agent.client(blocking_wait_ms=500, retry_max_ms=100)
    db, web = client.service("db"), client.service("web")
    db.wait_ready(10); web.wait_ready(10)
    db.on_rotate(lambda s: print("rotated", s.name, flush=True))
    web.on_event(lambda e: None)
    listener = db.listen()
    listener.on_refused(lambda r: print("refused", r.reason, flush=True))
    listener.set_peer_check(lambda uri, svc: True)
    out = web.dial("db", address=listener.address, timeout=5)
    conn = listener.accept(timeout=5)
    out.sendall(b"x")
    blocked = consulnative.DevAgent().client().service("never")  # waits forever in a daemon thread
    threading.Thread(target=listener.accept, daemon=True).start()
    threading.Thread(target=conn.recv, args=(10,), daemon=True).start()
    threading.Thread(target=blocked.wait_ready, daemon=True).start()
    if mode == "busy":
        # callbacks and log lines in flight while the interpreter exits
        agent.rotate_ca()
        agent.set_fault("all", "status", 500, "going down")
        for _ in range(3):
            try:
                web.dial("db", address=("127.0.0.1", 1), timeout=0.2)
            except consulnative.ConsulNativeError:
                pass
    elif mode == "agent-down":
        agent.stop()
    print("exiting", flush=True)
    """
)


@pytest.mark.parametrize("mode", ["quiet", "busy", "agent-down"])
def test_interpreter_exit_with_open_handles_and_callbacks_does_not_crash(mode):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(os.path.dirname(consulnative.__file__)),
                                                    env.get("PYTHONPATH")) if p)
    for _ in range(3):  # exit races are timing-dependent: a few runs each
        proc = subprocess.run([sys.executable, "-X", "dev", "-c", EXIT_SCRIPT, mode], env=env, capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "exiting" in proc.stdout
        assert "Fatal Python error" not in proc.stderr
        assert "Segmentation fault" not in proc.stderr


def test_ctrl_c_interrupts_a_blocking_accept_on_the_main_thread():
    import signal

    script = textwrap.dedent(
        """
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored (nohup, &)
        import consulnative
        with consulnative.DevAgent() as agent, agent.client() as client, client.service("db") as db:
            db.wait_ready(10)
            with db.listen() as listener:
                print("waiting", flush=True)
                try:
                    listener.accept()
                except KeyboardInterrupt:
                    print("interrupted", flush=True)
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(consulnative.__file__))
    proc = subprocess.Popen([sys.executable, "-X", "dev", "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "waiting"  # type: ignore[union-attr]
    time.sleep(0.3)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - start < 2
    assert proc.returncode == 0, err
    assert "interrupted" in out
