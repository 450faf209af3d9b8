"""The status page's inline SVG charts: the drawn points are the stored points through
the chart's own scale, gaps break lines, every text is escaped, a table says it in words."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.config import InventoryTarget
from monitor.store.availability import Device
from monitor.store.history import HistorySettings, HistoryStore
from monitor.store.results import ResultStore
from monitor.web import charts, status, units
from monitor.web.charts import Line, Scale
from probes.result import ProbeResult, Sample, Status

NOW = 1_800_000_000.0
#: An hour boundary (the history's rollups start on one).
T0 = 1_700_000_000.0 - 1_700_000_000 % 3600
DAY = 86400.0
SVG = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class P:
    """A stored point as the history store returns it (t, value, min, max)."""

    t: float
    value: float
    min: float = math.nan
    max: float = math.nan


def parse(markup: str) -> ET.Element:
    """The chart's HTML as XML: it must be well-formed for this to work at all."""
    return ET.fromstring(str(markup).replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def drawn(figure: ET.Element) -> tuple[Scale, dict[int, list[list[tuple[float, float]]]]]:
    svg = figure.find(f".//{SVG}svg")
    assert svg is not None
    scale = Scale(float(svg.get("data-since", "")), float(svg.get("data-until", "")),
                  float(svg.get("data-low", "")), float(svg.get("data-high", "")))  # fmt: skip
    lines: dict[int, list[list[tuple[float, float]]]] = {}
    for poly in svg.iter(f"{SVG}polyline"):
        coords = [tuple(map(float, xy.split(","))) for xy in (poly.get("points") or "").split()]
        lines.setdefault(int(poly.get("data-line", "")), []).append(coords)  # type: ignore[arg-type]
    return scale, lines


def test_points_are_the_stored_points_through_the_scale() -> None:
    rtt = [P(NOW - DAY + 60 * i, 0.0002 + 0.00001 * (i % 17)) for i in range(1440)]
    loss = [P(NOW - DAY + 60 * i, 0.05 * (i % 3)) for i in range(0, 1440, 5)]
    figure = parse(charts.line_chart("rtt", "Latency", [Line("avg", rtt), Line("loss", loss)],
                                     since=NOW - DAY, until=NOW, unit=units.latency))  # fmt: skip
    scale, lines = drawn(figure)
    assert scale.high == charts.nice_ceiling(max(p.value for p in loss))  # 0.1
    for n, series in enumerate((rtt, loss)):
        assert lines[n] == [[(scale.x(p.t), scale.y(p.value)) for p in series]]
    # The scale itself: left edge is `since`, the top is `high`, nothing outside the box.
    assert (scale.x(NOW - DAY), scale.x(NOW), scale.y(0.0), scale.y(scale.high)) == (
        0.0, charts.WIDTH, charts.HEIGHT, 0.0
    )  # fmt: skip
    assert scale.y(5.0) == 0.0 and scale.x(NOW + 999) == charts.WIDTH


def test_gaps_break_lines_and_a_lone_point_is_a_dot() -> None:
    points = [P(NOW - 3600 + 60 * i, 0.5) for i in range(10)]  # ten minutes
    lone = P(NOW - 1200, 0.25)  # alone between two silences
    after = [P(NOW - 300 + 60 * i, float("nan") if i == 2 else 0.75) for i in range(5)]
    figure = parse(charts.line_chart("toner", "Black toner", [Line("black", [*points, lone, *after])],
                                     since=NOW - 3600, until=NOW, unit=units.latency, high=1.0))  # fmt: skip
    scale, lines = drawn(figure)
    assert scale.high == 1.0
    runs = lines[0]
    assert [len(r) for r in runs] == [10, 2, 2, 2]  # NaN (no reading) breaks the line too
    assert runs[1] == [(scale.x(lone.t), scale.y(0.25))] * 2
    assert charts.typical_gap(points) == 180.0 and charts.typical_gap([]) == math.inf


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0004, 0.0005), (0.001, 0.001), (0.0011, 0.002), (3.1, 5.0), (2.2, 2.5), (0.0, 1.0),
     (math.nan, 1.0), (75_000_000, 100_000_000)],
)  # fmt: skip
def test_nice_ceiling(value: float, expected: float) -> None:
    assert charts.nice_ceiling(value) == pytest.approx(expected)


