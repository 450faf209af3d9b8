"""What people can do from the status page and from an alert email: acknowledge an alert,
silence it for an hour or until the next morning.

Routes::

    POST /actions/ack       fingerprint, comment, csrf, back -> acknowledged, 303 to back
    POST /actions/silence   fingerprint, for (1h | morning), csrf, back -> silenced, 303
    GET  /ack/{token}       an email's acknowledge link: a confirm page, never an action
    POST /ack/{token}       the confirm page's form: acknowledges, says so

Every action is a POST form that works without JavaScript and carries a CSRF token (an
HMAC of the user and the time with the secret in the state directory, see
:mod:`alerts.ack`); a GET never changes anything. The page's buttons need the web
config's basic-auth users: a status page anyone on the network can read must not let
anyone silence alerts, so without users it shows no buttons and these POSTs get 403.
An email link is its own credential (signed, bound to one alert, expiring after
:data:`alerts.ack.LINK_SECONDS`), so it also works without users; with users, the
login comes first as for every page. Silences are made of the alert's labels (that
instance only); "morning" ends at the next :data:`MORNING` in the target's schedule's
time zone, else the server's.
"""

from __future__ import annotations

import contextvars
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from datetime import time as clock_time
from typing import Any, Protocol

import jinja2
from aiohttp import web

from alerts.ack import TokenError, ack_of, check_csrf_token, check_link_token, csrf_token
from alerts.model import Alert
from alerts.silences import Matcher

#: The request key the basic-auth middleware stores the logged-in user under.
USER = web.RequestKey("netmon_user", str)
#: Silence "until the morning": the next time this o'clock comes (hour, minute).
MORNING = (7, 0)
SILENCE_HOUR = 3600.0
#: Pages that act (or confirm) need forms to post to this server.
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ActionService(Protocol):
    """The part of :class:`alerts.service.AlertService` the actions use."""

    secret: bytes

    @property
    def engine(self) -> Any: ...
    def alerts(self) -> list[Alert]: ...
    def acknowledge(
        self, fingerprints: list[str], *, author: str, comment: str, via: str
    ) -> list[Alert]: ...


@dataclass(frozen=True, slots=True)
class PageActions:
    """What the page's alert list needs to draw its buttons (``actions()`` in templates)."""

    user: str
    csrf: str
    #: Where the forms come back to (this page).
    back: str
    #: The "until the morning" button's words, e.g. "until tomorrow 07:00".
    morning: str


_PAGE: contextvars.ContextVar[PageActions | None] = contextvars.ContextVar(
    "netmon_page_actions", default=None
)
ENV = web.AppKey("actions_env", jinja2.Environment)
BACKEND = web.AppKey("actions_backend", Any)


def add_routes(app: web.Application, backend: Any, env: jinja2.Environment) -> None:
    """Serve the actions for ``backend`` (its ``alerts`` service, when it has one) and
    let ``env``'s templates ask for ``actions()``."""
    app[ENV] = env
    app[BACKEND] = backend
    env.globals["actions"] = _PAGE.get
    app.router.add_post("/actions/ack", _ack)
    app.router.add_post("/actions/silence", _silence)
    app.router.add_get("/ack/{token}", _link)
    app.router.add_post("/ack/{token}", _link_ack)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """For the pages' templates: the buttons to draw for this request (only for a
    logged-in user while alerting runs). Rendering in a worker thread still sees it:
    asyncio.to_thread copies the context."""
    service = _service(request)
    user = request.get(USER)
    if getattr(service, "secret", None) is None or not user or request.method != "GET":
        return await handler(request)
    assert service is not None
    now = time.time()
    token = _PAGE.set(
        PageActions(
            user,
            csrf_token(service.secret, user, now),
            request.path_qs,
            _morning_words(now, _zone(request, None)),
        )
    )
    try:
        return await handler(request)
    finally:
        _PAGE.reset(token)


def _service(request: web.Request) -> ActionService | None:
    return getattr(request.app[BACKEND], "alerts", None)


