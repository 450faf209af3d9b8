"""The demo's pre-filled history, from the simulated school's real probe results: the
outages it promises, four weeks of toner with one refill, uplink traffic as rates, and
a file the daemon's store carries on writing."""

from __future__ import annotations

import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from monitor.demo import history_fill, simlab
from monitor.demo.school import DEVICES, demo_config
from monitor.store.history import HistoryStore
from monitor.store.results import ResultStore
from probes.result import ProbeResult, Sample, Status
from tests.conftest import need


def test_the_demo_history(tmp_path: Path) -> None:
    need(simlab.snmpsim_available())
    port = simlab.free_udp_port(DEVICES[0].address)
    config = tmp_path / "netmon.yml"
    now = time.time()
    with simlab.start_snmpsim(host=DEVICES[0].address, port=port,
                              extra_endpoints=[(d.address, port) for d in DEVICES[1:]]):  # fmt: skip
        config.write_text(demo_config(port, smtp_port=2525))
        written = history_fill.fill(config, now=now)
    assert written > 10_000
    path = tmp_path / "netmon-history.db"  # beside the demo's alert state file
    store = HistoryStore.open_readonly(path)
    try:
        outages = {o.target: o for o in store.outages(since=now - 86400)}
        assert set(outages) == {"lab-204-10", "office-copier"}
        assert all(o.end is not None and 0 < o.end - o.start < 3600 for o in outages.values())
        (black, *others) = store.series(
            "library-mfp", "netmon_printer_supply_level_ratio", since=now - 28 * 86400
        )
        levels = [p.value for p in black.points]
        jumps = [b - a for a, b in pairwise(levels) if b > a + 0.01]
        assert len(jumps) == 1 and jumps[0] > 0.5  # replaced once, ten days ago
        assert black.points[0].t < now - 27 * 86400
        assert others and all(s.points[0].value > s.points[-1].value for s in others)
        rates = store.series("sw-core", "netmon_interface_receive_bytes_total", since=now - 86400)
        assert max(p.value for s in rates for p in s.points) > 1e5  # bytes/s at the busiest
        assert store.running(0, now) and store.changes("sw-core", since=0)
    finally:
        store.close()

    # netmon run carries on in the same file: same series, a new running period.
    daemon_store = HistoryStore(path)
    daemon_store.start(background=False)
    results = ResultStore()
    results.subscribe(daemon_store.record)
    live = ProbeResult(Status.OK, "3 of 3 echo replies", [Sample.of("netmon_probe_success", 1)],
                       probe="icmp", target="lab-204-10", started_at=time.time())  # fmt: skip
    results.put(live, {}, 10.0)
    daemon_store.flush()
    catalog = daemon_store.catalog("lab-204-10")
    daemon_store.close()
    assert len([c for c in catalog if c[1] == "netmon_probe_success"]) == 1


def test_the_demo_outages_lie_inside_the_filled_day_at_any_hour() -> None:
    """Whatever the time the demo starts, both made-up outages are whole and inside the
    day it fills (a start at 02:30 once cut the lab PC's night outage off)."""
    from types import SimpleNamespace

    jobs: list = [SimpleNamespace(target=SimpleNamespace(name=n, role=r))
                  for n, r in (("lab-204-10", "lab"), ("office-copier", "printer"))]  # fmt: skip
    midnight = datetime(2026, 12, 3).timestamp()
    for minute in range(0, 24 * 60, 7):
        now = midnight + minute * 60
        spans = history_fill.demo_outages(now, jobs)
        assert set(spans) == {"lab-204-10", "office-copier"}
        for (start, end), in spans.values():
            assert now - history_fill.DAY < start < end < now, (minute, start - now, end - now)
            assert 0.5 * 3600 < end - start < 3600
