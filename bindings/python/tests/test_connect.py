"""Allowed and denied connections, identity checks, discovery and the socket-like connection API."""

from __future__ import annotations

import io
import socket
import threading
import time
from typing import List

import pytest

import consulnative
from conftest import echo_server, eventually, recv_exact


def test_allowed_connection_carries_data_both_ways_and_both_sides_see_the_peer_identity(agent, ready):
    agent.allow("web", "db")
    db, web = ready("db"), ready("web")
    with db.listen("127.0.0.1:0") as listener:
        host, port = listener.address
        assert host == "127.0.0.1" and port > 0
        out = web.dial("db", address=listener.address, timeout=5)
        conn = listener.accept(timeout=5)
        with out, conn:
            out.sendall(b"ping")
            assert recv_exact(conn, 4) == b"ping"
            conn.sendall(b"pong")
            assert recv_exact(out, 4) == b"pong"
            assert conn.peer.service == "web"
            assert conn.peer.datacenter == "dc1"
            assert conn.peer.trust_domain == agent.trust_domain
            assert conn.peer.uri.endswith("/ns/default/dc/dc1/svc/web")
            assert out.peer.service == "db"
            assert out.peer.serial == db.status()["leaf_serial"]
            assert conn.getpeername() == out.getsockname()
            assert conn.info()["local_address"] == listener.address_string
        assert listener.counts == (1, 0)


def test_denied_intention_never_reaches_accept_and_the_listener_is_told_the_reason(agent, ready):
    agent.deny("web", "db")
    db, web = ready("db"), ready("web")
    refusals: List[consulnative.Refusal] = []
    with db.listen() as listener:
        listener.on_refused(refusals.append)
        try:
            out = web.dial("db", address=listener.address, timeout=5)
        except consulnative.ConsulNativeError:
            pass  # refused during the handshake: fine too
        else:
            with out:
                out.settimeout(5)
                try:
                    out.sendall(b"secret")
                    assert out.recv(16) == b"", "a denied client must not get data"
                except consulnative.ConsulNativeError:
                    pass
        with pytest.raises(consulnative.TimeoutError):
            listener.accept(timeout=1)
        assert eventually(lambda: refusals, 5)
        refusal = refusals[0]
        assert refusal.result == consulnative.Result.AUTHORIZATION_DENIED
        assert refusal.reason == "authorization denied"
        assert isinstance(refusal.error, consulnative.AuthorizationDenied)
        assert refusal.peer_uri is not None and refusal.peer_uri.endswith("/svc/web")
        assert "Matched L4 intention: default/web => default/db" in refusal.message
        assert "Action: DENY" in refusal.message
        assert refusal.peer_address[0] == "127.0.0.1"
        assert listener.counts == (0, 1)


def test_deleting_a_deny_intention_lets_the_default_allow_admit_the_client(agent, ready):
    agent.deny("web", "db")
    agent.delete_intention("web", "db")
    db, web = ready("db"), ready("web")
    with db.listen() as listener:
        echo_server(listener)
        with web.dial("db", address=listener.address, timeout=5) as out:
            out.settimeout(5)
            out.sendall(b"hi")
            assert recv_exact(out, 2) == b"hi"


def test_default_deny_agent_refuses_without_an_intention_and_admits_after_allow():
    with consulnative.DevAgent(default_allow=False) as agent, agent.client(blocking_wait_ms=2000) as client:
        db, web = client.service("db"), client.service("web")
        db.wait_ready(10)
        web.wait_ready(10)
        refusals: List[consulnative.Refusal] = []
        with db.listen() as listener:
            listener.on_refused(refusals.append)
            try:
                with web.dial("db", address=listener.address, timeout=5) as out:
                    out.settimeout(3)
                    out.recv(1)
            except consulnative.ConsulNativeError:
                pass
            assert eventually(lambda: refusals, 5)
            assert refusals[0].result == consulnative.Result.AUTHORIZATION_DENIED
            agent.allow("web", "db")
            out = web.dial("db", address=listener.address, timeout=5)
            conn = listener.accept(timeout=5)
            out.sendall(b"hi")
            assert recv_exact(conn, 2) == b"hi"
            out.close()
            conn.close()
        db.close()
        web.close()


def test_dialer_refuses_a_server_whose_identity_is_not_the_expected_service(ready):
    web, impostor = ready("web"), ready("cache")
    with impostor.listen() as listener:
        with pytest.raises(consulnative.IdentityMismatch) as err:
            web.dial("db", address=listener.address, timeout=5)
        assert "svc/cache" in err.value.message and "db" in err.value.message
        assert err.value.code == consulnative.Result.IDENTITY_MISMATCH
        td = impostor.status()["trust_domain"]
        with pytest.raises(consulnative.IdentityMismatch, match="peer certificate mismatch got"):
            web.dial(f"spiffe://{td}/ns/default/dc/dc1/svc/db", address=listener.address, timeout=5)


