"""The replay timeline format (alerts.timeline): times, spans, and one line per mistake."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.timeline import TimelineError, load_timeline, parse_span

EXAMPLE = Path(__file__).parents[2] / "examples" / "replay-toner.yml"


@pytest.mark.parametrize(("text", "seconds"), [
    (90, 90.0), ("90", 90.0), ("+0", 0.0), ("90s", 90.0), ("2h30m", 9000.0), ("+1d2h", 93600.0),
    ("1.5h", 5400.0), ("250ms", 0.25), ("+ 3d", 259200.0),
])  # fmt: skip
def test_spans(text: object, seconds: float) -> None:
    assert parse_span(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5m", "2 weeks", "", True, -1])
def test_bad_spans(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_span(text)


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "timeline.yml"
    path.write_text(text)
    return load_timeline(path)


def test_times_offsets_and_zone(tmp_path: Path) -> None:
    loaded = _load(tmp_path, """\
timezone: Europe/London
start: 2026-09-07 06:00
changes:
  - {at: +1h30m, target: a, status: timeout}
  - {at: 2026-09-07 09:00, group: g, probe: tcp-9100, status: refused}
  - {at: "2026-09-07T10:00:00+00:00", match: {role: lab}, probe: icmp,
     samples: [{metric: netmon_icmp_packet_loss_ratio, value: 0.5}]}
silences: [{at: +2h, duration: 1d, matchers: ["target=~lab-.*"]}]
restarts: [{at: +3h}]
""")
    tl = loaded.timeline  # type: ignore[attr-defined]
    start = datetime(2026, 9, 7, 5, 0, tzinfo=UTC).timestamp()  # 06:00 BST
    assert tl.start_ts == start
    assert [tl.seconds(c.at) for c in tl.changes] == [start + 5400, start + 3 * 3600, start + 5 * 3600]
    assert tl.changes[1].probe == "tcp-9100" and tl.changes[1].status == "refused"
    assert tl.silences[0].duration == 86400 and tl.restarts[0].down == 10.0
    # Without an end: a day after the last event (the silence ends at +1d2h).
    assert tl.end_ts() == start + 86400 + 7200 + 86400


def test_the_example_is_valid() -> None:
    tl = load_timeline(EXAMPLE).timeline
    assert tl.end_ts() - tl.start_ts == 5 * 86400
    assert any(s.metric == "netmon_printer_supply_level_ratio" for c in tl.changes for s in c.samples)


# Each invalid case: the file, then the one line expected for it (file:line: field: message).
INVALID = [
    ("changes: []\n", "timeline.yml:1: start: required but missing"),
    ("start: +2h\n", "timeline.yml:1: start: the start is a time, e.g. 2026-09-07 06:00"),
    ("start: 2026-09-07 06:00\ntimezone: Mars/Olympus\n",
     "timeline.yml:2: timezone: unknown time zone; use an IANA name such as Europe/London"),
    ("start: 2026-09-07 06:00\nchanges:\n  - {at: soon, target: a}\n",
     "timeline.yml:3: changes[0].at: 'soon' is neither an offset from the start"),
    ("start: 2026-09-07 06:00\nchanges:\n  - at: +1h\n    target: a\n    group: b\n",
     "timeline.yml:3: changes[0]: a change names exactly one of target, group or match"),
    ("start: 2026-09-07 06:00\nchanges:\n  - at: +1h\n    target: a\n    probe: ssh\n",
     "timeline.yml:5: changes[0].probe: a probe is icmp, snmp, tcp (every TCP port) or tcp-PORT"),
    ("start: 2026-09-07 06:00\nchanges:\n  - {at: +1h, target: a, status: dead}\n",
     "timeline.yml:3: changes[0].status: Input should be 'ok', 'partial'"),
    ("start: 2026-09-07 06:00\nchanges:\n  - at: +1h\n    target: a\n    samples:\n      - {metric: netmon_toner, value: 1}\n",
     "timeline.yml:6: changes[0].samples[0].metric: unknown metric 'netmon_toner' (see METRICS.md)"),
    ("start: 2026-09-07 06:00\nchanges:\n  - {at: +1h, target: a, colour: red}\n",
     "timeline.yml:3: changes[0].colour: unknown key 'colour'"),
    ("start: 2026-09-07 06:00\nsilences:\n  - {at: +1h, duration: 1h, matchers: ['target=~(']}\n",
     "timeline.yml:3: silences[0].matchers[0]: 'target=~(': invalid regular expression"),
    ("start: 2026-09-07 06:00\nchanges:\n  - {at: +1h, target: a\n", "timeline.yml:4: YAML syntax error"),
    ("- just\n- a list\n", "timeline.yml:1: a timeline is a mapping with start and changes"),
]


@pytest.mark.parametrize(("text", "expected"), INVALID, ids=[e.split(": ")[1] for _, e in INVALID])
def test_mistakes_are_one_line_each_with_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(TimelineError) as caught:
        _load(tmp_path, text)
    problems = caught.value.problems
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{tmp_path}/{expected}"), problems


def test_every_mistake_at_once(tmp_path: Path) -> None:
    with pytest.raises(TimelineError) as caught:
        _load(tmp_path, "start: 2026-09-07 06:00\nchanges:\n  - {at: soon, target: a}\n"
                        "  - {at: +1h, target: a, probe: ssh}\n")
    assert [p.split(": ")[1] for p in caught.value.problems] == ["changes[0].at", "changes[1].probe"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TimelineError, match="cannot read"):
        load_timeline(tmp_path / "missing.yml")
