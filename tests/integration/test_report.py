"""``netmon report availability`` on a real history file (written by the store with a
virtual clock: a known day), in all three formats, and its one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.store.history import SilencePeriod
from probes.result import Sample
from tests.unit.test_history import Lab

ROOT = Path(__file__).resolve().parents[2]
NETMON = ROOT / ".venv" / "bin" / "netmon"
#: Monday 2023-11-20 00:00 UTC, and the day's span as the command takes it.
DAY, H = 1_700_438_400, 3600
PERIOD = ("--since", "2023-11-20T00:00+00:00", "--until", "2023-11-21T00:00+00:00")
CONFIG = """\
schedules:
  school: {days: mon-fri, hours: "07:00-17:00", timezone: UTC}
groups:
  - name: core
    role: switch
    probes: [icmp]
    targets: [{name: sw-core, address: 127.0.0.1}]
  - name: lab-204
    role: lab
    probes: [icmp]
    parent: sw-core
    expected_online: school
    labels: {building: main, room: "204"}
    targets: [{name: pc-01, address: 127.0.0.2}, {name: pc-02, address: 127.0.0.3}]
  - name: printers
    role: printer
    probes: [icmp]
    labels: {building: main, room: library}
    targets: [{name: library-mfp, address: 127.0.0.4}]
"""


def netmon(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([str(NETMON), *args], capture_output=True, text=True, timeout=60,
                          env=env, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A config and, beside it, the history file of one day: sw-core down 08:00-08:30
    (pc-01 and pc-02 with it), pc-01 down again 10:00-11:00, the printer down 12:00-14:00
    with a silence over its first hour, pc-02 down at night (outside its schedule)."""
    tmp = tmp_path_factory.mktemp("report")
    path = tmp / "netmon.yml"
    path.write_text(CONFIG)
    lab = Lab(tmp / "netmon-history.db", start=DAY - H)
    up, down = [Sample.of("netmon_probe_success", 1)], [Sample.of("netmon_probe_success", 0)]
    for name in ("sw-core", "pc-01", "pc-02", "library-mfp"):
        lab.put(DAY - 60, up, target=name)
    for name, start, end, why in [
        ("sw-core", 8, 8.5, "no reply to 3 pings"), ("pc-01", 8, 8.5, "no reply"),
        ("pc-02", 8, 8.5, "no reply"), ("pc-01", 10, 11, "no reply"),
        ("library-mfp", 12, 14, "jammed <b>tray</b>"), ("pc-02", 20, 23, "switched off"),
    ]:  # fmt: skip
        lab.put(DAY + start * H, down, ok=False, target=name, why=why)
        lab.put(DAY + end * H, up, target=name)
    lab.store.record_silences(
        [SilencePeriod("s1", ("target=library-mfp",), DAY + 12 * H, DAY + 13 * H)]
    )
    lab.at(DAY + 24 * H)
    lab.store.close()
    yield path


def test_table(config: Path) -> None:
    done = netmon("report", "availability", "-c", str(config), *PERIOD)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    figures = out.split("Latest")[0].splitlines()
    lines = {line.split()[1]: line for line in figures if line.startswith("│")}
    assert "97.9 %" in lines["sw-core"]  # 23.5 of 24 hours
    assert "89.4 %" in lines["pc-01"]  # 8.5 of 9.5 school hours (08:00-08:30: the switch)
    assert "100 %" in lines["pc-02"]  # down only at night
    assert "95.6 %" in lines["library-mfp"]  # 22 of 23 hours: one hour silenced
    assert "jammed <b>tray</b>" in out  # device text shown as it is
    assert "Latest 6 outages" in out


def test_csv_by_room(config: Path) -> None:
    done = netmon(
        "report", "availability", "-c", str(config), *PERIOD, "--by", "room", "--format", "csv"
    )
    assert done.returncode == 0, done.stderr
    rows = {r["room"]: r for r in csv.DictReader(io.StringIO(done.stdout))}
    assert set(rows) == {"main/204", "main/library"}
    lab = rows["main/204"]
    assert (lab["devices"], lab["down_seconds"], lab["maintenance_seconds"]) == (
        "2",
        "3600",
        "3600",
    )
    assert lab["outside_schedule_seconds"] == str(2 * 14 * H)
    assert float(lab["availability"]) == pytest.approx(18 / 19)


def test_json_by_role(config: Path) -> None:
    done = netmon(
        "report", "availability", "-c", str(config), *PERIOD, "--by", "role", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["since"], report["until"], report["by"]) == (DAY, DAY + 24 * H, "role")
    roles = {r["key"]: r for r in report["rows"]}
    assert roles["printer"]["maintenance_seconds"] == H
    assert roles["switch"]["availability"] == pytest.approx(23.5 / 24)
    assert [o["target"] for o in report["outages"]][:2] == ["pc-02", "library-mfp"]  # newest first


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("disabled", "history is disabled"),
        ("missing", "no history file"),
        ("garbage", "not a netmon history file"),
    ],
)
def test_one_line_errors(tmp_path: Path, setup: str, message: str) -> None:
    path = tmp_path / "netmon.yml"
    path.write_text(CONFIG + ("history: {enabled: false}\n" if setup == "disabled" else ""))
    if setup == "garbage":
        (tmp_path / "netmon-history.db").write_bytes(b"\x00garbage" * 512)
    done = netmon("report", "availability", "-c", str(path))
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("netmon: ")


def test_a_bad_period_is_one_line(config: Path) -> None:
    done = netmon("report", "availability", "-c", str(config), "--since", "last tuesday")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "a span back from now" in done.stderr
