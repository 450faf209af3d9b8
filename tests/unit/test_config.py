"""The inventory config loader: every invalid case in its own file with the message it must
produce, a valid inventory resolved target by target, secrets kept out of all errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from monitor.config import (
    MAX_RANGE,
    ConfigFileError,
    ConfigProblem,
    InventoryTarget,
    expand_range,
    find_target,
    load_config,
    resolve_targets,
)
from probes.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "tests" / "fixtures" / "configs"
INVALID = sorted((CONFIGS / "invalid").glob("*.yml"))
EXAMPLE = ROOT / "examples" / "netmon.yml"
EXPECT = re.compile(r"^# expect: (\d+): (\S+): (.+)$")
COMMUNITY = "env-community-4711"
PRIV = "env-priv-password-99"


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETMON_TEST_COMMUNITY", COMMUNITY)
    monkeypatch.setenv("NETMON_TEST_PRIV", PRIV)
    monkeypatch.delenv("NETMON_TEST_SURELY_UNSET", raising=False)


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    assert isinstance(info.value, ConfigError)
    return info.value.problems


def test_every_invalid_case_has_expectations() -> None:
    assert len(INVALID) >= 30
    for path in INVALID:
        assert any(EXPECT.match(line) for line in path.read_text().splitlines()), path.name


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_config_reports_exactly_the_expected_problems(path: Path) -> None:
    expected = [m.groups() for line in path.read_text().splitlines() if (m := EXPECT.match(line))]
    problems = problems_of(path)
    shown = "\n".join(map(str, problems))
    assert len(problems) == len(expected), shown
    for line, field, text in expected:
        want_field = "" if field == "-" else field
        assert any(
            p.line == int(line) and p.field == want_field and text in p.message for p in problems
        ), f"expected {line}: {field}: {text}\ngot:\n{shown}"
    for p in problems:  # the one-line format IT staff read and editors jump to
        prefix = f"{path}:{p.line}: " + (f"{p.field}: " if p.field else "")
        assert str(p) == prefix + p.message and "\n" not in str(p)
        assert "Traceback" not in str(p) and "input_value" not in str(p)


def test_error_text_lists_every_problem_one_per_line() -> None:
    path = CONFIGS / "invalid" / "many-mistakes.yml"
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    assert str(info.value).splitlines() == [str(p) for p in info.value.problems]
    lines = [p.line or 0 for p in info.value.problems]
    assert lines == sorted(lines)


def test_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path / "missing.yml")
    assert problem.line is None and "cannot read" in problem.message


def test_empty_file_is_an_empty_inventory(tmp_path: Path) -> None:
    (tmp_path / "empty.yml").write_text("# nothing yet\n")
    cfg = load_config(tmp_path / "empty.yml")
    assert resolve_targets(cfg) == [] and cfg.defaults.interval == 60.0


# --- secrets never in errors ----------------------------------------------------------

TOKENS = [f"Tok3n-{i}-{'x' * 6}" for i in range(8)]

LEAKY = f"""\
defaults:
  interval: 0s
credentials:
  a: {{version: 2c, community: {TOKENS[0]}, user: bob}}
  b: {{version: 3, user: u, auth: {{protocol: SHA, password: {TOKENS[1][:7]}}}}}
  c: {{version: 3, user: u, auth: {{protocol: SHA9, password: {TOKENS[2]}}}}}
  d: {{version: 2c, comunity: {TOKENS[3]}}}
  e: {{version: 2c, community: [{TOKENS[4]}]}}
  f: {{version: 3, user: u, auth: {{password: {{env: X, file: {TOKENS[5]}}}}}}}
  g: {{version: 2c, community: {TOKENS[6]}, community: other}}
  h: {{version: 3, user: u, auth: {{password: {{env: NETMON_TEST_PRIV}}}},
      priv: {{protocol: AES, password: {{env: NETMON_TEST_PRIV}}}}, context: [1]}}
