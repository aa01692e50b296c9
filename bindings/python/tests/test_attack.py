"""Attack: a flood of junk connections while the refusal callback is slow (it sleeps 1 s, as in issue 12).

Legitimate clients must keep being admitted during and after the flood, and the process must not grow: the
callback runs on the listener's own thread behind a bounded queue, and what it cannot keep up with is counted.
Bounds are generous (a loaded 2-core machine, a debug build); the assertions are on counts.
"""

from __future__ import annotations

from flood_scenario import run_flood


def test_junk_flood_with_a_sleeping_refusal_callback_leaves_legitimate_clients_admitted():
    report = run_flood(flood_seconds=4, observe_seconds=3, callback_sleep=1.0, probe_interval=0.2,
                       config={"refusal_queue": 2})
    summary = report.summary()
    assert report.junk_connections >= 100, summary  # the flood happened
    failed = [p for p in report.probes if not p.ok]
    assert report.during() and report.after(), summary
    assert not failed, summary
    assert max(p.seconds for p in report.probes) < 5, summary
    # One thread per listener for the callback, whatever the flood: not one per refusal.
    assert report.peak_threads <= report.baseline_threads + 12, summary
    assert report.peak_rss_kib <= report.baseline_rss_kib + 64 * 1024, summary
    # The callback saw a handful, in order; the rest were counted and reported as "N refusals dropped".
    assert report.refusals_seen <= 10, summary
    stats = report.stats
    assert stats["refused"] >= report.junk_connections * 0.9, summary
    assert stats["refusals_dropped"] >= stats["refused"] - report.refusals_seen - 2, summary
    assert report.dropped_reports and report.dropped_reports[0] > 0, summary
    assert stats["limits"]["refusal_queue"] == 2
    assert stats["accepted"] == len(report.probes) + 1  # every probe plus the warm-up
