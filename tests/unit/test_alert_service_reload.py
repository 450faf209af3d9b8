"""A reload that changes only where emails link to (``server.external_url``,
``dashboards.grafana_url``) reaches the notifications queued after it."""

from __future__ import annotations

from pathlib import Path

from alerts.service import AlertService
from alerts.settings import AlertsSettings


async def test_reloaded_links_reach_the_notifier_and_the_digests(tmp_path: Path) -> None:
    settings = AlertsSettings.model_validate({"state_file": str(tmp_path / "alerts.db")})
    svc = AlertService(settings, base_dir=tmp_path, schedules={},
                       external_url="http://old.example:10190")  # fmt: skip
    try:
        first = svc.notifier
        assert first.renderer.links.device("mfp") == "http://old.example:10190/device/mfp"
        await svc.reconfigure(settings, {}, [])  # nothing changed: the same notifier
        assert svc.notifier is first
        await svc.reconfigure(settings, {}, [], external_url="https://netmon.school.example",
                              grafana_url="https://grafana.school.example")  # fmt: skip
        assert svc.notifier is not first
        assert svc.notifier.renderer.links.device("mfp") == "https://netmon.school.example/device/mfp"
        assert svc.links.grafana_url == "https://grafana.school.example"
        assert svc.digests.external_url == "https://netmon.school.example"
        assert svc.links.secret == svc.secret  # acknowledge links stay valid
    finally:
        await svc.stop()
