"""The alerting pipeline of one netmon process: rules -> engine -> notifier.

:class:`AlertService` is what the daemon holds. It evaluates a target's rules whenever
one of its probe results arrives (the daemon subscribes it to the result store), runs
a one-second tick that promotes pending alerts whose ``for`` has elapsed and lets the
notifier group and deliver, and answers the web server and the status page.

It knows nothing of ``monitor``: results come in as plain :class:`ProbeResult` maps.
The state file is a :class:`alerts.db.StateStore`: a file that cannot be used at start
raises :class:`alerts.db.StateStoreError` (its text says what to do); one that fails
later is replaced by memory until it works again (checked every tick).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from alerts import ack
from alerts.db import StateStore, error_for
from alerts.digest import DigestRunner, HistoryReader
from alerts.engine import DEFAULT_STATE_FILE, AlertEngine
from alerts.model import Alert, Observation
from alerts.notify import Notifier
from alerts.notify.email import Links, alert_annotations
from alerts.rules import RuleSet, TargetInfo
from alerts.schedule import Schedule
from alerts.settings import AlertsSettings
from probes.result import ProbeResult, Sample

log = logging.getLogger("netmon.alerts")

#: Seconds between engine ticks (pending -> firing, schedules, silences, delivery).
TICK_SECONDS = 1.0


def state_path(settings: AlertsSettings, base_dir: Path) -> Path:
    """The SQLite state file: ``alerts.state_file`` relative to the config's directory."""
    path = Path(settings.state_file or DEFAULT_STATE_FILE)
    return path if path.is_absolute() else base_dir / path