def test_text_equivalent_and_escaping() -> None:
    hostile = "<script>document.title='XSS'</script>Black & \"Toner\""
    series = [P(NOW - DAY + 3600 * i, 0.9 - 0.03 * i) for i in range(24)]
    markup = str(charts.line_chart("x<y", f"{hostile} level", [Line(hostile, series),
                               Line("<img src=x onerror=alert(1)>", series[:3])],
                               since=NOW - DAY, until=NOW, unit=units.latency))  # fmt: skip
    assert "<script" not in markup and "<img" not in markup and "x<y" not in markup
    figure = parse(markup)  # well-formed, so the browser sees text, not elements
    tags = {el.tag.removeprefix(SVG) for el in figure.iter()}
    assert not tags & {"script", "img", "foreignObject", "a", "image"}
    svg = figure.find(f".//{SVG}svg")
    assert svg is not None and svg.get("role") == "img"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert title.text == f"{hostile} level"
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert desc.text is not None and f"{hostile}: latest 210 ms" in desc.text  # 0.9-0.69
    assert "highest 900 ms" in desc.text
    rows = figure.findall(".//details/table/tbody/tr")
    assert len(rows) == 24  # one per hour of the day
    assert [td.text for td in rows[0]][1:] == ["900 ms", "900 ms"]
    assert [td.text for td in rows[5]][1:] == ["750 ms", "–"]
    assert [th.text for th in figure.findall(".//details/table/thead/tr/th")][1] == hostile


def test_availability_bar() -> None:
    seconds = {"up": 80_000.0, "down": 400.0, "maintenance": 1000.0, "outside_schedule": 0.0,
               "unknown": 5000.0}  # fmt: skip
    markup = str(charts.availability_bar("d-24h", "<b>lab</b> · 24 h", seconds))
    figure = parse(markup)
    rects = {r.get("data-kind"): r for r in figure.iter(f"{SVG}rect")}
    assert list(rects) == ["up", "down", "maintenance", "unknown"]  # zero-length left out
    total = sum(seconds.values())
    x = 0.0
    for kind, rect in rects.items():
        assert float(rect.get("x", "")) == pytest.approx(x, abs=0.01)
        assert float(rect.get("width", "")) == round(seconds[kind] / total * charts.WIDTH, 2)
        x += seconds[kind] / total * charts.WIDTH
    ratio = 80_000 / 80_400
    assert figure.findtext(".//b") == f"{charts.percent(ratio)} available" == "99.5 % available"
    words = figure.findtext(".//span[@class='vh']")
    assert words == ("<b>lab</b> · 24 h: 99.5 % available (22 h 13 min up, 6 min down, "
                     "16 min maintenance, 1 h 23 min unknown (netmon not running))")  # fmt: skip
    assert "<b>lab" not in markup
    assert "not counted</b>" in charts.availability_bar("e", "empty", {"unknown": 60.0})
    # Only excused time: nothing is up or down, the bar says what it was instead.
    bar = parse(charts.availability_bar("m", "24 h", {"maintenance": 7200.0, "unknown": 60.0}))
    assert (bar.findtext(".//b"), bar.findtext(".//span[@class='muted']")) == (
        "not counted", ": 2 h maintenance"
    )  # fmt: skip
    # A room adds up device-seconds: three PCs for a day, one of them down for an hour.
    room = {"up": 3 * 86400.0 - 3600, "down": 3600.0, "unknown": 3 * 3600.0}
    bar = parse(charts.availability_bar("r", "24 h", room, devices=3))
    assert bar.findtext(".//b") == "98.6 % available"
    assert bar.findtext(".//span[@class='muted']") == " of 1 d recorded"
    assert bar.findtext(".//span[@class='vh']", "").startswith(
        "24 h: 98.6 % available across 3 devices"
    )


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [(1.0, "100 %"), (0.99951, "99.95 %"), (0.9999999, "99.99999 %"), (0.5, "50.0 %"),
     (0.0, "0.0 %")],
)  # fmt: skip
def test_percent_keeps_the_digits_that_differ(ratio: float, expected: str) -> None:
    assert charts.percent(ratio) == expected


