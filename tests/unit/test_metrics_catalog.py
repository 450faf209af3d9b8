"""Every sample any SNMP module emits on any recording is a catalogued metric with valid
Prometheus label names, and no series (metric + labels) appears twice."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from probes.metrics import METRICS
from probes.result import Sample
from probes.snmp.modules import MODULES
from tests.snmprec import load_walked, recordings

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Labels the exporter adds to every device series; a module must not set them.
RESERVED = {"target", "job", "instance", "probe", "module", "role", "site", "building", "room"}


def series_key(s: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return s.metric, tuple(sorted(s.labels))


@pytest.mark.parametrize(
    "path", recordings(), ids=[f"{p.parent.name}/{p.stem}" for p in recordings()]
)
def test_every_module_sample_is_catalogued_and_unique(path: Path) -> None:
    walked = load_walked(path)
    everything: list[Sample] = []
    for name, module in MODULES.items():
        samples = module.convert(walked).samples
        everything += samples
        for s in samples:
            assert s.metric in METRICS, f"{name}: {s.metric} is not in probes.metrics.METRICS"
            assert METRIC_NAME.match(s.metric)
            assert s.metric.endswith("_total") == (METRICS[s.metric].type == "counter"), s.metric
            names = [k for k, _ in s.labels]
            assert len(names) == len(set(names)), f"{name}: repeated label in {s}"
            for label, value in s.labels:
                assert LABEL_NAME.match(label) and not label.startswith("__"), f"{name}: {label!r}"
                assert label not in RESERVED, f"{name}: {label} is the exporter's label"
                assert isinstance(value, str)
            assert s.value == s.value, f"{name}: NaN in {s}"  # NaN != NaN
        dupes = [k for k, n in Counter(series_key(s) for s in samples).items() if n > 1]
        assert not dupes, f"{name} emits duplicate series on {path.name}: {dupes[:3]}"
    # The probe merges all modules: they must not collide with each other either.
    dupes = [k for k, n in Counter(series_key(s) for s in everything).items() if n > 1]
    assert not dupes, f"modules collide on {path.name}: {dupes[:3]}"


def test_every_family_keeps_one_label_set_per_recording() -> None:
    """Within one device, a metric's series all carry the same label names (dashboards
    and `promtool check metrics` expect consistent families)."""
    for path in recordings():
        walked = load_walked(path)
        seen: dict[str, set[str]] = {}
        for module in MODULES.values():
            for s in module.convert(walked).samples:
                names = {k for k, _ in s.labels}
                assert seen.setdefault(s.metric, names) == names, f"{path.name}: {s.metric}"


def test_counter_names_end_in_total_and_only_counters_do() -> None:
    """Prometheus naming: ``_total`` marks a counter. A per-run count is a gauge."""
    for name, definition in METRICS.items():
        assert name.endswith("_total") == (definition.type == "counter"), name
