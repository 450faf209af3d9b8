"""Discovery against real agents: every recording served by snmpsim on its own loopback
address, addresses that answer ping but not SNMP, and a silent host in a namespace.

One snmpsim process runs one SNMP engine per recording (``--v3-engine-id`` starts a new
engine with its own ``--data-dir`` and endpoint), so each address serves exactly one
recording under an ordinary community. (snmpsim 1.2.2's documented transport-address
based selection never runs with pysnmp 7, whose responders no longer call the
camelCase hook snmpsim overrides.)
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from monitor.config import load_config, resolve_targets
from monitor.demo import simlab
from monitor.discover import (
    CredentialSet,
    Device,
    DiscoverSettings,
    discover,
    group_entries,
    known_from,
    merge_text,
    parse_network,
)
from probes.classify import DeviceFacts, classify
from probes.context import ProbeContext
from probes.snmp.credentials import community
from tests import netns as nsutil
from tests.conftest import need, need_root
from tests.snmprec import RECORDINGS, recordings

NETMON = Path(sys.executable).parent / "netmon"
#: Folder -> (class, os) every recording in it must get.
EXPECTED = {"printer": ("printer", None), "switch": ("switch", None), "ups": ("ups", None),
            "linux": ("host", "linux"), "windows": ("host", "windows")}  # fmt: skip
#: This recording answers another community, to prove credential sets are tried in order.
OTHER_COMMUNITY = {"ups/phoenixtec-power": "ups-ro"}
#: Placed first so the two-address CLI tests see a printer and the named UPS.
FIRST = ["printer/hp-color-laserjet-pro-m252dw", "ups/phoenixtec-power"]
SETTINGS = {"icmp_timeout": 1.0, "snmp_timeout": 1.0, "snmp_retries": 1}


@dataclass
class Lab:
    network: str  # a /27 on loopback: recordings first, then ping-only addresses
    port: int
    by_address: dict[str, str]  # address -> recording (folder/name)


def _lab_network() -> ipaddress.IPv4Network:
    return ipaddress.ip_network(f"127.{100 + os.getpid() % 100}.{os.getpid() % 200 + 1}.0/27")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    need(simlab.snmpsim_available())
    names = sorted((str(p.relative_to(RECORDINGS).with_suffix("")) for p in recordings()),
                   key=lambda n: (n not in FIRST, FIRST.index(n) if n in FIRST else 0, n))  # fmt: skip
    net = _lab_network()
    hosts = [str(a) for a in net.hosts()]
    assert len(names) < len(hosts), "more recordings than lab addresses"
    port = simlab.free_udp_port(hosts[0])
    work = Path(tempfile.mkdtemp(prefix="netmon-discover-lab-"))
    cmd = [str(simlab.SIM_VENV / "bin" / "snmpsim-command-responder"), f"--cache-dir={work / 'cache'}",
           "--log-level=error"]  # fmt: skip
    by_address = {}
    for address, name in zip(hosts, names, strict=False):
        data = work / name.replace("/", "_")
        data.mkdir()
        shutil.copy(RECORDINGS / f"{name}.snmprec", data / f"{OTHER_COMMUNITY.get(name, 'school')}.snmprec")
        cmd += ["--v3-engine-id=auto", f"--data-dir={data}", f"--agent-udpv4-endpoint={address}:{port}"]
        by_address[address] = name
    log = (work / "snmpsim.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, SNMPSIM_ALLOW_ROOT="true"))  # fmt: skip
    try:
        last = list(by_address)[-1]
        community_of_last = OTHER_COMMUNITY.get(by_address[last], "school")
        if not simlab.wait_for_agent(last, port, community_of_last, 60, proc):
            pytest.fail(f"snmpsim lab did not start: {(work / 'snmpsim.log').read_text()[-2000:]}")
        yield Lab(str(net), port, by_address)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def _sets() -> list[CredentialSet]:
    return [CredentialSet("school", community("school")), CredentialSet("ups", community("ups-ro"))]


async def test_every_recording_is_classified_as_its_folder_says(lab: Lab) -> None:
    async with ProbeContext() as ctx:
        found = await discover(parse_network(lab.network), _sets(),
                               DiscoverSettings(snmp_port=lab.port, **SETTINGS), ctx)  # type: ignore[arg-type]
    devices = {d.address: d for d in found.devices}
    assert found.scanned == 30
    # Every loopback address answers ping: recordings and ping-only addresses alike.
    assert set(devices) == {str(a) for a in ipaddress.ip_network(lab.network).hosts()}
    wrong = []
    for address, name in lab.by_address.items():
        d = devices[address]
        got = (d.classification.device_class, d.classification.os)
        if got != EXPECTED[name.split("/")[0]]:
            wrong.append(f"{name}: {d.classification.label} ({d.classification.confidence}): {d.classification.reason}")
    accuracy = 1 - len(wrong) / len(lab.by_address)
    print(f"\ndiscovery accuracy on {len(lab.by_address)} recordings: {accuracy:.0%}")
    assert not wrong, "misclassified:\n" + "\n".join(wrong)
    for address, name in lab.by_address.items():
        d = devices[address]
        assert d.credentials == ("ups" if name in OTHER_COMMUNITY else "school"), name
        assert d.classification.vendor or name.startswith("linux/"), name
    ups = devices[next(a for a, n in lab.by_address.items() if n in OTHER_COMMUNITY)]
    assert ups.snmp_note.startswith("school: ")  # tried first, failed, then "ups" worked
    hp = devices[next(a for a, n in lab.by_address.items() if n == FIRST[0])]
    assert hp.classification.model == "Color LaserJet Pro M252dw"
    assert hp.facts.serial == "VNB3J99999"
    assert "Printer-MIB present" in hp.classification.reason
    assert hp.modules == ("system", "printer")
    ping_only = [d for a, d in devices.items() if a not in lab.by_address]
    assert ping_only and all(d.facts.snmp == "failed" and d.credentials is None for d in ping_only)
    assert all(d.classification.device_class == "other" for d in ping_only)
    assert all(d.classification.confidence <= 0.2 and "no SNMP answer" in d.classification.reason for d in ping_only)


async def test_silent_host_in_a_namespace_is_not_reported() -> None:
    need_root()
    need(nsutil.missing())
    subnet = nsutil.free_subnet()
    with nsutil.netns("nmdisc") as ns, nsutil.veth(ns, subnet, loss_percent=100) as link:
        async with ProbeContext() as ctx:
            found = await discover(parse_network(subnet), [], DiscoverSettings(icmp_timeout=0.5), ctx)
    assert found.scanned == 2
    assert [d.address for d in found.devices] == [link.outer]  # the inner end is silent
    assert "SNMP not tried" in found.devices[0].classification.reason


# --- the command line -------------------------------------------------------------------


def netmon(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NETMON), "discover", *args], capture_output=True, text=True, check=False,
                          timeout=120, cwd=cwd, env={**os.environ, "COLUMNS": "250", **env})  # fmt: skip


def _pair(lab: Lab) -> tuple[str, str, str]:
    """The /30 holding the HP printer and the named UPS, and their addresses."""
    printer, ups = list(lab.by_address)[:2]
    return f"{printer}/30".replace(".1/30", ".0/30"), printer, ups


CONFIG = """\
# School inventory: kept by hand, comments must survive discovery.
defaults:
  snmp: {{port: {port}}}
