"""What acknowledgements add to the notifier's one-second tick: the dispatcher reads the
acknowledgements of every alert each time (:func:`alerts.ack.current_acks`).

    .venv/bin/python benchmarks/ack_dispatch.py                    # 10,000 alerts
    .venv/bin/python benchmarks/ack_dispatch.py --alerts 1000 --acks 0 100 1000

Builds the alerts in memory, stores the acknowledgements in a state file on disk
(SQLite WAL, as the daemon does) and times ``current_acks`` over all the alerts (median
of 21 runs), and one whole ``Dispatcher.dispatch`` of those alerts with nothing due.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alerts import ack
from alerts.db import open_db
from alerts.notify.dispatcher import Dispatcher
from alerts.notify.outbox import Outbox
from tests.unit.test_notify_dispatch import make_alert, settings


def median_ms(fn: object, runs: int = 21) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--acks", type=int, nargs="+", default=[0, 100, 1000])
    opts = parser.parse_args()
    alerts = [make_alert(f"pc-{i}", building=f"b{i % 20}", since=float(i)) for i in range(opts.alerts)]
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_db(Path(tmp) / "state.db")
        dispatcher = Dispatcher(Outbox(conn), settings(group_wait="1h"))
        dispatcher.dispatch(alerts, 0.0)  # the groups exist; nothing is due after this
        done = 0
        print(f"{opts.alerts} firing alerts")
        for n in sorted(opts.acks):
            ack.acknowledge(conn, alerts[done:n], author="bench", comment="", via="cli", now=1.0)
            done = max(done, n)
            read = median_ms(lambda: ack.current_acks(conn, alerts))
            tick = median_ms(lambda: dispatcher.dispatch(alerts, 10.0), runs=5)
            print(f"  {n:>6} acknowledged: current_acks {read:7.2f} ms, whole dispatch {tick:7.1f} ms")
        conn.close()


if __name__ == "__main__":
    main()
