"""Notifications: route and group alerts per receiver, store them in an outbox, deliver
them by email, webhook, apprise (chat and push) and to Alertmanager with retries.

``Notifier.update`` gets the engine's whole alert list and writes due notifications into
the outbox (:mod:`alerts.notify.dispatcher`); the delivery loop sends due outbox rows in
order per (receiver, integration), retrying failures with exponential backoff. All
state is in the alert state file, so a restarted process continues where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import aiohttp

from alerts.db import StateStore
from alerts.model import Alert, AlertState, Notification, Severity
from alerts.notify.alertmanager import post_alerts
from alerts.notify.apprise import AppriseSender
from alerts.notify.dispatcher import Dispatcher
from alerts.notify.email import DeliveryError, EmailRenderer, Links, build_message, send_email
from alerts.notify.outbox import Outbox, OutboxRow
from alerts.notify.settings import NotifySettings, check_references
from alerts.notify.webhook import send_webhook, shown_url
from probes.result import Sample

log = logging.getLogger(__name__)

__all__ = [
    "DeliveryError",
    "Notifier",
    "NotifySettings",
    "check_references",
    "send_test_notifications",
]


class Notifier:
    """The dispatcher plus the outbox delivery loop (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection | StateStore, settings: NotifySettings, *,
                 base_dir: Path, clock: Callable[[], float] = time.time, external_url: str = "",
                 poll_interval: float = 1.0, links: Links | None = None,
                 annotate: Callable[[Alert], Mapping[str, str]] | None = None) -> None:
        self.settings = settings
        self.base_dir = base_dir
        self.clock = clock
        self.external_url = external_url
        self.poll_interval = poll_interval
        self.outbox = Outbox(conn)
        domain = settings.smtp.from_.rpartition("@")[2] if settings.smtp else "localhost"
        self.dispatcher = Dispatcher(self.outbox, settings, mail_domain=domain or "localhost",
                                     external_url=external_url, annotate=annotate)
        templates = base_dir / settings.templates if settings.templates else None
        self.renderer = EmailRenderer(templates, links)
        self.apprise = AppriseSender(self.outbox.store)
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._alerts: list[Alert] | None = None
        self._busy: set[int] = set()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the delivery loop (undelivered rows from before a restart go first)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="netmon-notifier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.apprise.close()

    def update(self, alerts: Sequence[Alert], now: float | None = None) -> None:
        """Take the engine's whole current alert list and queue what is due."""
        self._alerts = list(alerts)
        self.dispatcher.dispatch(self._alerts, self.clock() if now is None else now, self._busy)

    async def deliver_due(self, now: float | None = None) -> int:
        """Try every due outbox row once, in order per destination; returns deliveries."""
        now = self.clock() if now is None else now
        chains: dict[tuple[str, str], list[OutboxRow]] = {}
        for row in self.outbox.due(now):
            chains.setdefault((row.notification.receiver, row.integration), []).append(row)
        results = await asyncio.gather(*(self._deliver_chain(rows, now) for rows in chains.values()))
        if results:
            self.outbox.prune(now)
        return sum(results)

    async def _deliver_chain(self, rows: list[OutboxRow], now: float) -> int:
        delivered = 0
        for row in rows:
            n = row.notification
            assert n.id is not None
            if n.next_attempt_at > now:
                break  # keep order: later rows wait for this one
            self._busy.add(n.id)
            try:
                await self._deliver(row)
            except DeliveryError as exc:
                delay = min(self.settings.retry.max, self.settings.retry.initial * 2 ** n.attempts)
                self.outbox.mark_failed(n.id, str(exc), now + delay)
                self.counts[(n.receiver, row.integration, "failed")] += 1
                log.warning("notification to %s (%s) failed, retry in %.0fs: %s",
                            n.receiver, row.integration, delay, exc)
                break
            except _Undeliverable as exc:
                self.outbox.mark_dropped(n.id, str(exc), now)
                self.counts[(n.receiver, row.integration, "dropped")] += 1
                log.warning("notification to %s (%s) dropped: %s", n.receiver, row.integration, exc)
            else:
                self.outbox.mark_delivered(n.id, now)
                self.counts[(n.receiver, row.integration, "delivered")] += 1
                if n.attempts:
                    log.info("notification to %s (%s) delivered after %d failed attempts",
                             n.receiver, row.integration, n.attempts)
                delivered += 1
            finally:
                self._busy.discard(n.id)
        return delivered

    async def _deliver(self, row: OutboxRow) -> None:
        n = row.notification
        if row.integration == "alertmanager":
            am = next((a for a in self.settings.alertmanagers if n.receiver in a.urls), None)
            if am is None:
                raise _Undeliverable("Alertmanager url no longer configured")
            await post_alerts(self._http(), n.receiver, row.data["items"], timeout=am.timeout)
            return
        receiver = self.settings.receiver(n.receiver)
        target = getattr(receiver, row.integration, None) if receiver else None
        if receiver is None or target is None:
            raise _Undeliverable(f"receiver {n.receiver} has no {row.integration} any more")
        group_labels = row.data.get("group_labels", {})
        if row.integration == "email":
            if self.settings.smtp is None:
                raise _Undeliverable("no smtp settings")
            rendered = self.renderer.render(n, group_labels, self.external_url)
            msg = build_message(rendered, sender=self.settings.smtp.from_, to=target.to,
                                message_id=row.data["message_id"],
                                thread_id=row.data.get("thread_id", ""))
            await send_email(msg, self.settings.smtp, target, self.base_dir)
        elif row.integration == "apprise":
            await self.apprise.send(n, target, group_labels, self.external_url)
        else:
            await send_webhook(self._http(), target, n, group_labels, self.external_url)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _run(self) -> None:
        while True:
            try:
                if self._alerts is not None:
                    self.dispatcher.dispatch(self._alerts, self.clock(), self._busy)
                await self.deliver_due()
            except (sqlite3.Error, OSError, ValueError) as exc:
                log.error("notification loop error (will retry): %s", exc)
            await asyncio.sleep(self.poll_interval)

    def samples(self) -> list[Sample]:
        """``netmon_notifications_total`` and ``netmon_notifications_pending``."""
        dests = {(r.name, i) for r in self.settings.receivers for i in r.integrations()}
        dests |= {(u, "alertmanager") for a in self.settings.alertmanagers for u in a.urls}
        pending = self.outbox.pending_counts()
        # An Alertmanager's receiver is its url: a password written into it is not shown.
        out = [Sample.of("netmon_notifications_total", v, receiver=shown_url(r),
                         integration=i, outcome=o)
               for (r, i, o), v in sorted(self.counts.items())]
        out += [Sample.of("netmon_notifications_pending", pending.get(d, 0),
                          receiver=shown_url(d[0]), integration=d[1])
                for d in sorted(dests | set(pending))]
        return out