class AlertService:
    """Rules, engine and notifier on one state file; reconfigured on reload."""

    def __init__(
        self,
        settings: AlertsSettings,
        *,
        base_dir: Path,
        schedules: Mapping[str, Schedule],
        clock: Callable[[], float] = time.time,
        external_url: str = "",
        grafana_url: str = "",
        history: Callable[[], HistoryReader | None] = lambda: None,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.clock = clock
        self.external_url = external_url
        self.settings = settings
        self.path = state_path(settings, self.base_dir)
        self.store = StateStore.open(self.path)
        try:
            #: Signs email acknowledge links and the status page's form tokens.
            self.secret = ack.load_secret(self.path.parent / ack.SECRET_FILE)
        except OSError as exc:
            self.store.close()
            raise error_for(self.path, exc) from None
        self.links = Links(external_url, grafana_url, self.secret)
        self.rules = RuleSet.from_settings(settings)
        try:
            self.engine = AlertEngine(
                self.store, settings, schedules=schedules, base_dir=self.base_dir, clock=clock
            )
            self.store.ensure_schema("acks", 1, ack.ACK_SCHEMA)
            self.notifier = self._notifier(settings)
            #: The weekly supplies digests; ``history``: the daemon's history store (if any).
            self.digests = DigestRunner(self.store, settings, base_dir=self.base_dir,
                                        history=history, external_url=external_url)
        except sqlite3.Error as exc:  # the tables themselves are unreadable
            self.store.close()
            raise error_for(self.path, exc) from None
        self._targets: dict[str, TargetInfo] = {}
        #: Each target's latest results, for the context notifications give.
        self._results: dict[str, Mapping[str, ProbeResult]] = {}
        self._tick_task: asyncio.Task[None] | None = None

    def _notifier(self, settings: AlertsSettings) -> Notifier:
        return Notifier(
            self.store, settings, base_dir=self.base_dir, clock=self.clock,
            external_url=self.external_url, links=self.links, annotate=self._annotate,
        )  # fmt: skip

    def _annotate(self, alert: Alert) -> dict[str, str]:
        """Address, what failed, advice, supply: what a notification tells about ``alert``."""
        info = self._targets.get(alert.target)
        return alert_annotations(alert, info.address if info else "",
                                 self._results.get(alert.target, {}))

    def set_targets(self, targets: Sequence[TargetInfo]) -> None:
        self._targets = {t.name: t for t in targets}
        self._results = {k: v for k, v in self._results.items() if k in self._targets}
        self.engine.set_targets(targets)

    async def reconfigure(
        self,
        settings: AlertsSettings,
        schedules: Mapping[str, Schedule],
        targets: Sequence[TargetInfo],
        *,
        external_url: str | None = None,
        grafana_url: str | None = None,
    ) -> None:
        """Apply a reloaded config. Rules keep their memory when unchanged; the notifier
        is restarted on the same state file (its outbox and log carry over). New
        ``server.external_url`` / ``dashboards.grafana_url`` (None: unchanged) apply to
        the notifications queued from now on."""
        self.tick()  # settle and persist what the old engine recorded since its last tick
        links = Links(self.links.external_url if external_url is None else external_url,
                      self.links.grafana_url if grafana_url is None else grafana_url,
                      self.secret)  # fmt: skip
        relinked = links != self.links
        if relinked:
            self.links, self.external_url = links, links.external_url
            self.digests.external_url = links.external_url
        if relinked or settings.model_dump() != self.settings.model_dump():
            if state_path(settings, self.base_dir) != self.path:
                log.warning("alerts.state_file changed: takes effect after a restart")
            self.rules = RuleSet.from_settings(settings)
            await self.notifier.stop()
            self.notifier = self._notifier(settings)
            await self.notifier.start()
            self.digests.settings = settings
            self.settings = settings
        self.engine = AlertEngine(
            self.store, settings, schedules=schedules, base_dir=self.base_dir, clock=self.clock
        )
        self.set_targets(targets)

    def evaluate(
        self, target: str, results: Mapping[str, ProbeResult], now: float | None = None
    ) -> list[Observation]:
        """Re-evaluate one target's rules on its latest results (called per stored result);
        returns the target's observations (the replay compares them)."""
        info = self._targets.get(target)
        if info is None:
            return []
        at = self.clock() if now is None else now
        observations = self.rules.evaluate(info, results, at)
        self._results[target] = results
        # Conditions only: the 1 s tick promotes, suppresses, persists and notifies.
        self.engine.observe(target, observations, at, settle=False)
        return observations

    def tick(self, now: float | None = None) -> list[Alert]:
        """Promote, suppress, persist and notify; returns the alerts whose state or
        suppression the tick changed."""
        at = self.clock() if now is None else now
        self.store.check()
        changed = self.engine.tick(at)
        self.notifier.update(self.engine.alerts(), at)
        return changed

    async def start(self) -> None:
        await self.notifier.start()
        self._tick_task = asyncio.get_running_loop().create_task(self._ticker())

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self.tick()
                self.digests.tick(self.clock(), self.rules, self._targets.values())
            except Exception:  # a bug must not end alerting for good
                log.exception("alert tick failed")

    async def stop(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
            self._tick_task = None
        self.engine.tick()  # persist conditions recorded since the last tick
        await self.digests.stop()
        await self.notifier.stop()
        self.store.close()

    def alerts(self) -> list[Alert]:
        """Pending, firing and recently resolved alerts (suppressed ones with their reason,
        acknowledged ones with ``extra["ack"]``)."""
        alerts = self.engine.alerts()
        return ack.with_acks(alerts, self.store.read(lambda conn: ack.current_acks(conn, alerts)))

    def acknowledge(self, fingerprints: Sequence[str], *, author: str, comment: str,
                    via: str) -> list[Alert]:
        """Acknowledge these active alerts; returns the ones acknowledged now."""
        wanted = set(fingerprints)
        found = [a for a in self.engine.alerts() if a.fingerprint in wanted]
        now = self.clock()
        return self.store.write(lambda conn: ack.acknowledge(
            conn, found, author=author, comment=comment, via=via, now=now))

    def samples(self) -> list[Sample]:
        return [*self.engine.samples(), *self.notifier.samples(), *self.store.samples()]
