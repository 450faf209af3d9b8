"""The real ``netmon`` console script against real agents and sockets on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.demo import simlab
from tests.conftest import COMMUNITY, need
from tests.snmprec import RECORDINGS, column, raw_lines

NETMON = Path(sys.executable).parent / "netmon"
HP = RECORDINGS / "printer" / "hp-color-laserjet-pro-m252dw.snmprec"
HP_COMMUNITY = "printer/hp-color-laserjet-pro-m252dw"
SUPPLIES = "1.3.6.1.2.1.43.11.1.1"
SECRET = "s3cret-Community-Xy9"
#: Fast failure for silent agents.
QUICK = ["--timeout", "0.3s", "--retries", "0"]


def netmon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [str(NETMON), *args], capture_output=True, text=True, timeout=60, env=full_env, check=False
    )


def hp_supplies() -> dict[str, int]:
    """Supply description -> level in percent, computed from the recording itself."""
    desc = column(HP, SUPPLIES, 6)
    level = column(HP, SUPPLIES, 9)
    maximum = column(HP, SUPPLIES, 8)
    return {desc[i]: round(int(level[i]) * 100 / int(maximum[i])) for i in desc}


def hp_sys_descr() -> str:
    return next(v for o, _, v in raw_lines(HP) if o == "1.3.6.1.2.1.1.1.0")


@pytest.fixture
def closed_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listening_tcp_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


# --- printer against snmpsim -------------------------------------------------------------


def test_printer_table_shows_every_supply_with_level_and_state(snmpsim: simlab.Agent) -> None:
    proc = netmon("probe", "printer", snmpsim.endpoint, "--community", HP_COMMUNITY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for description, pct in hp_supplies().items():
        line = next((ln for ln in lines if description in ln), None)
        assert line is not None, f"{description!r} missing from:\n{proc.stdout}"
        assert f"{pct}%" in line and "█" in line
        assert any(word in line for word in ("OK", "low", "EMPTY")), line
    assert hp_sys_descr() in proc.stdout  # the facts on top
    assert proc.stdout.index(hp_sys_descr()) < proc.stdout.index("Supplies")
    assert "Tray 1" in proc.stdout


def test_printer_json_has_the_result_structure(snmpsim: simlab.Agent) -> None:
    proc = netmon("probe", "printer", snmpsim.endpoint, "--community", HP_COMMUNITY, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert isinstance(doc, list) and len(doc) == 1
    (result,) = doc
    assert (result["target"], result["probe"], result["status"], result["success"]) == (
        snmpsim.endpoint, "snmp", "ok", True
    )
    supplies = {row["description"]: row for row in result["records"]["supplies"]}
    assert set(supplies) == set(hp_supplies())
    for description, pct in hp_supplies().items():
        assert supplies[description]["ratio"] == pytest.approx(pct / 100, abs=0.01)
    assert result["facts"]["sys_descr"] == hp_sys_descr() and result["facts"]["model"]
    assert any(s["metric"] == "netmon_probe_success" and s["value"] == 1 for s in result["samples"])


@pytest.mark.parametrize(
    ("offsets", "code", "word"),
    [((-10, -20), 0, "OK"), ((+1, -5), 1, "WARNING"), ((+20, +1), 2, "CRITICAL")],
)
def test_printer_nagios_states_follow_thresholds_around_the_real_levels(
    snmpsim: simlab.Agent, offsets: tuple[int, int], code: int, word: str
) -> None:
    lowest_name, lowest = min(hp_supplies().items(), key=lambda kv: kv[1])
    warning, critical = lowest + offsets[0], lowest + offsets[1]
    proc = netmon("probe", "printer", snmpsim.endpoint, "--community", HP_COMMUNITY, "--nagios",
                  "--warning", f"supply={warning}", "--critical", f"supply={critical}")  # fmt: skip
    assert proc.returncode == code, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"NETMON PRINTER {word} - ")
    assert f"'{lowest_name}'={lowest}%;{warning}:;{critical}:;0;100" in first
    if code:
        assert f"{lowest_name} {lowest}%" in first


def test_printer_nagios_nothing_listening_is_critical(snmpsim: simlab.Agent) -> None:
    port = simlab.free_udp_port()
    proc = netmon("probe", "printer", f"127.0.0.1:{port}", "--community", HP_COMMUNITY, "--nagios", *QUICK)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = proc.stdout.splitlines()[0]
    assert line.startswith(f"NETMON PRINTER CRITICAL - 127.0.0.1:{port}: ")
    assert "timeout" in line or "unreachable" in line or "refused" in line


# --- snmp against snmpd ------------------------------------------------------------------


def test_snmp_shows_interface_table_with_lo(snmpd: simlab.Agent) -> None:
    proc = netmon("probe", "snmp", snmpd.endpoint, "--community-env", "NETMON_T_COMMUNITY",
                  env={"NETMON_T_COMMUNITY": COMMUNITY})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Interfaces" in proc.stdout
    assert any(line.split("│")[2].strip() == "lo" for line in proc.stdout.splitlines() if line.count("│") > 3)
    assert "warning: secrets" not in proc.stderr  # the env form is the safe one


def test_snmp_debug_logs_to_stderr_without_the_secret(snmpd: simlab.Agent) -> None:
    proc = netmon("probe", "snmp", snmpd.endpoint, "--community", COMMUNITY, "--module", "system", "--debug")
    assert proc.returncode == 0, proc.stderr
    assert "probing" in proc.stderr and "DEBUG" in proc.stderr
    assert COMMUNITY not in proc.stdout + proc.stderr
    assert "visible to other users" in proc.stderr


# --- icmp and tcp ------------------------------------------------------------------------


def test_icmp_two_loopback_hosts() -> None:
    proc = netmon("probe", "icmp", "127.0.0.1", "127.0.0.2", "--count", "2", "--interval", "10ms")
    assert "127.0.0.1" in proc.stdout and "127.0.0.2" in proc.stdout
    if "permission_error" in proc.stdout:
        need("this machine allows neither raw nor ping sockets")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [ln for ln in proc.stdout.splitlines() if "127.0.0." in ln]
    assert len(rows) == 2 and all(" ok " in row and "2/2" in row and "0%" in row for row in rows)


def test_icmp_nagios_line() -> None:
    proc = netmon("probe", "icmp", "127.0.0.1", "--count", "2", "--interval", "10ms", "--nagios",
                  "--warning", "rtt=100,loss=20", "--critical", "rtt=500,loss=60")  # fmt: skip
    if "permission_error" in proc.stdout:
        need("this machine allows neither raw nor ping sockets")
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith("NETMON ICMP OK - 127.0.0.1: 2/2 replies, rtt ")
    assert " | rtt=" in proc.stdout and ";0.1;0.5;0 pl=0%;20;60;0;100" in proc.stdout


def test_tcp_open_and_closed_ports(listening_tcp_port: int, closed_tcp_port: int) -> None:
    proc = netmon("probe", "tcp", f"127.0.0.1:{listening_tcp_port}", f"127.0.0.1:{closed_tcp_port}")
    assert proc.returncode == 1, proc.stdout
    rows = {ln.split("│")[1].strip(): ln for ln in proc.stdout.splitlines() if "│ 127.0.0.1:" in ln}
    assert " ok " in rows[f"127.0.0.1:{listening_tcp_port}"]
    assert "refused" in rows[f"127.0.0.1:{closed_tcp_port}"]

    only_open = netmon("probe", "tcp", f"127.0.0.1:{listening_tcp_port}", "--json")
    assert only_open.returncode == 0
    assert json.loads(only_open.stdout)[0]["status"] == "ok"

    nag = netmon("probe", "tcp", f"127.0.0.1:{closed_tcp_port}", "--nagios")
    assert nag.returncode == 2
    assert nag.stdout.startswith(f"NETMON TCP CRITICAL - 127.0.0.1:{closed_tcp_port}: refused")


# --- usage errors, secrets, config, help -------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["probe", "tcp", "127.0.0.1:99999"], ["probe", "tcp", "127.0.0.1"], ["probe", "icmp", "--bogus", "x"],
     ["probe", "printer"], ["probe", "printer", "127.0.0.1"], ["probe", "launch"],
     ["probe", "snmp", "127.0.0.1", "--community", "c", "--module", "nosuch"],
     ["probe", "icmp", "127.0.0.1", "--warning", "jitter=5"], ["probe", "icmp", "127.0.0.1", "--count", "0"],
     ["probe", "icmp", "127.0.0.1", "--timeout", "soon"], ["probe", "printer", "[::1:161", "--community", "c"]],
)  # fmt: skip
def test_usage_errors_exit_2_or_3_in_nagios_mode(args: list[str]) -> None:
    plain = netmon(*args)
    assert plain.returncode == 2, plain.stdout + plain.stderr
    assert plain.stderr.strip() and not plain.stdout
    nag = netmon(*args, "--nagios")
    assert nag.returncode == 3, nag.stdout + nag.stderr
    assert nag.stdout.startswith("NETMON") and " UNKNOWN - " in nag.stdout.splitlines()[0]


@pytest.mark.parametrize(
    "extra",
    [[], ["--json", "--debug"], ["--nagios", "--debug"]],
)
def test_secret_community_never_printed(snmpd: simlab.Agent, snmpsim: simlab.Agent, extra: list[str]) -> None:
    runs = [
        # wrong community: the agent stays silent or is detected as rejecting us
        ["probe", "snmp", snmpd.endpoint, "--community", SECRET, *QUICK],
        # nothing listening
        ["probe", "printer", f"127.0.0.1:{simlab.free_udp_port()}", f"--community={SECRET}", *QUICK],
        # usage errors, the secret next to the mistake
        ["probe", "snmp", f"127.0.0.1:{SECRET}", "--community", SECRET],
        ["probe", "snmp", "127.0.0.1", "--community", SECRET, "-v", "7"],
        ["probe", "snmp", "127.0.0.1", "--community", SECRET, "--module", SECRET],
        ["probe", "snmp", "127.0.0.1", "-v", "3", "--user", "u", "--auth-password", SECRET[:6]],
    ]
    for args in runs:
        proc = netmon(*args, *extra)
        assert proc.returncode != 0
        assert SECRET not in proc.stdout + proc.stderr, (args, proc.stdout, proc.stderr)
        assert SECRET[:6] not in proc.stdout + proc.stderr, (args, proc.stdout, proc.stderr)
    ok = netmon("probe", "printer", snmpsim.endpoint, "--community", HP_COMMUNITY, *extra)
    assert ok.returncode == 0
    assert HP_COMMUNITY not in ok.stdout + ok.stderr


def test_version_and_help() -> None:
    version = netmon("--version")
    assert version.returncode == 0 and version.stdout.startswith("netmon ")
    for kind in ("icmp", "snmp", "printer", "tcp"):
        proc = netmon("probe", kind, "--help")
        assert proc.returncode == 0
        assert "examples:" in proc.stdout and "exit codes" in proc.stdout and "--nagios" in proc.stdout
    assert "--community-env" in netmon("probe", "printer", "--help").stdout


# --- config file -------------------------------------------------------------------------

CONFIG = """\
credentials:
  printers:
    version: 2c
    community: {{env: NETMON_T_PRINTER_COMMUNITY}}
