"""kill -9 during bursts of notifications: lost and duplicate counts (issue 16 item 2).

    nice -n 19 .venv/bin/python benchmarks/kill9_outbox.py                  # 3 runs x 30 kills
    nice -n 19 .venv/bin/python benchmarks/kill9_outbox.py --runs 5 --kills 50
    nice -n 19 .venv/bin/python benchmarks/kill9_outbox.py --notifications 500 --smtp-delay 0.05

Each run is :func:`tests.integration.test_outbox_kill9.kill9_run` (the test's own
experiment, seed = run number): a real ``netmon run`` with N always-firing
``tcp_service_down`` alerts (one notification group each) emails a real aiosmtpd server
that takes ``--smtp-delay`` s over each message; the process is SIGKILLed ``--kills``
times at random moments while it sends, then a last life drains the outbox. Counted by
Message-ID: lost notices (must be 0), extra copies of a message (the at-least-once
window: at most one per kill), groups that got a second distinct notice, tracebacks
in the log. Loopback only (127.77.x.y, port 9, where nothing listens).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.integration.test_outbox_kill9 import kill9_run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--notifications", type=int, default=200)
    ap.add_argument("--smtp-delay", type=float, default=0.1)
    args = ap.parse_args()
    if not (1 <= args.runs <= 50 and 1 <= args.kills <= 500 and 1 <= args.notifications <= 2000):
        ap.error("--runs 1-50, --kills 1-500, --notifications 1-2000")
    print(f"{'run':>3} {'kills':>5} {'mid-burst':>9} {'notices':>7} {'lost':>4} "
          f"{'duplicates':>10} {'renotified':>10} {'tracebacks':>10} {'seconds':>7}")
    bad = 0
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="netmon-kill9-") as tmp:
            r = kill9_run(Path(tmp), kills=args.kills, notifications=args.notifications,
                          smtp_delay=args.smtp_delay, seed=run,
                          drain_timeout=60 + args.notifications * args.smtp_delay * 2)
        print(f"{run:>3} {r.kills:>5} {r.kills_mid_burst:>9} {r.notifications:>7} "
              f"{len(r.lost):>4} {r.duplicates:>10} {len(r.renotified):>10} "
              f"{r.tracebacks:>10} {r.seconds:>7.0f}", flush=True)
        bad += bool(r.lost or r.duplicates > r.kills or r.tracebacks)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
