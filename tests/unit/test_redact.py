"""Secrets hidden only where they stand as values (monitor.redaction), and the config
loader's secrets-optional mode (``load_config(resolve_secrets=False)``)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from monitor.cli.app import _RedactFilter, redact_result
from monitor.config import (
    UNRESOLVED_SECRET,
    ConfigFileError,
    config_secrets,
    load_config,
)
from monitor.redaction import (
    MASK,
    mask_url_credentials,
    redact,
    redact_after_options,
    redact_value,
)
from probes.result import ProbeResult, Sample, Status

ROOT = Path(__file__).resolve().parents[2]
INVALID = sorted((ROOT / "tests" / "fixtures" / "configs" / "invalid").glob("*.yml"))
EXAMPLE = ROOT / "examples" / "netmon.yml"
#: Invalid fixtures whose only problem is a secret that cannot be read.
SECRET_ONLY = {"env-not-set", "secret-file-missing"}

# --- free text ---------------------------------------------------------------------------

CASES = [
    # (text, secret, expected)
    ("snmpd answered; SNMP is up; netmon.snmp and snmp-gw and snmp_x", "snmp",
     "snmpd answered; SNMP is up; netmon.snmp and snmp-gw and snmp_x"),
    ("community snmp rejected (snmp), community=snmp, 'snmp'.", "snmp",
     f"community {MASK} rejected ({MASK}), community={MASK}, '{MASK}'."),
    ("publicly reachable, public-lab, publication", "public", "publicly reachable, public-lab, publication"),
    ('wrong community "public" at the end: public', "public",
     f'wrong community "{MASK}" at the end: {MASK}'),
    # short secrets: whole values only, prose untouched
    ("no answer: a firewall, or a wrong community", "a", "no answer: a firewall, or a wrong community"),
    ("x = 2 x 3", "x", "x = 2 x 3"),
    ("x", "x", "x"),
    ("ok", "ok", "ok"),
    # a secret equal to a key name: words containing it stay (keys are never text: see below)
    ("explanations of explanation", "explanation", f"explanations of {MASK}"),
    # regex metacharacters are literal
    ("got a.b*c+ then aXbbc", "a.b*c+", f"got {MASK} then aXbbc"),
    ("[pw]\\d and pw1", "[pw]\\d", f"{MASK} and pw1"),
    ("(x|y) or x", "(x|y)", f"{MASK} or x"),
    ("key=$^word! end", "$^word!", f"key={MASK} end"),
    # a secret that starts or ends with punctuation carries its own boundary there
    ("pass$^word!", "$^word!", f"pass{MASK}"),
    ("x!sec!y", "!sec!", f"x{MASK}y"),
    # URLs: the password of any user:password@ is hidden, known or not
    ("POST http://bob:hunter2@127.0.0.1:9/hook: refused", "unrelated",
     f"POST http://bob:{MASK}@127.0.0.1:9/hook: refused"),
    ("https://u:p%40ss:w@h/ and mailto:bob@example.org and http://h:8080/x", "unrelated",
     f"https://u:{MASK}@h/ and mailto:bob@example.org and http://h:8080/x"),
]


@pytest.mark.parametrize(("text", "secret", "expected"), CASES)
def test_redact_free_text(text: str, secret: str, expected: str) -> None:
    assert redact(text, {secret}) == expected


def test_longer_secret_wins_and_empty_secrets_are_ignored() -> None:
    assert redact("pw12abc and pw12", {"pw12", "pw12abc", ""}) == f"{MASK} and {MASK}"
    assert redact("nothing", set()) == "nothing"
    assert redact("", {""}) == ""


def test_url_credentials_without_a_password_are_left_alone() -> None:
    assert mask_url_credentials("http://bob@h/ and ftp://h/") == "http://bob@h/ and ftp://h/"


def test_usage_errors_hide_short_secrets_after_their_option() -> None:
    options = ("--community", "--auth-password")
    text = "unrecognized arguments: --community a --auth-password=xy a"
    assert redact_after_options(text, {"a", "xy"}, options) == (
        f"unrecognized arguments: --community {MASK} --auth-password={MASK} a"
    )


def test_redact_value_keeps_keys_and_shape() -> None:
    doc = {"status": "status", "explanation": ["status ok", {"status": ("statuses", 3)}]}
    assert redact_value(doc, {"status"}) == {
        "status": MASK, "explanation": [f"{MASK} ok", {"status": ("statuses", 3)}],
    }


def test_the_log_filter_hides_secrets_in_messages_and_tracebacks() -> None:
    """The filter ``netmon probe --debug`` and ``netmon run`` put on their log handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_RedactFilter({"hunter2-pass"}))
    log = logging.getLogger("netmon.test_redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise ValueError("library says: bad password hunter2-pass for http://u:other-pw@h/")
        except ValueError:
            log.exception("delivery to %s failed", "http://u:hunter2-pass@h/")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback" in text and "ValueError: library says: bad password ****" in text
    assert "hunter2-pass" not in text and "other-pw" not in text
    assert "delivery to http://u:****@h/ failed" in text


def test_the_log_filter_learns_a_reloaded_configs_secrets() -> None:
    """``netmon run`` hands each config put in place to the filter: a community added by
    a reload is hidden from then on, and the start-up ones stay hidden."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    redactor = _RedactFilter({"first-secret"})
    handler.addFilter(redactor)
    log = logging.getLogger("netmon.test_redact_reload")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("agent said: bad community added-later")
        redactor.learn({"added-later"})
        log.warning("agent said: bad community added-later, first-secret")
    finally:
        log.removeHandler(handler)
    before, after = stream.getvalue().splitlines()
    assert before.endswith("bad community added-later")  # not yet known
    assert after.endswith("bad community ****, ****")


# --- probe results (what --json prints) ----------------------------------------------------

RESULT = ProbeResult(
    status=Status.TIMEOUT,
    explanation="no answer from sw-1 (127.0.0.1:9): agent down, SNMP disabled, or a firewall (or a wrong "
                "community on an agent without SNMPv3); snmpd publicly explained its status",
    samples=[Sample.of("netmon_snmp_requests", 1.0), Sample.of("netmon_probe_status", 1.0, status="timeout"),
             Sample.of("netmon_interface_oper_up", 1.0, if_name="x", if_alias="a status port")],
    facts={"snmp": "SNMPv2c community (hidden)", "explanation": "status", "sys_descr": "Linux snmp box"},
    records={"status": [{"explanation": "x", "status": "a"}]},
    probe="snmp", target="sw-1", duration_seconds=0.5, started_at=1.0,
)


@pytest.mark.parametrize("community", ["x", "a", "ok", "public", "snmp", "explanation", "status", "timeout"])
def test_json_of_a_result_keeps_every_key_and_netmon_word(community: str) -> None:
    """The bug of issue 16: ``--community x --json`` printed the key ``e****planation``."""
    plain = RESULT.to_json()
    shown = redact_result(RESULT, {community}).to_json()
    assert json.dumps(shown)  # still one JSON document

    def keys(doc: object) -> list[str]:
        if isinstance(doc, dict):
            return [k for k, v in doc.items() for k in (k, *keys(v))]
        if isinstance(doc, list):
            return [k for v in doc for k in keys(v)]
        return []

    assert keys(shown) == keys(plain)
    # netmon's own words are never masked: probe, status, metric names
    assert (shown["probe"], shown["status"]) == ("snmp", "timeout")
    assert [s["metric"] for s in shown["samples"]] == [s["metric"] for s in plain["samples"]]
    # free text: only whole tokens equal to the secret (4+ characters), or whole values
    explanation = RESULT.explanation
    if community == "status":
        explanation = explanation.replace("its status", f"its {MASK}")
    assert shown["explanation"] == explanation
    assert shown["facts"]["snmp"] == "SNMPv2c community (hidden)"
    assert (shown["facts"]["explanation"] == MASK) is (community == "status")
    assert (shown["facts"]["sys_descr"] == f"Linux {MASK} box") is (community == "snmp")
    assert shown["samples"] == plain["samples"]  # netmon's labels, as /metrics has them
    assert shown["records"]["status"] == [{"explanation": "x", "status": "a"}]  # short: kept


# --- config: secrets optional --------------------------------------------------------------

CONFIG = """\
credentials:
  v2: {version: 2c, community: {env: NETMON_T16_COMMUNITY}}
  v3:
    version: 3
    user: netmon
    auth: {protocol: SHA256, password: {file: secrets/auth}}
    priv: {protocol: AES, password: {env: NETMON_T16_PRIV}}
  inline: {version: 2c, community: inline-community-1}
groups:
  - {name: sw, role: switch, credentials: v3, targets: [{name: sw-1, address: 192.0.2.2}]}
  - {name: pr, role: printer, credentials: v2, targets: [{name: pr-1, address: 192.0.2.3}]}
alerts:
  smtp: {host: 127.0.0.1, username: netmon, password: {env: NETMON_T16_SMTP}}
  receivers:
    - name: it
      email: {to: [it@school.example]}
      webhook: {url: "http://hook:url-pass-16@127.0.0.1:9/x", username: u, password: {file: hook-pw}}
  route: {receiver: it}
"""
SECRETS = {"NETMON_T16_COMMUNITY": "env-community-16", "NETMON_T16_PRIV": "env-priv-pass-16",
           "NETMON_T16_SMTP": "env-smtp-pass-16"}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "netmon.yml"
    path.write_text(CONFIG)
    return path


def test_secrets_optional_reads_no_secret(config: Path) -> None:
    with pytest.raises(ConfigFileError) as info:
        load_config(config)
    lines = [str(p) for p in info.value.problems]
    assert len(lines) == 5 and all(ln.startswith(f"{config}:") for ln in lines), lines
    cfg = load_config(config, resolve_secrets=False)
    assert cfg.alerts.smtp is not None and cfg.alerts.smtp.password is not None
    assert cfg.alerts.smtp.password.get_secret_value() == UNRESOLVED_SECRET
    assert cfg.credentials["v2"].community is not None
    assert cfg.credentials["v2"].community.get_secret_value() == UNRESOLVED_SECRET
    assert cfg.credentials["inline"].community is not None
    assert cfg.credentials["inline"].community.get_secret_value() == "inline-community-1"
    assert config_secrets(cfg) == {"inline-community-1", "url-pass-16"}


def test_config_secrets_are_every_kind(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    (config.parent / "secrets").mkdir()
    (config.parent / "secrets" / "auth").write_text("file-auth-pass-16\n")
    # a relative {file:} inside a list (receivers) is relative to the config's directory too
    (config.parent / "hook-pw").write_text("file-hook-pass-16\n")
    cfg = load_config(config)
    assert config_secrets(cfg) == {*SECRETS.values(), "file-auth-pass-16", "file-hook-pass-16",
                                   "inline-community-1", "url-pass-16"}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_secrets_optional_still_finds_every_other_mistake(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every invalid fixture gives the same problems without reading secrets, except the
    ones about a secret that cannot be read."""
    monkeypatch.setenv("NETMON_TEST_COMMUNITY", "env-community-4711")  # as tests/unit/test_config.py
    monkeypatch.setenv("NETMON_TEST_PRIV", "env-priv-password-99")
    monkeypatch.delenv("NETMON_TEST_SURELY_UNSET", raising=False)
    with pytest.raises(ConfigFileError) as full:
        load_config(path)
    if path.stem in SECRET_ONLY:
        load_config(path, resolve_secrets=False)
        return
    with pytest.raises(ConfigFileError) as optional:
        load_config(path, resolve_secrets=False)
    assert optional.value.problems == full.value.problems


def test_secrets_optional_still_checks_the_shape_of_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("credentials:\n  a:\n    version: 2c\n    community: {env: X, file: Y}\n")
    with pytest.raises(ConfigFileError) as info:
        load_config(path, resolve_secrets=False)
    [problem] = info.value.problems
    assert str(problem).startswith(f"{path}:4: credentials.a.community: a secret is a string")


def test_the_example_loads_without_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NETMON_SNMP_COMMUNITY", "NETMON_SNMP_PRIV_PASSWORD", "NETMON_SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    cfg = load_config(EXAMPLE, resolve_secrets=False)
    assert config_secrets(cfg) == set()
    assert all(c.community is None or c.community.get_secret_value() == UNRESOLVED_SECRET
               for c in cfg.credentials.values())
