"""The status page's view logic: states from results, parents, alerts, roll-ups, escaping.

Pure logic over a real ResultStore filled with hand-made results; the alert service is
a small stand-in returning real :class:`alerts.model.Alert` objects.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import time

import bcrypt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerts.model import Alert, AlertState, Suppression
from monitor.config import InventoryTarget
from monitor.store.results import ResultStore
from monitor.web import status
from monitor.web.server import WebConfig, create_app
from monitor.web.status import State, build_overview, build_views, render_device, render_overview
from probes.result import ProbeResult, Sample, Status

NOW = 1_800_000_000.0
OK = Status.OK


def target(
    name: str,
    role: str = "switch",
    parent: str | None = None,
    probes: tuple[str, ...] = ("icmp",),
    **labels: str,
) -> InventoryTarget:
    return InventoryTarget(
        name=name, address="127.0.0.1", port=None, group=f"g-{role}", role=role,
        labels={"site": "school", "building": "main", **labels}, modules=(), probes=probes,
        credentials=None, credentials_name=None, interval=60.0, parent=parent, tcp_ports=(),
    )  # fmt: skip


def put(
    store: ResultStore,
    name: str,
    probe: str,
    st: Status,
    explanation: str = "",
    age: float = 5.0,
    **extra: object,
) -> None:
    result = ProbeResult(
        st,
        explanation or f"{probe} {st}",
        target=name,
        probe=probe,
        started_at=NOW - age,
        duration_seconds=0.1,
        **extra,
    )  # type: ignore[arg-type]
    store.put(result, {}, 60.0, probe=probe)


def states(
    targets: list[InventoryTarget], store: ResultStore, alerts: list[Alert] | None = None
) -> dict[str, tuple[State, str]]:
    return {n: (v.state, v.reason) for n, v in build_views(targets, store, alerts, NOW).items()}


def test_state_from_results() -> None:
    store = ResultStore()
    ts = [
        target("a", probes=("icmp", "snmp")),
        target("b", probes=("icmp", "snmp")),
        target("c", probes=("icmp", "snmp")),
        target("d"),
        target("e"),
        target("f"),
    ]
    put(store, "a", "icmp", OK), put(store, "a", "snmp", OK)
    put(store, "b", "icmp", OK), put(store, "b", "snmp", Status.TIMEOUT, "agent silent")
    put(store, "c", "icmp", Status.TIMEOUT), put(store, "c", "snmp", Status.TIMEOUT)
    put(store, "d", "icmp", Status.PARTIAL, "1 of 3 lost")
    put(store, "e", "icmp", OK, age=3700)  # stale: older than max(3 x 60 s, 180 s)
    got = states(ts, store)
    assert got["a"] == (State.UP, "")
    assert got["b"] == (State.DEGRADED, "snmp: agent silent")
    assert got["c"][0] is State.DOWN
    assert got["d"] == (State.DEGRADED, "icmp: 1 of 3 lost")
    assert (
        got["e"][0] is State.UNKNOWN and "no fresh result (last one 1 h 1 min ago)" in got["e"][1]
    )
    assert got["f"] == (State.UNKNOWN, "no result yet")


def test_down_parent_suppresses_children_and_grandchildren() -> None:
    store = ResultStore()
    ts = [
        target("core"),
        target("closet", parent="core"),
        target("pc", "lab", "closet"),
        target("printer", "printer", "core"),
        target("loop1", parent="loop2"),
        target("loop2", parent="loop1"),
    ]
    put(store, "core", "icmp", OK)
    put(store, "closet", "icmp", Status.TIMEOUT)
    put(store, "pc", "icmp", Status.TIMEOUT)
    put(store, "printer", "icmp", Status.TIMEOUT)
    put(store, "loop1", "icmp", Status.TIMEOUT), put(store, "loop2", "icmp", Status.TIMEOUT)
    got = states(ts, store)
    assert got["closet"][0] is State.DOWN  # its parent is up: really down
    assert got["pc"] == (State.SUPPRESSED, "unreachable because parent closet is down")
    assert got["printer"][0] is State.DOWN
    # A parent cycle (check-config rejects it) must not hang the page.
    assert {got["loop1"][0], got["loop2"][0]} <= {State.DOWN, State.SUPPRESSED}

    put(store, "closet", "icmp", Status.TIMEOUT), put(store, "core", "icmp", Status.TIMEOUT)
    got = states(ts, store)
    assert got["closet"] == (State.SUPPRESSED, "unreachable because parent core is down")
    assert got["pc"] == (State.SUPPRESSED, "unreachable because parent core is down")


class StandInAlerts:
    """What the status page reads from the alert service: ``alerts()``."""

    def __init__(self, alerts: list[Alert]) -> None:
        self._alerts = alerts

    def alerts(self) -> list[Alert]:
        return list(self._alerts)


def alert(
    target_name: str,
    rule: str,
    state: AlertState,
    since: float,
    summary: str,
    suppressed: Suppression = Suppression.NONE,
    reason: str = "",
    severity: str = "critical",
) -> Alert:
    return Alert(
        fingerprint=f"{target_name}-{rule}", rule=rule, target=target_name,
        labels={"alertname": rule, "severity": severity, "target": target_name},
        annotations={"summary": summary}, state=state, suppressed=suppressed,
        suppressed_reason=reason, active_since=since, starts_at=since,
    )  # fmt: skip


def test_alerts_section_and_schedule_suppression() -> None:
    store = ResultStore()
    ts = [
        target("sw-b2"),
        target("lab-pc1", "lab", room="204"),
        target("lab-pc2", "lab", room="204"),
        target("mfp", "printer"),
    ]
    put(store, "sw-b2", "icmp", Status.TIMEOUT)
    put(store, "lab-pc1", "icmp", Status.TIMEOUT), put(store, "lab-pc2", "icmp", OK)
    put(store, "mfp", "icmp", OK)
    alerts = [
        alert("sw-b2", "DeviceDown", AlertState.FIRING, NOW - 12 * 60, "sw-b2 is down"),
        alert(
            "lab-pc1",
            "DeviceDown",
            AlertState.FIRING,
            NOW - 3600,
            "lab-pc1 is down",
            Suppression.OUT_OF_SCHEDULE,
            "outside school-hours",
        ),
        alert(
            "mfp",
            "TonerLow",
            AlertState.PENDING,
            NOW - 90,
            "<b>Black</b> toner low",
            severity="warning",
        ),
        alert("mfp", "Old", AlertState.RESOLVED, NOW - 7200, "resolved long ago"),
    ]
    overview = build_overview(ts, store, StandInAlerts(alerts).alerts(), NOW)
    by_name = {d.name: d for d in overview.devices}
    assert by_name["sw-b2"].state is State.DOWN
    assert by_name["lab-pc1"].state is State.SUPPRESSED
    assert by_name["lab-pc1"].reason == "outside school-hours"
    assert by_name["mfp"].state is State.ATTENTION  # answers, toner low pending
    assert overview.counts == {
        "up": 1, "attention": 1, "degraded": 0, "down": 1, "unknown": 0, "suppressed": 1
    }  # fmt: skip
    assert overview.alerts is not None
    assert [(a.target, a.since) for a in overview.alerts] == [
        ("sw-b2", "for 12 min"),
        ("mfp", "for 1 min"),
        ("lab-pc1", "for 1 h"),
    ]
    page = render_overview(status.environment(), overview)
    assert "sw-b2 is down" in page and "for 12 min" in page
    assert "&lt;b&gt;Black&lt;/b&gt; toner low" in page and "<b>Black" not in page
    assert "suppressed: outside school-hours" in page
    assert "resolved long ago" not in page
    lab = overview.sections[0].labs[0]
    assert (lab.room, lab.up, lab.total) == ("204", 1, 2)
    assert re.search(r'data-lab="204"[^>]*>.*?1/2 up', page, re.DOTALL)

    page = render_overview(status.environment(), build_overview(ts, store, None, NOW))
    assert "Alerts not configured" in page and "sw-b2 is down" not in page


def test_groups_by_site_building_and_role() -> None:
    store = ResultStore()
    ts = [
        target("p1", "printer"),
        target("s1"),
        target("x", building="annex"),
        target("far", site="other-school"),
    ]
    overview = build_overview(ts, store, None, NOW)
    titles = [(s.title, [r for r, _ in s.roles]) for s in overview.sections]
    assert titles == [
        ("other-school · main", ["Switches"]),
        ("school · annex", ["Switches"]),
        ("school · main", ["Switches", "Printers"]),
    ]


def test_printer_switch_details_and_escaping() -> None:
    store = ResultStore()
    supplies = [
        {
            "description": "<script>alert(1)</script>Black Toner",
            "type": "toner",
            "color": "black",
            "class": "consumable",
            "ratio": 0.42,
            "state": "ok",
            "level_text": "42%",
        },
        {
            "description": "Cyan Toner",
            "type": "toner",
            "color": "cyan",
            "class": "consumable",
            "ratio": None,
            "state": "some_remaining",
            "level_text": "some remaining",
        },
        {
            "description": "Waste box",
            "type": "wasteToner",
            "color": None,
            "class": "receptacle",
            "ratio": 0.97,
            "state": "nearly_full",
            "level_text": "97% full",
        },
        {
            "description": "Fuser",
            "type": "fuser",
            "color": None,
            "class": "consumable",
            "ratio": 0.5,
            "state": "ok",
            "level_text": "50%",
        },
    ]
    records = {
        "supplies": supplies,
        "conditions": [{"condition": "jammed", "description": "paper jammed"}],
        "alerts": [{"severity": "critical", "description": "Jam <img src=x onerror=alert(1)>"}],
    }
    put(store, "mfp", "snmp", OK, facts={"sys_descr": "<i>HP</i> & co"}, records=records)
    interfaces = [
        {"type": "ethernetCsmacd", "admin": "up", "oper": "up", "alias": "<script>x</script>"},
        {"type": "ethernetCsmacd", "admin": "up", "oper": "down", "alias": ""},
        {"type": "ethernetCsmacd", "admin": "down", "oper": "down", "alias": ""},
        {"type": "propVirtual", "admin": "up", "oper": "up", "alias": "vlan"},
        {"type": "ieee8023adLag", "admin": "up", "oper": "not_present", "alias": ""},
    ]
    put(store, "sw", "snmp", OK, records={"interfaces": interfaces})
    ts = [target("mfp", "printer", probes=("snmp",)), target("sw", probes=("snmp",))]
    views = build_views(ts, store, None, NOW)
    mfp = views["mfp"]
    assert mfp.conditions == ["paper jammed", "Jam <img src=x onerror=alert(1)>"]
    # The overview shows toners and supplies needing attention, not the fuser at 50 %.
    assert [s["description"] for s in mfp.highlight_supplies] == [
        supplies[0]["description"],
        "Cyan Toner",
        "Waste box",
    ]
    ports = views["sw"].ports
    assert ports is not None and (ports.up, ports.down, ports.disabled) == (1, 1, 1)

    env = status.environment()
    index = render_overview(env, build_overview(ts, store, None, NOW))
    assert "width:42%" in index and "some remaining" in index and "97% full" in index
    assert "1 up</b>" in index and "1 down</b>" in index and "1 disabled" in index
    detail = render_device(env, mfp, NOW)
    sw_detail = render_device(env, views["sw"], NOW)
    for page in (index, detail, sw_detail):
        assert "<script" not in page and "<img" not in page and "<i>HP" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;Black Toner" in detail
    assert "&lt;i&gt;HP&lt;/i&gt; &amp; co" in detail
    assert "&lt;script&gt;x&lt;/script&gt;" in sw_detail


def test_device_page_explains_failures() -> None:
    store = ResultStore()
    put(store, "sw", "icmp", Status.TIMEOUT, "no reply to 3 echo requests")
    put(store, "sw", "snmp", Status.AUTH_ERROR, "wrong community")
    views = build_views([target("sw", probes=("icmp", "snmp"))], store, None, NOW)
    page = render_device(status.environment(), views["sw"], NOW)
    assert "no reply to 3 echo requests" in page and "Nothing answered in time" in page
    assert "wrong community" in page and "rejected netmon&#39;s credentials" in page
    assert "4 s ago" in page  # finished 4.9 s before NOW


def test_helpers() -> None:
    assert status.cell(0.5, "used_ratio") == "50%"
    assert status.cell(50_406_584_320, "size_bytes") == "50.4 GB"
    assert status.cell({"1": 0.378}, "load_ratio") == "1: 38%"
    assert status.cell(None) == "–" and status.cell(False) == "no"
    t = target("x", probes=("icmp", "snmp", "tcp"))
    t = dataclasses.replace(t, tcp_ports=(22, 9100))
    assert status.store_names(t) == ["icmp", "snmp", "tcp-22", "tcp-9100"]


def test_needs_attention_state() -> None:
    """A device that answers but has a firing alert (the empty-toner printer) is not UP."""
    store = ResultStore()
    empty = {"description": "Black Toner", "type": "toner", "class": "consumable", "ratio": 0.0, "color": "black",
             "state": "empty", "level_text": "empty"}  # fmt: skip
    for name in ("mfp", "quiet", "silenced", "busy", "pc1", "pc2"):
        put(store, name, "icmp", OK)
    put(store, "mfp", "snmp", OK, records={"supplies": [empty]})
    put(store, "busy", "snmp", Status.TIMEOUT, "agent silent")
    ts = [target("mfp", "printer", probes=("icmp", "snmp")), target("quiet", "printer"),
          target("silenced"), target("busy", probes=("icmp", "snmp")),
          target("pc1", "lab", room="12"), target("pc2", "lab", room="12")]  # fmt: skip
    alerts = [
        alert(
            "mfp", "printer_supply_empty", AlertState.FIRING, NOW - 60, "mfp: Black Toner is empty"
        ),
        alert("quiet", "printer_supply_low", AlertState.RESOLVED, NOW - 60, "quiet: toner low"),
        alert("pc1", "icmp_loss", AlertState.PENDING, NOW - 60, "pc1: loss 40%"),
        alert("silenced", "x", AlertState.FIRING, NOW - 60, "known", Suppression.SILENCED),
        alert("busy", "snmp_down", AlertState.FIRING, NOW - 60, "busy: SNMP down"),
        alert("pc2", "icmp_loss", AlertState.FIRING, NOW - 60, "pc2: loss 40%"),
    ]
    overview = build_overview(ts, store, alerts, NOW)
    got = {d.name: (d.state, d.reason) for d in overview.devices}
    assert got["mfp"] == (State.ATTENTION, "mfp: Black Toner is empty")
    assert got["quiet"][0] is State.UP  # resolved
    assert got["pc1"] == (State.ATTENTION, "pc1: loss 40%")  # pending counts: it is now
    assert got["silenced"][0] is State.UP  # someone said they know
    assert got["busy"] == (State.DEGRADED, "snmp: agent silent")  # the worse state stays
    assert overview.counts["attention"] == 3 and overview.counts["up"] == 2
    lab = overview.sections[0].labs[0]
    assert (lab.up, lab.total, lab.state) == (2, 2, State.ATTENTION)
    assert [d.name for d in lab.not_up] == ["pc1", "pc2"]
    page = render_overview(status.environment(), overview)
    assert 'data-device="mfp" data-state="attention"' in page
    assert ">needs attention</span>" in page and ">3 need attention<" in page
    assert re.search(r'data-lab="12" data-state="attention">.*?2/2 up', page, re.DOTALL)

    # Alerting off: the printer's own report of an empty supply is enough.
    views = build_views(ts, store, None, NOW)
    assert views["mfp"].state is State.ATTENTION and "Black Toner: empty" in views["mfp"].reason
    assert views["pc2"].state is State.UP and views["quiet"].state is State.UP


def interface(index: int, name: str, rx: int, tx: int, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "index": str(index), "name": name, "alias": "", "descr": name, "type": "ethernetCsmacd",
        "admin": "up", "oper": "up", "speed_bps": 1_000_000_000, "in_octets": rx,
        "out_octets": tx, "in_errors": 0, "out_errors": 0,
    }  # fmt: skip
    row.update(extra)
    return row


def test_port_table_in_human_units_with_rates_from_two_walks() -> None:
    store = ResultStore()
    rates = status.InterfaceRates()
    store.subscribe(rates.record)
    first = [
        interface(1, "Gi1/0/1", 4_836_524_491_065, 1_000_000, alias="<b>uplink</b> to core"),
        interface(2, "Gi1/0/2", 10_000, 20_000, speed_bps=100_000_000),
        interface(3, "Gi1/0/3", 500, 500, admin="down", oper="down"),
        interface(4, "Gi1/0/4", 9_000_000, 0),
    ]
    second = [
        interface(1, "Gi1/0/1", 4_836_524_491_065 + 92_250_000, 1_000_000 + 23_250_000,
                  alias="<b>uplink</b> to core", in_errors=3),
        interface(2, "Gi1/0/2", 10_000, 20_000, speed_bps=100_000_000),
        interface(3, "Gi1/0/3", 500, 500, admin="down", oper="down"),
        interface(4, "Gi1/0/4", 10, 0),  # counter reset: no rate
    ]  # fmt: skip
    put(store, "sw", "snmp", OK, age=65.0, records={"interfaces": first})
    assert rates.rates("sw") == {}  # one walk: no rate yet
    put(store, "sw", "snmp", OK, age=5.0, records={"interfaces": second})
    traffic = rates.rates("sw")
    assert traffic["1"] == status.Traffic(92_250_000 / 60, 23_250_000 / 60, 3 / 60, 0.0)
    assert traffic["2"].bytes == 0.0 and traffic["4"].rx is None

    ts = [target("sw", probes=("snmp",))]
    view = build_views(ts, store, None, NOW)["sw"]
    status.with_traffic(view, traffic)
    assert [(p.name, p.state) for p in view.interfaces] == [
        ("Gi1/0/1", "up"), ("Gi1/0/2", "up"), ("Gi1/0/3", "disabled"), ("Gi1/0/4", "up")
    ]  # fmt: skip
    uplink = status.uplink(view)
    assert uplink is not None and uplink.index == "1"
    page = render_device(status.environment(), view, NOW)
    table = page[page.index('data-table="interfaces"') : page.index("</table>")]
    assert "<span>12.3 Mb/s in</span> / <span>3.1 Mb/s out</span>" in table
    assert "1 Gb/s" in table and "100 Mb/s" in table and "3/min" in table
    assert "4.84 TB" in table and "4836524491065" not in table and "1000000000" not in table
    assert "&lt;b&gt;uplink&lt;/b&gt; to core" in table and "<b>uplink" not in table
    assert 'class="st-disabled">disabled' in table

    # No uplink in the names: the busiest port now.
    for row in second:
        row["alias"] = ""
    put(store, "sw", "snmp", OK, age=4.0, records={"interfaces": second})
    view = build_views(ts, store, None, NOW)["sw"]
    status.with_traffic(view, {"2": status.Traffic(5.0, 5.0), "4": status.Traffic(1.0, 0.0)})
    assert getattr(status.uplink(view), "index", None) == "2"


class Backend:
    """Just enough of a WebBackend for the routes; ``alerts`` only when given."""

    def __init__(self, targets: list[InventoryTarget], alerts: list[Alert] | None = None) -> None:
        self.store = ResultStore()
        self._targets = targets
        if alerts is not None:
            self.alerts = StandInAlerts(alerts)

    def targets(self) -> list[InventoryTarget]:
        return list(self._targets)

    def is_ready(self) -> bool:
        return True

    def extra_samples(self) -> list[Sample]:
        return []


async def test_routes_auth_and_headers() -> None:
    backend = Backend(
        [target("sw-core")],
        [alert("sw-core", "DeviceDown", AlertState.FIRING, time.time() - 60, "sw-core down")],
    )
    put(backend.store, "sw-core", "icmp", Status.TIMEOUT)
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(4))
    app = create_app(backend, WebConfig(users={"it": hashed}))  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/")).status == 401
        assert (await client.get("/device/sw-core")).status == 401
        auth = "Basic " + base64.b64encode(b"it:secret").decode()
        resp = await client.get("/", headers={"Authorization": auth})
        assert resp.status == 200 and resp.content_type == "text/html"
        assert "script-src" not in resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        body = await resp.text()
        assert "sw-core down" in body and 'data-device="sw-core" data-state="down"' in body
        resp = await client.get("/device/sw-core", headers={"Authorization": auth})
        assert resp.status == 200 and "sw-core down" in await resp.text()
        resp = await client.get("/device/<nope>", headers={"Authorization": auth})
        assert resp.status == 404 and "&lt;nope&gt;" in await resp.text()


@pytest.mark.parametrize("name", ["index.html", "device.html", "base.html", "missing.html"])
def test_templates_ship_with_the_package(name: str) -> None:
    assert (status.TEMPLATES / name).is_file()