def _page(
    request: web.Request, status: int, title: str, message: str, **extra: Any
) -> web.Response:
    page = (
        request.app[ENV]
        .get_template("confirm.html")
        .render(title=title, message=message, **{"form": None, "alert": None, **extra})
    )
    return web.Response(
        text=page,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _back(value: str) -> str:
    """A same-site path to return to ("/" unless the form names one of ours)."""
    return value if value.startswith("/") and not value.startswith(("//", "/\\")) else "/"


async def _checked(request: web.Request) -> tuple[ActionService, str, Alert, Any] | web.Response:
    """The service, user, alert and form of a page action, or the page saying why not."""
    service = _service(request)
    if service is None:
        return _page(request, 503, "Alerting is not running", "netmon runs without alerting.")
    user = request.get(USER)
    if not user:
        return _page(
            request,
            403,
            "Log in first",
            "Acknowledging and silencing need a user: "
            "add basic_auth_users to netmon's web config (server.web_config).",
        )
    form = await request.post()
    try:
        check_csrf_token(service.secret, str(form.get("csrf", "")), user, time.time())
    except TokenError as exc:
        why = "is too old" if exc.reason == "expired" else "is missing or not valid"
        return _page(
            request,
            403,
            "Not done",
            f"The form's security token {why}. Go back, reload the page and try again.",
        )
    fingerprint = str(form.get("fingerprint", ""))
    alert = next(
        (a for a in service.alerts() if a.fingerprint == fingerprint and a.is_active), None
    )
    if alert is None:
        return _page(
            request,
            404,
            "No such alert",
            "The alert is no longer active (it resolved, or the page was old).",
        )
    return service, user, alert, form


async def _ack(request: web.Request) -> web.StreamResponse:
    checked = await _checked(request)
    if isinstance(checked, web.Response):
        return checked
    service, user, alert, form = checked
    service.acknowledge(
        [alert.fingerprint], author=user, comment=str(form.get("comment", ""))[:500], via="page"
    )
    raise web.HTTPSeeOther(_back(str(form.get("back", "/"))))


async def _silence(request: web.Request) -> web.StreamResponse:
    checked = await _checked(request)
    if isinstance(checked, web.Response):
        return checked
    service, user, alert, form = checked
    now = time.time()
    choice = str(form.get("for", ""))
    if choice == "1h":
        ends, words = now + SILENCE_HOUR, "for 1 h"
    elif choice == "morning":
        ends = _next_morning(now, _zone(request, alert.target)).timestamp()
        words = _morning_words(now, _zone(request, alert.target))
    else:
        return _page(request, 400, "Not done", "Choose how long to silence the alert for.")
    matchers = [Matcher(k, "=", v) for k, v in sorted(alert.labels.items())]
    service.engine.add_silence(
        matchers, ends_at=ends, author=user, comment=f"silenced {words} from the status page"
    )
    raise web.HTTPSeeOther(_back(str(form.get("back", "/"))))


def _zone(request: web.Request, target: str | None) -> tzinfo | None:
    """The target's schedule's time zone, else None (the server's)."""
    backend = request.app[BACKEND]
    config = getattr(backend, "config", None)
    if target is None or config is None:
        return None
    found = next((t for t in backend.targets() if t.name == target), None)
    schedule = (
        config.schedules.get(found.expected_online) if found and found.expected_online else None
    )
    return (
        zoneinfo.ZoneInfo(schedule.timezone) if schedule is not None and schedule.timezone else None
    )


def _next_morning(now: float, zone: tzinfo | None) -> datetime:
    """The next :data:`MORNING` after ``now`` on the wall clock of ``zone`` (None: local)."""
    local = datetime.fromtimestamp(now, zone)
    day = local.date() + timedelta(days=(local.hour, local.minute) >= MORNING)
    morning = datetime.combine(day, clock_time(*MORNING), zone)
    return morning if zone is not None else morning.astimezone()


def _morning_words(now: float, zone: tzinfo | None) -> str:
    morning = _next_morning(now, zone)
    today = datetime.fromtimestamp(now, zone).date()
    day = "today" if morning.date() == today else "tomorrow"
    return f"until {day} {morning:%H:%M}"


# --- the email link -------------------------------------------------------------------


def _from_link(request: web.Request) -> tuple[ActionService, Alert] | web.Response:
    """The service and the alert an acknowledge link is for, or the page saying why not:
    expired, not valid, resolved, or already acknowledged (the link was used)."""
    service = _service(request)
    if service is None:
        return _page(request, 503, "Alerting is not running", "netmon runs without alerting.")
    now = time.time()
    try:
        fingerprint = check_link_token(service.secret, request.match_info["token"], now)
    except TokenError as exc:
        if exc.reason == "expired":
            return _page(
                request,
                410,
                "This link has expired",
                "Acknowledge links work for 7 "
                "days. Open the device's page on netmon to see the alert now.",
            )
        return _page(
            request,
            400,
            "This link is not valid",
            "It was cut short or changed, "
            "or comes from another netmon. Open netmon's status page instead.",
        )
    alert = next((a for a in service.alerts() if a.fingerprint == fingerprint), None)
    if alert is None or not alert.is_active:
        return _page(
            request,
            410,
            "Nothing to acknowledge",
            "This alert has resolved: nobody needs to act on it any more.",
            alert=alert,
        )
    done = ack_of(alert)
    if done is not None:
        when = datetime.fromtimestamp(done.acked_at).astimezone().strftime("%Y-%m-%d %H:%M %Z")
        return _page(
            request,
            409,
            "Already acknowledged",
            f"{done.author} acknowledged this alert at {when}"
            + (f": {done.comment}" if done.comment else "."),
            alert=alert,
        )
    return service, alert


async def _link(request: web.Request) -> web.Response:
    found = _from_link(request)
    if isinstance(found, web.Response):
        return found
    service, alert = found
    user = request.get(USER) or ""
    form = {"csrf": csrf_token(service.secret, user, time.time()), "user": user}
    return _page(
        request,
        200,
        "Acknowledge this alert?",
        "netmon then sends no more reminders "
        "about it until it resolves; the resolved notice still comes.",
        alert=alert,
        form=form,
    )


async def _link_ack(request: web.Request) -> web.StreamResponse:
    found = _from_link(request)
    if isinstance(found, web.Response):
        return found
    service, alert = found
    form = await request.post()
    user = request.get(USER) or ""
    try:
        check_csrf_token(service.secret, str(form.get("csrf", "")), user, time.time())
    except TokenError:
        return _page(
            request,
            403,
            "Not done",
            "The form's security token is missing or too old. Open the link from the email again.",
        )
    author = user or str(form.get("name", "")).strip()[:100] or "someone (email link)"
    service.acknowledge(
        [alert.fingerprint],
        author=author,
        comment=str(form.get("comment", "")).strip()[:500],
        via="email",
    )
    return _page(
        request,
        200,
        "Acknowledged",
        f"Thank you, {author}: netmon sends no more reminders about this alert until it resolves.",
        alert=alert,
    )
