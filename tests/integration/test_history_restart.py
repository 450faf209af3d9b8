"""History survives a restart of the real ``netmon run``: an outage of a loopback TCP
service that starts in the first run continues in the second (one row, its first
start), the gap between the runs is a separate running period (unknown time, not
down), and the report read while the daemon runs sees all of it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from monitor.demo.simlab import free_tcp_port, stop_process, wait_ready
from monitor.store.history import HistoryError, HistoryStore

ROOT = Path(__file__).resolve().parents[2]
NETMON = ROOT / ".venv" / "bin" / "netmon"


def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except HistoryError:  # the file is not there yet
            found = None
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def read(path: Path, fn: Callable[[HistoryStore], Any]) -> Any:
    """Open the daemon's file read-only (as `netmon report` does), read, close."""
    store = HistoryStore.open_readonly(path)
    try:
        return fn(store)
    finally:
        store.close()


@contextmanager
def netmon_run(config: Path, listen: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen([str(NETMON), "run", "-c", str(config), "--listen", listen],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)  # fmt: skip
    try:
        assert wait_ready(f"http://{listen}", proc, 30), log.read_text()[-2000:]
        yield proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()[-2000:]
    finally:
        stop_process(proc)


def test_history_survives_a_restart_in_the_middle_of_an_outage(tmp_path: Path) -> None:
    service = socket.create_server(("127.0.0.1", 0))
    port = service.getsockname()[1]
    config = tmp_path / "netmon.yml"
    config.write_text(f"""\
defaults: {{interval: 1s, tcp: {{timeout: 1s}}}}
groups:
  - name: servers
    role: server
    probes: [tcp]
    tcp_ports: [{port}]
    labels: {{room: "office"}}
    targets: [{{name: web-1, address: 127.0.0.1}}]
""")
    history = tmp_path / "netmon-history.db"
    listen = f"127.0.0.1:{free_tcp_port()}"
    log = tmp_path / "netmon.log"
    outages = lambda store: store.outages("web-1", since=0)

    with netmon_run(config, listen, log):
        until(lambda: read(history, lambda s: s.changes("web-1", since=0)), "the first result")
        service.close()  # the service goes away: refused
        (first,) = until(lambda: read(history, outages), "the outage row")
        assert first.end is None and first.status == "refused"
        stopped = time.time()
    time.sleep(1.5)  # netmon is off: unknown time
    with netmon_run(config, listen, log):
        time.sleep(2.5)  # a few probe runs, all refused again
        (still,) = read(history, outages)
        assert (still.start, still.end) == (first.start, None)
        service = socket.create_server(("127.0.0.1", port))  # back
        (closed,) = until(lambda: [o for o in read(history, outages) if o.end], "the outage's end")
        assert closed.start == first.start and closed.end > stopped + 1.5
        report = subprocess.run(
            [str(NETMON), "report", "availability", "-c", str(config), "--since", "1h",
             "--format", "json", "--by", "room"],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
    service.close()
    assert report.returncode == 0, report.stderr
    (row,) = json.loads(report.stdout)["rows"]
    assert row["key"] == "office"
    assert row["down_seconds"] > 2  # the outage's time in both runs...
    assert row["unknown_seconds"] > 3590  # ...not the gap between them (nor the hour before)

    runs = read(history, lambda s: s.running(0, time.time()))
    assert len(runs) == 2 and runs[1][0] - runs[0][1] >= 1.5
    points = read(history, lambda s: s.series("web-1", "netmon_probe_success", since=0, step=0))
    values = [p.value for p in points[0].points]
    assert values[0] == 1 and 0 in values and values[-1] == 1
