"""The real ``netmon`` console script: check-config, inventory list/import/export-sd, run;
plus the examples (prometheus.yml through promtool and a real Prometheus, the systemd unit)."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from monitor.config import load_config, resolve_targets
from monitor.demo import simlab
from tests.conftest import need

NETMON = Path(sys.executable).parent / "netmon"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CSV = ROOT / "tests" / "fixtures" / "csv"
SECRET = "Zq8-community-never-shown"
PRIV = "Zq8-priv-password-never-shown"
ENV = {"NETMON_T_COMMUNITY": SECRET, "NETMON_T_PRIV": PRIV}

CONFIG = """\
defaults:
  interval: 30s
  labels: {site: riverside}
  snmp: {credentials: school}
credentials:
  school: {version: 2c, community: {env: NETMON_T_COMMUNITY}}
  core:
    version: 3
    user: netmon
    auth: {protocol: SHA256, password: {env: NETMON_T_PRIV}}
    priv: {protocol: AES, password: {env: NETMON_T_PRIV}}
groups:
  - name: network
    role: switch
    credentials: core
    targets:
      - {name: sw-core, address: 127.0.0.1, port: 1161, labels: {room: server-room}}
  - name: printers
    role: printer
    interval: 5m
    parent: sw-core
    tcp_ports: [9100]
    labels: {building: main}
    targets:
      - {name: library-mfp, address: 127.0.0.2, labels: {room: library}}
  - name: lab
    role: lab
    parent: sw-core
    targets: {range: 127.0.4.1-3}
