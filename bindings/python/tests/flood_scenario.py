"""The junk-connection flood of issue 12, as a reusable scenario and a measuring script.

A listener whose refusal callback is slow (it sleeps) is flooded with junk TCP connections (a few bytes that are
not TLS, then close) from a separate process, while a legitimate client dials it every ``probe_interval`` seconds
and echoes a few bytes. Measured: how many legitimate dials succeeded during and after the flood and how long they
took, and this process's peak RSS and thread count.

Run it directly for the figures of the issue's closing note (``--flood 10``); ``test_attack.py`` runs a shorter,
asserting version. Loopback only; every loop is bounded by the flood and observation times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import consulnative

FLOODER = r"""
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + seconds
n = 0
while time.monotonic() < end:
    try:
        s = socket.create_connection((host, port), timeout=1)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        s.close()
        n += 1
    except OSError:
        time.sleep(0.001)
print(n)
"""


def proc_status() -> Tuple[int, int]:
    """(RSS in KiB, threads) of this process."""
    rss = threads = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


@dataclass
class Probe:
    at: float  # seconds since the flood started
    ok: bool
    seconds: float
    error: str = ""


@dataclass
class FloodReport:
    junk_connections: int = 0
    flood_seconds: float = 0.0
    probes: List[Probe] = field(default_factory=list)
    baseline_rss_kib: int = 0
    baseline_threads: int = 0
    peak_rss_kib: int = 0
    peak_threads: int = 0
    refusals_seen: int = 0
    dropped_reports: List[int] = field(default_factory=list)
    stats: Dict[str, Any] = field(default_factory=dict)

    def during(self) -> List[Probe]:
        return [p for p in self.probes if p.at < self.flood_seconds]

    def after(self) -> List[Probe]:
        return [p for p in self.probes if p.at >= self.flood_seconds]

    def summary(self) -> Dict[str, Any]:
        def part(probes: List[Probe]) -> Dict[str, Any]:
            ok = [p.seconds for p in probes if p.ok]
            return {
                "dials": len(probes),
                "admitted": len(ok),
                "max_admit_ms": round(max(ok) * 1000) if ok else None,
                "errors": sorted({p.error for p in probes if not p.ok})[:3],
            }

        return {
            "junk_connections": self.junk_connections,
            "junk_per_second": round(self.junk_connections / max(self.flood_seconds, 0.001)),
            "during_flood": part(self.during()),
            "after_flood": part(self.after()),
            "rss_mib": [round(self.baseline_rss_kib / 1024), round(self.peak_rss_kib / 1024)],
            "threads": [self.baseline_threads, self.peak_threads],
            "refusal_callbacks": self.refusals_seen,
            "dropped_reports": self.dropped_reports[:5],
            "listener_stats": self.stats,
        }


def run_flood(flood_seconds: float = 10.0, observe_seconds: float = 10.0, callback_sleep: float = 1.0,
              probe_interval: float = 0.2, flooders: int = 1, config: Optional[Dict[str, Any]] = None
              ) -> FloodReport:
    """Runs the scenario and returns what it measured."""
    report = FloodReport(flood_seconds=flood_seconds)
    seen = [0]

    def slow_refusal(refusal: consulnative.Refusal) -> None:
        seen[0] += 1
        dropped = getattr(refusal, "dropped", 0)  # absent before issue 12
        if dropped:
            report.dropped_reports.append(dropped)
        time.sleep(callback_sleep)

    with consulnative.DevAgent() as agent:
        with agent.client(blocking_wait_ms=2000, retry_max_ms=300, **(config or {})) as client:
            db, web = client.service("db"), client.service("web")
            db.wait_ready(timeout=10)
            web.wait_ready(timeout=10)
            with db.listen("127.0.0.1:0") as listener:
                listener.on_refused(slow_refusal)
                serve = threading.Thread(target=_echo, args=(listener,), daemon=True)
                serve.start()
                _probe_once(web, listener.address)  # warm up: the first dial pays one-time costs
                report.baseline_rss_kib, report.baseline_threads = proc_status()
                host, port = listener.address
                procs = [subprocess.Popen([sys.executable, "-c", FLOODER, host, str(port), str(flood_seconds)],
                                          stdout=subprocess.PIPE) for _ in range(flooders)]
                start = time.monotonic()
                end = start + flood_seconds + observe_seconds
                stop = threading.Event()
                sampler = threading.Thread(target=_sample, args=(report, stop), daemon=True)
                sampler.start()
                while time.monotonic() < end:
                    t = time.monotonic()
                    ok, error = _probe_once(web, listener.address)
                    report.probes.append(Probe(t - start, ok, time.monotonic() - t, error))
                    time.sleep(max(0.0, probe_interval - (time.monotonic() - t)))
                for p in procs:
                    out, _ = p.communicate(timeout=30)
                    report.junk_connections += int(out.strip() or 0)
                stop.set()
                sampler.join()
                report.refusals_seen = seen[0]
                stats = getattr(listener, "stats", None)  # absent before issue 12, for "before" figures
                report.stats = dict(stats) if isinstance(stats, dict) else {}
    return report


def _sample(report: FloodReport, stop: threading.Event) -> None:
    while not stop.is_set():
        rss, threads = proc_status()
        report.peak_rss_kib = max(report.peak_rss_kib, rss)
        report.peak_threads = max(report.peak_threads, threads)
        stop.wait(0.2)


def _probe_once(web: consulnative.Service, address: Tuple[str, int]) -> Tuple[bool, str]:
    try:
        with web.dial("db", address=address, timeout=5) as conn:
            conn.settimeout(5)
            conn.sendall(b"ping")
            got = b""
            while len(got) < 4:
                chunk = conn.recv(4 - len(got))
                if not chunk:
                    return False, "EOF before the echo"
                got += chunk
            return got == b"ping", ""
    except consulnative.ConsulNativeError as e:
        return False, type(e).__name__ + ": " + e.message[:120]


def _echo(listener: consulnative.Listener) -> None:
    for conn in listener:
        with conn:
            try:
                conn.settimeout(5)
                data = conn.recv(64)
                if data:
                    conn.sendall(data)
            except consulnative.ConsulNativeError:
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flood", type=float, default=10.0, help="seconds of junk connections")
    parser.add_argument("--observe", type=float, default=10.0, help="seconds of probing after the flood")
    parser.add_argument("--callback-sleep", type=float, default=1.0)
    parser.add_argument("--flooders", type=int, default=1, help="junk-sending processes")
    args = parser.parse_args()
    report = run_flood(args.flood, args.observe, args.callback_sleep, flooders=args.flooders)
    json.dump(report.summary(), sys.stdout, indent=2)
    print()
    os._exit(0)  # do not wait for callbacks still sleeping on library threads (the "before" library has hundreds)


if __name__ == "__main__":
    main()
