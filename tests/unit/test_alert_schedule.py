"""Schedules: weekdays, hours (also across midnight), time zones, terms, holidays and an
iCalendar file of holidays written by the test."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from alerts.schedule import Schedule, check_schedules, is_expected_online

LONDON = ZoneInfo("Europe/London")


def at(text: str, zone: str = "Europe/London") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


SCHOOL: dict[str, Any] = {"days": "mon-fri", "hours": "07:00-17:00", "timezone": "Europe/London"}

# 2026-09-07 is a Monday.
CASES = [
    ("weekday in hours", SCHOOL, "2026-09-07T10:00", True),
    ("start is inside", SCHOOL, "2026-09-07T07:00", True),
    ("end is outside", SCHOOL, "2026-09-07T17:00", False),
    ("before hours", SCHOOL, "2026-09-07T06:59", False),
    ("saturday", SCHOOL, "2026-09-12T10:00", False),
    ("friday", SCHOOL, "2026-09-11T16:59", True),
    ("lunch break", {**SCHOOL, "hours": "07:00-12:00,13:00-16:00"}, "2026-09-07T12:30", False),
    ("afternoon window", {**SCHOOL, "hours": "07:00-12:00,13:00-16:00"}, "2026-09-07T13:30", True),
    ("day list", {**SCHOOL, "days": "mon,wed"}, "2026-09-08T10:00", False),
    ("day list hit", {**SCHOOL, "days": "mon,wed"}, "2026-09-09T10:00", True),
    ("wrapping day range", {**SCHOOL, "days": "sat-mon"}, "2026-09-13T10:00", True),
    ("wrapping day range miss", {**SCHOOL, "days": "sat-mon"}, "2026-09-08T10:00", False),
    ("whole day default", {"timezone": "Europe/London"}, "2026-09-13T03:00", True),
    ("24:00 end", {**SCHOOL, "hours": "18:00-24:00"}, "2026-09-07T23:59", True),
    # a night window belongs to the day it starts on
    ("night, same day", {**SCHOOL, "days": "fri", "hours": "22:00-06:00"}, "2026-09-11T23:00", True),
    ("night, next morning", {**SCHOOL, "days": "fri", "hours": "22:00-06:00"}, "2026-09-12T05:59", True),
    ("night ends", {**SCHOOL, "days": "fri", "hours": "22:00-06:00"}, "2026-09-12T06:00", False),
    ("night, wrong day", {**SCHOOL, "days": "fri", "hours": "22:00-06:00"}, "2026-09-11T05:00", False),
    # terms and holidays, both ends included
    ("in term", {**SCHOOL, "terms": [{"from": "2026-09-02", "to": "2026-12-18"}]}, "2026-09-02T10:00", True),
    ("term last day", {**SCHOOL, "terms": [{"from": "2026-09-02", "to": "2026-12-18"}]}, "2026-12-18T10:00", True),
    ("after term", {**SCHOOL, "terms": [{"from": "2026-09-02", "to": "2026-12-18"}]}, "2026-12-21T10:00", False),
    ("holiday date", {**SCHOOL, "holidays": ["2026-10-26"]}, "2026-10-26T10:00", False),
    ("day after holiday", {**SCHOOL, "holidays": ["2026-10-26"]}, "2026-10-27T10:00", True),
    ("holiday range", {**SCHOOL, "holidays": [{"from": "2026-12-21", "to": "2027-01-04"}]}, "2027-01-04T10:00", False),
    ("night after a holiday start", {**SCHOOL, "hours": "22:00-06:00", "holidays": ["2026-10-26"]},
     "2026-10-27T02:00", False),
]  # fmt: skip


@pytest.mark.parametrize(("name", "spec", "when", "expected"), CASES, ids=[c[0] for c in CASES])
def test_windows(name: str, spec: dict[str, Any], when: str, expected: bool) -> None:
    schedule = Schedule.model_validate(spec)
    assert is_expected_online(schedule, at(when), base_dir=Path(".")) is expected


def test_time_zone_decides_the_local_hour() -> None:
    schedule = Schedule.model_validate({**SCHOOL, "timezone": "Asia/Tokyo"})
    # 10:00 in London (BST) is 18:00 in Tokyo: closed there
    assert not is_expected_online(schedule, at("2026-09-07T10:00"), base_dir=Path("."))
    assert is_expected_online(schedule, at("2026-09-07T10:00", "Asia/Tokyo"), base_dir=Path("."))
    # a datetime works as well as a Unix time
    when = datetime(2026, 9, 7, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert is_expected_online(schedule, when, base_dir=Path("."))


def test_daylight_saving_change_keeps_wall_clock_hours() -> None:
    schedule = Schedule.model_validate(SCHOOL)
    # 2026-10-25 clocks go back; Monday 26th 07:30 GMT is inside
    assert is_expected_online(schedule, at("2026-10-26T07:30"), base_dir=Path("."))
    assert not is_expected_online(schedule, at("2026-10-26T06:30"), base_dir=Path("."))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"days": "monday-fri"}, "days are mon..sun"),
        ({"hours": "7-17"}, "hours are HH:MM-HH:MM"),
        ({"hours": 700}, "hours are text in quotes"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"terms": [{"from": "2026-12-18", "to": "2026-09-02"}]}, "'to' is before 'from'"),
        ({"holidays": ["next tuesday"]}, "date"),
        ({"terms": [{"from": "2026-09-02"}]}, "required"),
    ],
)
def test_invalid_schedules(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Schedule.model_validate(spec)


ICS = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//netmon test//EN
BEGIN:VEVENT
UID:half-term@test
DTSTART;VALUE=DATE:20261026
DTEND;VALUE=DATE:20261031
SUMMARY:Half term
END:VEVENT
BEGIN:VEVENT
UID:inset@test
DTSTART;TZID=Europe/London:20261104T130000
DTEND;TZID=Europe/London:20261104T170000
SUMMARY:INSET afternoon
END:VEVENT
BEGIN:VEVENT
UID:weekly@test
DTSTART;VALUE=DATE:20261111
RRULE:FREQ=WEEKLY;COUNT=2
SUMMARY:Closed Wednesdays
END:VEVENT
BEGIN:VEVENT
UID:utc@test
DTSTART:20261203T090000Z
DTEND:20261203T100000Z
SUMMARY:Power cut
END:VEVENT
END:VCALENDAR
"""