groups:
  - name: printers
    role: printer
    modules: [system, printer]
    targets:
      - {{name: library-mfp, address: 127.0.0.1, port: {port}, credentials: printers}}
"""


def test_printer_by_inventory_name_from_config(snmpsim: simlab.Agent, tmp_path: Path) -> None:
    path = tmp_path / "netmon.yml"
    path.write_text(CONFIG.format(port=snmpsim.port))
    env = {"NETMON_T_PRINTER_COMMUNITY": HP_COMMUNITY}
    proc = netmon("probe", "printer", "library-mfp", "-c", str(path), "--json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)
    assert result["target"] == "library-mfp" and result["status"] == "ok"
    assert {row["description"] for row in result["records"]["supplies"]} == set(hp_supplies())
    table = netmon("probe", "printer", "library-mfp", "-c", str(path), env=env)
    assert table.returncode == 0 and "library-mfp" in table.stdout and "Black Cartridge" in table.stdout
    assert HP_COMMUNITY not in table.stdout + table.stderr


def test_config_errors_are_file_line_messages(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("credentials:\n  printers:\n    version: 2c\n    colour: blue\n")
    proc = netmon("probe", "printer", "library-mfp", "-c", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{path}:" in proc.stderr and "Traceback" not in proc.stderr
    nag = netmon("probe", "printer", "library-mfp", "-c", str(path), "--nagios")
    assert nag.returncode == 3
    assert nag.stdout.startswith("NETMON PRINTER UNKNOWN - config error") and f"{path}:" in nag.stdout


def test_secret_options_are_found_in_raw_argv() -> None:
    from monitor.cli.app import redact, secrets_in_argv

    argv = ["probe", "snmp", "h", "--community", "abc", "--auth-password=pw1", "--priv-password"]
    assert secrets_in_argv(argv) == {"abc", "pw1"}
    assert redact("abcd and pw1abcd", {"abcd", "pw1abcd"}) == "**** and ****"
