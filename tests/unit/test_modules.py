"""The system, interfaces, host and ups converters, on every relevant recording.

Expectations are computed from the recording's raw lines (``tests.snmprec``), never
copied by hand; table-driven cases cover the fallbacks the recordings do not show.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.result import Sample
from probes.snmp.modules import MODULES
from probes.snmp.modules.base import ModuleOutput
from probes.snmp.modules.host import storage_name
from probes.snmp.modules.interfaces import if_text, speed_bps
from probes.snmp.probe import plan
from probes.snmp.types import OID, Value, Walked, oid
from tests.snmprec import column, decode, load_walked, raw_lines, recordings

IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
STORAGE_ENTRY = "1.3.6.1.2.1.25.2.3.1"

INTERFACE_FILES = recordings("switch") + recordings("linux") + recordings("windows")
HOST_FILES = recordings("linux") + recordings("windows")
UPS_DIR = recordings("ups")[0].parent
APC = UPS_DIR / "apc-smart-ups-1000-nmc3.snmprec"
PHOENIXTEC = UPS_DIR / "phoenixtec-power.snmprec"


def ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.stem}" for p in paths]


def raw(path: Path, at: str) -> Value | None:
    """The decoded value of one OID, straight from the file."""
    for o, tag, value in raw_lines(path):
        if o == at:
            return decode(tag, value)
    return None


def raw_text(path: Path, at: str) -> str | None:
    value = raw(path, at)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").replace("\r\n", "\n").strip("\x00").strip()
    return None if value is None else str(value)


def by_labels(out: ModuleOutput, metric: str, key: str) -> dict[str, Sample]:
    found: dict[str, Sample] = {}
    for s in out.samples:
        if s.metric == metric:
            assert s.label_dict[key] not in found, (
                f"duplicate {metric}{{{key}={s.label_dict[key]}}}"
            )
            found[s.label_dict[key]] = s
    return found


def only(out: ModuleOutput, metric: str, **labels: str) -> float | None:
    hits = [s.value for s in out.samples if s.metric == metric
            and all(s.label_dict.get(k) == v for k, v in labels.items())]  # fmt: skip
    assert len(hits) <= 1, f"{metric}{labels} appears {len(hits)} times"
    return hits[0] if hits else None


def named(out: ModuleOutput, metric: str) -> list[Sample]:
    return [s for s in out.samples if s.metric == metric]


def restrict(walked: Walked, gets: list[OID], walks: list[OID]) -> dict[OID, Value]:
    """What the probe's fetch plan would bring back from a device with ``walked``."""
    wanted = set(gets)
    return {k: v for k, v in walked.items()
            if k in wanted or any(k[: len(w)] == w for w in walks)}  # fmt: skip


# --- every module: the probe's fetch plan covers what the converter reads ------------


@pytest.mark.parametrize("path", recordings(), ids=ids(recordings()))
@pytest.mark.parametrize("name", ["system", "interfaces", "host", "ups"])
def test_converter_reads_only_what_the_module_fetches(name: str, path: Path) -> None:
    module = MODULES[name]
    full = load_walked(path)
    gets, walks = plan([module])
    assert module.convert(restrict(full, gets, walks)) == module.convert(full)


@pytest.mark.parametrize("name", ["system", "interfaces", "host", "ups"])
def test_missing_tables_give_no_samples_and_no_error(name: str) -> None:
    assert MODULES[name].convert({}) == ModuleOutput()


@pytest.mark.parametrize("name", ["system", "interfaces", "host", "ups"])
def test_garbage_values_do_not_raise(name: str) -> None:
    module = MODULES[name]
    gets, walks = plan([module])
    odd: list[Value] = [b"\xff\xfe junk", "1.2.3", -7, 2**70, b"", "x", 0, b"\x00\x01", "9"]
    junk: dict[OID, Value] = {}
    for i, o in enumerate(gets):
        junk[o] = odd[i % len(odd)]
    for i, w in enumerate(walks):
        for col in range(1, 8):
            junk[w + (col, 1)] = odd[(i + col) % len(odd)]
    module.convert(junk)  # must simply not raise


