"""The ``alerts:`` section of the config: the rules', the engine's, the notifiers' and
the digests' settings side by side (each part owns its model; this composes them)."""

from __future__ import annotations

from alerts import digest, engine, rules
from alerts.digest import DigestsSettings
from alerts.engine import EngineSettings
from alerts.notify import settings as notify
from alerts.notify.settings import NotifySettings
from alerts.rules import RulesSettings

Loc = tuple[str | int, ...]


class AlertsSettings(RulesSettings, EngineSettings, NotifySettings, DigestsSettings):
    """Everything under ``alerts:``; every field has a default, so ``alerts:`` may be empty."""


def check_references(
    settings: AlertsSettings, *, groups: set[str], targets: set[str], schedules: set[str]
) -> list[tuple[Loc, str]]:
    """Every part's cross-reference problems, as (location under ``alerts``, message)."""
    found: list[tuple[Loc, str]] = []
    for part in (rules, engine, notify, digest):
        found += part.check_references(
            settings, groups=groups, targets=targets, schedules=schedules
        )
    return found
