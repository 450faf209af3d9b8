"""Classification of devices from what discovery reads: every recording, ports, edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.classify import DeviceFacts, classify, enterprise_of, facts_from_walked, host_os
from tests.snmprec import RECORDINGS, load_walked, recordings

EXPECTED = {"printer": ("printer", None), "switch": ("switch", None), "ups": ("ups", None),
            "linux": ("host", "linux"), "windows": ("host", "windows")}  # fmt: skip
VENDOR_MODEL = {
    "printer/hp-color-laserjet-pro-m252dw": ("HP", "Color LaserJet Pro M252dw"),
    "printer/brother-hl-5370dw": ("Brother", "HL-5370DW series"),
    "printer/konica-minolta-bizhub-c3110": ("Konica Minolta", "bizhub C3110"),
    "switch/cisco-catalyst-2960": ("Cisco", "C2960"),
    "switch/aruba-cx-6100-12g": ("HPE Aruba", None),
    "ups/apc-smart-ups-1000-nmc3": ("APC", "Smart-UPS 1000"),
    "windows/windows-server-2019-1809": ("Microsoft", "Windows (build 17763)"),
}


@pytest.mark.parametrize("path", recordings(), ids=lambda p: str(p.relative_to(RECORDINGS)))
def test_each_recording_gets_its_folders_class(path: Path) -> None:
    c = classify(facts_from_walked("192.0.2.1", load_walked(path)))
    assert (c.device_class, c.os) == EXPECTED[path.parent.name], c.reason
    assert c.confidence >= 0.6, c.reason
    assert c.reason


@pytest.mark.parametrize(("name", "expected"), VENDOR_MODEL.items())
def test_vendor_and_model(name: str, expected: tuple[str, str | None]) -> None:
    c = classify(facts_from_walked("192.0.2.1", load_walked(RECORDINGS / f"{name}.snmprec")))
    assert c.vendor == expected[0]
    if expected[1] is not None:
        assert c.model == expected[1]


def test_reason_names_the_evidence() -> None:
    facts = facts_from_walked("192.0.2.1", load_walked(RECORDINGS / "printer/hp-laserjet-mfp-m130nw.snmprec"))
    reason = classify(facts).reason
    assert "Printer-MIB present" in reason and "sysDescr 'HP ETHERNET" in reason
    assert facts.serial == "VNCRC48198" and facts.macs[0] == "14:cb:19:95:2e:a0"


def test_windows_print_queues_do_not_make_a_printer() -> None:
    facts = facts_from_walked("192.0.2.1", load_walked(RECORDINGS / "windows/windows-server-2019-1809.snmprec"))
    assert "printer" in facts.hr_device_types  # "Microsoft Print To PDF"
    assert classify(facts).device_class == "host"


@pytest.mark.parametrize(
    ("ports", "snmp", "cls", "os", "reason"),
    [
        ({9100, 80}, "not_tried", "printer", None, "TCP 9100 (raw printing) open"),
        ({3389, 445}, "failed", "host", "windows", "TCP 3389 (RDP) open"),
        ({22}, "not_tried", "host", "linux", "TCP 22 (SSH) open"),
        (set(), "not_tried", "other", None, "SNMP not tried (no credentials)"),
        (None, "failed", "other", None, "no SNMP answer"),
    ],
)
def test_without_snmp_ports_decide_with_low_confidence(
    ports: set[int] | None, snmp: str, cls: str, os: str | None, reason: str
) -> None:
    facts = DeviceFacts("192.0.2.7", snmp, open_ports=frozenset(ports) if ports is not None else None)  # type: ignore[arg-type]
    c = classify(facts)
    assert (c.device_class, c.os) == (cls, os)
    assert reason in c.reason
    assert c.confidence <= 0.5
    assert c.vendor is None and c.model is None


def test_access_point_from_the_802_11_mib_and_sysdescr() -> None:
    facts = DeviceFacts("192.0.2.8", "ok", sys_descr="UAP-AC-Pro-Gen2 6.5.28", sys_object_id="1.3.6.1.4.1.41112.1.6",
                        mibs=frozenset({"IEEE 802.11 MIB"}), interfaces=3)  # fmt: skip
    c = classify(facts)
    assert c.device_class == "access_point" and c.vendor == "Ubiquiti"
    assert "IEEE 802.11 MIB present" in c.reason


def test_snmp_answer_without_clues_is_other() -> None:
    c = classify(DeviceFacts("192.0.2.9", "ok", sys_descr="", sys_object_id="1.3.6.1.4.1.99999.1"))
    assert c.device_class == "other" and c.confidence == 0.3


@pytest.mark.parametrize(
    ("oid", "descr", "os"),
    [
        ("1.3.6.1.4.1.8072.3.2.10", "", "linux"),
        ("1.3.6.1.4.1.8072.3.2.16", "", "macos"),
        ("1.3.6.1.4.1.8072.3.2.10", "Darwin mac-lab-3 21.6.0 Darwin Kernel", "macos"),
        ("1.3.6.1.4.1.311.1.1.3.1.1", "", "windows"),
        ("1.3.6.1.4.1.9.1.1", "Cisco IOS", None),
    ],
)
def test_host_os(oid: str, descr: str, os: str | None) -> None:
    assert host_os(DeviceFacts("192.0.2.1", "ok", sys_descr=descr, sys_object_id=oid)) == os


def test_enterprise_of() -> None:
    assert enterprise_of("1.3.6.1.4.1.11.2.3.9.1") == 11
    assert enterprise_of("1.3.6.1.2.1.1") is None
    assert enterprise_of(None) is None