"""
#: sw-core icmp+snmp, library-mfp icmp+snmp+tcp-9100, three lab PCs icmp.
JOBS = 2 + 3 + 3


def netmon(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **ENV, **(env or {})}
    full_env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [str(NETMON), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def no_secret(proc: subprocess.CompletedProcess[str]) -> None:
    for secret in (SECRET, PRIV):
        assert secret not in proc.stdout + proc.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "netmon.yml"
    path.write_text(CONFIG)
    return path


# --- check-config ------------------------------------------------------------------------


def test_check_config_ok(config: Path) -> None:
    proc = netmon("check-config", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"config OK: 5 targets, {JOBS} probe jobs"
    no_secret(proc)


def test_check_config_reports_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    text = CONFIG.replace("role: printer", "role: printr").replace(
        "parent: sw-core\n    targets: {range", "parent: sw-cor\n    targets: {range"
    )
    # an inline secret next to a mistake: the message must not show it
    text = text.replace(
        "  school: {version: 2c, community: {env: NETMON_T_COMMUNITY}}",
        f"  school:\n    version: 2c\n    community: {SECRET}\n    colour: blue",
    )
    bad.write_text(text)
    proc = netmon("check-config", "-c", str(bad))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert any(
        ln.startswith(f"{bad}:9: credentials.school.colour: unknown key 'colour'") for ln in lines
    ), lines
    assert any(ln.startswith(f"{bad}:") and "groups[1].role" in ln for ln in lines), lines
    assert any("unknown parent 'sw-cor'" in ln for ln in lines), lines
    assert lines[-1] == f"config error in {bad}: 3 problems"
    assert "Traceback" not in proc.stderr and not proc.stdout
    no_secret(proc)


def test_check_config_missing_env_secret_and_missing_file(config: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NETMON_T_PRIV"}
    proc = subprocess.run([str(NETMON), "check-config", "-c", str(config)], capture_output=True, text=True,
                          env={**env, "NETMON_T_COMMUNITY": SECRET}, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 1 and "NETMON_T_PRIV" in proc.stderr, proc.stderr
    no_secret(proc)
    missing = netmon("check-config", "-c", str(tmp_path / "nope.yml"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    usage = netmon("check-config")
    assert usage.returncode == 2 and "-c/--config" in usage.stderr


# --- inventory list ----------------------------------------------------------------------


def test_inventory_list_json_matches_the_loader(config: Path) -> None:
    proc = netmon("inventory", "list", "-c", str(config), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    os.environ.update(ENV)
    try:
        expected = resolve_targets(load_config(config))
    finally:
        for key in ENV:
            os.environ.pop(key)
    assert [r["name"] for r in rows] == [t.name for t in expected]
    mfp = next(r for r in rows if r["name"] == "library-mfp")
    assert mfp["jobs"] == ["icmp", "snmp", "tcp-9100"] and mfp["credentials"] == "school"
    assert mfp["labels"] == {"site": "riverside", "building": "main", "room": "library"}
    assert mfp["interval_seconds"] == 300 and mfp["parent"] == "sw-core"
    assert next(r for r in rows if r["name"] == "sw-core")["credentials"] == "core"
    no_secret(proc)


def test_inventory_list_table(config: Path) -> None:
    proc = netmon("inventory", "list", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    mfp = next(ln for ln in proc.stdout.splitlines() if "library-mfp" in ln)
    for cell in (
        "127.0.0.2",
        "printers",
        "printer",
        "room=library",
        "tcp 9100",
        "system,printer",
        "school",
        "5m",
        "sw-core",
    ):
        assert cell in mfp, mfp
    assert "127.0.0.1 (port 1161)" in proc.stdout and "lab-3" in proc.stdout
    no_secret(proc)


# --- inventory import --------------------------------------------------------------------


def test_import_writes_a_fragment_the_config_accepts(tmp_path: Path) -> None:
    out = tmp_path / "imported.yml"
    proc = netmon("inventory", "import", str(EXAMPLES / "hosts.csv"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "ignored columns: Notes" in proc.stderr and not proc.stdout
    full = tmp_path / "netmon.yml"
    full.write_text(CONFIG.split("groups:")[0].replace("core:", "network:") + out.read_text())
    check = netmon("check-config", "-c", str(full))
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("config OK: 9 targets,")
    printed = netmon("inventory", "import", str(EXAMPLES / "hosts.csv"))
    assert printed.returncode == 0 and printed.stdout == out.read_text()


def test_import_options(tmp_path: Path) -> None:
    proc = netmon(
        "inventory",
        "import",
        str(CSV / "good-semicolon.csv"),
        "--group",
        "library",
        "--role",
        "printer",
    )
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(proc.stdout)
    assert [(g["name"], g["role"], len(g["targets"])) for g in doc["groups"]] == [
        ("library", "printer", 2)
    ]
    bad_role = netmon("inventory", "import", str(CSV / "good-semicolon.csv"), "--role", "toaster")
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr


def test_import_reports_all_bad_rows_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.yml"
    path = CSV / "bad-rows.csv"
    proc = netmon("inventory", "import", str(path), "-o", str(out))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert [ln.split(": ")[0] for ln in lines[:-1]] == [f"{path}:{n}" for n in range(3, 12)]
    assert lines[-1] == f"nothing imported from {path}: 9 problems"
    assert not out.exists() and not proc.stdout


# --- export-sd ---------------------------------------------------------------------------


def test_export_sd_file(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "targets.json"
    proc = netmon(
        "inventory",
        "export-sd",
        "-c",
        str(config),
        "-o",
        str(out),
        "--netmon-address",
        "127.0.0.1:9430",
    )
    assert proc.returncode == 0, proc.stderr
    groups = json.loads(out.read_text())
    assert isinstance(groups, list) and len(groups) == 5
    for g in groups:
        assert set(g) == {"targets", "labels"} and len(g["targets"]) == 1
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in g["labels"].items())
        assert g["labels"]["__param_target"] == g["targets"][0]
        assert g["labels"]["__tmp_netmon_address"] == "127.0.0.1:9430"
    lab = next(g for g in groups if g["targets"] == ["lab-2"])
    assert {k: v for k, v in lab["labels"].items() if not k.startswith("__")} == {
        "site": "riverside",
        "group": "lab",
        "role": "lab",
    }
    per_probe = json.loads(
        netmon("inventory", "export-sd", "-c", str(config), "--per-probe").stdout
    )
    assert sorted(
        g["labels"]["__param_probe"] for g in per_probe if g["targets"] == ["library-mfp"]
    ) == ["icmp", "snmp", "tcp"]
    bad = netmon("inventory", "export-sd", "-c", str(config), "--netmon-address", "netmon")
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr
    no_secret(proc)


# --- run -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--shard", "2/2"], "i must be 0..1"), (["--shard", "x"], "give i/N"),
     (["--listen", "127.0.0.1"], "give HOST:PORT"), (["--listen", "127.0.0.1:70000"], "port must be")],
)  # fmt: skip
def test_run_usage_errors(config: Path, args: list[str], message: str) -> None:
    proc = netmon("run", "-c", str(config), *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stderr.startswith("usage: netmon run")


def test_run_bad_config_is_reported_before_starting(tmp_path: Path, config: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    role: printr\n")
    proc = netmon("run", "-c", str(bad), "--listen", "127.0.0.1:1")
    assert proc.returncode == 1 and f"{bad}:3: groups[0].role" in proc.stderr, proc.stderr
    web = netmon("run", "-c", str(config), "--web-config", str(tmp_path / "none.yml"))
    assert web.returncode == 2 and "--web-config" in web.stderr


def test_run_help_shows_the_default_listen_address() -> None:
    proc = netmon("run", "--help")
    assert proc.returncode == 0 and "examples:" in proc.stdout
    try:
        from monitor.web.server import DEFAULT_PORT
    except ImportError:
        DEFAULT_PORT = 10190  # the placeholder if monitor.web.server is missing
    assert f"default: server.listen from the config, else 0.0.0.0:{DEFAULT_PORT}" in " ".join(
        proc.stdout.split()
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_starts_the_daemon_or_says_it_is_missing(config: Path) -> None:
    if importlib.util.find_spec("monitor.daemon") is None:
        proc = netmon("run", "-c", str(config))
        assert proc.returncode == 1 and "monitor.daemon is missing" in proc.stderr
        return
    port = _free_port()
    env = {**os.environ, **ENV}
    proc = subprocess.Popen([str(NETMON), "run", "-c", str(config), "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/-/healthy", timeout=2
                ) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail(f"netmon run did not come up: rc={proc.poll()}")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert SECRET not in out + err and PRIV not in out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_help_of_every_command_has_examples() -> None:
    top = netmon("--help")
    assert top.returncode == 0 and all(
        c in top.stdout for c in ("check-config", "inventory", "run", "probe")
    )
    for args in (
        ["check-config"],
        ["inventory", "list"],
        ["inventory", "import"],
        ["inventory", "export-sd"],
        ["run"],
    ):
        proc = netmon(*args, "--help")
        assert proc.returncode == 0 and "examples:" in proc.stdout, args


# --- examples ------------------------------------------------------------------------------


def test_prometheus_example_passes_promtool(tmp_path: Path) -> None:
    need(
        None
        if shutil.which("promtool")
        else "promtool is not installed (apt-get install prometheus)"
    )
    proc = subprocess.run(["promtool", "check", "config", str(EXAMPLES / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


class _ProbeHandler(http.server.BaseHTTPRequestHandler):
    """Stands in for netmon's /probe: records the requested paths, answers one metric."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        body = b"netmon_probe_success 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def probe_server() -> Iterator[tuple[int, list[str]]]:
    _ProbeHandler.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProbeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _ProbeHandler.seen
    server.shutdown()
    server.server_close()