class _Undeliverable(Exception):
    """The row's destination left the config: retrying cannot help."""


async def send_test_notifications(settings: NotifySettings, *,
                                  base_dir: Path) -> list[tuple[str, str, str | None]]:
    """Send one test message per receiver and integration, and check every Alertmanager
    answers; returns (receiver or url, integration, error or None)."""
    now = time.time()
    alert = Alert(
        fingerprint="test", rule="netmon_test", target="netmon",
        labels={"alertname": "netmon_test", "severity": Severity.INFO.value},
        annotations={"summary": "netmon test notification"}, state=AlertState.FIRING,
        starts_at=now, updated_at=now)
    renderer = EmailRenderer(base_dir / settings.templates if settings.templates else None)
    chat = AppriseSender(None)
    results: list[tuple[str, str, str | None]] = []
    async with aiohttp.ClientSession() as session:
        for receiver in settings.receivers:
            n = Notification(receiver.name, "test", "test", [alert], now)
            for integration in receiver.integrations():
                try:
                    if receiver.email is not None and integration == "email":
                        if settings.smtp is None:
                            raise DeliveryError("no smtp settings")
                        domain = settings.smtp.from_.rpartition("@")[2] or "localhost"
                        msg = build_message(renderer.render(n, {}), sender=settings.smtp.from_,
                                            to=receiver.email.to,
                                            message_id=f"<netmon.test.{now:.0f}@{domain}>")
                        await send_email(msg, settings.smtp, receiver.email, base_dir)
                    elif receiver.apprise is not None and integration == "apprise":
                        await chat.send(n, receiver.apprise, {})
                    elif receiver.webhook is not None:
                        await send_webhook(session, receiver.webhook, n, {})
                    results.append((receiver.name, integration, None))
                except DeliveryError as exc:
                    results.append((receiver.name, integration, str(exc)))
        for am in settings.alertmanagers:
            for url in am.urls:
                results.append((url, "alertmanager", await _ready(session, url, am.timeout)))
    chat.close()
    return results


async def _ready(session: aiohttp.ClientSession, url: str, timeout: float) -> str | None:
    try:
        async with session.get(url.rstrip("/") + "/-/ready",
                               timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            return None if resp.status == 200 else f"GET {url}/-/ready: HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"GET {url}/-/ready: {exc or type(exc).__name__}"
