"""The committed dashboards: current with the code, well-formed for Grafana 11, and
using only metrics netmon exports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dashboards.build import JSON_DIR, METRIC_NAME, load, panels, queries, stale_files
from dashboards.kit import DATASOURCE_UID
from monitor.cli.app import main
from monitor.exporter import EXPORTER_METRICS
from probes.metrics import METRICS

DASHBOARDS = load()
PROVISIONING = JSON_DIR.parent / "provisioning"
KNOWN_METRICS = set(METRICS) | set(EXPORTER_METRICS)
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}


def test_committed_json_is_current() -> None:
    stale = stale_files()
    assert not stale, f"run `netmon dashboards build`: stale {[p.name for p in stale]}"


def test_the_six_dashboards_exist_with_fixed_uids() -> None:
    uids = sorted(d["uid"] for d in DASHBOARDS.values())
    assert uids == sorted(["netmon-overview", "netmon-printers", "netmon-switches", "netmon-labs",
                           "netmon-device", "netmon-self"])
    for name, doc in DASHBOARDS.items():
        assert name == f"{doc['uid']}.json"
        assert doc["schemaVersion"] == 41
        assert "netmon" in doc["tags"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panel_ids_and_ref_ids_are_set_and_unique(name: str) -> None:
    ids = [p.get("id") for p in panels(DASHBOARDS[name])]
    assert all(isinstance(i, int) and i > 0 for i in ids), ids
    assert len(ids) == len(set(ids))
    for panel in panels(DASHBOARDS[name]):
        refs = [t.get("refId") for t in panel.get("targets", [])]
        assert all(refs) and len(refs) == len(set(refs)), (panel["title"], refs)
        if panel["type"] != "row":
            assert refs, f"{panel['title']} has no query"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_metric_used_is_in_the_catalogue(name: str) -> None:
    doc = DASHBOARDS[name]
    exprs = [t["expr"] for _, t in queries(doc)]
    exprs += [v["query"] for v in doc["templating"]["list"] if v["type"] == "query"]
    used = {m for e in exprs for m in METRIC_NAME.findall(e)}
    assert used, "no netmon metric used"
    assert used <= KNOWN_METRICS, used - KNOWN_METRICS


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_variables_used_are_defined_and_panels_use_the_datasource_variable(name: str) -> None:
    doc = DASHBOARDS[name]
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    assert ds["current"]["value"] == DATASOURCE_UID
    texts = [t["expr"] for _, t in queries(doc)] + [
        v["query"] for v in variables.values() if v["type"] == "query"
    ]
    used = {a or b for text in texts for a, b in re.findall(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", text)}
    assert used - GRAFANA_BUILTINS <= set(variables), used - GRAFANA_BUILTINS - set(variables)
    for panel in panels(doc):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_query_modes_and_units_fit_the_panel(name: str) -> None:
    """Time series ask for ranges, single-value panels for instants; values have units."""
    for panel, target in queries(DASHBOARDS[name]):
        ranged = panel["type"] in {"timeseries", "state-timeline", "status-history"}
        assert bool(target.get("range")) == ranged and bool(target.get("instant")) != ranged, panel["title"]
        if panel["type"] in {"timeseries", "stat", "bargauge"}:
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]


def test_thresholds_and_units_cover_the_basics() -> None:
    units = {p.get("fieldConfig", {}).get("defaults", {}).get("unit")
             for d in DASHBOARDS.values() for p in panels(d)}
    assert {"s", "Bps", "percentunit", "bytes"} <= units | _override_units()
    toner = next(p for p in panels(DASHBOARDS["netmon-printers.json"]) if p["title"] == "Toner and ink levels")
    steps = toner["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["color"] for s in steps] == ["red", "orange", "green"]


def _override_units() -> set[str]:
    return {
        prop["value"] for d in DASHBOARDS.values() for p in panels(d)
        for o in p.get("fieldConfig", {}).get("overrides", []) for prop in o["properties"] if prop["id"] == "unit"
    }


def test_provisioning_files_point_at_the_dashboards() -> None:
    ds = yaml.safe_load((PROVISIONING / "datasources" / "netmon.yml").read_text())
    (source,) = ds["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "netmon.yml").read_text())
    (entry,) = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"]


def test_cli_build_writes_and_check_finds_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "build", "--check", "-o", str(tmp_path)]) == 1
    assert "netmon-overview.json" in capsys.readouterr().err
    assert main(["dashboards", "build", "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(DASHBOARDS)
    assert main(["dashboards", "build", "--check", "-o", str(tmp_path)]) == 0
    text = (tmp_path / "netmon-labs.json").read_text()
    assert text.endswith("}\n") and text == (JSON_DIR / "netmon-labs.json").read_text()
    (tmp_path / "netmon-labs.json").write_text(text.replace("Lab rooms", "Lab rooms!"))
    (tmp_path / "netmon-old.json").write_text("{}\n")
    capsys.readouterr()
    assert main(["dashboards", "build", "--check", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "netmon-labs.json" in err and "netmon-old.json" in err and "netmon-device.json" not in err
