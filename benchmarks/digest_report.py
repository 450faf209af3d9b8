"""What building the weekly supplies digest costs: :func:`alerts.digest.build_report` over
a real history file of many printers.

    .venv/bin/python benchmarks/digest_report.py                   # 100 printers x 4 supplies
    .venv/bin/python benchmarks/digest_report.py --printers 500 --supplies 6

Fills a fresh history file through the store's own write path (six weeks of readings
every 2 hours per printer: supply levels used at different rates, a page counter, probe
success), then times one ``build_report`` (the digest runs it in a worker thread once
per period; ``netmon report supplies`` runs it in the foreground) and one forecast per
supply alone. The filling is the slow part and is not what is measured.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alerts.digest import build_report
from alerts.forecast import forecast
from alerts.rules import TargetInfo
from probes.result import Sample
from tests.unit.test_history import Lab

DAY = 86400.0
STEP = 2 * 3600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--printers", type=int, default=100)
    parser.add_argument("--supplies", type=int, default=4)
    parser.add_argument("--weeks", type=int, default=6)
    args = parser.parse_args()
    end = time.time()
    start = end - args.weeks * 7 * DAY
    printers = [TargetInfo(f"printer-{i:04}", {"role": "printer", "room": str(i)})
                for i in range(args.printers)]
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp) / "history.db", start=start)
        began = time.perf_counter()
        t = start
        while t <= end - 1800:
            days = (t - start) / DAY
            for i, p in enumerate(printers):
                samples = [Sample.of("netmon_probe_success", 1.0),
                           Sample.of("netmon_printer_pages_total", 100 * days)]
                samples += [Sample.of("netmon_printer_supply_level_ratio",
                                      max(0.0, 0.95 - 0.004 * ((i + k) % 7 + 1) * days),
                                      supply=f"Toner {k}", index=f"1.{k}")
                            for k in range(args.supplies)]  # fmt: skip
                lab.put(t, samples, target=p.name, probe="snmp", interval=STEP)
            lab.at(t)
            t += STEP
        lab.at(end - 1800)
        filled = time.perf_counter() - began
        size = lab.store.path.stat().st_size
        began = time.perf_counter()
        report = build_report(lab.store, printers, end)
        built = time.perf_counter() - began
        points = [(start + n * STEP, 0.9 - 0.001 * n) for n in range(int((end - start) / STEP))]
        began = time.perf_counter()
        for _ in range(100):
            forecast(points, end)
        one = (time.perf_counter() - began) / 100
        lab.store.close()
    n = args.printers * args.supplies
    print(f"history: {args.printers} printers x {args.supplies} supplies, {args.weeks} weeks "
          f"every {STEP / 3600:.0f} h: {size / 1e6:.1f} MB (filled in {filled:.0f} s)")
    print(f"build_report: {built:.2f} s ({built / n * 1000:.1f} ms per supply); "
          f"{len(report.supplies)} supplies listed")
    print(f"forecast alone: {one * 1000:.2f} ms for {len(points)} readings")


if __name__ == "__main__":
    main()
