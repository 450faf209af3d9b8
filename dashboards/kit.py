"""Small helpers on top of grafana-foundation-sdk shared by every netmon dashboard.

The SDK leaves panel ids and query refIds unset; :class:`Board` numbers them so every
dashboard has unique panel ids and each panel's queries are A, B, C, ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

#: uid of the Prometheus data source in provisioning/datasources/netmon.yml.
DATASOURCE_UID = "netmon-prometheus"
DATASOURCE_NAME = "Prometheus (netmon)"
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["netmon"]

#: Label filters for the multi-value variables (Grafana expands them to a regex).
FILTERS = {
    "site": 'site=~"$site"',
    "building": 'building=~"$building"',
    "role": 'role=~"$role"',
    "room": 'room=~"$room"',
    "target": 'target=~"$target"',
}


def sel(*extra: str, by: Sequence[str] = ()) -> str:
    """A label selector body from variable filters ``by`` plus literal matchers."""
    return ",".join([*(FILTERS[v] for v in by), *extra])


def q(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> prom.Dataquery:
    """A Prometheus query; :meth:`Board.add` gives it its refId."""
    query = prom.Dataquery().expr(expr).datasource(DS)
    if legend:
        query = query.legend_format(legend)
    query = query.instant() if instant or table else query.range()
    if table:
        query = query.format(pm.PromQueryFormat.TABLE)
    return query


def steps(*pairs: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds: ``(None, base colour), (value, colour), ...``."""
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in pairs]
    )


def value_map(mapping: dict[str, tuple[str, str]]) -> list[dm.ValueMapping]:
    """Value -> (text, colour) mappings, for state series and state labels."""
    options = {k: dm.ValueMappingResult(text=t, color=c, index=i)
               for i, (k, (t, c)) in enumerate(mapping.items())}
    return [dm.ValueMap(options=options)]


UP_DOWN = value_map({"1": ("up", "green"), "0": ("down", "red")})
LOW_IS_BAD = steps((None, "red"), (0.1, "orange"), (0.2, "green"))
HIGH_IS_BAD = steps((None, "green"), (0.8, "orange"), (0.9, "red"))
SHARE_UP = steps((None, "red"), (0.8, "orange"), (1, "green"))


def label_var(name: str, label: str, metric: str, *, after: Sequence[str] = (),
              default: str | None = None, multi: bool = True) -> db.QueryVariable:
    """A variable listing the values of label ``name`` on ``metric``, filtered by the
    variables ``after`` (chained, like site -> building -> role)."""
    var = (
        db.QueryVariable(name).label(label).datasource(DS)
        .query(f"label_values({metric}{{{sel(by=after)}}}, {name})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(multi).include_all(multi)
    )  # fmt: skip
    if multi:
        var = var.all_value(".*")
    chosen = default or ("$__all" if multi else None)
    if chosen is not None:
        text = "All" if chosen == "$__all" else chosen
        var = var.current(dm.VariableOption(selected=True, text=[text], value=[chosen]))
    return var


def datasource_var() -> db.DatasourceVariable:
    """The ``$datasource`` variable, defaulting to the provisioned netmon Prometheus."""
    return (
        db.DatasourceVariable("datasource").label("Data source").type("prometheus")
        .current(dm.VariableOption(selected=True, text=DATASOURCE_NAME, value=DATASOURCE_UID))
    )  # fmt: skip


class Board:
    """A dashboard under construction: numbers panel ids and query refIds."""

    def __init__(self, uid: str, title: str, description: str) -> None:
        self._dash = (
            db.Dashboard(title).uid(uid).description(description).tags(TAGS)
            .refresh("1m").time("now-6h", "now").timezone("browser").editable()
            .tooltip(dm.DashboardCursorSync.CROSSHAIR).with_variable(datasource_var())
        )  # fmt: skip
        self._next_id = 1

    def variables(self, *variables: db.QueryVariable) -> Board:
        for var in variables:
            self._dash = self._dash.with_variable(var)
        return self

    def row(self, title: str) -> Board:
        self._dash = self._dash.with_row(db.Row(title).id(self._take_id()))
        return self

    def add(self, panel: Any, *queries: prom.Dataquery, w: int = 12, h: int = 8) -> Board:
        """Add ``panel`` (an SDK panel builder) with ``queries`` at width ``w`` of 24."""
        for i, query in enumerate(queries):
            panel = panel.with_target(query.ref_id(chr(ord("A") + i)))
        self._dash = self._dash.with_panel(panel.id(self._take_id()).datasource(DS).span(w).height(h))
        return self

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def build(self) -> dm.Dashboard:
        return self._dash.build()
