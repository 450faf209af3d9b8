"""Chat and push notifications through apprise: any apprise URL (Microsoft Teams
workflows, Google Chat, Slack, Telegram, ntfy, Discord, Matrix, Pushover ...).

A receiver's ``apprise:`` lists URLs and may give a jinja2 ``title`` and ``template``
(the body); the defaults give one short line per alert:
``[FIRING] staffroom-printer: Black Toner Cartridge is empty (staffroom)``.

Why it looks the way it does:

- apprise does blocking HTTP (requests) in threads, so every send runs in this module's
  small thread pool under apprise's own call deadline: the event loop never waits on a
  socket, and a hung service cannot take the pool's threads for longer than ``timeout``.
- One outbox row covers all URLs of a receiver. The URLs that accepted a notification
  are remembered in the state file (``notify_apprise_sent``, keyed by a hash of the
  URL, never the URL), so a retry — also after a restart — goes only to those that
  failed, and one dead service does not repeat the message on the healthy ones.
- A URL is a secret (its token is the credential). apprise's and urllib3's loggers are
  cut off from netmon's log (at debug level they print topics, users and request
  paths); apprise's warnings reach netmon only as delivery errors, with every part of
  the URL masked.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import apprise
import jinja2

from alerts.db import StateStore
from alerts.model import Alert, AlertState, Notification, Severity
from alerts.notify.email import DeliveryError, Links, in_words, location_words
from alerts.notify.settings import AppriseSettings

# Their debug lines hold URL parts (apprise: topics, users; urllib3, which only apprise's
# requests uses in netmon: request paths, a Telegram bot token); netmon reports
# apprise's failures itself (see above). Both loggers have a NullHandler of their own.
for _name in (apprise.LOGGER_NAME, "urllib3"):
    logging.getLogger(_name).propagate = False

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS notify_apprise_sent (
        outbox_id INTEGER NOT NULL, url_key TEXT NOT NULL, PRIMARY KEY (outbox_id, url_key))""",
)

DEFAULT_TITLE = (
    "{% if kind == 'test' %}netmon test message for {{ receiver }}"
    "{% else %}netmon{% if location %} · {{ location }}{% endif %}: "
    "{% if firing %}{{ firing|length }} {{ 'flapping' if kind == 'flapping' else 'firing' }}"
    "{% endif %}{% if firing and resolved %}, {% endif %}"
    "{% if resolved %}{{ resolved|length }} resolved{% endif %}{% endif %}"
)
DEFAULT_TEMPLATE = """\
{% for a in alerts %}
[{{ a.state }}] {{ a.summary }}{% if a.room %} ({{ a.room }}){% endif %}\
{% if a.lasted %}, lasted {{ a.lasted }}{% endif %}

{% endfor %}
{% if more %}
… and {{ more }} more
{% endif %}
{% for link in links %}
{{ link }}
{% endfor %}
"""
#: Alerts listed in one message (chat services cut long ones: Telegram at 4096 characters).
MAX_ALERTS = 20
#: Device links given; past that, one link to the status page.
MAX_LINKS = 3
THREADS = 4
#: Seconds the event loop waits beyond apprise's own deadline before giving up on a send.
GRACE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ChatMessage:
    title: str
    body: str
    notify_type: apprise.NotifyType


def _view(alert: Alert, kind: str, external_url: str) -> dict[str, Any]:
    resolved = alert.state is AlertState.RESOLVED
    since = alert.starts_at if alert.starts_at is not None else alert.active_since
    ended = alert.ends_at
    lasted = in_words(ended - since) if resolved and ended is not None and since is not None else ""
    return {
        "state": "RESOLVED" if resolved else "FLAPPING" if kind == "flapping" else "FIRING",
        "severity": alert.severity, "target": alert.target, "rule": alert.rule,
        "summary": alert.annotations.get("summary") or f"{alert.target} {alert.rule}",
        "description": alert.annotations.get("description", ""),
        # Added when the notification was queued (alerts.notify.email.alert_annotations).
        "address": alert.annotations.get("address", ""), "advice": alert.annotations.get("advice", ""),
        "room": alert.labels.get("room", ""), "building": alert.labels.get("building", ""),
        "site": alert.labels.get("site", ""), "labels": alert.labels,
        "since": since, "ends_at": alert.ends_at, "lasted": lasted,
        "url": Links(external_url).device(alert.target),
    }


def _notify_type(n: Notification, listed: Sequence[Alert]) -> apprise.NotifyType:
    if n.kind == "resolved":
        return apprise.NotifyType.SUCCESS
    if n.kind == "test":
        return apprise.NotifyType.INFO
    if any(a.severity == Severity.CRITICAL.value for a in listed if a.state is AlertState.FIRING):
        return apprise.NotifyType.FAILURE
    return apprise.NotifyType.WARNING


