"""Webhook notifications: an Alertmanager-webhook-like JSON body POSTed with aiohttp."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from alerts.model import Alert, AlertState, Notification
from alerts.notify.email import DeliveryError
from alerts.notify.settings import WebhookSettings


def webhook_body(n: Notification, group_labels: Mapping[str, str], external_url: str = "") -> dict[str, Any]:
    """Alertmanager's webhook format (version 4) plus ``netmonKind`` (firing, resolved,
    flapping, test)."""
    items = [_item(a, external_url) for a in n.alerts]
    common_labels = _common([a.labels for a in n.alerts])
    common_annotations = _common([a.annotations for a in n.alerts])
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
        "status": "resolved" if n.kind == "resolved" else "firing",
        "netmonKind": n.kind,
        "receiver": n.receiver,
        "groupLabels": dict(group_labels),
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": external_url,
        "alerts": items,
    }


def _item(a: Alert, external_url: str) -> dict[str, Any]:
    am = a.to_alertmanager(external_url)
    return {
        "status": "resolved" if a.state is AlertState.RESOLVED else "firing",
        "labels": am["labels"], "annotations": am["annotations"], "startsAt": am["startsAt"],
        "endsAt": am.get("endsAt", "0001-01-01T00:00:00Z"),
        "generatorURL": external_url, "fingerprint": a.fingerprint,
    }


def _common(dicts: list[Mapping[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    first = dict(dicts[0])
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def shown_url(url: str) -> str:
    """``url`` as error messages show it: a password written into it (``user:pw@``)
    replaced by ``****`` (the message goes to logs, the outbox and the API)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:****@{host}").geturl()


async def post_json(session: aiohttp.ClientSession, url: str, body: Any, *, timeout: float,
                    headers: dict[str, str] | None = None) -> None:
    """POST ``body``; a connection error or a non-2xx answer is a :class:`DeliveryError`."""
    shown = shown_url(url)
    try:
        async with session.post(url, json=body, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if not 200 <= resp.status < 300:
                text = (await resp.text())[:200].strip()
                raise DeliveryError(f"POST {shown}: HTTP {resp.status} {text}".strip())
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = str(exc).replace(url, shown) or type(exc).__name__
        raise DeliveryError(f"POST {shown}: {reason}") from None


async def send_webhook(session: aiohttp.ClientSession, settings: WebhookSettings, n: Notification,
                       group_labels: Mapping[str, str], external_url: str = "") -> None:
    headers = None
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else ""
        headers = {"Authorization": aiohttp.encode_basic_auth(settings.username, password)}
    await post_json(session, settings.url, webhook_body(n, group_labels, external_url),
                    timeout=settings.timeout, headers=headers)