groups: [{{name: x, role: printer, targets: [{{name: p, address: 192.0.2.1}}]}}]
"""


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "leaky.yml"
    path.write_text(LEAKY)
    text = "\n".join(map(str, problems_of(path)))
    assert len(text.splitlines()) >= 8, text  # every credential above has a mistake
    for token in TOKENS[:7]:
        assert token not in text and token[:7] not in text, text
    assert PRIV not in text and COMMUNITY not in text


def test_secret_on_a_yaml_syntax_error_line_is_not_shown(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(f'credentials:\n  a: {{version: 2c, community: "{TOKENS[7]}}}\n')
    [problem] = problems_of(path)
    assert problem.message.startswith("YAML syntax error") and TOKENS[7] not in str(problem)


def test_secrets_in_the_invalid_fixtures_are_never_shown() -> None:
    secret = re.compile(r"(?:community|password): \"?([^\s,{}\"]+)")
    for path in INVALID:
        body = "\n".join(x for x in path.read_text().splitlines() if not x.startswith("#"))
        values = secret.findall(body)
        text = "\n".join(map(str, problems_of(path)))
        for value in values:
            assert value not in text, (path.name, value)


# --- the valid inventory --------------------------------------------------------------


@pytest.fixture
def targets() -> dict[str, InventoryTarget]:
    return {t.name: t for t in resolve_targets(load_config(CONFIGS / "valid.yml"))}


def test_valid_config_resolves_every_target(targets: dict[str, InventoryTarget]) -> None:
    assert list(targets) == [
        "sw-core", "library-mfp", "office-copier",
        "lab-204-10", "lab-204-11", "lab-204-12", "files",
    ]  # fmt: skip


def test_group_overrides_defaults_and_target_overrides_group(
    targets: dict[str, InventoryTarget],
) -> None:
    mfp, copier = targets["library-mfp"], targets["office-copier"]
    assert (mfp.group, mfp.role, mfp.parent, mfp.interval) == (
        "printers",
        "printer",
        "sw-core",
        300,
    )
    assert mfp.labels == {"site": "test-school", "building": "main", "room": "library"}
    assert (mfp.modules, mfp.probes) == (("system", "printer"), ("icmp", "snmp"))
    assert (mfp.port, mfp.snmp.port, mfp.snmp.timeout, mfp.snmp.retries) == (None, 161, 2.0, 1)
    assert (copier.modules, copier.port, copier.snmp.port) == (("system",), 1161, 1161)
    assert copier.labels == {"site": "test-school", "building": "main"}
    assert targets["sw-core"].interval == 60 and targets["sw-core"].parent is None
    assert targets["sw-core"].modules == ("system", "interfaces", "topology")
    assert mfp.tcp.timeout == 1.0 and mfp.tcp_ports == ()


def test_range_expands_with_names_from_the_group(targets: dict[str, InventoryTarget]) -> None:
    lab = [t for t in targets.values() if t.group == "lab-204"]
    assert [(t.name, t.address) for t in lab] == [
        (f"lab-204-{i}", f"192.0.2.{i}") for i in (10, 11, 12)
    ]
    for t in lab:
        assert (t.role, t.probes, t.modules) == ("lab", ("icmp",), ())
        assert t.labels == {"site": "test-school", "room": "204"}  # YAML number -> text
        assert (t.expected_online, t.parent) == ("school-hours", "sw-core")


def test_credentials_come_from_env_and_file(targets: dict[str, InventoryTarget]) -> None:
    core, mfp = targets["sw-core"], targets["library-mfp"]
    assert core.credentials_name == "core" and core.credentials is not None
    assert core.credentials.auth is not None and core.credentials.priv is not None
    assert core.credentials.auth.password.get_secret_value() == "auth-from-file-1234"
    assert core.credentials.auth.protocol == "SHA-256"
    assert core.credentials.priv.password.get_secret_value() == PRIV
    assert mfp.credentials_name == "school" and mfp.credentials is not None
    assert mfp.credentials.community is not None
    assert mfp.credentials.community.get_secret_value() == COMMUNITY
    assert COMMUNITY not in repr(mfp) and PRIV not in repr(core)


def test_tcp_ports_and_ipv6(targets: dict[str, InventoryTarget]) -> None:
    files = targets["files"]
    assert (files.address, files.tcp_ports) == ("2001:db8::5", (22, 443))
    assert files.probes == ("icmp", "snmp", "tcp") and files.modules == ("system", "host")
    target = files.as_target(22)
    assert (target.host, target.port, target.labels["role"]) == ("2001:db8::5", 22, "server")


def test_find_target_by_name_or_address() -> None:
    cfg = load_config(CONFIGS / "valid.yml")
    assert find_target(cfg, "library-mfp").address == "192.0.2.20"  # type: ignore[union-attr]
    assert find_target(cfg, "192.0.2.11").name == "lab-204-11"  # type: ignore[union-attr]
    assert find_target(cfg, "2001:DB8:0::5").name == "files"  # type: ignore[union-attr]
    assert find_target(cfg, "nothing-here") is None


# --- ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "first", "last", "count"),
    [
        ("10.1.4.10-10.1.4.40", "10.1.4.10", "10.1.4.40", 31),
        ("10.1.4.10-40", "10.1.4.10", "10.1.4.40", 31),
        ("10.1.4.0/28", "10.1.4.1", "10.1.4.14", 14),
        ("2001:db8::1-2001:db8::3", "2001:db8::1", "2001:db8::3", 3),
        ("10.0.0.0-10.0.255.255", "10.0.0.0", "10.0.255.255", MAX_RANGE),
    ],
)
def test_expand_range(text: str, first: str, last: str, count: int) -> None:
    addresses = expand_range(text)
    assert (str(addresses[0]), str(addresses[-1]), len(addresses)) == (first, last, count)


@pytest.mark.parametrize(
    "text", ["10.0.0.0-10.1.0.0", "10.0.0.0/15", "10.1.4.10", "10.1.4.10-::1", "a-b"]
)
def test_bad_or_huge_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        expand_range(text)


def test_range_names_keep_the_parts_that_vary(tmp_path: Path) -> None:
    path = tmp_path / "wide.yml"
    path.write_text(
        "groups:\n  - name: lab\n    targets:\n"
        "      - {range: 10.1.4.254-10.1.5.1, name_prefix: pc}\n"
    )
    names = [t.name for t in resolve_targets(load_config(path))]
    assert names == ["pc-4-254", "pc-4-255", "pc-5-0", "pc-5-1"]


# --- the shipped example ----------------------------------------------------------------


def test_example_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETMON_SNMP_COMMUNITY", "example-community")
    monkeypatch.setenv("NETMON_SNMP_PRIV_PASSWORD", "example-priv-pass")
    monkeypatch.setenv("NETMON_SMTP_PASSWORD", "example-smtp-pass")
    shutil.copy(EXAMPLE, tmp_path / "netmon.yml")
    (tmp_path / "snmp-auth-password").write_text("example-auth-pass\n")
    targets = resolve_targets(load_config(tmp_path / "netmon.yml"))
    roles = {t.role for t in targets}
    assert {"switch", "printer", "lab", "ups"} <= roles
    assert len([t for t in targets if t.role == "lab"]) > 1  # a range
    for t in targets:
        assert t.address.startswith("192.0.2.")  # RFC 5737 documentation addresses only
        assert "snmp" not in t.probes or t.credentials is not None
    cfg = load_config(tmp_path / "netmon.yml")
    assert [r.name for r in cfg.alerts.receivers] == ["it-team", "office"]
    assert cfg.schedules["school-hours"].holidays


def test_example_without_its_env_secrets_says_which_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NETMON_SNMP_COMMUNITY", raising=False)
    monkeypatch.setenv("NETMON_SNMP_PRIV_PASSWORD", "example-priv-pass")
    monkeypatch.setenv("NETMON_SMTP_PASSWORD", "example-smtp-pass")
    shutil.copy(EXAMPLE, tmp_path / "netmon.yml")
    (tmp_path / "snmp-auth-password").write_text("example-auth-pass\n")
    [problem] = problems_of(tmp_path / "netmon.yml")
    assert "environment variable NETMON_SNMP_COMMUNITY is not set" in problem.message