ICAL_CASES = [
    ("2026-10-23T10:00", True),  # before half term
    ("2026-10-26T10:00", False),  # all-day event, first day
    ("2026-10-30T10:00", False),  # last day (DTEND is exclusive)
    ("2026-11-02T10:00", True),
    ("2026-11-04T12:59", True),  # timed event: only its span
    ("2026-11-04T13:00", False),
    ("2026-11-04T16:30", False),
    ("2026-11-11T10:00", False),  # recurring all-day event
    ("2026-11-18T10:00", False),
    ("2026-11-25T10:00", True),  # after COUNT=2
    ("2026-12-03T08:59", True),
    ("2026-12-03T09:30", False),  # UTC event, London is UTC in December
]


@pytest.mark.parametrize(("when", "expected"), ICAL_CASES)
def test_ical_holidays(tmp_path: Path, when: str, expected: bool) -> None:
    (tmp_path / "holidays.ics").write_text(ICS)
    schedule = Schedule.model_validate({**SCHOOL, "ical": "holidays.ics"})
    assert is_expected_online(schedule, at(when), base_dir=tmp_path) is expected


def test_ical_file_reread_when_changed_and_ignored_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "holidays.ics"
    schedule = Schedule.model_validate({**SCHOOL, "ical": "holidays.ics"})
    monday = at("2026-09-07T10:00")
    assert is_expected_online(schedule, monday, base_dir=tmp_path)  # missing: no holidays
    path.write_text(ICS)
    assert is_expected_online(schedule, monday, base_dir=tmp_path)
    path.write_text(ICS.replace("20261026", "20260907").replace("20261031", "20260908"))
    os.utime(path, (1, 1))  # a different mtime, whatever the file system's resolution
    assert not is_expected_online(schedule, monday, base_dir=tmp_path)


def test_check_schedules_reports_unusable_ical_files(tmp_path: Path) -> None:
    (tmp_path / "good.ics").write_text(ICS)
    (tmp_path / "bad.ics").write_text("not a calendar")
    schedules = {
        "a": Schedule.model_validate({"ical": "good.ics"}),
        "b": Schedule.model_validate({"ical": "bad.ics"}),
        "c": Schedule.model_validate({"ical": "missing.ics"}),
        "d": Schedule(),
    }
    problems = dict(check_schedules(schedules, base_dir=tmp_path))
    assert set(problems) == {("b", "ical"), ("c", "ical")}
    assert "not an iCalendar file" in problems[("b", "ical")]
    assert "cannot read" in problems[("c", "ical")]
