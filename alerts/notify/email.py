"""Email notifications: jinja2 templates (user directory overrides the packaged ones)
rendered to a plain-text + HTML message, sent with aiosmtplib.

The HTML template is autoescaped, so device-supplied text (sysDescr, printer alert
descriptions) is inert. One message per group notification; Message-ID plus
In-Reply-To/References pointing at the group's first message thread one incident.
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

import aiosmtplib
import jinja2

from alerts.model import Alert, Notification
from alerts.notify.settings import EmailSettings, SmtpSettings

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


def _view(alert: Alert) -> dict[str, Any]:
    return {
        "summary": alert.annotations.get("summary") or short_summary(alert),
        "description": alert.annotations.get("description", ""),
        "severity": alert.severity, "target": alert.target, "labels": alert.labels,
        "since": alert.starts_at or alert.active_since, "ends_at": alert.ends_at,
    }


class EmailRenderer:
    """Renders notifications with the packaged templates, or a user's overrides."""

    def __init__(self, templates_dir: Path | None = None) -> None:
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
        ctx = {
            "kind": n.kind, "receiver": n.receiver, "location": location_words(group_labels),
            "group_labels": dict(group_labels), "external_url": external_url,
            "firing": [_view(a) for a in firing], "resolved": [_view(a) for a in n.resolved],
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
