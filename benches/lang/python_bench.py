#!/usr/bin/env python3
"""Python: the consulnative package against Python's own ``ssl`` module, same certificates, same work.

    cargo build --release
    python3 benches/lang/python_bench.py [--smoke] [--json OUT] [--runs N] [--seconds S] [--explain]

Metrics (every figure is a rate, higher is better):

* handshakes/s: connect + mutual-TLS handshake (+ authorize, library only) + a 1-byte echo + close, one at a time.
  Library: ``web.dial(address=..., service="db")`` to a ``db`` listener whose accept loop runs in a thread of this
  process. Baseline: ``ssl`` client to an ``ssl`` server thread of this process, the same dev-agent leaves and roots
  (written to temp files), CERT_REQUIRED both ways, TLS 1.3 only, no session tickets (the library sends none and
  never resumes), TCP_NODELAY (the library sets it). The baseline checks chains against the roots but neither
  checks SPIFFE identities nor asks the agent to authorize (the library does both).
* echo round trips/s: one established connection, a 64-byte message sent and read back. Library ``sendall``/``recv``
  against a library echo server thread; the library connection ``detach()``-ed on both ends (plain sockets, the
  library pumping TLS on its runtime); ``ssl.SSLSocket`` against an ``ssl`` echo server thread.

Runs alternate library, baseline, library, baseline... so machine noise hits both; each figure is the median of
the runs, with the spread (min..max). Everything stays on 127.0.0.1 and is bounded in time and count. ``--smoke``
only checks that figures come out (a few seconds), never that they beat anything.

The dev agent (certificates, the authorize call of each library handshake) is the ``consulnative-dev-agent``
binary in a child process (``cargo build --release`` builds it beside the library), so its CPU time and context
switches are not in this process's figures; before the in-process agent was removed from the library they were.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[2]
RELEASE_LIB = ROOT / "target" / "release" / "libconsulnative.so"
os.environ.setdefault("CONSULNATIVE_LIB", str(RELEASE_LIB))
sys.path.insert(0, str(ROOT / "bindings" / "python"))
if __name__ == "__main__" and not Path(os.environ["CONSULNATIVE_LIB"]).is_file():
    print(f"python_bench: {os.environ['CONSULNATIVE_LIB']} is missing; run `cargo build --release`", file=sys.stderr)
    sys.exit(2)

import consulnative  # noqa: E402
from consulnative._dev_agent import find_binary as find_dev_agent  # noqa: E402

MESSAGE = bytes(range(64))
MAX_OPS = 2_000_000
# BENCH_CASE=library|detached|baseline runs only that case (for strace/perf of one side; no table then)
CASE_FILTER = os.environ.get("BENCH_CASE")  # a count bound on every timed loop, besides its time bound


def ctx_switches() -> int:
    """Voluntary + involuntary context switches of every thread of this process (Linux /proc)."""
    total = 0
    for path in glob.glob("/proc/self/task/*/status"):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass  # a thread that just ended
    return total


OPS_DONE = [0]


def timed(loop_once: Callable[[], None], seconds: float) -> Tuple[float, float]:
    """Calls ``loop_once`` until ``seconds`` passed (or MAX_OPS); returns (ops per second, switches per op)."""
    n = 0
    cs0 = ctx_switches()
    start = time.perf_counter()
    deadline = start + seconds
    while n < MAX_OPS:
        loop_once()
        n += 1
        if (n & 7) == 0 and time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - start
    OPS_DONE[0] += n
    return n / elapsed, (ctx_switches() - cs0) / n


def recv_exact(recv: Callable[[int], bytes], n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = recv(n - len(out))
        if not chunk:
            raise ConnectionError("peer closed")
        out += chunk
    return out


def nodelay(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def echo_loop(recv: Callable[[int], bytes], send: Callable[[bytes], Any]) -> None:
    try:
        while True:
            data = recv(65536)
            if not data:
                return
            send(data)
    except (OSError, consulnative.ConsulNativeError):
        return


def thread(target: Callable[[], None], name: str) -> threading.Thread:
    t = threading.Thread(target=target, name=name, daemon=True)
    t.start()
    return t


class Setup:
    """A dev agent, services web and db, and the ssl contexts built from their dev-agent certificates."""

    def __init__(self) -> None:
        self.agent = consulnative.DevAgent()
        self.agent.allow("web", "db")
        self.client = self.agent.client()
        self.db = self.client.service("db")
        self.web = self.client.service("web")
        self.db.wait_ready(timeout=20)
        self.web.wait_ready(timeout=20)
        self.tmp = tempfile.TemporaryDirectory(prefix="consulnative-bench-")
        self.server_ctx = self._context(self.db, server=True)
        self.client_ctx = self._context(self.web, server=False)

    def _context(self, svc: Any, server: bool) -> ssl.SSLContext:
        d = self.tmp.name
        name = "server" if server else "client"
        paths = {k: os.path.join(d, f"{name}-{k}.pem") for k in ("leaf", "key", "roots")}
        for kind, text in (("leaf", svc.leaf_pem()), ("key", svc.key_pem()), ("roots", svc.roots_pem())):
            with open(paths[kind], "w") as f:
                f.write(text)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False  # SPIFFE identities are URI SANs, not host names
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(paths["roots"])
        ctx.load_cert_chain(paths["leaf"], paths["key"])
        if server:
            ctx.num_tickets = 0  # like the library: no session tickets (and no client would use them here)
        return ctx

    def close(self) -> None:
        for obj in (self.web, self.db, self.client, self.agent):
            obj.close()
        self.tmp.cleanup()


# -- handshakes -------------------------------------------------------------------------------------------------------


class LibHandshake:
    def __init__(self, s: Setup) -> None:
        self.s = s
        self.listener = s.db.listen("127.0.0.1:0")
        self.address = self.listener.address
        self.server = thread(self._serve, "lib-handshake-server")

    def _serve(self) -> None:
        while True:
            try:
                conn = self.listener.accept()
            except consulnative.ConsulNativeError:
                return  # closed
            try:
                conn.sendall(conn.recv(1))
            except consulnative.ConsulNativeError:
                pass
            finally:
                conn.close()

    def once(self) -> None:
        conn = self.s.web.dial("db", address=self.address, timeout=5)
        try:
            conn.sendall(b"x")
            if conn.recv(1) != b"x":
                raise RuntimeError("no echo")
        finally:
            conn.close()

    def close(self) -> None:
        self.listener.close()
        self.server.join(5)


class SslHandshake:
    def __init__(self, s: Setup) -> None:
        self.s = s
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.address = self.srv.getsockname()[:2]
        self.server = thread(self._serve, "ssl-handshake-server")

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.srv.accept()
            except OSError:
                return  # closed
            try:
                raw.settimeout(5)
                with self.s.server_ctx.wrap_socket(nodelay(raw), server_side=True) as tls:
                    tls.sendall(tls.recv(1))
            except OSError:
                raw.close()

    def once(self) -> None:
        raw = nodelay(socket.create_connection(self.address, timeout=5))
        with self.s.client_ctx.wrap_socket(raw) as tls:
            tls.sendall(b"x")
            if tls.recv(1) != b"x":
                raise RuntimeError("no echo")

    def close(self) -> None:
        try:
            self.srv.shutdown(socket.SHUT_RDWR)  # on Linux this wakes the blocked accept()
        except OSError:
            pass
        self.server.join(5)
        self.srv.close()


# -- echo -------------------------------------------------------------------------------------------------------------


class LibEcho:
    """One library connection; ``detached`` hands both ends over as plain sockets first."""

    def __init__(self, s: Setup, detached: bool) -> None:
        self.listener = s.db.listen("127.0.0.1:0")
        conn = s.web.dial("db", address=self.listener.address, timeout=5)
        server_conn = self.listener.accept(timeout=5)
        if detached:
            self.sock = conn.detach()
            srv = server_conn.detach()
            self.recv, self.send = self.sock.recv, self.sock.sendall
            self.server = thread(lambda: echo_loop(srv.recv, srv.sendall), "lib-echo-detached")
            self._closers = [self.sock.close, srv.close]
        else:
            self.recv, self.send = conn.recv, conn.sendall
            self.server = thread(lambda: echo_loop(server_conn.recv, server_conn.sendall), "lib-echo")
            self._closers = [lambda: conn.shutdown(), conn.close, server_conn.close]

    def once(self) -> None:
        self.send(MESSAGE)
        if recv_exact(self.recv, len(MESSAGE)) != MESSAGE:
            raise RuntimeError("echo mismatch")

    def close(self) -> None:
        for c in self._closers[:1]:
            c()
        self.server.join(5)
        for c in self._closers[1:]:
            c()
        self.listener.close()


class SslEcho:
    def __init__(self, s: Setup) -> None:
        srv = socket.create_server(("127.0.0.1", 0))
        raw = nodelay(socket.create_connection(srv.getsockname()[:2], timeout=5))
        raw_srv, _ = srv.accept()
        srv.close()
        nodelay(raw_srv)
        done: List[ssl.SSLSocket] = []
        t = thread(lambda: done.append(s.server_ctx.wrap_socket(raw_srv, server_side=True)), "ssl-echo-handshake")
        self.tls = s.client_ctx.wrap_socket(raw)
        t.join(5)
        self.tls.settimeout(None)
        server_tls = done[0]
        server_tls.settimeout(None)
        self.server_tls = server_tls
        self.server = thread(lambda: echo_loop(server_tls.recv, server_tls.sendall), "ssl-echo")

    def once(self) -> None:
        self.tls.sendall(MESSAGE)
        if recv_exact(self.tls.recv, len(MESSAGE)) != MESSAGE:
            raise RuntimeError("echo mismatch")

    def close(self) -> None:
        self.tls.shutdown(socket.SHUT_WR)
        self.server.join(5)
        self.tls.close()
        self.server_tls.close()


# -- runner -----------------------------------------------------------------------------------------------------------


def summary(values: List[float]) -> Dict[str, Any]:
    med = statistics.median(values)
    return {
        "median": med,
        "min": min(values),
        "max": max(values),
        "spread_pct": 100.0 * (max(values) - min(values)) / med if med else 0.0,
        "runs": values,
    }


def measure(cases: Dict[str, Any], runs: int, seconds: float, warmup: float) -> Dict[str, Dict[str, Any]]:
    """Interleaves the cases run by run (A, B, C, A, B, C, ...) after a short warm-up of each."""
    if CASE_FILTER:
        cases = {k: v for k, v in cases.items() if k == CASE_FILTER}
    for case in cases.values():
        timed(case.once, warmup)
    rates: Dict[str, List[float]] = {k: [] for k in cases}
    switches: Dict[str, List[float]] = {k: [] for k in cases}
    for _ in range(runs):
        for name, case in cases.items():
            rate, cs = timed(case.once, seconds)
            rates[name].append(rate)
            switches[name].append(cs)
    out = {}
    for name in cases:
        out[name] = summary(rates[name])
        out[name]["ctx_switches_per_op"] = statistics.median(switches[name])
    return out


BASELINE_HANDSHAKE = ("Python ssl client -> ssl server thread; same leaves/roots; CERT_REQUIRED both ways; TLS 1.3; "
                      "no tickets; 1-byte echo; no SPIFFE check, no authorize")
BASELINE_ECHO = "ssl.SSLSocket client <-> ssl.SSLSocket echo server thread; same certificates; TLS 1.3; 64 B"


def run(args: argparse.Namespace) -> Dict[str, Any]:
    s = Setup()
    results: Dict[str, Any] = {
        "language": "python",
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "library": consulnative.version(),
        "library_path": os.environ["CONSULNATIVE_LIB"],
        "runs": args.runs,
        "seconds_per_run": args.seconds,
        "server": "a thread in the benchmark's process (library server for the library client, ssl for ssl)",
        "metrics": [],
    }
    try:
        if args.only in (None, "handshakes"):
            lib_hs, ssl_hs = LibHandshake(s), SslHandshake(s)
            try:
                hs = measure({"library": lib_hs, "baseline": ssl_hs}, args.runs, args.seconds, args.warmup)
            finally:
                lib_hs.close()
                ssl_hs.close()
            results["metrics"].append(metric("handshakes/s", hs, BASELINE_HANDSHAKE))
        if args.only not in (None, "echo"):
            return results
        lib_echo, det_echo, ssl_echo = LibEcho(s, False), LibEcho(s, True), SslEcho(s)
        try:
            ec = measure({"library": lib_echo, "detached": det_echo, "baseline": ssl_echo}, args.runs, args.seconds,
                         args.warmup)
        finally:
            for c in (lib_echo, det_echo, ssl_echo):
                c.close()
        results["metrics"].append(metric("echo round trips/s (64 B)", ec, BASELINE_ECHO))
    finally:
        s.close()
    return results


def metric(name: str, m: Dict[str, Dict[str, Any]], baseline: str) -> Dict[str, Any]:
    if CASE_FILTER:
        return {"metric": name, **m}
    base = m["baseline"]["median"]
    out: Dict[str, Any] = {"metric": name, "baseline_does": baseline}
    for k, v in m.items():
        out[k] = v
    # The ratio is the median of per-run ratios (run i of the library against run i of the baseline, measured
    # seconds apart), which cancels slow drifts of machine load better than a ratio of medians (also given).
    pairs = [a / b for a, b in zip(m["library"]["runs"], m["baseline"]["runs"])]
    out["ratio"] = statistics.median(pairs)
    out["ratio_pairs_min"], out["ratio_pairs_max"] = min(pairs), max(pairs)
    out["ratio_of_medians"] = m["library"]["median"] / base
    if "detached" in m:
        out["ratio_detached"] = statistics.median(a / b for a, b in zip(m["detached"]["runs"], m["baseline"]["runs"]))
    return out


def fmt(x: Dict[str, Any]) -> str:
    return f"{x['median']:,.0f} ({x['min']:,.0f}..{x['max']:,.0f}, ±{x['spread_pct'] / 2:.0f}%)"


def table(results: Dict[str, Any], lang_name: str, lib_label: str, det_label: str) -> str:
    lines = [
        f"{lang_name}: median of {results['runs']} interleaved runs of {results['seconds_per_run']} s each "
        f"(min..max, ±half the spread), runs interleaved lib, [detached,] baseline; server: {results['server']}",
        "",
        f"| metric | {lib_label} | {det_label} | baseline | ratio lib/base: median of per-run ratios (min..max) | ctx switches/op lib, det, base "
        f"| baseline does |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in results["metrics"]:
        det = fmt(m["detached"]) if "detached" in m else "—"
        ratio = f"{m['ratio']:.2f}x ({m['ratio_pairs_min']:.2f}..{m['ratio_pairs_max']:.2f})"
        if "ratio_detached" in m:
            ratio += f"; detached {m['ratio_detached']:.2f}x"
        cs = ", ".join(f"{m[k]['ctx_switches_per_op']:.1f}" if k in m else "—" for k in ("library", "detached",
                                                                                          "baseline"))
        lines.append(f"| {m['metric']} | {fmt(m['library'])} | {det} | {fmt(m['baseline'])} | {ratio} | {cs} "
                     f"| {m['baseline_does']} |")
    return "\n".join(lines)


EXPLAIN = Path(__file__).with_name("ANALYSIS.md")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="a few seconds: checks that figures are produced")
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    p.add_argument("--runs", type=int, help="runs per case (default 15, smoke 2)")
    p.add_argument("--seconds", type=float, help="seconds per run (default 0.7, smoke 0.25)")
    p.add_argument("--only", choices=("handshakes", "echo"), help="run one metric (for profiling)")
    p.add_argument("--explain", action="store_true", help="print the analysis of the gaps after the table")
    args = p.parse_args()
    try:
        find_dev_agent()  # a clear message now rather than a traceback from DevAgent() later
    except FileNotFoundError as e:
        print(f"python_bench: {e}", file=sys.stderr)
        return 2
    args.runs = args.runs or (2 if args.smoke else 15)
    args.seconds = args.seconds or (0.25 if args.smoke else 0.7)
    args.warmup = 0.1 if args.smoke else 0.5
    results = run(args)
    results["smoke"] = bool(args.smoke)
    if CASE_FILTER:
        print(json.dumps({"ops_including_warmup": OPS_DONE[0], "metrics": results["metrics"]}, default=str))
        return 0
    print(table(results, "Python " + results["python"], "consulnative recv/sendall", "detach()ed socket"))
    for m in results["metrics"]:
        for k in ("library", "baseline"):
            if not m[k]["median"] > 0:
                print(f"python_bench: no figure for {m['metric']} {k}", file=sys.stderr)
                return 1
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.explain:
        print()
        print(EXPLAIN.read_text() if EXPLAIN.is_file() else "(no analysis file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