def test_dial_by_service_name_uses_healthy_registered_instances(client, ready):
    db, web = ready("db"), ready("web")
    with pytest.raises(consulnative.NoInstances):
        web.dial("db", timeout=5)
    with db.listen() as listener:
        client.register("db", port=listener.address[1], id="db-1", address="127.0.0.1", tags=["v1", "py"],
                        check="ttl:30000")
        client.pass_ttl("service:db-1", "ok from python")
        echo_server(listener)
        with web.dial("db", timeout=5) as out:
            out.settimeout(5)
            out.sendall(b"echo")
            assert recv_exact(out, 4) == b"echo"
        client.deregister("db-1")
        with pytest.raises(consulnative.NoInstances):
            web.dial("db", timeout=5)


def test_register_with_a_tcp_check_is_accepted_by_the_agent(client):
    client.register("web", port=8443, check="tcp")
    client.deregister("web")
    with pytest.raises(consulnative.InvalidArgumentError):
        client.register("web", port=8443, check="bogus")


def test_application_peer_check_can_refuse_a_client_the_agent_allowed(ready):
    db, web = ready("db"), ready("web")
    seen: List[str] = []
    refusals: List[consulnative.Refusal] = []
    with db.listen() as listener:
        listener.on_refused(refusals.append)

        def only_api(uri: str, service: str) -> bool:
            seen.append(service)
            return service == "api"

        listener.set_peer_check(only_api)
        try:
            with web.dial("db", address=listener.address, timeout=5) as out:
                out.settimeout(3)
                out.recv(1)
        except consulnative.ConsulNativeError:
            pass
        assert eventually(lambda: refusals, 5)
        assert refusals[0].result == consulnative.Result.REJECTED_BY_APPLICATION
        assert seen == ["web"]
        listener.set_peer_check(None)
        listener.on_refused(None)
        out = web.dial("db", address=listener.address, timeout=5)
        with out, listener.accept(timeout=5) as conn:
            assert conn.peer.service == "web"


def test_half_close_propagates_and_the_reader_sees_end_of_stream(ready):
    db, web = ready("db"), ready("web")
    with db.listen() as listener:
        echo_server(listener)
        with web.dial("db", address=listener.address, timeout=5) as out:
            out.settimeout(5)
            out.sendall(b"abc")
            out.shutdown(socket.SHUT_WR)
            assert recv_exact(out, 3) == b"abc"
            assert out.recv(10) == b""


def test_read_times_out_with_timeout_error_and_the_connection_stays_usable(ready):
    db, web = ready("db"), ready("web")
    with db.listen() as listener:
        echo_server(listener)
        with web.dial("db", address=listener.address, timeout=5) as out:
            out.settimeout(0.2)
            assert out.gettimeout() == 0.2
            start = time.monotonic()
            with pytest.raises(consulnative.TimeoutError) as err:
                out.recv(10)
            assert isinstance(err.value, TimeoutError)  # the builtin, like socket.timeout
            assert 0.15 < time.monotonic() - start < 2
            out.settimeout(5)
            out.sendall(b"still")
            buf = bytearray(5)
            assert out.recv_into(buf) > 0
            rest = recv_exact(out, 5 - len(buf.rstrip(b"\0")))
            assert bytes(buf.rstrip(b"\0")) + rest == b"still"


def test_makefile_gives_buffered_text_and_binary_files(ready):
    db, web = ready("db"), ready("web")
    with db.listen() as listener:
        echo_server(listener)
        with web.dial("db", address=listener.address, timeout=5) as out:
            out.settimeout(5)
            w = out.makefile("wb")
            r = out.makefile("r", encoding="utf-8")
            w.write(b"line one\nline two\n")
            w.flush()
            assert r.readline() == "line one\n"
            assert r.readline() == "line two\n"
            rw = out.makefile("rwb")
            assert isinstance(rw, io.BufferedRWPair)


def test_listener_close_wakes_a_blocked_accept_from_another_thread_with_closed(ready):
    db = ready("db")
    listener = db.listen()
    result: List[BaseException] = []

    def blocked() -> None:
        try:
            listener.accept()
        except BaseException as e:  # noqa: BLE001
            result.append(e)

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.2)
    listener.close()
    t.join(5)
    assert not t.is_alive()
    assert isinstance(result[0], consulnative.ClosedError)

    def port_released() -> bool:
        try:
            socket.create_connection(listener.address, timeout=2).close()
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        return False

    # C-API note: consulnative_listener_close/_free return before the accept loop has dropped its socket, so for
    # a few milliseconds a connect may still succeed (then reset). The port is released shortly after.
    assert eventually(port_released, 2)
    with pytest.raises(consulnative.ClosedError):
        listener.accept(timeout=0)


def test_listens_on_ipv6_loopback(ready):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    db, web = ready("db"), ready("web")
    with db.listen(("::1", 0)) as listener:
        assert listener.address[0] == "::1"
        assert listener.address_string.startswith("[::1]:")
        echo_server(listener)
        with web.dial("db", address=listener.address, timeout=5) as out:
            out.sendall(b"v6")
            assert recv_exact(out, 2) == b"v6"
