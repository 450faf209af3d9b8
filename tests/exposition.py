"""Reading Prometheus text exposition in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Series = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Series:
    """``{sample name: [(labels, value), ...]}`` from the text exposition."""
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def one(series: Series, name: str, **labels: str) -> float:
    """The value of the single series of ``name`` whose labels include ``labels``."""
    hits = [v for lbl, v in series.get(name, []) if labels.items() <= lbl.items()]
    assert len(hits) == 1, f"{name}{labels}: {len(hits)} series in {sorted(series)}"
    return hits[0]
