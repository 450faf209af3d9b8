"""``make demo``: netmon monitoring a simulated school network on loopback.

Starts snmpsim serving real device recordings (switches, printers, a server, a UPS), each
device on its own loopback address 127.0.1.N; a lab room of machines on 127.0.4.x; and,
when run as root, two lab machines that are down or on a lossy link inside network
namespaces. Then it runs ``netmon run`` on a generated inventory (written to
``.demo/netmon.yml``), waits until every device has been probed, prints what netmon
sees and where to look (the status page, ``/metrics``, the JSON API, ``/probe``), and
keeps running until Ctrl-C. Alert emails go to a mail catcher on loopback, which saves
them in ``.demo/mail/`` and prints each subject as it arrives. ``--tour`` first shows the one-off ``netmon probe`` commands on the same devices;
``--once`` exits after the first summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from monitor.cli.output import device_text, status_text
from monitor.demo import history_fill, simlab
from monitor.demo.school import DEVICES, LAB_RANGE, SimDevice, demo_config
from monitor.web.server import DEFAULT_PORT
from probes.result import Status

DEMO_DIR = simlab.PROJECT_ROOT / ".demo"
MODULES_BY_GROUP = {"network": "system,interfaces", "servers": "system,host", "power": "system,ups"}


def netmon_exe() -> list[str]:
    exe = Path(sys.executable).parent / "netmon"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "monitor.cli"]


def run(title: str, args: list[str], community: str | None = None) -> int:
    """Print the command as a user would type it, then run it.

    The community goes through the environment, as a careful IT person would pass it
    (command-line secrets show up in ``ps``)."""
    env = dict(os.environ)
    shown = f"netmon {shlex.join(args)}"
    if community is not None:
        env["SNMP_COMMUNITY"] = community
        args = [*args, "--community-env", "SNMP_COMMUNITY"]
        shown = f"SNMP_COMMUNITY={shlex.quote(community)} {shown} --community-env SNMP_COMMUNITY"
    print(f"\n\033[1m── {title}\033[0m\n$ {shown}", flush=True)
    return subprocess.run(netmon_exe() + args, check=False, env=env).returncode


class MailCatcher:
    """An SMTP server on loopback (aiosmtpd) standing in for the school's mail server:
    saves each message as ``.demo/mail/NNN.eml`` and prints its subject."""

    def __init__(self, directory: Path) -> None:
        from aiosmtpd.controller import Controller

        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.eml"):
            old.unlink()
        self.count = 0
        self.port = simlab.free_tcp_port("127.0.0.1")
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes, policy

        self.count += 1
        path = self.directory / f"{self.count:03d}.eml"
        path.write_bytes(envelope.content)
        subject = message_from_bytes(envelope.content, policy=policy.default)["subject"]
        print(f"\n📧 email to {', '.join(envelope.rcpt_tos)}: {subject}  ({path.name})", flush=True)
        return "250 OK"

    def stop(self) -> None:
        self.controller.stop()


def probe_args(device: SimDevice, port: int) -> list[str]:
    endpoint = f"{device.address}:{port}"
    if device.group == "printers":
        return ["probe", "printer", endpoint]
    return ["probe", "snmp", endpoint, "--module", MODULES_BY_GROUP[device.group]]


def tour(snmp_port: int, lab_extra: list[str]) -> None:
    """The one-off commands an IT person types on site, against the same devices."""
    first, last = LAB_RANGE.split("-")
    lab = [first, last, *lab_extra]
    run("Lab 204: is every machine on?", ["probe", "icmp", *lab])
    for device in DEVICES:
        run(f"{device.name} ({device.recording})", probe_args(device, snmp_port),
            community=device.recording)
    printer = next(d for d in DEVICES if d.name == "staffroom-printer")
    run("For Nagios/Icinga: the same printer check as a plugin",
        [*probe_args(printer, snmp_port), "--nagios", "--warning", "supply=20",
         "--critical", "supply=5"], community=printer.recording)


def where_tour(config: Path, wait: float = 90.0) -> None:
    """``netmon where`` and the map, once netmon has read the switches' topology: until
    the closet switch sw-b2 is read, the PC is only known from the core's tables (on the
    core, for the moment), so the tour waits for the closet's answer."""
    where = [*netmon_exe(), "where", "lab-204-12", "-c", str(config)]
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        done = subprocess.run(where, check=False, capture_output=True, text=True)
        if done.returncode == 0 and " is on sw-b2 " in done.stdout:
            break
        time.sleep(2)
    run("Which switch port is lab-204-12 on? (learnt from LLDP, forwarding tables, ARP)",
        ["where", "lab-204-12", "-c", str(config)])
    run("The parents netmon inferred (no parent: line in the config)",
        ["topology", "suggest-parents", "-c", str(config)])


def port_free(host: str, port: int) -> bool:
    if port == 0:
        return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:  # loopback URL built here
        return json.load(resp)


