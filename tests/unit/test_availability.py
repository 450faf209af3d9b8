"""Availability computed exactly for known timelines: outages, schedules, silences,
parents down (transitively), netmon restarts in the middle of an outage, devices seen
late, and the room and role roll-ups."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.schedule import Schedule
from monitor.store.availability import (
    Availability,
    Device,
    availability,
    intersect,
    recent_outages,
    subtract,
    union,
)
from monitor.store.history import SilencePeriod
from probes.result import Sample
from tests.unit.test_history import Lab

#: Monday 2023-11-20 00:00 UTC.
DAY = 1_700_438_400
H = 3600.0
UP, DOWN = [Sample.of("netmon_probe_success", 1)], [Sample.of("netmon_probe_success", 0)]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path / "history.db", start=DAY - H)
    yield lab
    lab.store.close()


def timeline(lab: Lab, target: str, *outages: tuple[float, float], seen: float = -60) -> None:
    """``target`` first seen at DAY + ``seen`` and down for each (start, end) hour span."""
    lab.put(DAY + seen, UP, target=target)
    for start, end in outages:
        lab.put(DAY + start * H, DOWN, ok=False, target=target, why="no echo reply")
        lab.put(DAY + end * H, UP, target=target)


def report(lab: Lab, devices: list[Device], by: str = "device") -> dict[str, Availability]:
    lab.at(DAY + 24 * H)
    rows = availability(lab.store, devices, since=DAY, until=DAY + 24 * H, by=by)  # type: ignore[arg-type]
    return {r.key: r for r in rows}


def hours(a: Availability) -> tuple[float, ...]:
    return tuple(
        getattr(a, name) / H
        for name in ("up", "down", "outside_schedule", "maintenance", "unknown")
    )


def test_interval_arithmetic() -> None:
    assert union([(5, 6), (0, 2), (1, 3), (3, 4), (7, 7)]) == [(0, 4), (5, 6)]
    assert intersect([(0, 4), (5, 9)], [(3, 6), (8, 10)]) == [(3, 4), (5, 6), (8, 9)]
    assert subtract([(0, 10)], [(2, 3), (5, 6), (9, 12)]) == [(0, 2), (3, 5), (6, 9)]
    assert subtract([(0, 2), (4, 6)], [(1, 5)]) == [(0, 1), (5, 6)]


def test_an_outage(lab: Lab) -> None:
    timeline(lab, "pc", (8, 9.5))
    (row,) = report(lab, [Device("pc")]).values()
    assert hours(row) == (22.5, 1.5, 0, 0, 0)
    assert row.ratio == 22.5 / 24
    assert row.outages == 1


def test_time_outside_the_schedule_is_not_downtime(lab: Lab) -> None:
    school = Schedule(days="mon-fri", hours="07:00-17:00", timezone="UTC")
    timeline(lab, "pc", (8, 9), (20, 22), (16.5, 17.5))
    (row,) = report(lab, [Device("pc", schedule=school)]).values()
    # in school hours: 10 h, of which 08-09 and 16:30-17:00 down
    assert hours(row) == (8.5, 1.5, 14, 0, 0)


def test_silences_are_maintenance_only_when_they_cover_device_down(lab: Lab) -> None:
    timeline(lab, "pc", (10.5, 12))
    timeline(lab, "printer", (10.5, 12))
    lab.store.record_silences([
        SilencePeriod("s1", ("target=pc",), DAY + 10 * H, DAY + 11 * H),
        SilencePeriod("s2", ("target=printer", "alertname=toner_low"), DAY, DAY + 24 * H),
    ])  # fmt: skip
    rows = report(lab, [Device("pc"), Device("printer", role="printer")])
    assert hours(rows["pc"]) == (22, 1, 0, 1, 0)  # silenced 10-11 (up half of it)
    assert hours(rows["printer"]) == (22.5, 1.5, 0, 0, 0)


def test_a_down_parent_is_maintenance_for_its_children_transitively(lab: Lab) -> None:
    timeline(lab, "core", (8, 9))
    timeline(lab, "closet", (8, 9))
    timeline(lab, "pc", (8, 10))
    devices = [Device("core", "switch"), Device("closet", "switch", parent="core"),
               Device("pc", "lab", parent="closet")]  # fmt: skip
    rows = report(lab, devices)
    assert hours(rows["core"]) == (23, 1, 0, 0, 0)
    assert hours(rows["closet"]) == (23, 0, 0, 1, 0)
    assert hours(rows["pc"]) == (22, 1, 0, 1, 0)


def test_a_restart_in_the_middle_of_an_outage(lab: Lab) -> None:
    lab.put(DAY - 60, UP, target="pc")
    lab.put(DAY + 9 * H, DOWN, ok=False, target="pc")
    lab.at(DAY + 10 * H)
    lab.restart(gap=H)  # netmon off from 10:00 to 11:00, the device still down
    lab.put(DAY + 11 * H, DOWN, ok=False, target="pc")
    lab.put(DAY + 11.5 * H, UP, target="pc")
    (row,) = report(lab, [Device("pc")]).values()
    assert hours(row) == (21.5, 1.5, 0, 0, 1)  # down 09-10 and 11-11:30
    (outage,) = recent_outages(lab.store, since=DAY, until=DAY + 24 * H)
    assert (outage.start, outage.end) == (DAY + 9 * H, DAY + 11.5 * H)


def test_time_before_a_device_was_first_seen_is_unknown(lab: Lab) -> None:
    timeline(lab, "new", seen=6 * H)
    (row,) = report(lab, [Device("new")]).values()
    assert hours(row) == (18, 0, 0, 0, 6)
    assert report(lab, [Device("never")])["never"].ratio is None


def test_rooms_and_roles_add_up_device_seconds(lab: Lab) -> None:
    timeline(lab, "pc1", (8, 10))
    timeline(lab, "pc2")
    timeline(lab, "sw")
    devices = [
        Device("pc1", "lab", {"room": "204", "building": "main"}),
        Device("pc2", "lab", {"room": "204", "building": "main"}),
        Device("sw", "switch"),
    ]
    rooms = report(lab, devices, by="room")
    assert list(rooms) == ["main/204"]  # a device without a room is in no room
    assert hours(rooms["main/204"]) == (46, 2, 0, 0, 0)
    assert rooms["main/204"].devices == 2
    roles = report(lab, devices, by="role")
    assert list(roles) == ["lab", "switch"]  # worst first
    assert roles["lab"].ratio == 46 / 48


def test_parents_the_topology_inferred_count_like_written_ones(lab: Lab) -> None:
    """A PC left at ``parent: auto`` behind a closet switch the topology found: the
    closet's outage is maintenance for it; a written parent wins over the inferred one,
    and ``parent: none`` takes none."""
    from dataclasses import replace

    from monitor.store.availability import devices_of
    from tests.unit.test_status_view import target as inventory_target

    def target(name: str, role: str, parent: str | None = None, auto: bool = True) -> object:
        return replace(inventory_target(name, role, parent), auto_parent=auto)

    timeline(lab, "closet", (8, 9))
    timeline(lab, "other", (8, 9))
    for pc in ("pc-auto", "pc-written", "pc-none"):
        timeline(lab, pc, (8, 10))
    inferred = {"pc-auto": "closet", "pc-written": "closet", "pc-none": "closet"}
    targets = [target("closet", "switch"), target("other", "switch"), target("pc-auto", "lab"),
               target("pc-written", "lab", parent="other", auto=False),
               target("pc-none", "lab", auto=False)]  # fmt: skip
    devices = {d.name: d for d in devices_of(targets, {}, inferred)}
    assert (devices["pc-auto"].parent, devices["pc-written"].parent) == ("closet", "other")
    assert devices["pc-none"].parent is None
    rows = report(lab, list(devices.values()))
    assert hours(rows["pc-auto"]) == (22, 1, 0, 1, 0)
    assert hours(rows["pc-written"]) == (22, 1, 0, 1, 0)
    assert hours(rows["pc-none"]) == (22, 2, 0, 0, 0)


def test_schedule_intervals_walk_edges_and_agree_with_asking_every_minute(tmp_path: Path) -> None:
    """Stretch by stretch between the schedule's edges gives what asking each minute
    gives: two windows a day, a holiday, and the clocks going back in October."""
    from datetime import date

    from alerts.schedule import is_expected_online
    from monitor.store.availability import schedule_intervals

    school = Schedule(days="mon-fri", hours="07:30-12:00,13:00-16:45", timezone="Europe/London",
                      holidays=[date(2026, 10, 28)])  # fmt: skip
    since = 1_792_800_000.0  # 2026-10-24, the Saturday before the change
    until = since + 8 * 86400
    minutes = union((m, m + 60) for m in range(int(since), int(until), 60)
                    if is_expected_online(school, m, base_dir=tmp_path))  # fmt: skip
    assert schedule_intervals(school, since, until, base_dir=tmp_path) == minutes
    assert len(minutes) == 2 * 4  # Mon, Tue, Thu, Fri; Wednesday a holiday