def test_plan_deduplicates_gets_and_drops_nested_walks() -> None:
    from probes.snmp.modules.base import SnmpModule

    a = SnmpModule(
        "a",
        "",
        (oid("1.3.6.1.2.1.2.2.1.8"),),
        lambda w: ModuleOutput(),
        gets=(oid("1.3.6.1.2.1.1.3.0"), oid("1.3.6.1.2.1.2.2.1.8.5")),
    )
    nested = (oid("1.3.6.1.2.1.2.2"), oid("1.3.6.1.2.1.25.2"))
    b = SnmpModule("b", "", nested, lambda w: ModuleOutput(), gets=(oid("1.3.6.1.2.1.1.3.0"),))
    gets, walks = plan([a, b])
    assert walks == [oid("1.3.6.1.2.1.2.2"), oid("1.3.6.1.2.1.25.2")]
    assert gets == [oid("1.3.6.1.2.1.1.3.0")]


# --- system ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", recordings(), ids=ids(recordings()))
def test_system_on_every_recording(path: Path) -> None:
    out = MODULES["system"].convert(load_walked(path))
    descr = raw_text(path, "1.3.6.1.2.1.1.1.0")
    assert descr and out.facts["sys_descr"] == "\n".join(ln.rstrip() for ln in descr.splitlines())
    assert out.facts["sys_object_id"] == raw(path, "1.3.6.1.2.1.1.2.0")
    for fact, at in (("sys_name", "5"), ("location", "6"), ("contact", "4")):
        assert out.facts.get(fact) == raw_text(path, f"1.3.6.1.2.1.1.{at}.0")
    (info,) = [s for s in out.samples if s.metric == "netmon_device_info"]
    labels = info.label_dict
    assert info.value == 1
    assert "\n" not in labels["sys_descr"] and 0 < len(labels["sys_descr"]) <= 120
    first_line = descr.splitlines()[0].strip()
    assert (
        labels["sys_descr"].rstrip("…")
        == " ".join(first_line.split())[: len(labels["sys_descr"].rstrip("…"))]
    )
    assert labels["sys_object_id"] == raw(path, "1.3.6.1.2.1.1.2.0")
    assert labels["location"] == (raw_text(path, "1.3.6.1.2.1.1.6.0") or "")
    ticks = raw(path, "1.3.6.1.2.1.1.3.0")
    assert isinstance(ticks, int)
    assert only(out, "netmon_device_uptime_seconds", source="sysUpTime") == ticks / 100
    hr = raw(path, "1.3.6.1.2.1.25.1.1.0")
    assert only(out, "netmon_device_uptime_seconds", source="hrSystemUptime") == (
        hr / 100 if isinstance(hr, int) else None
    )


def test_cisco_multi_line_hex_sysdescr_is_decoded() -> None:
    path = next(p for p in recordings("switch") if "cisco-catalyst" in p.name)
    assert any(t == "4x" for o, t, _ in raw_lines(path) if o == "1.3.6.1.2.1.1.1.0")
    out = MODULES["system"].convert(load_walked(path))
    assert len(out.facts["sys_descr"].splitlines()) >= 3 and "\r" not in out.facts["sys_descr"]
    assert out.facts["sys_descr"].startswith("Cisco IOS Software")
    assert only(out, "netmon_device_info") == 1


@pytest.mark.parametrize(
    ("value", "fact", "label"),
    [
        (b"Line one\r\nLine two\r\n", "Line one\nLine two", "Line one"),
        (b"\n\n  padded   words  \n", "padded   words", "padded words"),
        (b"caf\xe9 latin-1", "caf\xe9 latin-1", "caf\xe9 latin-1"),
        (b"x" * 300, "x" * 300, "x" * 119 + "…"),
        (b"with NUL\x00garbage", "with NUL", "with NUL"),
    ],
)
def test_system_strings(value: bytes, fact: str, label: str) -> None:
    out = MODULES["system"].convert({oid("1.3.6.1.2.1.1.1.0"): value})
    assert out.facts["sys_descr"] == fact
    (info,) = out.samples
    assert info.label_dict["sys_descr"] == label
    assert info.label_dict["sys_name"] == ""


