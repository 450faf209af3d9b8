"""apprise receivers: settings, message text and the masking of URL parts (pure logic;
delivery to real servers is in tests/integration/test_notify_apprise.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import apprise
import pytest
from pydantic import ValidationError

from alerts.model import AlertState, Notification
from alerts.notify.apprise import ChatRenderer, mask_url_parts
from alerts.notify.email import DeliveryError
from alerts.notify.settings import AppriseSettings
from monitor.config import ConfigFileError, load_config
from tests.unit.test_notify_dispatch import make_alert

NTFY = "ntfy://127.0.0.1:8080/netmon"


def render(kind: str, alerts: list[Any], **settings: Any) -> Any:
    s = AppriseSettings.model_validate({"urls": [NTFY], **settings})
    n = Notification("chat", "g", kind, alerts, 0.0)
    return ChatRenderer().render(n, s, {"site": "North", "building": "Main"}, "http://nm:10190")


def test_default_text_one_line_per_alert_with_room_duration_and_links() -> None:
    toner = replace(make_alert("staffroom-printer", "printer_supply_empty", since=1000.0),
                    annotations={"summary": "staffroom-printer: Black Toner Cartridge is empty"})
    toner.labels["room"] = "staffroom"
    gone = replace(make_alert("sw-a", since=1000.0), state=AlertState.RESOLVED, ends_at=1000.0 + 840)
    msg = render("firing", [toner, gone])
    assert msg.title == "netmon · Main, North: 1 firing, 1 resolved"
    assert msg.body.splitlines() == [
        "[FIRING] staffroom-printer: Black Toner Cartridge is empty (staffroom)",
        "[RESOLVED] sw-a is down: no reply to 3 pings, lasted 14 minutes",
        "http://nm:10190/device/staffroom-printer", "http://nm:10190/device/sw-a"]
    assert msg.notify_type == apprise.NotifyType.FAILURE  # a critical one fires
    assert render("resolved", [gone]).notify_type == apprise.NotifyType.SUCCESS


def test_many_alerts_are_cut_and_link_the_status_page() -> None:
    msg = render("firing", [make_alert(f"pc-{i:02}") for i in range(25)])
    lines = msg.body.splitlines()
    assert lines[19] == "[FIRING] pc-19 is down: no reply to 3 pings"
    assert lines[20:] == ["… and 5 more", "http://nm:10190"]


def test_custom_templates_and_a_template_failing_at_send_time() -> None:
    msg = render("flapping", [make_alert("sw-a")], title="{{ kind }}!",
                 template="{{ alerts[0].target }} {{ alerts[0].state }} {{ location }}")
    assert (msg.title, msg.body) == ("flapping!", "sw-a FLAPPING Main, North")
    with pytest.raises(DeliveryError, match="apprise template"):
        render("firing", [make_alert("sw-a")], template="{{ alerts[0].since + 'x' }}")


@pytest.mark.parametrize("url, words", [
    ("foo://x/y", "apprise does not accept this foo:// url"),
    ("hooks.slack.com/services/T0/B0/secret-xyz", "an apprise url looks like SERVICE://"),
])
def test_bad_urls_are_named_by_scheme_only(url: str, words: str) -> None:
    with pytest.raises(ValidationError) as err:
        AppriseSettings.model_validate({"urls": [NTFY, url]})
    (problem,) = err.value.errors(include_input=False, include_url=False)  # as load_config
    assert problem["loc"] == ("urls", 1) and words in problem["msg"]
    assert "secret-xyz" not in problem["msg"] and "/y" not in problem["msg"]


def test_bad_template_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match=r"bad template \(line 1\)"):
        AppriseSettings.model_validate({"urls": [NTFY], "template": "{% for a in alerts %}"})


def test_mask_url_parts_keeps_hosts_hides_tokens() -> None:
    url = "tgram://123456789:AAHbot-token-xyz/-100987654"
    text = f"Failed to send to {url}: 123456789:AAHbot-token-xyz rejected chat -100987654"
    assert mask_url_parts(text, url) == "Failed to send to ****: ****:**** rejected chat ****"
    url = "json://netmon:hook-pw@chat.school.example:8080/hook/tok-123"
    assert mask_url_parts("POST chat.school.example/hook/tok-123 as netmon:hook-pw", url) == \
        "POST chat.school.example/****/**** as ****:****"  # any segment could be a token


def test_config_urls_from_env_and_file_unread_with_no_secrets(tmp_path: Path) -> None:
    (tmp_path / "chat.url").write_text("ntfy://127.0.0.1:8080/from-file\n")
    cfg = tmp_path / "netmon.yml"
    cfg.write_text("groups: []\nalerts:\n  receivers:\n    - name: chat\n      apprise:\n"
                   "        urls: [{env: NETMON_UNSET_CHAT_URL}, {file: chat.url}]\n"
                   "  route: {receiver: chat}\n")
    with pytest.raises(ConfigFileError) as err:
        load_config(cfg)
    assert "netmon.yml:6: alerts.receivers[0].apprise.urls[0]: environment variable " \
           "NETMON_UNSET_CHAT_URL is not set" in str(err.value)
    assert len(err.value.problems) == 1  # the {file:} one is read from the config's directory
    unread = load_config(cfg, resolve_secrets=False).alerts.receivers[0].apprise
    assert unread is not None and len(unread.urls) == 2