credentials:
  # wrong on purpose: tried first, must not stick
  nope: {{version: 2c, community: not-this-one}}
  school: {{version: 2c, community: school}}
groups:
  - name: printers   # the library printer
    role: printer
    targets:
      - {{name: library-mfp, address: {printer}, credentials: school}}
# alerts come later
alerts: {{}}
"""


def test_write_merges_new_devices_only_and_keeps_comments(lab: Lab, tmp_path: Path) -> None:
    network, printer, ups = _pair(lab)
    cfg = tmp_path / "netmon.yml"
    cfg.write_text(CONFIG.format(port=lab.port, printer=printer))
    creds = ("--credentials", "nope", "school", "--timeout", "500ms")
    dry = netmon(network, "-c", str(cfg), *creds)
    assert dry.returncode == 0, dry.stderr
    assert "library-mfp (known)" in dry.stdout and "dry run" in dry.stdout
    assert cfg.read_text() == CONFIG.format(port=lab.port, printer=printer)

    done = netmon(network, "-c", str(cfg), *creds, "--write")
    assert done.returncode == 0, done.stderr
    text = cfg.read_text()
    assert text.startswith(CONFIG.format(port=lab.port, printer=printer).split("# alerts")[0])
    assert "# wrong on purpose" in text and text.rstrip().endswith("alerts: {}")
    targets = {t.address: t for t in resolve_targets(load_config(cfg))}
    assert set(targets) == {printer, ups}  # the printer was not added twice
    # The UPS answered only the second credential set (its own community is ups-ro,
    # absent here) -> it was found by ICMP only: no SNMP credentials written for it.
    assert targets[ups].group == "discovered-other" and targets[ups].credentials_name is None

    again = netmon(network, "-c", str(cfg), *creds, "--write")
    assert again.returncode == 0 and "nothing new" in again.stderr
    assert cfg.read_text() == text


def test_write_with_env_community_adds_credentials_and_dedups_by_name(lab: Lab, tmp_path: Path) -> None:
    network, printer, _ups = _pair(lab)
    cfg = tmp_path / "netmon.yml"
    # The UPS is known by name (its sysName 'My Kert UPS') at another address.
    cfg.write_text("credentials:\n  ups: {version: 2c, community: ups-ro}\n"
                   "groups:\n  - name: power\n    role: ups\n    credentials: ups\n    targets:\n"
                   "      - {name: my-kert-ups, address: 192.0.2.9}\n")  # fmt: skip
    done = netmon(network, "-c", str(cfg), "--community-env", "T_DISCOVER", "--snmp-port", str(lab.port),
                  "--write", T_DISCOVER="school")  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = cfg.read_text()
    assert "school" not in text  # the secret stays in the environment
    assert "{env: T_DISCOVER}" in text
    doc = yaml.safe_load(text)
    names = [t["name"] for g in doc["groups"] for t in g["targets"]]
    assert names.count("my-kert-ups") == 1 and len(names) == 2
    added = doc["groups"][-1]
    assert added["name"] == "discovered-printers" and added["targets"][0]["address"] == printer
    assert added["targets"][0]["credentials"] == "env-t-discover"
    assert added["targets"][0]["port"] == lab.port
    assert list(doc["credentials"]) == ["env-t-discover", "ups"]


def test_file_sd_and_yaml_output(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    network = _pair(lab)[0]
    sd = netmon(network, "--community-env", "T_DISCOVER", "--snmp-port", str(lab.port), "--format", "file_sd",
                "--timeout", "500ms", T_DISCOVER="school")  # fmt: skip
    assert sd.returncode == 0, sd.stderr
    groups = json.loads(sd.stdout)
    # The UPS does not answer this community: ICMP only, role other.
    assert [g["labels"]["role"] for g in groups] == ["printer", "other"]
    assert all(g["labels"]["__param_target"] == g["targets"][0] for g in groups)
    out = tmp_path / "found.yml"
    w = netmon(network, "--community-env", "T_DISCOVER", "--snmp-port", str(lab.port), "--format", "yaml",
               "--timeout", "500ms", "--write", "-o", str(out), T_DISCOVER="school")  # fmt: skip
    assert w.returncode == 0, w.stderr
    monkeypatch.setenv("T_DISCOVER", "school")
    cfg = load_config(out)  # a valid config on its own, with the credentials it needs
    assert {t.role for t in resolve_targets(cfg)} == {"printer", "other"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["10.0.0.300/24"], "is not a network"),
        (["10.0.0.0/8"], "--max-prefix 8"),
        (["10.0.0.0/15"], "more than the /16 cap"),
        (["127.0.0.0/30", "--credentials", "core"], "--credentials: unknown core"),
        (["127.0.0.0/30", "--write"], "--write needs -c"),
        (["127.0.0.0/30", "--community-env", "T_UNSET_VAR_XYZ"], "T_UNSET_VAR_XYZ is not set"),
    ],
)
def test_bad_input_is_a_clear_message_and_exit_2(args: list[str], message: str) -> None:
    proc = netmon(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_without_credentials_classification_is_icmp_only() -> None:
    need_root()
    proc = netmon(f"127.{200 + os.getpid() % 50}.9.0/30", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 2
    assert all(r["class"] == "other" and r["snmp"] == "not_tried" for r in rows)
    assert all("SNMP not tried" in r["reason"] and r["confidence"] <= 0.2 for r in rows)


# --- merge logic (pure) -----------------------------------------------------------------


def _device(address: str, **facts: object) -> Device:
    f = DeviceFacts(address, **facts)  # type: ignore[arg-type]
    return Device(address, 0.001, f, classify(f), "school" if f.snmp == "ok" else None)


def test_known_devices_match_by_address_name_mac_and_serial(tmp_path: Path) -> None:
    cfg_path = tmp_path / "c.yml"
    text = (
        "groups:\n  - name: a\n    targets:\n"
        "      - {name: lib-printer, address: 192.0.2.1, labels: {serial: VNB3J99999}}\n"
        "      - {name: sw1, address: 192.0.2.2}  # discovered: switch, mac 00:11:22:33:44:55\n"
    )
    cfg_path.write_text(text)
    known = known_from(load_config(cfg_path), text)
    assert known.match(_device("192.0.2.1")) == "lib-printer"
    assert known.match(_device("198.51.100.7", snmp="ok", serial="vnb3j99999")) == "lib-printer"
    assert known.match(_device("198.51.100.8", snmp="ok", macs=("00:11:22:33:44:55",))) == "sw1"
    assert known.match(_device("198.51.100.9", snmp="ok", sys_name="SW1")) == "sw1"
    assert known.match(_device("198.51.100.10", snmp="ok", sys_name="other")) is None


def test_merge_appends_groups_inside_the_groups_block_and_validates(tmp_path: Path) -> None:
    text = ("credentials:\n  school: {version: 2c, community: x}\n"
            "groups:\n- name: lab\n  targets: [{name: pc1, address: 192.0.2.1}]\n\nserver: {}\n")
    entries = group_entries([_device("192.0.2.50", snmp="ok", mibs=frozenset({"Printer-MIB"}))],
                            DiscoverSettings(), ["lab"], ["pc1"])  # fmt: skip
    merged = merge_text(text, entries, {})
    path = tmp_path / "m.yml"
    path.write_text(merged)
    targets = resolve_targets(load_config(path))
    assert [(t.group, t.role) for t in targets] == [("lab", "other"), ("discovered-printers", "printer")]
    assert merged.endswith("server: {}\n") and merged.startswith(text.split("\n\n")[0])
    assert "\n- name: discovered-printers\n" in merged  # the file's own list indentation