# --- interfaces ------------------------------------------------------------------------

OPER = {"1": "up", "2": "down", "3": "testing", "4": "unknown", "5": "dormant",
        "6": "not_present", "7": "lower_layer_down"}  # fmt: skip


@pytest.mark.parametrize("path", INTERFACE_FILES, ids=ids(INTERFACE_FILES))
def test_interfaces_on_every_switch_and_host(path: Path) -> None:
    out = MODULES["interfaces"].convert(load_walked(path))
    if_cols = {c: column(path, IF_ENTRY, c) for c in (2, 3, 5, 7, 8, 10, 13, 14, 16, 19, 20)}
    ifx_cols = {c: column(path, IFX_ENTRY, c) for c in (1, 6, 10, 15, 18)}
    indexes = set().union(*if_cols.values(), *ifx_cols.values())
    assert indexes, "every switch and host recording has interfaces"
    info = by_labels(out, "netmon_interface_info", "if_index")
    assert set(info) == indexes
    assert [r["index"] for r in out.records["interfaces"]] == sorted(indexes, key=int)

    def sample(metric: str, idx: str) -> float | None:
        return only(out, metric, if_index=idx)

    for idx in indexes:
        labels = info[idx].label_dict
        assert all("\n" not in v for v in labels.values())
        if idx in ifx_cols[1]:
            assert labels["if_name"] == ifx_cols[1][idx].strip()
        oper = if_cols[8].get(idx)
        assert sample("netmon_interface_oper_up", idx) == (
            None if oper is None else float(oper == "1")
        )
        states = {
            s.label_dict["state"]: s.value
            for s in named(out, "netmon_interface_oper_status")
            if s.label_dict["if_index"] == idx
        }
        assert states == ({} if oper is None else {st: float(k == oper) for k, st in OPER.items()})
        admin = if_cols[7].get(idx)
        assert sample("netmon_interface_admin_up", idx) == (
            None if admin is None else float(admin == "1")
        )

        high, speed = ifx_cols[15].get(idx), if_cols[5].get(idx)
        if high is not None and (int(high) > 0 or speed in (None, "0", "4294967295")):
            expected_speed: float | None = int(high) * 1e6 / 8
        elif speed is not None and speed != "4294967295":
            expected_speed = int(speed) / 8
        else:
            expected_speed = None
        assert sample("netmon_interface_speed_bytes", idx) == expected_speed

        for metric, hc, low in (("netmon_interface_receive_bytes_total", 6, 10),
                                ("netmon_interface_transmit_bytes_total", 10, 16)):  # fmt: skip
            value = ifx_cols[hc].get(idx, if_cols[low].get(idx))
            assert sample(metric, idx) == (None if value is None else float(value))
        for metric, col in (("netmon_interface_receive_errors_total", 14),
                            ("netmon_interface_transmit_errors_total", 20),
                            ("netmon_interface_receive_discards_total", 13),
                            ("netmon_interface_transmit_discards_total", 19)):  # fmt: skip
            value = if_cols[col].get(idx)
            assert sample(metric, idx) == (None if value is None else float(value))


def test_sg350_uses_32_bit_counters_and_others_64_bit() -> None:
    sg350 = next(p for p in recordings("switch") if "sg350" in p.name)
    assert not column(sg350, IFX_ENTRY, 6) and column(sg350, IF_ENTRY, 10)
    out = MODULES["interfaces"].convert(load_walked(sg350))
    assert len(named(out, "netmon_interface_receive_bytes_total")) == len(
        column(sg350, IF_ENTRY, 10)
    )


@pytest.mark.parametrize(
    ("speed", "high", "expected"),
    [
        (100_000_000, 100, 100_000_000),  # both agree
        (4294967295, 10_000, 10_000_000_000),  # ifSpeed saturated: ifHighSpeed
        (None, 25_000, 25_000_000_000),  # only ifXTable
        (1_000_000_000, None, 1_000_000_000),  # only ifTable
        (64_000, 0, 64_000),  # sub-Mbps link: ifHighSpeed rounds to 0
        (0, 0, 0),  # down port with no speed
        (4294967295, None, None),  # "at least 4.3 Gbps" alone is unknown
        (None, None, None),
    ],
)
def test_speed_fallbacks(speed: int | None, high: int | None, expected: int | None) -> None:
    assert speed_bps(speed, high) == expected


