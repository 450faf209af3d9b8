"""The ``alerts:`` section of the config: the rules', the engine's and the notifiers'
settings side by side (each part owns its model; this composes them)."""

from __future__ import annotations

from alerts.engine import EngineSettings
from alerts.notify.settings import NotifySettings
from alerts.rules import RulesSettings


class AlertsSettings(RulesSettings, EngineSettings, NotifySettings):
    """Everything under ``alerts:``; every field has a default, so ``alerts:`` may be empty."""
