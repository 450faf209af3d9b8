"""Alertmanager: ``POST /api/v2/alerts`` to every configured instance (like Prometheus).

The dispatcher decides what to post (all firing, unsuppressed alerts every
``resend_every`` with an ``endsAt`` a few periods ahead so Alertmanager resolves them if
netmon dies; resolved ones once with their real ``endsAt``); this module only posts.
Alerts suppressed inside netmon are simply no longer re-sent: Alertmanager lets them
expire at their ``endsAt``.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from alerts.notify.webhook import post_json


def alerts_url(base: str) -> str:
    return base.rstrip("/") + "/api/v2/alerts"


async def post_alerts(session: aiohttp.ClientSession, base_url: str,
                      items: dict[str, dict[str, Any]], *, timeout: float) -> None:
    """Post the body items (raises :class:`~alerts.notify.email.DeliveryError`)."""
    await post_json(session, alerts_url(base_url), list(items.values()), timeout=timeout)