def _if_walked(**cols: Value) -> dict[OID, Value]:
    where = {"descr": (IF_ENTRY, 2), "oper": (IF_ENTRY, 8), "in32": (IF_ENTRY, 10),
             "out32": (IF_ENTRY, 16), "in64": (IFX_ENTRY, 6), "out64": (IFX_ENTRY, 10),
             "name": (IFX_ENTRY, 1), "type": (IF_ENTRY, 3)}  # fmt: skip
    return {oid(f"{where[k][0]}.{where[k][1]}.7"): v for k, v in cols.items()}


@pytest.mark.parametrize(
    ("cols", "rx", "tx"),
    [
        ({"in32": 10, "out32": 20, "in64": 2**40, "out64": 2**41}, 2**40, 2**41),
        ({"in32": 10, "out32": 20}, 10, 20),
        ({"in64": 5, "out32": 20}, 5, 20),
        ({"oper": 1}, None, None),
    ],
)
def test_counter_fallbacks(cols: dict[str, int], rx: int | None, tx: int | None) -> None:
    out = MODULES["interfaces"].convert(_if_walked(**cols))
    assert only(out, "netmon_interface_receive_bytes_total", if_index="7") == rx
    assert only(out, "netmon_interface_transmit_bytes_total", if_index="7") == tx


def test_interface_names_types_and_odd_states() -> None:
    out = MODULES["interfaces"].convert(_if_walked(descr=b"eth0\x00", oper=0, type=161))
    (info,) = named(out, "netmon_interface_info")
    assert info.label_dict == {"if_index": "7", "if_name": "eth0", "if_alias": "",
                               "if_descr": "eth0", "if_type": "ieee8023adLag"}  # fmt: skip
    assert only(out, "netmon_interface_oper_status", state="unknown") == 1
    assert only(out, "netmon_interface_oper_up") == 0
    out = MODULES["interfaces"].convert(
        _if_walked(name=b"Gi1/0/1", descr=b"GigabitEthernet1/0/1", type=999)
    )
    assert out.records["interfaces"][0]["name"] == "Gi1/0/1"
    assert out.records["interfaces"][0]["type"] == "999"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            b"Software Loopbac\n6B 20 49 6E 74 65 72 66 61 63 65 20 31 00 ",
            "Software Loopback Interface 1",
        ),
        (b"WAN Miniport (PP\n50 4F 45 29 00 \n", "WAN Miniport (PPPOE)"),
        (b"line one\nline two", "line one\nline two"),  # real text is left alone
        (b"plain", "plain"),
        (None, None),
    ],
)
def test_hex_dump_artifacts_in_interface_strings(value: bytes | None, expected: str | None) -> None:
    assert if_text(value) == expected


def test_windows_interface_descriptions_are_repaired() -> None:
    path = recordings("windows")[0]
    out = MODULES["interfaces"].convert(load_walked(path))
    hexed = [
        o.rsplit(".", 1)[1]
        for o, t, _ in raw_lines(path)
        if o.startswith(f"{IF_ENTRY}.2.") and t == "4x"
    ]
    assert hexed
    descrs = {r["index"]: r["descr"] for r in out.records["interfaces"]}
    for idx in hexed:
        assert "\n" not in descrs[idx] and not descrs[idx].endswith(" 00")


# --- host ------------------------------------------------------------------------------

STORAGE_TYPE_KIND = {
    "1": "other",
    "2": "ram",
    "3": "virtual_memory",
    "4": "fixed_disk",
    "5": "removable_disk",
    "7": "cd_rom",
    "9": "flash",
    "10": "network_disk",
}