class ChatRenderer:
    """Title and body of a chat message from a receiver's templates (or the defaults).
    Not autoescaped: the text goes to services that take plain text."""

    def __init__(self) -> None:
        self.env = jinja2.Environment(trim_blocks=True, keep_trailing_newline=False,
                                      autoescape=False)  # fmt: skip
        self._compiled: dict[str, jinja2.Template] = {}

    def _template(self, text: str) -> jinja2.Template:
        if text not in self._compiled:
            self._compiled[text] = self.env.from_string(text)
        return self._compiled[text]

    def render(self, n: Notification, settings: AppriseSettings, group_labels: Mapping[str, str],
               external_url: str = "") -> ChatMessage:
        listed = n.alerts if n.kind in ("flapping", "test") else [*n.firing, *n.resolved]
        views = [_view(a, n.kind, external_url) for a in listed]
        targets = list(dict.fromkeys(a.target for a in listed))
        links: list[str] = []
        if external_url:
            links = ([Links(external_url).device(t) for t in targets] if len(targets) <= MAX_LINKS
                     else [external_url])  # fmt: skip
        ctx = {
            "kind": n.kind, "receiver": n.receiver, "location": location_words(group_labels),
            "group_labels": dict(group_labels), "external_url": external_url,
            "alerts": views[:MAX_ALERTS], "more": max(0, len(views) - MAX_ALERTS),
            "firing": [v for v in views if v["state"] != "RESOLVED"],
            "resolved": [v for v in views if v["state"] == "RESOLVED"], "links": links,
        }
        try:
            title = self._template(settings.title or DEFAULT_TITLE).render(ctx)
            body = self._template(settings.template or DEFAULT_TEMPLATE).render(ctx)
        except Exception as exc:  # noqa: BLE001 - a user's template may fail in any way
            raise DeliveryError(f"apprise template: {type(exc).__name__}: {exc}") from None
        return ChatMessage(" ".join(title.split()), body.strip(), _notify_type(n, listed))


def url_key(url: str) -> str:
    """What the state file keeps of a URL: a hash (the URL itself is a secret)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


_WORD = re.compile(r"[^/?#&=:@]+")
_HOSTNAME = re.compile(r"(?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+")


def mask_url_parts(text: str, url: str) -> str:
    """``text`` with the URL and every part of it that could be a token (user, password,
    path segments, query values; host names and addresses stay) replaced by ``****``."""
    parts = urlsplit(url)
    words = set(_WORD.findall(f"{parts.netloc}/{parts.path}?{parts.query}"))
    secret = sorted((w for w in words if len(w) >= 4 and not _HOSTNAME.fullmatch(w)),
                    key=len, reverse=True)  # fmt: skip
    for word in [url, *secret]:
        text = text.replace(word, "****")
    return text


def _scheme(url: str) -> str:
    return url.partition("://")[0] or "?"


def _notify(url: str, message: ChatMessage, timeout: float, asset: apprise.AppriseAsset) -> str | None:
    """One blocking apprise call (in a worker thread): None, or why it failed."""
    app = apprise.Apprise(asset=asset)
    if not app.add(url):
        return "apprise does not accept the url"
    with app.notify(body=message.body, title=message.title, notify_type=message.notify_type,
                    body_format=apprise.NotifyFormat.TEXT, timeout=timeout) as result:
        if result:
            return None
        status = result.status.name.lower()
        said = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        name = next((r.name for r in result), "")
        return mask_url_parts(f"{name} {status}: {said[-1] if said else 'no reason given'}", url)


class AppriseSender:
    """Delivers chat messages; remembers per outbox row which URLs took it (``store``;
    None for ``netmon alerts test``, which has no outbox row)."""

    def __init__(self, store: StateStore | None) -> None:
        self.store = store
        if store is not None:
            store.ensure_schema("notify_apprise", 1, SCHEMA)
        self.renderer = ChatRenderer()
        self.asset = apprise.AppriseAsset(app_id="netmon", app_desc="netmon network monitor")
        self._pool: ThreadPoolExecutor | None = None

    async def send(self, n: Notification, settings: AppriseSettings,
                   group_labels: Mapping[str, str], external_url: str = "") -> None:
        """Send ``n`` to every URL that has not taken it yet; a :class:`DeliveryError`
        names the URLs (by number and scheme) that failed."""
        message = self.renderer.render(n, settings, group_labels, external_url)
        done = self._done(n.id)
        todo = [(i, u.get_secret_value()) for i, u in enumerate(settings.urls, 1)
                if url_key(u.get_secret_value()) not in done]
        outcomes = await asyncio.gather(*(self._post(url, message, settings.timeout)
                                          for _, url in todo))
        errors = []
        for (i, url), error in zip(todo, outcomes, strict=True):
            if error is None:
                self._mark(n.id, url_key(url))
            else:
                errors.append(f"url {i} ({_scheme(url)}://): {error}")
        if errors:
            raise DeliveryError("apprise " + "; ".join(errors))
        self._forget(n.id)

    async def _post(self, url: str, message: ChatMessage, timeout: float) -> str | None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="netmon-apprise")
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._pool, _notify, url, message, timeout, self.asset),
                timeout + GRACE_SECONDS)
        except TimeoutError:
            return f"no answer within {timeout + GRACE_SECONDS:.0f} s"
        except Exception as exc:  # noqa: BLE001 - an apprise bug: a retried failure, not a crash
            return mask_url_parts(f"{type(exc).__name__}: {exc}", url)

    def _done(self, row_id: int | None) -> set[str]:
        if self.store is None or row_id is None:
            return set()
        rows = self.store.read(lambda conn: conn.execute(
            "SELECT url_key FROM notify_apprise_sent WHERE outbox_id = ?", (row_id,)).fetchall())
        return {r[0] for r in rows}

    def _mark(self, row_id: int | None, key: str) -> None:
        if self.store is not None and row_id is not None:
            self.store.write(lambda conn: conn.execute(
                "INSERT OR IGNORE INTO notify_apprise_sent VALUES (?, ?)", (row_id, key)))

    def _forget(self, row_id: int | None) -> None:
        """Drop this row's progress, and that of rows delivered or dropped meanwhile."""
        if self.store is not None and row_id is not None:
            self.store.write(lambda conn: conn.execute(
                "DELETE FROM notify_apprise_sent WHERE outbox_id = ? OR outbox_id NOT IN "
                "(SELECT id FROM notify_outbox WHERE delivered_at IS NULL)", (row_id,)))

    def close(self) -> None:
        """Stop the worker threads (a send in progress finishes within its deadline)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
