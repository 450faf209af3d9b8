"""The history store inside the daemon (in-process ``Monitor``, a loopback TCP target):
results reach the file, its metrics reach ``/metrics``' self-samples, silences are
copied into it, and reloads disable, re-enable and move it."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from monitor.daemon import Monitor
from tests.integration.test_daemon import wait_for
from tests.integration.test_history_restart import read


def config(port: int, history: str = "") -> str:
    return f"""\
defaults: {{interval: 1s, tcp: {{timeout: 1s}}}}
groups:
  - name: servers
    role: server
    probes: [tcp]
    tcp_ports: [{port}]
    targets: [{{name: web-1, address: 127.0.0.1}}]
{history}"""


def recorded(path: Path) -> int:
    """Raw points of web-1's success in the file."""
    if not path.exists():
        return 0
    series = read(path, lambda s: s.series("web-1", "netmon_probe_success", since=0, step=0))
    return sum(len(s.points) for s in series)  # type: ignore[attr-defined]


async def test_history_follows_the_daemon_and_its_reloads(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as service:
        port = service.getsockname()[1]
        path = tmp_path / "netmon.yml"
        path.write_text(config(port))
        default_file = tmp_path / "netmon-history.db"
        monitor = Monitor(path)
        await monitor.start()
        try:
            assert monitor.history is not None and monitor.history.path == default_file
            await wait_for(lambda: recorded(default_file) > 0, "the first points in the file")
            names = {s.metric for s in monitor.extra_samples()}
            assert {"netmon_history_writes_total", "netmon_history_size_bytes"} <= names

            assert monitor.alerts is not None
            monitor.alerts.engine.add_silence(
                ["target=web-1"], ends_at=time.time() + 3600, author="test", comment="cabling"
            )
            monitor._save_silences()
            await wait_for(
                lambda: read(default_file, lambda s: s.silences(0, 2e9)), "the silence copy"
            )

            path.write_text(config(port, "history: {enabled: false}\n"))
            assert await monitor.reload() == []
            assert monitor.history is None
            stopped_at = recorded(default_file)
            await asyncio.sleep(2.5)
            assert recorded(default_file) == stopped_at  # nothing written while disabled

            path.write_text(config(port, "history: {path: elsewhere.db}\n"))
            assert await monitor.reload() == []
            assert monitor.history is not None
            assert monitor.history.path == tmp_path / "elsewhere.db"
            await wait_for(
                lambda: recorded(tmp_path / "elsewhere.db") > 0, "points in the new file"
            )
        finally:
            await monitor.stop()
        assert monitor.history is None