@pytest.mark.parametrize("path", HOST_FILES, ids=ids(HOST_FILES))
def test_host_on_every_linux_and_windows(path: Path) -> None:
    out = MODULES["host"].convert(load_walked(path))
    loads = column(path, "1.3.6.1.2.1.25.3.3.1", 2)
    assert loads
    cpus = by_labels(out, "netmon_host_cpu_load_ratio", "cpu")
    assert {k: s.value for k, s in cpus.items()} == {k: int(v) / 100 for k, v in loads.items()}
    assert [r["index"] for r in out.records["cpus"]] == sorted(loads, key=int)

    types, descrs = column(path, STORAGE_ENTRY, 2), column(path, STORAGE_ENTRY, 3)
    units, sizes, used = (column(path, STORAGE_ENTRY, c) for c in (4, 5, 6))
    size_samples = by_labels(out, "netmon_host_storage_size_bytes", "index")
    used_samples = by_labels(out, "netmon_host_storage_used_bytes", "index")
    records = {r["index"]: r for r in out.records["storage"]}
    assert set(records) == set(types) | set(descrs) | set(units) | set(sizes) | set(used)
    for idx, rec in records.items():
        kind = STORAGE_TYPE_KIND.get(types[idx].rsplit(".", 1)[1], "other")
        assert rec["kind"] == kind
        assert rec["description"] == descrs[idx].strip()
        u = int(units[idx])
        if u <= 0:
            assert rec["size_bytes"] is None and idx not in size_samples
            continue
        assert int(sizes[idx]) >= 0, "the recordings hold no wrapped sizes (see the pure test)"
        assert rec["size_bytes"] == size_samples[idx].value == u * int(sizes[idx])
        assert rec["used_bytes"] == used_samples[idx].value == u * int(used[idx])
        assert size_samples[idx].label_dict["kind"] == kind
        if int(sizes[idx]):
            assert rec["used_ratio"] == pytest.approx(int(used[idx]) / int(sizes[idx]))
    for metric, at in (("netmon_host_processes", "6"), ("netmon_host_users", "5")):
        value = raw(path, f"1.3.6.1.2.1.25.1.{at}.0")
        assert only(out, metric) == (None if value is None else float(value))


def _storage(
    units: int, size: int, used: int, kind: int = 4, descr: bytes = b"/"
) -> dict[OID, Value]:
    e = STORAGE_ENTRY
    return {oid(f"{e}.2.31"): f"1.3.6.1.2.1.25.2.1.{kind}", oid(f"{e}.3.31"): descr,
            oid(f"{e}.4.31"): units, oid(f"{e}.5.31"): size, oid(f"{e}.6.31"): used}  # fmt: skip


@pytest.mark.parametrize(
    ("units", "size", "used", "size_bytes", "used_bytes"),
    [
        (4096, 1000, 250, 4096 * 1000, 4096 * 250),
        (4096, -1, -2, 4096 * (2**32 - 1), 4096 * (2**32 - 2)),  # Integer32 wraparound
        (65536, -1794967296, 1000, 65536 * 2_500_000_000, 65536 * 1000),
        (0, 123, 45, None, None),  # empty CD-ROM drive on Windows
        (-1, 123, 45, None, None),
    ],
)
def test_storage_sizes(
    units: int, size: int, used: int, size_bytes: int | None, used_bytes: int | None
) -> None:
    out = MODULES["host"].convert(_storage(units, size, used))
    (rec,) = out.records["storage"]
    assert (rec["size_bytes"], rec["used_bytes"]) == (size_bytes, used_bytes)
    assert only(out, "netmon_host_storage_size_bytes") == size_bytes
    assert only(out, "netmon_host_storage_used_bytes") == used_bytes
    if size_bytes:
        assert rec["used_ratio"] == pytest.approx(used_bytes / size_bytes)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("descr", "name"),
    [
        ("C:\\ Label:  Serial Number 10f82425", "C:\\"),
        ("E:\\ Label:Backup  Serial Number 1a2b3c4d", "E:\\ (Backup)"),
        ("/var/lib/docker", "/var/lib/docker"),
        (None, ""),
    ],
)
def test_storage_names(descr: str | None, name: str) -> None:
    assert storage_name(descr) == name


# --- ups -------------------------------------------------------------------------------

PNET = "1.3.6.1.4.1.318.1.1.1"
UPSMIB = "1.3.6.1.2.1.33.1"


