"""Alertmanager: ``POST /api/v2/alerts`` to every configured instance (like Prometheus).

The dispatcher decides what to post (all firing, unsuppressed alerts every
``resend_every`` with an ``endsAt`` a few periods ahead so Alertmanager resolves them if
netmon dies; resolved ones once with their real ``endsAt``); this module only posts.
Flapping alerts (held firing by the engine) are posted as firing. An alert that was
posted and is then suppressed inside netmon (its parent went down, a silence) keeps
being re-sent until it resolves, so Alertmanager never sees it expire while it is still
firing; an alert suppressed from the start is never posted (silence it in Alertmanager
when Alertmanager does the emailing).
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