def wait_ready(url: str, daemon: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and daemon.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def summary(targets: list[dict[str, Any]]) -> Table:
    """What netmon sees: one row per target and probe, worst first."""
    table = Table(title="What netmon sees", title_justify="left")
    for column in ("target", "role", "room", "probe", "status", "explanation"):
        table.add_column(column, overflow="fold")
    rows = []
    for target in targets:
        for probe, result in sorted(target.get("results", {}).items()):
            status = Status(result["status"])
            rows.append((status is Status.OK, target["name"], target["role"],
                         target["labels"].get("room", ""), probe, status, result["explanation"]))
    for _ok, name, role, room, probe, status, explanation in sorted(rows, key=lambda r: r[0]):
        table.add_row(device_text(name), role, device_text(room), probe, status_text(status),
                      device_text(explanation))
    return table


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netmon-demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--once", action="store_true", help="print the first summary and exit")
    parser.add_argument("--tour", action="store_true",
                        help="first run the one-off `netmon probe` commands on the devices")
    parser.add_argument("--listen", default=f"127.0.0.1:{DEFAULT_PORT}",
                        help=f"where netmon serves /metrics (default 127.0.0.1:{DEFAULT_PORT}; "
                             "port 0 or a busy port: a free one)")
    opts = parser.parse_args(argv)
    console = Console()
    # `kill` / `timeout` must clean up like Ctrl-C does (namespaces, simulator, netmon):
    # Python's default SIGTERM ends the process without running `finally` blocks.
    signal.signal(signal.SIGTERM, _interrupt)

    print("Starting the simulated school network (snmpsim with real device recordings)…",
          flush=True)
    port = simlab.free_udp_port(DEVICES[0].address)
    try:
        agent = simlab.start_snmpsim(host=DEVICES[0].address, port=port,
                                     extra_endpoints=[(d.address, port) for d in DEVICES[1:]])
    except simlab.AgentError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    lab = simlab.DemoLab.create() if os.geteuid() == 0 else None
    if lab is None:
        print("(the down and lossy lab machines need root for network namespaces; left out)")
    lab_extra = lab.addresses if lab else []
    daemon: subprocess.Popen[bytes] | None = None
    mail = MailCatcher(DEMO_DIR / "mail")
    try:
        with agent:
            print(f"Simulated devices answer SNMP on 127.0.1.1-{len(DEVICES)} port {port}.")
            if opts.tour:
                tour(port, lab_extra)
            DEMO_DIR.mkdir(exist_ok=True)
            config = DEMO_DIR / "netmon.yml"
            (DEMO_DIR / "netmon-alerts.db").unlink(missing_ok=True)  # a fresh start each time
            (DEMO_DIR / "netmon-topology.json").unlink(missing_ok=True)
            host, _, listen_port = opts.listen.rpartition(":")
            listen = f"{host}:{listen_port if port_free(host, int(listen_port)) else simlab.free_tcp_port(host)}"
            url = f"http://{listen}"
            config.write_text(demo_config(port, lab_extra, smtp_port=mail.port, external_url=url))
            print("Pre-filling the history: the last day, four weeks of toner…", flush=True)
            history_fill.fill(config, now=time.time())
            print(f"\n$ netmon run -c {config.relative_to(simlab.PROJECT_ROOT)} --listen {listen}",
                  flush=True)
            daemon = subprocess.Popen([*netmon_exe(), "run", "-c", str(config), "--listen", listen])
            if not wait_ready(url, daemon, timeout=90):
                print("demo: netmon did not become ready (see its messages above)", file=sys.stderr)
                return 1
            targets = get_json(f"{url}/api/targets")
            console.print(summary(targets))
            console.print(
                f"\nnetmon is monitoring {len(targets)} targets. Look at:\n"
                f"  {url}/                             the status page\n"
                f"  {url}/metrics                      Prometheus metrics of every device\n"
                f"  {url}/api/targets                  the same as JSON, with explanations\n"
                f"  {url}/probe?target=library-mfp     one device, probed now\n"
                f"  {url}/api/alerts                   pending and firing alerts\n"
                f"  {url}/map                          the network map: switches, links, who is where\n"
                f"  netmon where lab-204-12 -c {config}   which switch port a PC is on\n"
                f"    (the switches' topology is read every minute in the demo)\n"
                f"  the inventory it runs on:  {config}\n"
                f"  alert emails (mail catcher on 127.0.0.1:{mail.port}):  {mail.directory}/",
                highlight=False, soft_wrap=True,
            )
            if opts.tour:
                where_tour(config)
            if opts.once:
                return 0
            print("Press Ctrl-C to stop netmon and the simulated network.", flush=True)
            try:
                while daemon.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                print("\nStopping.")
            return 0
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
        mail.stop()
        if lab:
            lab.destroy()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # stopped while starting up; `finally` blocks cleaned up
        sys.exit(130)