def test_apc_powernet_recording() -> None:
    out = MODULES["ups"].convert(load_walked(APC))
    assert not any(o.startswith("1.3.6.1.2.1.33.") for o, _, _ in raw_lines(APC))
    assert out.facts["ups_mib"] == "PowerNet-MIB"
    assert out.facts["ups_model"] == raw_text(APC, f"{PNET}.1.1.1.0")
    charge, ticks = raw(APC, f"{PNET}.2.3.1.0"), raw(APC, f"{PNET}.2.2.3.0")
    load, status = raw(APC, f"{PNET}.4.3.3.0"), raw(APC, f"{PNET}.4.1.1.0")
    replace, vin, vout = (
        raw(APC, f"{PNET}.2.2.4.0"),
        raw(APC, f"{PNET}.3.3.1.0"),
        raw(APC, f"{PNET}.4.3.1.0"),
    )
    assert all(isinstance(v, int) for v in (charge, ticks, load, status, replace, vin, vout))
    assert only(out, "netmon_ups_battery_charge_ratio") == pytest.approx(charge / 1000)  # type: ignore[operator]
    assert only(out, "netmon_ups_battery_runtime_seconds") == ticks / 100  # type: ignore[operator]
    assert only(out, "netmon_ups_load_ratio", line="1") == pytest.approx(load / 1000)  # type: ignore[operator]
    assert only(out, "netmon_ups_on_battery") == float(status == 3)
    assert only(out, "netmon_ups_battery_replace_needed") == float(replace == 2)
    assert only(out, "netmon_ups_input_voltage_volts", line="1") == pytest.approx(vin / 10)  # type: ignore[operator]
    assert only(out, "netmon_ups_output_voltage_volts", line="1") == pytest.approx(vout / 10)  # type: ignore[operator]
    # upsBasicBatteryStatus is not in the recording: no made-up state
    assert raw(APC, f"{PNET}.2.1.1.0") is None and not named(out, "netmon_ups_battery_status")
    assert out.records["ups"][0]["model"] == out.facts["ups_model"]


def test_standard_ups_mib_recording() -> None:
    out = MODULES["ups"].convert(load_walked(PHOENIXTEC))
    assert out.facts["ups_mib"] == "UPS-MIB"
    status, charge = raw(PHOENIXTEC, f"{UPSMIB}.2.1.0"), raw(PHOENIXTEC, f"{UPSMIB}.2.4.0")
    source, minutes = raw(PHOENIXTEC, f"{UPSMIB}.4.1.0"), raw(PHOENIXTEC, f"{UPSMIB}.2.3.0")
    assert only(out, "netmon_ups_battery_charge_ratio") == charge / 100  # type: ignore[operator]
    state = {1: "unknown", 2: "normal", 3: "low", 4: "depleted"}[status]  # type: ignore[index]
    assert only(out, "netmon_ups_battery_status", state=state) == 1
    assert sum(s.value for s in named(out, "netmon_ups_battery_status")) == 1
    on_battery = source == 5
    assert only(out, "netmon_ups_on_battery") == float(on_battery)
    expected_runtime = None if minutes == 0 and not on_battery else minutes * 60  # type: ignore[operator]
    assert only(out, "netmon_ups_battery_runtime_seconds") == expected_runtime
    in_lines, out_lines = raw(PHOENIXTEC, f"{UPSMIB}.3.2.0"), raw(PHOENIXTEC, f"{UPSMIB}.4.3.0")
    vin = column(PHOENIXTEC, f"{UPSMIB}.3.3.1", 3)
    vout = column(PHOENIXTEC, f"{UPSMIB}.4.4.1", 2)
    load = column(PHOENIXTEC, f"{UPSMIB}.4.4.1", 5)
    assert len(vin) > in_lines  # type: ignore[operator]  # the agent keeps unused rows
    got_in = by_labels(out, "netmon_ups_input_voltage_volts", "line")
    assert {k: s.value for k, s in got_in.items()} == {
        k: float(v)
        for k, v in vin.items()
        if int(k) <= in_lines  # type: ignore[operator]
    }
    got_out = by_labels(out, "netmon_ups_output_voltage_volts", "line")
    assert {k: s.value for k, s in got_out.items()} == {
        k: float(v)
        for k, v in vout.items()
        if int(k) <= out_lines  # type: ignore[operator]
    }
    got_load = by_labels(out, "netmon_ups_load_ratio", "line")
    assert {k: s.value for k, s in got_load.items()} == {
        k: int(v) / 100
        for k, v in load.items()
        if int(k) <= out_lines  # type: ignore[operator]
    }
    alarms = raw(PHOENIXTEC, f"{UPSMIB}.6.1.0")
    assert alarms == 0 and only(out, "netmon_ups_battery_replace_needed") == 0