# --- the device page's charts from a real history store --------------------------------


def icmp(t: float, rtt: float, loss: float) -> ProbeResult:
    samples = [Sample.of("netmon_icmp_rtt_seconds", rtt, stat="avg"),
               Sample.of("netmon_icmp_rtt_seconds", rtt / 2, stat="min"),
               Sample.of("netmon_icmp_packet_loss_ratio", loss)]  # fmt: skip
    return ProbeResult(Status.OK, "3 of 3", samples=samples, probe="icmp", target="mfp",
                       started_at=t, duration_seconds=0.0)  # fmt: skip


HOSTILE = "<script>document.title='XSS'</script>Black"


def snmp(t: float, level: float, octets: int) -> ProbeResult:
    supply = {"index": "1.1", "supply": HOSTILE, "type": "toner", "color": "black",
              "class": "consumable"}  # fmt: skip
    port = {"if_index": "2", "if_name": "eth0", "if_alias": "<img src=x onerror=alert(1)>",
            "if_descr": "eth0"}  # fmt: skip
    samples = [Sample.of("netmon_printer_supply_level_ratio", level, **supply),
               Sample.of("netmon_interface_receive_bytes_total", octets, **port),
               Sample.of("netmon_interface_transmit_bytes_total", octets // 4, **port)]  # fmt: skip
    records = {
        "supplies": [{"index": "1.1", "description": HOSTILE, "type": "toner", "color": "black",
                      "class": "consumable", "ratio": level, "state": "ok",
                      "level_text": f"{level:.0%}"}],
        "interfaces": [{"index": "2", "name": "eth0", "alias": port["if_alias"], "descr": "eth0",
                        "type": "ethernetCsmacd", "admin": "up", "oper": "up",
                        "speed_bps": 100_000_000, "in_octets": octets, "out_octets": octets // 4,
                        "in_errors": 0, "out_errors": 0}],
    }  # fmt: skip
    return ProbeResult(Status.OK, "walked", samples=samples, records=records, probe="snmp",
                       target="mfp", started_at=t, duration_seconds=0.0)  # fmt: skip


def figure_of(page: str, ident: str) -> ET.Element:
    match = re.search(rf'<figure class="chart" id="{ident}">.*?</figure>', page, re.DOTALL)
    assert match is not None, f"no {ident} on the page"
    return parse(match.group(0))


def test_device_page_charts_draw_the_stored_points(tmp_path: Path) -> None:
    now = [T0]
    history = HistoryStore(tmp_path / "history.db", HistorySettings(), clock=lambda: now[0])
    history.start(background=False)
    results = ResultStore()
    results.subscribe(history.record)
    target = InventoryTarget(
        name="mfp", address="127.0.0.1", port=None, group="printers", role="printer",
        labels={}, modules=(), probes=("icmp", "snmp"), credentials=None,
        credentials_name=None, interval=60.0, parent=None, tcp_ports=(),
    )  # fmt: skip
    try:
        for i in range(180):  # three hours, one run a minute; the toner slowly empties
            t = T0 + 60 * i
            now[0] = t
            results.put(icmp(t, 0.0002 + 0.0001 * (i % 7), 0.0 if i % 20 else 1 / 3), {}, 60.0)
            if i % 5 == 0:
                results.put(snmp(t, 0.8 - i / 1000, 1000 * i * i), {}, 300.0)
            history.flush()
        views = status.build_views([target], results, None, now[0])
        view = views["mfp"]
        status.with_traffic(view, status.history_rates(history, "mfp", now[0], 600))
        devices = [Device("mfp", "printer", {"room": "office"})]
        status.Trends(history, devices, status.AvailabilityCache(), now[0]).add_to_device(view)
        page = status.render_device(status.environment(), view, now[0])
    finally:
        history.close()
    assert view.history_note == ""
    # Availability: 24 h, 7 d and 30 d bars for the device and its room; up all along,
    # nothing known before the first result.
    assert len(view.availability) == len(view.room_availability) == 3
    bar = parse(view.availability[0])
    assert bar.findtext(".//b") == "100 % available"
    assert bar.findtext(".//span[@class='vh']", "").startswith(
        "24 h: 100 % available (2 h 59 min up"
    )
    assert "<script" not in page and "<img" not in page
    # Three hours fit raw (48 h kept); a month of toner comes from the 5-minute rollups.
    checks = [("chart-latency", "netmon_icmp_rtt_seconds", {}, 0),
              ("chart-loss", "netmon_icmp_packet_loss_ratio", {}, 0),
              ("chart-toner", "netmon_printer_supply_level_ratio", {}, 300),
              ("chart-traffic", "netmon_interface_receive_bytes_total", {"ifindex": "2"}, 0)]  # fmt: skip
    reopened = HistoryStore.open_readonly(tmp_path / "history.db")
    try:
        for ident, metric, labels, step in checks:
            figure = figure_of(page, ident)
            scale, lines = drawn(figure)
            since = scale.since
            stored = reopened.series(
                "mfp", metric, labels=labels, since=since, until=scale.until, step=step
            )
            assert len(stored) == 1 and len(stored[0].points) > 2, ident
            expected = [(scale.x(p.t), scale.y(p.value)) for p in stored[0].points]
            assert [xy for run in lines[0] for xy in run] == expected, ident
    finally:
        reopened.close()
    # The traffic rates are the counters' deltas: (1000 (i+5)^2 - 1000 i^2) / 300 s.
    traffic = figure_of(page, "chart-traffic")
    title = traffic.find(f".//{SVG}title")
    assert (
        title is not None
        and title.text == "Traffic on eth0 (<img src=x onerror=alert(1)>), last 24 h"
    )
    toner = figure_of(page, "chart-toner")
    desc = toner.find(f".//{SVG}desc")
    assert (
        desc is not None
        and desc.text is not None
        # The last complete 5-minute bucket holds the reading 0.8 - 170/1000.
        and desc.text.startswith("Toner level, last 30 days. latest 63%, average 72%, highest 80%")
    )
    assert [th.text for th in toner.findall(".//thead/tr/th")] == ["from", HOSTILE]
    assert {p.get("stroke") for p in toner.iter(f"{SVG}polyline")} == {"#222222"}  # black toner
    port = view.interfaces[0]
    assert port.traffic is not None and port.traffic.rx == pytest.approx(
        1000 * (175**2 - 170**2) / 300
    )


def test_history_off_and_no_history_yet(tmp_path: Path) -> None:
    view = status.DeviceView(name="x", address="127.0.0.1", role="printer", group="g",
                             labels={}, parent=None, state=status.State.UP, reason="")  # fmt: skip
    cache = status.AvailabilityCache()
    status.Trends(None, [], cache, T0).add_to_device(view)
    page = status.render_device(status.environment(), view, T0)
    assert view.charts == [] and "History is off" in page
    history = HistoryStore(tmp_path / "h.db", HistorySettings(), clock=lambda: T0)
    history.start(background=False)
    try:
        view.history_note = ""
        status.Trends(history, [Device("x")], cache, T0).add_to_device(view)
    finally:
        history.close()
    assert "No history yet" in status.render_device(status.environment(), view, T0)
