"""CSV import, inventory rows and file_sd export (monitor.inventory), and the CLI's pure
argument checks (--shard, --listen)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import yaml

from monitor.cli.service import parse_listen, parse_shard
from monitor.config import load_config, resolve_targets
from monitor.inventory import (
    CsvImportError,
    file_sd,
    format_interval,
    groups_yaml,
    hosts_to_groups,
    probe_jobs,
    read_hosts_csv,
    target_rows,
)

CSV = Path(__file__).resolve().parents[1] / "fixtures" / "csv"
VALID = Path(__file__).resolve().parents[1] / "fixtures" / "configs" / "valid.yml"
EXAMPLE_CSV = Path(__file__).resolve().parents[2] / "examples" / "hosts.csv"

#: A config around an imported fragment: credentials the CSV names, and a default.
CONFIG_HEAD = """\
defaults:
  snmp: {credentials: school}
credentials:
  school: {version: 2c, community: {env: NETMON_T_INV_COMMUNITY}}
  network: {version: 2c, community: {env: NETMON_T_INV_COMMUNITY}}
"""


def write(tmp_path: Path, text: str, name: str = "hosts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, **kw: str) -> list[str]:
    with pytest.raises(CsvImportError) as info:
        read_hosts_csv(path, **kw)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


def load_fragment(tmp_path: Path, fragment: str, monkeypatch: pytest.MonkeyPatch) -> list:  # type: ignore[type-arg]
    monkeypatch.setenv("NETMON_T_INV_COMMUNITY", "unit-secret")
    config = write(tmp_path, CONFIG_HEAD + fragment, "netmon.yml")
    return resolve_targets(load_config(config))


# --- import ------------------------------------------------------------------------------


def test_example_csv_round_trips_through_the_config_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported = read_hosts_csv(EXAMPLE_CSV)
    assert imported.ignored_columns == ["Notes"]
    targets = load_fragment(tmp_path, groups_yaml(imported.hosts, str(EXAMPLE_CSV)), monkeypatch)
    by_name = {t.name: t for t in targets}
    assert [t.name for t in targets] == [h.name for h in imported.hosts]
    lab = by_name["lab-204-pc01"]
    assert (lab.address, lab.group, lab.role, lab.parent) == (
        "192.0.2.101",
        "lab-204",
        "lab",
        "sw-core",
    )
    assert lab.labels == {"site": "riverside-primary", "building": "main", "room": "204"}
    assert by_name["sw-core"].credentials_name == "network"
    assert by_name["library-mfp"].credentials_name == "school"  # the config's default
    assert by_name["files"].modules == ("system", "host")
    assert by_name["library-mfp"].modules == ("system", "printer")  # the role's default
    assert by_name["sw-library"].parent == "sw-core"


def test_excel_bom_crlf_aliases_and_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    imported = read_hosts_csv(CSV / "good-excel-bom.csv")
    assert [(h.name, h.address, h.role, h.group) for h in imported.hosts] == [
        ("sw-a", "192.0.2.2", "switch", "switches"),
        ("prn-a", "192.0.2.20", "printer", "printers"),
    ]
    targets = load_fragment(tmp_path, groups_yaml(imported.hosts, "x.csv"), monkeypatch)
    assert {t.name: t.group for t in targets} == {"sw-a": "switches", "prn-a": "printers"}


def test_semicolon_file_with_group_and_role_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported = read_hosts_csv(CSV / "good-semicolon.csv", group="library", role="printer")
    groups = hosts_to_groups(imported.hosts)
    assert groups == [{"name": "library", "role": "printer", "targets": [
        {"name": "library-mfp", "address": "192.0.2.20"}, {"name": "office-copier", "address": "192.0.2.21"}]}]  # fmt: skip
    targets = load_fragment(tmp_path, groups_yaml(imported.hosts, "x.csv"), monkeypatch)
    assert {(t.group, t.role) for t in targets} == {("library", "printer")}


def test_cells_win_over_the_options(tmp_path: Path) -> None:
    path = write(tmp_path, "name,address,role,group\na,192.0.2.1,,\nb,192.0.2.2,switch,core\n")
    hosts = read_hosts_csv(path, group="lab-1", role="lab").hosts
    assert [(h.role, h.group) for h in hosts] == [("lab", "lab-1"), ("switch", "core")]
    plain = read_hosts_csv(path).hosts
    assert [(h.role, h.group) for h in plain] == [("other", "imported"), ("switch", "core")]


def test_every_bad_row_is_reported_with_line_and_column() -> None:
    problems = problems_of(CSV / "bad-rows.csv")
    where = [p.split(": ", 2)[:2] for p in problems]
    file = str(CSV / "bad-rows.csv")
    assert where == [
        [f"{file}:3", "name"], [f"{file}:4", "address"], [f"{file}:5", "address"],
        [f"{file}:6", "name"], [f"{file}:7", "address"], [f"{file}:8", "role"],
        [f"{file}:9", "modules"], [f"{file}:10", "address"], [f"{file}:11", "parent"],
    ]  # fmt: skip
    text = "\n".join(problems)
    assert "duplicate name 'good-one' (first at line 2)" in text
    assert "192.0.2.10 is already used at line 2" in text
    assert "unknown SNMP module 'tonerz'" in text and "roles: switch, printer" in text


def test_header_problems(tmp_path: Path) -> None:
    missing = problems_of(CSV / "bad-header.csv")
    assert missing == [
        f"{CSV / 'bad-header.csv'}:1: address: required column missing; name it one of: address, ip, ip address, ipaddress"
    ]
    both = write(tmp_path, "name,ip,address\na,192.0.2.1,192.0.2.1\n")
    assert problems_of(both) == [
        f"{both}:1: address: columns 'ip' and 'address' both mean address; keep one"
    ]


def test_one_group_has_one_role(tmp_path: Path) -> None:
    path = write(
        tmp_path, "name,address,role,group\na,192.0.2.1,switch,core\n\nb,192.0.2.2,printer,core\n"
    )
    assert problems_of(path) == [
        f"{path}:4: role: group 'core' is 'switch' (line 2); a group has one role, so put this device in another group"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty file"),
        ("name,address\n", "no devices"),
        ("name,address\na,192.0.2.1,extra\n", "3 cells but the header has 2 columns"),
        ("name,address\n,192.0.2.1\n", "name: empty"),
    ],
)
def test_empty_and_ragged_files(tmp_path: Path, text: str, expected: str) -> None:
    assert any(expected in p for p in problems_of(write(tmp_path, text)))


def test_bad_options_and_unreadable_files(tmp_path: Path) -> None:
    good = write(tmp_path, "name,address\na,192.0.2.1\n")
    assert any("--role: unknown role 'toaster'" in p for p in problems_of(good, role="toaster"))
    assert any("--group: a name uses" in p for p in problems_of(good, group="two words"))
    assert any("cannot read" in p for p in problems_of(tmp_path / "missing.csv"))
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("name,address,room\na,192.0.2.1,Büro\n".encode("latin-1"))
    assert any("not UTF-8" in p for p in problems_of(latin1))


# --- list and file_sd --------------------------------------------------------------------


@pytest.fixture
def valid_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:  # type: ignore[type-arg]
    monkeypatch.setenv("NETMON_TEST_COMMUNITY", "community-unit-secret")
    monkeypatch.setenv("NETMON_TEST_PRIV", "priv-unit-secret-1")
    shutil.copytree(VALID.parent / "secrets", tmp_path / "secrets")
    config = tmp_path / "valid.yml"
    shutil.copy(VALID, config)
    return resolve_targets(load_config(config))


def test_target_rows_have_effective_settings_and_no_secrets(valid_targets: list) -> None:  # type: ignore[type-arg]
    rows = {r["name"]: r for r in target_rows(valid_targets)}
    assert rows["sw-core"]["credentials"] == "core" and rows["sw-core"]["modules"] == [
        "system",
        "interfaces",
        "topology",
    ]
    assert (
        rows["office-copier"]["port"] == 1161 and rows["office-copier"]["interval_seconds"] == 300
    )
    assert rows["files"]["jobs"] == ["icmp", "snmp", "tcp-22", "tcp-443"]
    assert rows["lab-204-10"]["parent"] == "sw-core" and rows["lab-204-10"]["credentials"] is None
    text = repr(rows)
    assert "unit-secret" not in text and "SecretStr" not in text


def test_file_sd_one_entry_per_target_with_labels(valid_targets: list) -> None:  # type: ignore[type-arg]
    groups = file_sd(valid_targets)
    assert [g["targets"] for g in groups] == [[t.name] for t in valid_targets]
    mfp = next(g for g in groups if g["targets"] == ["library-mfp"])
    assert mfp["labels"] == {"site": "test-school", "building": "main", "room": "library",
                             "group": "printers", "role": "printer", "__param_target": "library-mfp"}  # fmt: skip
    for g in groups:
        assert all(isinstance(v, str) for v in g["labels"].values())
        assert "__tmp_netmon_address" not in g["labels"] and "__param_probe" not in g["labels"]


def test_file_sd_netmon_address_and_per_probe(valid_targets: list) -> None:  # type: ignore[type-arg]
    groups = file_sd(valid_targets, netmon_address="127.0.0.1:9430", per_probe=True)
    assert {g["labels"]["__tmp_netmon_address"] for g in groups} == {"127.0.0.1:9430"}
    files = [g["labels"]["__param_probe"] for g in groups if g["targets"] == ["files"]]
    assert files == ["icmp", "snmp", "tcp"]
    assert len(groups) == sum(len(t.probes) for t in valid_targets)


def test_probe_jobs_and_intervals(valid_targets: list) -> None:  # type: ignore[type-arg]
    assert (
        sum(len(probe_jobs(t)) for t in valid_targets) == 2 + 2 + 2 + 3 + 4
    )  # sw-core, 2 printers, 3 lab PCs, files (2 tcp ports)
    assert [format_interval(s) for s in (60, 300, 90, 3600, 1.5)] == [
        "1m",
        "5m",
        "90s",
        "1h",
        "1.5s",
    ]


def test_imported_yaml_is_plain_yaml_with_string_labels(tmp_path: Path) -> None:
    path = write(tmp_path, "name,address,room,building\npc-1,192.0.2.1,204,7\n")
    doc = yaml.safe_load(groups_yaml(read_hosts_csv(path).hosts, str(path)))
    assert doc["groups"][0]["targets"][0]["labels"] == {"room": "204", "building": "7"}


# --- CLI argument checks ------------------------------------------------------------------


def test_parse_shard() -> None:
    assert parse_shard("0/1") == (0, 1) and parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "1/0", "a/2", "1", "-1/2", "1/2/3"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_shard(bad)


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9430") == ("127.0.0.1", 9430)
    assert parse_listen(":9430") == ("0.0.0.0", 9430)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("127.0.0.1", "host:0", "host:99999", "[::1:80", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_listen(bad)
