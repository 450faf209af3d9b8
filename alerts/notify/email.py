"""Email notifications: jinja2 templates (user directory overrides the packaged ones)
rendered to a plain-text + HTML message, sent with aiosmtplib.

The HTML template is autoescaped, so device-supplied text (sysDescr, printer alert
descriptions) is inert. One message per group notification; Message-ID plus
In-Reply-To/References pointing at the group's first message thread one incident.

Each alert comes with what someone needs to act on it from a phone: the device, its role
and place (site, building, room) and address, what failed in the probe's own words,
what to check (:mod:`alerts.advice`), since when (or how long it lasted), a printer
supply's description (often the part number) and level, and links: the device's status
page, its Grafana dashboard and a signed acknowledge link (:class:`Links`). The
annotations behind these are added when the notification is queued
(:func:`alert_annotations`), so a message sent after a restart says the same.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiosmtplib
import jinja2

from alerts.ack import link_token
from alerts.advice import advice
from alerts.model import Alert, AlertState, Notification
from alerts.notify.settings import EmailSettings, SmtpSettings
from probes.result import ProbeResult, Status

PACKAGED_TEMPLATES = Path(__file__).parent / "templates"
SUBJECT_MAX = 140
SUBJECT_SUMMARIES = 3


class DeliveryError(Exception):
    """A notification could not be delivered (the outbox retries it)."""


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def short_summary(alert: Alert) -> str:
    """"sw-closet-b2 is down: no reply to 3 pings" -> "sw-closet-b2 is down"; a summary
    that starts with just the device name keeps what follows ("mfp: black toner low")."""
    summary = alert.annotations.get("summary", "").strip()
    if not summary:
        return f"{alert.target} {alert.rule}"
    head, sep, rest = summary.partition(":")
    if sep and head.strip() == alert.target:
        return f"{head.strip()}: {rest.strip()}"
    return head.strip()


def location_words(group_labels: Mapping[str, str]) -> str:
    """Group labels in words, most specific first: "Main building, North site"."""
    return ", ".join(v for v in reversed(list(group_labels.values())) if v)


#: Grafana dashboards (uid, variables filled from the alert's labels) by target role; the
#: uids and variable names are those of dashboards/boards.py (a test checks they match).
GRAFANA_BOARDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "printer": ("netmon-printers", ("site", "building", "target")),
    "switch": ("netmon-switches", ("site", "building", "role", "target")),
    "lab": ("netmon-labs", ("site", "building", "role", "room")),
}
GRAFANA_DEFAULT = ("netmon-device", ("site", "role", "target"))


@dataclass(frozen=True, slots=True)
class Links:
    """Where an email's links point: ``server.external_url`` (status page, acknowledge
    link; no links without it), ``dashboards.grafana_url`` (optional) and the secret
    that signs acknowledge links (none: no acknowledge link)."""

    external_url: str = ""
    grafana_url: str = ""
    secret: bytes | None = None

    def device(self, target: str) -> str:
        return f"{self.external_url.rstrip('/')}/device/{quote(target, safe='')}" if self.external_url else ""

    def grafana(self, labels: Mapping[str, str]) -> str:
        if not self.grafana_url:
            return ""
        uid, variables = GRAFANA_BOARDS.get(labels.get("role", ""), GRAFANA_DEFAULT)
        query = urlencode([(f"var-{v}", labels[v]) for v in variables if labels.get(v)])
        return f"{self.grafana_url.rstrip('/')}/d/{uid}" + (f"?{query}" if query else "")

    def ack(self, alert: Alert, now: float) -> str:
        if not self.external_url or self.secret is None or alert.state is not AlertState.FIRING:
            return ""
        token = link_token(self.secret, alert.fingerprint, now)
        return f"{self.external_url.rstrip('/')}/ack/{token}"


def alert_annotations(alert: Alert, address: str,
                      results: Mapping[str, ProbeResult]) -> dict[str, str]:
    """What a notification adds to an alert's annotations, from the target's address and
    latest results: ``address``; while it fires, ``failed`` (each failed probe's own
    explanation) and ``advice``; for a printer supply, ``supply_description`` and
    ``supply_level``."""
    out = {"address": address} if address else {}
    port = alert.labels.get("port")
    failed = [(name, r) for name, r in results.items()
              if not r.status.success and (port is None or name == f"tcp-{port}")]
    if alert.state is not AlertState.RESOLVED:
        if failed:
            out["failed"] = "; ".join(f"{name}: {r.explanation}" for name, r in failed)
        status: Status | None = failed[0][1].status if failed else None
        if hint := advice(alert.rule, status):
            out["advice"] = hint
    index = alert.labels.get("index")
    if index is not None and "supply" in alert.labels:
        for r in results.values():
            supply = next((s for s in r.records.get("supplies", []) if s.get("index") == index), None)
            if supply is not None:
                out["supply_description"] = str(supply.get("description") or alert.labels["supply"])
                out["supply_level"] = str(supply.get("level_text") or "")
                break
    return out


def in_words(seconds: float) -> str:
    """``"40 seconds"``, ``"14 minutes"``, ``"3 hours 5 minutes"``, ``"2 days 4 hours"``:
    spelled out, as a sentence in an email reads ("was down 14 minutes")."""
    units = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    left = max(0, int(seconds))
    parts = []
    for name, size in units:
        count, left = divmod(left, size)
        if count or (not parts and size == 1):
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
        if parts and (len(parts) == 2 or size <= 60):
            break
    return " ".join(parts)


def _place(labels: Mapping[str, str]) -> str:
    """"room 204, main, North": most specific first."""
    room = labels.get("room", "")
    parts = [f"room {room}" if room else "", labels.get("building", ""), labels.get("site", "")]
    return ", ".join(p for p in parts if p)


def _view(alert: Alert, links: Links, now: float) -> dict[str, Any]:
    notes = alert.annotations
    since = alert.starts_at or alert.active_since
    lasted = ""
    if alert.state is AlertState.RESOLVED and since is not None and alert.ends_at is not None:
        verb = "was down" if alert.rule == "device_down" else "lasted"
        lasted = f"{verb} {in_words(alert.ends_at - since)}"
    failed, description = notes.get("failed", ""), notes.get("description", "")
    if description and description in failed:  # the probe's explanation: said once
        description = ""
    return {
        "summary": notes.get("summary") or short_summary(alert), "description": description,
        "severity": alert.severity, "target": alert.target, "labels": alert.labels,
        "role": alert.labels.get("role", ""), "place": _place(alert.labels),
        "address": notes.get("address", ""), "failed": failed, "advice": notes.get("advice", ""),
        "supply": notes.get("supply_description", ""), "level": notes.get("supply_level", ""),
        "since": since, "ends_at": alert.ends_at, "lasted": lasted,
        "duration": in_words(now - since) if since is not None and alert.ends_at is None else "",
        "device_url": links.device(alert.target), "grafana_url": links.grafana(alert.labels),
        "acknowledged": notes.get("acknowledged", ""),
        "ack_url": "" if notes.get("acknowledged") else links.ack(alert, now),
    }


class EmailRenderer:
    """Renders notifications with the packaged templates, or a user's overrides."""

    def __init__(self, templates_dir: Path | None = None, links: Links | None = None) -> None:
        self.links = links or Links()
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
        loaders.append(jinja2.FileSystemLoader(str(PACKAGED_TEMPLATES)))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                                default_for_string=False, default=False),
            undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True,
        )
        self.env.filters["when"] = _when

    def render(self, n: Notification, group_labels: Mapping[str, str],
               external_url: str = "") -> RenderedEmail:
        firing = n.alerts if n.kind == "flapping" else n.firing
        listed = n.resolved if n.kind == "resolved" else firing
        short = [short_summary(a) for a in listed]
        external_url = external_url or self.links.external_url
        links = Links(external_url, self.links.grafana_url, self.links.secret)
        ctx = {
            "kind": n.kind, "receiver": n.receiver, "location": location_words(group_labels),
            "group_labels": dict(group_labels), "external_url": external_url,
            "firing": [_view(a, links, n.created_at) for a in firing],
            "resolved": [_view(a, links, n.created_at) for a in n.resolved],
            "count": len(listed), "short": short[:SUBJECT_SUMMARIES],
            "more": len(short) > SUBJECT_SUMMARIES,
        }
        subject = " ".join(self.env.get_template("email.subject.j2").render(ctx).split())
        if len(subject) > SUBJECT_MAX:
            subject = subject[: SUBJECT_MAX - 1].rstrip(", ") + "…"
        ctx["subject"] = subject
        text = self.env.get_template("email.txt.j2").render(ctx)
        html = self.env.get_template("email.html.j2").render(ctx)
        return RenderedEmail(subject, text, html)


def build_message(rendered: RenderedEmail, *, sender: str, to: list[str], message_id: str,
                  thread_id: str = "") -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = message_id
    if thread_id and thread_id != message_id:
        msg["In-Reply-To"] = thread_id
        msg["References"] = thread_id
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


async def send_email(msg: EmailMessage, smtp: SmtpSettings, email: EmailSettings,
                     base_dir: Path) -> None:
    """Send one message; every failure becomes a :class:`DeliveryError` (no secrets)."""
    password = smtp.password.get_secret_value() if smtp.password else None
    ca_file = str(base_dir / smtp.ca_file) if smtp.ca_file else None
    try:
        await aiosmtplib.send(
            msg, sender=smtp.from_, recipients=email.to, hostname=smtp.host,
            port=smtp.effective_port, username=smtp.username, password=password,
            use_tls=smtp.security == "tls", start_tls=smtp.security == "starttls",
            timeout=smtp.timeout, validate_certs=smtp.verify, cert_bundle=ca_file,
        )
    except aiosmtplib.SMTPException as exc:
        raise DeliveryError(f"SMTP {smtp.host}:{smtp.effective_port}: {exc}") from None
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise DeliveryError(f"SMTP {smtp.host}:{smtp.effective_port}: {reason}") from None
