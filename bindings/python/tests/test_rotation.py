"""CA rotation: open connections survive, new handshakes use the new leaf, rotation callbacks fire."""

from __future__ import annotations

import threading
from typing import List

import consulnative
from conftest import echo_server, eventually, recv_exact


def test_ca_rotation_keeps_an_open_connection_and_new_handshakes_use_the_new_leaf(agent, ready):
    db, web = ready("db"), ready("web")
    rotated: List[str] = []
    events: List[consulnative.Event] = []
    got_rotation = threading.Event()

    def on_rotate(svc: consulnative.Service) -> None:
        rotated.append(svc.name)
        got_rotation.set()

    rotate_id = db.on_rotate(on_rotate)
    event_id = db.on_event(events.append)
    with db.listen() as listener:
        echo_server(listener)
        with web.dial("db", address=listener.address, timeout=5) as open_conn:
            open_conn.settimeout(5)
            open_conn.sendall(b"before")
            assert recv_exact(open_conn, 6) == b"before"
            old_serial = db.status()["leaf_serial"]
            old_root = db.status()["active_root_id"]

            agent.rotate_ca()
            assert eventually(lambda: db.status()["leaf_serial"] != old_serial and db.status()["roots"] == 2)
            assert db.status()["active_root_id"] != old_root
            assert got_rotation.wait(10)
            assert rotated[0] == "db"
            assert consulnative.Event.LEAF_ROTATED in events
            assert eventually(lambda: consulnative.Event.ROOTS_CHANGED in events, 5)

            open_conn.sendall(b"after")
            assert recv_exact(open_conn, 5) == b"after", "the open connection survives the rotation"

            assert eventually(lambda: web.status()["roots"] == 2)
            with web.dial("db", address=listener.address, timeout=5) as fresh:
                assert fresh.peer.serial == db.status()["leaf_serial"], "a new handshake presents the new leaf"
                fresh.sendall(b"new")
                assert recv_exact(fresh, 3) == b"new"
    db.remove_callback(rotate_id)
    db.remove_callback(event_id)
    count = len(rotated)
    agent.rotate_ca()
    assert eventually(lambda: db.status()["roots"] >= 2)
    assert len(rotated) == count, "a removed callback is not called"


def test_a_peer_frozen_on_the_old_leaf_is_still_admitted_after_rotation(agent, ready):
    """Python ssl keeps presenting the pre-rotation web leaf; the rotated db listener still admits it."""
    import socket

    from test_interop import client_context

    db, web = ready("db"), ready("web")
    ctx = client_context(web.roots_pem(), web.leaf_pem(), web.key_pem())
    old_serial = db.status()["leaf_serial"]
    agent.rotate_ca()
    assert eventually(lambda: db.status()["leaf_serial"] != old_serial and db.status()["roots"] == 2)
    with db.listen() as listener, socket.create_connection(listener.address, timeout=5) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(b"old")
            with listener.accept(timeout=5) as conn:
                assert recv_exact(conn, 3) == b"old"
