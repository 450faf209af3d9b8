"""Notification settings: SMTP, receivers, the routing tree and Alertmanager instances.

``NotifySettings`` holds only the notify part of the top-level ``alerts:`` section; the
lead composes it with the rules and engine settings. Names that point elsewhere (route
receivers, ``match`` on group/target) are checked by :func:`check_references`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Literal

import jinja2
from pydantic import AfterValidator, ConfigDict, Field, SecretStr, field_validator, model_validator

from probes.settings import Duration, StrictModel
from probes.snmp.credentials import Secret

Location = tuple[str | int, ...]


def check_regexes(value: dict[str, str]) -> dict[str, str]:
    """Label regex matchers (``match_re``) must compile."""
    for label, pattern in value.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"match_re.{label}: bad regular expression: {exc}") from None
    return value


#: Label regex matchers (whole value, Python syntax); all must hold.
Regexes = Annotated[dict[str, str], AfterValidator(check_regexes)]


class SmtpSettings(StrictModel):
    """The outgoing mail server all email receivers share."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    #: Default: 25 (none), 587 (starttls), 465 (tls).
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: Secret | None = None
    from_: str = Field(default="netmon@localhost", alias="from")
    timeout: Duration = 10.0
    #: CA bundle (PEM) to trust for the server's certificate, e.g. a school's own CA.
    ca_file: str | None = None
    #: Check the server's certificate (turn off only for a known self-signed relay).
    verify: bool = True

    @property
    def effective_port(self) -> int:
        return self.port or {"none": 25, "starttls": 587, "tls": 465}[self.security]

    @model_validator(mode="after")
    def _auth_pair(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("smtp username and password go together")
        return self


class EmailSettings(StrictModel):
    to: list[str] = Field(min_length=1)
    send_resolved: bool = True


class WebhookSettings(StrictModel):
    url: str
    send_resolved: bool = True
    timeout: Duration = 10.0
    username: str | None = None
    password: Secret | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("a webhook url starts with http:// or https://")
        return url


def _apprise_url(url: SecretStr) -> SecretStr:
    """Reject a URL no apprise plugin takes, naming only its scheme (the rest holds the
    service's token). An unread ``{env:}``/``{file:}`` secret (``check-config
    --no-secrets``, a NUL-marked placeholder no URL can hold) is not checked."""
    value = url.get_secret_value()
    if "\0" in value:
        return url
    scheme, sep, _ = value.partition("://")
    if not sep or not scheme:
        raise ValueError("an apprise url looks like SERVICE://..., e.g. workflows:// (Teams), gchat://, "
                         "ntfy://, tgram://, slack://, json://")
    import apprise  # only configs with apprise receivers pay for its plugin loading

    if apprise.Apprise.instantiate(value) is None:
        raise ValueError(f"apprise does not accept this {scheme}:// url (unknown service or "
                         f"a missing part; see https://github.com/caronc/apprise/wiki)")
    return url


class AppriseSettings(StrictModel):
    """Chat and push services through apprise (Teams, Google Chat, Slack, Telegram, ntfy,
    Discord, Matrix, Pushover ...). Every URL is a secret: its token is the credential."""

    urls: list[Annotated[Secret, AfterValidator(_apprise_url)]] = Field(min_length=1)
    send_resolved: bool = True
    timeout: Duration = 15.0
    #: jinja2 text of the message body (default: one line per alert, see alerts.notify.apprise).
    template: str | None = None
    #: jinja2 text of the title (services without titles put it before the body).
    title: str | None = None

    @field_validator("template", "title")
    @classmethod
    def _jinja(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                jinja2.Environment().parse(text)
            except jinja2.TemplateSyntaxError as exc:
                raise ValueError(f"bad template (line {exc.lineno}): {exc.message}") from None
        return text


class ReceiverSettings(StrictModel):
    name: str = Field(min_length=1)
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None
    apprise: AppriseSettings | None = None

    def integrations(self) -> list[str]:
        return [n for n in ("email", "webhook", "apprise") if getattr(self, n) is not None]


class RouteSettings(StrictModel):
    """A node of the routing tree (Alertmanager's model). ``None`` fields inherit."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    receiver: str | None = None
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    #: Label equality matchers; all must hold.
    match: dict[str, str] = Field(default_factory=dict)
    match_re: Regexes = Field(default_factory=dict)
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteSettings] = Field(default_factory=list)


class RetrySettings(StrictModel):
    """Outbox retry backoff: ``initial`` doubled per failed attempt, capped at ``max``."""

    initial: Duration = 10.0
    max: Duration = 300.0


class AlertmanagerSettings(StrictModel):
    """Alertmanager instances (a cluster): every alert goes to every url."""

    urls: list[str] = Field(min_length=1)
    resend_every: Duration = 60.0
    timeout: Duration = 10.0


class NotifySettings(StrictModel):
    smtp: SmtpSettings | None = None
    receivers: list[ReceiverSettings] = Field(default_factory=list)
    route: RouteSettings = Field(default_factory=RouteSettings)
    alertmanagers: list[AlertmanagerSettings] = Field(default_factory=list)
    #: Directory (relative to the config dir) overriding the packaged email templates.
    templates: str | None = None
    retry: RetrySettings = Field(default_factory=RetrySettings)

    def receiver(self, name: str) -> ReceiverSettings | None:
        return next((r for r in self.receivers if r.name == name), None)


def _walk(route: RouteSettings, loc: Location) -> Iterator[tuple[RouteSettings, Location]]:
    yield route, loc
    for i, child in enumerate(route.routes):
        yield from _walk(child, (*loc, "routes", i))


def check_references(
    settings: NotifySettings, *, groups: set[str], targets: set[str], schedules: set[str]
) -> list[tuple[Location, str]]:
    """Problems with names: receivers, route receivers, ``match`` on group/target."""
    del schedules  # notifications name no schedules
    errors: list[tuple[Location, str]] = []
    names = [r.name for r in settings.receivers]
    for i, receiver in enumerate(settings.receivers):
        if names.index(receiver.name) != i:
            errors.append((("receivers", i, "name"), f"receiver {receiver.name!r} is defined twice"))
        if not receiver.integrations():
            errors.append((("receivers", i), f"receiver {receiver.name!r} has no email, webhook or apprise"))
        if receiver.email and settings.smtp is None:
            errors.append((("receivers", i, "email"), "email receivers need an smtp: section"))
    if settings.receivers and settings.route.receiver is None:
        errors.append((("route", "receiver"), "the top-level route needs a receiver"))
    known = ", ".join(names) or "none defined"
    for route, loc in _walk(settings.route, ("route",)):
        if route.receiver is not None and route.receiver not in names:
            errors.append(((*loc, "receiver"), f"unknown receiver {route.receiver!r} (known: {known})"))
        for label, pool in (("group", groups), ("target", targets)):
            value = route.match.get(label)
            if value is not None and value not in pool:
                errors.append(((*loc, "match", label), f"unknown {label} {value!r}"))
    return errors
