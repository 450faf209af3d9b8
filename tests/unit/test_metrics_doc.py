"""METRICS.md is generated and current, and the labels it documents are the labels the
converters really emit."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.exporter import EXPORTER_METRICS, METRICS_DOC, SAMPLE_LABELS, metrics_markdown
from probes.metrics import METRICS
from probes.registry import runner_samples
from probes.result import ProbeResult, Status
from probes.snmp.modules import MODULES
from tests.snmprec import load_walked, recordings


def test_committed_metrics_doc_is_current() -> None:
    assert METRICS_DOC.exists(), "METRICS.md is missing"
    assert METRICS_DOC.read_text(encoding="utf-8") == metrics_markdown(), (
        "METRICS.md is out of date; regenerate it with "
        "`.venv/bin/python -m monitor.exporter --write-metrics-doc`"
    )


def test_every_metric_has_one_row_and_documented_labels() -> None:
    everything = [*METRICS, *EXPORTER_METRICS]
    assert set(SAMPLE_LABELS) == set(everything), "SAMPLE_LABELS must list every metric"
    doc = metrics_markdown()
    for name in everything:
        assert doc.count(f"| `{name}` |") == 1, name


@pytest.mark.parametrize(
    "path", recordings(), ids=[f"{p.parent.name}/{p.stem}" for p in recordings()]
)
def test_converters_emit_only_documented_labels(path: Path) -> None:
    walked = load_walked(path)
    for module in MODULES.values():
        for s in module.convert(walked).samples:
            extra = {k for k, _ in s.labels} - set(SAMPLE_LABELS[s.metric])
            assert not extra, f"{module.name}: {s.metric} has undocumented labels {extra}"


def test_runner_samples_emit_only_documented_labels() -> None:
    for s in runner_samples(ProbeResult(Status.TIMEOUT, "silent")):
        assert {k for k, _ in s.labels} <= set(SAMPLE_LABELS[s.metric]), s