def test_prometheus_relabelling_of_exported_targets(
    config: Path, tmp_path: Path, probe_server: tuple[int, list[str]]
) -> None:
    """A real Prometheus with the example's probe job and export-sd's file asks
    /probe?target=NAME at netmon's address and labels the series by target."""
    need(simlab.prometheus_available())
    port, seen = probe_server
    sd = tmp_path / "targets.json"
    assert (
        netmon(
            "inventory",
            "export-sd",
            "-c",
            str(config),
            "-o",
            str(sd),
            "--netmon-address",
            f"127.0.0.1:{port}",
        ).returncode
        == 0
    )
    example = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())
    job = next(j for j in example["scrape_configs"] if j["job_name"] == "netmon-probe")
    job["file_sd_configs"] = [{"files": [str(sd)]}]
    job["scrape_interval"], job["scrape_timeout"] = "1s", "1s"
    server = simlab.start_prometheus(yaml.safe_dump([job]))
    try:
        deadline = time.monotonic() + 30
        series: list[dict[str, object]] = []
        while time.monotonic() < deadline and len(series) < 5:
            series = server.query('netmon_probe_success{job="netmon-probe"}')
            time.sleep(0.5)
    finally:
        server.stop()
    by_instance = {s["metric"]["instance"]: s["metric"] for s in series}  # type: ignore[index]
    assert set(by_instance) == {"sw-core", "library-mfp", "lab-1", "lab-2", "lab-3"}
    assert (
        by_instance["library-mfp"]["role"] == "printer"
        and by_instance["library-mfp"]["room"] == "library"
    )  # type: ignore[index]
    assert "/probe?target=library-mfp" in seen and "/probe?target=lab-3" in seen


def _unit_file(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd unit syntax: [Section], Key=Value (keys may repeat), # and ; comments."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"not a Key=Value line: {raw!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_unit_has_the_required_settings() -> None:
    unit = _unit_file(EXAMPLES / "netmon.service")
    assert set(unit) == {"Unit", "Service", "Install"}
    service = {k: v[-1] for k, v in unit["Service"].items()}
    assert service["ExecStart"] == "/opt/netmon/.venv/bin/netmon run -c /etc/netmon/netmon.yml"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["User"] == "netmon" and service["User"] != "root"
    assert (
        service["AmbientCapabilities"] == "CAP_NET_RAW"
        and service["CapabilityBoundingSet"] == "CAP_NET_RAW"
    )
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    families = service["RestrictAddressFamilies"].split()
    assert {"AF_INET", "AF_INET6"} <= set(families)  # raw ICMP sockets are AF_INET/AF_INET6
    assert "PrivateNetwork" not in service and "MemoryDenyWriteExecute" not in service
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    # the ExecStart command line is one `netmon run` this CLI accepts
    args = service["ExecStart"].split()[1:]
    assert args[:1] == ["run"] and "-c" in args