def test_ups_on_other_devices_gives_nothing() -> None:
    for path in recordings("switch") + recordings("printer"):
        assert MODULES["ups"].convert(load_walked(path)) == ModuleOutput()


def _apc(**values: int) -> dict[OID, Value]:
    at = {"capacity": "2.2.1.0", "capacity_tenths": "2.3.1.0", "load": "4.2.3.0",
          "load_tenths": "4.3.3.0", "status": "4.1.1.0", "battery": "2.1.1.0",
          "vin": "3.2.1.0", "vin_tenths": "3.3.1.0", "replace": "2.2.4.0"}  # fmt: skip
    return {oid(f"{PNET}.{at[k]}"): v for k, v in values.items()}


@pytest.mark.parametrize(
    ("values", "metric", "labels", "expected"),
    [
        ({"capacity": 87}, "netmon_ups_battery_charge_ratio", {}, 0.87),
        ({"capacity": 87, "capacity_tenths": 873}, "netmon_ups_battery_charge_ratio", {}, 0.873),
        ({"load": 40}, "netmon_ups_load_ratio", {"line": "1"}, 0.40),
        ({"load": 40, "load_tenths": 405}, "netmon_ups_load_ratio", {"line": "1"}, 0.405),
        ({"vin": 230}, "netmon_ups_input_voltage_volts", {"line": "1"}, 230.0),
        ({"vin": 230, "vin_tenths": 2312}, "netmon_ups_input_voltage_volts", {"line": "1"}, 231.2),
        ({"status": 3}, "netmon_ups_on_battery", {}, 1.0),
        ({"status": 2}, "netmon_ups_on_battery", {}, 0.0),
        ({"replace": 2}, "netmon_ups_battery_replace_needed", {}, 1.0),
        ({"battery": 4}, "netmon_ups_battery_status", {"state": "fault"}, 1.0),
        ({"battery": 3}, "netmon_ups_battery_status", {"state": "low"}, 1.0),
    ],
)
def test_apc_fallbacks(
    values: dict[str, int], metric: str, labels: dict[str, str], expected: float
) -> None:
    out = MODULES["ups"].convert(_apc(**values))
    assert only(out, metric, **labels) == pytest.approx(expected)
    assert out.facts["ups_mib"] == "PowerNet-MIB"


def test_standard_mib_wins_and_alarms_set_replace_needed() -> None:
    walked: dict[OID, Value] = {
        **_apc(capacity=10),
        oid(f"{UPSMIB}.2.1.0"): 3,  # low
        oid(f"{UPSMIB}.2.3.0"): 7,
        oid(f"{UPSMIB}.2.4.0"): 64,
        oid(f"{UPSMIB}.4.1.0"): 5,  # battery
        oid(f"{UPSMIB}.6.1.0"): 2,
        oid(f"{UPSMIB}.6.2.1.2.11"): f"{UPSMIB}.6.3.2",
        oid(f"{UPSMIB}.6.2.1.2.12"): f"{UPSMIB}.6.3.1",  # upsAlarmBatteryBad
    }
    out = MODULES["ups"].convert(walked)
    assert out.facts["ups_mib"] == "UPS-MIB"
    assert only(out, "netmon_ups_battery_charge_ratio") == 0.64
    assert only(out, "netmon_ups_battery_runtime_seconds") == 7 * 60
    assert only(out, "netmon_ups_on_battery") == 1
    assert only(out, "netmon_ups_battery_status", state="low") == 1
    assert only(out, "netmon_ups_battery_replace_needed") == 1
    assert out.records["ups"][0]["alarms"] == ["on_battery", "battery_bad"]
