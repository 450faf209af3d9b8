"""README command 1: the demo runs netmon on the simulated school and every device is seen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from monitor.demo import simlab
from monitor.demo.school import DEVICES
from tests.conftest import need


def test_demo_monitors_the_simulated_school() -> None:
    need(simlab.snmpsim_available())
    namespaces_before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                       check=True).stdout
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.demo", "--once", "--tour", "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=240, check=False,
        env=dict(os.environ, COLUMNS="200"),
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in out + proc.stderr
    # The tour: each one-off command printed, then its output.
    for device in DEVICES:
        assert f"SNMP_COMMUNITY={device.recording} netmon probe" in out
    assert "NETMON PRINTER" in out
    # The daemon's summary: every simulated device answered SNMP and ping.
    summary = out[out.index("What netmon sees"):out.index("── Which switch port")]
    # the tour's last stop: where a lab PC is plugged in, from the switches' topology
    assert "lab-204-12 (127.0.4.12, 3c:52:82:04:00:0c) is on sw-b2 port 0/3 'Room 204 desk 3'" in out
    for device in DEVICES:
        rows = [line for line in summary.splitlines() if f" {device.name} " in line]
        assert {"icmp", "snmp"} <= {p for row in rows for p in ("icmp", "snmp") if f" {p} " in row}
        assert all(" ok " in row for row in rows), rows
    assert "lab-204-10" in summary and "/metrics" in summary
    assert "the status page" in summary and "alert emails (mail catcher" in summary
    if os.geteuid() == 0:  # the namespace lab: one machine down, one lossy
        assert any("lab-205-pc1" in line and "timeout" in line for line in summary.splitlines())
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=True).stdout
    assert not {line for line in after.splitlines() if "netmon-demo" in line} - set(
        namespaces_before.splitlines()
    ), "the demo left its network namespaces behind"


def test_demo_inventory_mails_alerts_to_the_catcher(tmp_path: Path) -> None:
    """The demo's generated config is valid and sends alert emails to the mail catcher."""
    from monitor.config import load_config
    from monitor.demo.school import demo_config

    path = tmp_path / "netmon.yml"
    path.write_text(demo_config(16100, ["10.1.2.3"], smtp_port=2525))
    cfg = load_config(path)
    assert cfg.alerts.smtp is not None and (cfg.alerts.smtp.host, cfg.alerts.smtp.port) == ("127.0.0.1", 2525)
    assert [r.name for r in cfg.alerts.receivers] == ["it-team"]
    assert cfg.alerts.route.receiver == "it-team"
    path.write_text(demo_config(16100))
    assert load_config(path).alerts.receivers == []  # without a catcher: no email


def test_demo_stopped_with_sigterm_cleans_up() -> None:
    """`kill`/`timeout` stop the demo like Ctrl-C: netmon, the simulator and the
    namespaces go away (Python's default SIGTERM would skip the clean-up)."""
    import signal
    import time

    need(simlab.snmpsim_available())
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                check=True).stdout.splitlines())  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.demo", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, COLUMNS="200"),
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line or time.monotonic() > deadline:
                break
        assert any("Press Ctrl-C" in line for line in lines), "".join(lines)[-3000:]
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, 130), rest[-3000:]  # 130: the signal came mid-print
    assert "Traceback" not in rest
    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                               check=True).stdout.splitlines())  # fmt: skip
    assert not {ns for ns in after - before if "netmon-demo" in ns}, "namespaces left behind"
