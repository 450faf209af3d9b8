"""``make demo``: a simulated school network on loopback, and a tour of netmon's probes.

Starts snmpsim serving real device recordings (switches, printers, a server, a UPS) on
127.0.0.1, a "printer" TCP port, a lab room of machines on 127.20.4.x and, when run as
root, two lab machines that are down or on a lossy link inside a network namespace.
It then runs the same ``netmon probe …`` commands an IT person would type, printing
each command first so they can be copied. The simulator stays up until Ctrl-C
(``--once`` runs the tour and exits).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from monitor import simlab

LAB_ROOM = [f"127.20.4.{i}" for i in range(1, 13)]


@dataclass(frozen=True)
class Device:
    name: str
    recording: str  # community = path below the recordings dir
    command: str  # "printer" or "snmp"
    modules: str = ""


SCHOOL = [
    Device("sw-core (HP ProCurve)", "switch/hp-procurve-e2910al-24g-poe", "snmp", "system,interfaces"),
    Device("sw-library (Cisco SG350)", "switch/cisco-sb-sg350-10", "snmp", "system,interfaces"),
    Device("library-mfp (HP M252dw)", "printer/hp-color-laserjet-pro-m252dw", "printer"),
    Device("office-copier (Konica Minolta)", "printer/konica-minolta-bizhub-c3110", "printer"),
    Device("staffroom-printer (Brother)", "printer/brother-hl-5370dw", "printer"),
    Device("file-server (Linux)", "linux/el8-x86_64-server", "snmp", "system,host"),
    Device("ups-server-room (APC)", "ups/apc-smart-ups-1000-nmc3", "snmp", "system,ups"),
]


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


class TcpListener:
    """A tiny TCP service on loopback standing in for a printer's raw port 9100."""

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        async def main() -> None:
            server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            async with server:
                await server.serve_forever()

        try:
            self._loop.run_until_complete(main())
        except RuntimeError:  # loop stopped at exit
            pass

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


def tour(agent: simlab.Agent, tcp_port: int, lab_extra: list[str]) -> None:
    ep = agent.endpoint
    run("Lab 204: is every machine on?", ["probe", "icmp", *LAB_ROOM[:6], *lab_extra])
    for dev in SCHOOL:
        args = ["probe", dev.command, ep]
        if dev.modules:
            args += ["--module", dev.modules]
        run(dev.name, args, community=dev.recording)
    run("Is the printer's raw print port open? (and one that is not)",
        ["probe", "tcp", f"127.0.0.1:{tcp_port}", f"127.0.0.1:{simlab.free_udp_port()}"])
    run("For Nagios/Icinga: the same printer check as a plugin",
        ["probe", "printer", ep, "--nagios", "--warning", "supply=20", "--critical", "supply=5"],
        community="printer/brother-hl-5370dw")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netmon-demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--once", action="store_true", help="run the tour and exit")
    parser.add_argument("--port", type=int, default=0, help="UDP port for the simulator (default: free)")
    opts = parser.parse_args(argv)

    print("Starting the simulated school network (snmpsim with real device recordings)…", flush=True)
    try:
        agent = simlab.start_snmpsim(port=opts.port or None)
    except simlab.AgentError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    lab = simlab.DemoLab.create() if os.geteuid() == 0 else None
    if lab is None:
        print("(not root: the down and lossy lab machines in a network namespace are left out)")
    try:
        with agent, TcpListener() as tcp:
            print(f"Simulated devices answer SNMP on {agent.endpoint}; the community picks the device.")
            tour(agent, tcp.port, lab.addresses if lab else [])
            if opts.once:
                return 0
            print(f"\nThe simulator keeps running on {agent.endpoint}. Try for example:\n"
                  f"  SNMP_COMMUNITY=printer/sharp-mx-3570n .venv/bin/netmon probe printer "
                  f"{agent.endpoint} --community-env SNMP_COMMUNITY\n"
                  f"  SNMP_COMMUNITY=switch/cisco-catalyst-2960 .venv/bin/netmon probe snmp "
                  f"{agent.endpoint} --community-env SNMP_COMMUNITY --module interfaces\n"
                  "Press Ctrl-C to stop.", flush=True)
            try:
                signal.pause()
            except KeyboardInterrupt:
                print("\nStopping the simulated network.")
            return 0
    finally:
        if lab:
            lab.destroy()


if __name__ == "__main__":
    sys.exit(main())
