"""README command 1: the demo starts the simulated school and every probe in its tour works."""

from __future__ import annotations

import os
import subprocess
import sys

from monitor import demo, simlab
from tests.conftest import need


def test_demo_tour_runs_against_the_simulated_school() -> None:
    need(simlab.snmpsim_available())
    namespaces_before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.demo", "--once"],
        capture_output=True, text=True, timeout=180, check=False, env=dict(os.environ, COLUMNS="160"),
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    for device in demo.SCHOOL:
        assert f"── {device.name}" in out
        assert f"SNMP_COMMUNITY={device.recording} netmon probe {device.command}" in out
    assert "Traceback" not in out + proc.stderr
    # Every simulated SNMP device answered: one "ok" summary line per device.
    assert out.count("  ok  (") >= len(demo.SCHOOL), out
    assert "Supplies" in out and "Interfaces" in out
    for address in demo.LAB_ROOM[:6]:
        assert address in out
    if os.geteuid() == 0:  # the namespace lab: one machine down, one lossy
        assert "timeout" in out and "198.18.201.2" in out and "198.18.202.2" in out
    assert "refused" in out  # the closed TCP port
    assert "NETMON PRINTER" in out.upper()  # the Nagios line
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not {line for line in after.splitlines() if "netmon-demo" in line} - set(
        namespaces_before.splitlines()
    ), "the demo left its network namespaces behind"
