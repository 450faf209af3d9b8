"""A real SNMP agent whose values a test can change while netmon polls it.

net-snmp's ``snmpd`` answers the system group itself and hands chosen subtrees to this
file run as a ``pass_persist`` helper, which serves them from a ``.snmprec`` file
(``OID|TAG|VALUE``, as in tests/fixtures/snmprec). The test rewrites that file (atomically)
and the next request sees the new values:

    with dynamic_printer(workdir) as printer:
        printer.set(SUPPLY_LEVEL + ".1.1", 3)       # black toner down to 3 of 100
        ... netmon polls 127.0.0.1:printer.port with community printer.community ...

Run as a script it speaks the pass_persist protocol on stdin/stdout (see snmpd.conf(5)).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Subtrees served from the data file: Printer-MIB and hrPrinterTable.
SUBTREES = ("1.3.6.1.2.1.43", "1.3.6.1.2.1.25.3.5")
#: prtMarkerSuppliesLevel; a row is ``.<hrDeviceIndex>.<supply index>``.
SUPPLY_LEVEL = "1.3.6.1.2.1.43.11.1.1.9"
RECORDING = (
    Path(__file__).parent / "fixtures" / "snmprec" / "printer" / "hp-color-laserjet-pro-m252dw.snmprec"
)
COMMUNITY = "dyn-printer"

# snmprec BER tag -> pass_persist type name
_TYPES = {"2": "integer", "4": "string", "6": "objectid", "64": "ipaddress", "65": "counter",
          "66": "gauge", "67": "timeticks", "70": "counter64"}


def _key(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.strip(".").split("."))


def read_snmprec(path: Path) -> dict[str, tuple[str, str]]:
    """``{oid: (tag, value)}`` of a recording."""
    rows: dict[str, tuple[str, str]] = {}
    for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        if line.strip() and not line.startswith("#"):
            oid, tag, value = line.split("|", 2)
            rows[oid] = (tag, value)
    return rows


def write_snmprec(path: Path, rows: dict[str, tuple[str, str]]) -> None:
    """Replace ``path`` atomically, so the agent never reads half a file."""
    tmp = path.with_suffix(".tmp")
    lines = [f"{o}|{t}|{v}" for o, (t, v) in sorted(rows.items(), key=lambda kv: _key(kv[0]))]
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape")
    os.replace(tmp, path)


def _answer(oid: str, tag: str, value: str) -> str:
    base = tag.rstrip("x")
    if tag.endswith("x") or (base == "4" and not value.isprintable()):
        raw = bytes.fromhex(value) if tag.endswith("x") else value.encode()
        if base == "4":
            return f".{oid}\noctet\n{raw.hex(' ')}\n" if raw else f".{oid}\nstring\n\n"
        value = str(int(raw.hex(), 16)) if base != "64" else ".".join(str(b) for b in raw)
    return f".{oid}\n{_TYPES.get(base, 'string')}\n{value}\n"


def serve(path: Path) -> None:
    """The pass_persist loop: PING, get, getnext (set is refused)."""
    stamp: tuple[int, int] | None = None
    keys: list[tuple[int, ...]] = []
    rows: dict[tuple[int, ...], tuple[str, str, str]] = {}
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "PING":
            sys.stdout.write("PONG\n")
        elif cmd in ("get", "getnext", "set"):
            oid = sys.stdin.readline().strip()
            if cmd == "set":
                sys.stdin.readline()
                sys.stdout.write("not-writable\n")
                sys.stdout.flush()
                continue
            st = path.stat()
            if stamp != (st.st_ino, st.st_mtime_ns):
                stamp = (st.st_ino, st.st_mtime_ns)
                rows = {_key(o): (o, t, v) for o, (t, v) in read_snmprec(path).items()}
                keys = sorted(rows)
            want = _key(oid)
            hit = rows.get(want) if cmd == "get" else next(
                (rows[k] for k in keys if k > want), None)
            sys.stdout.write(_answer(*hit) if hit else "NONE\n")
        elif not cmd:
            break
        sys.stdout.flush()


@dataclass
class DynamicPrinter:
    """snmpd on 127.0.0.1:``port`` serving a printer recording that ``set`` changes."""

    port: int
    data: Path
    community: str = COMMUNITY

    def set(self, oid: str, value: int | str) -> None:
        rows = read_snmprec(self.data)
        tag = rows[oid][0] if oid in rows else ("2" if isinstance(value, int) else "4")
        rows[oid] = (tag, str(value))
        write_snmprec(self.data, rows)

    def get(self, oid: str) -> str:
        return read_snmprec(self.data)[oid][1]


@contextmanager
def dynamic_printer(workdir: Path, recording: Path = RECORDING) -> Iterator[DynamicPrinter]:
    """Start snmpd with the recording's Printer-MIB subtrees behind pass_persist."""
    from monitor.demo import simlab

    data = workdir / "printer.snmprec"
    rows = read_snmprec(recording)
    write_snmprec(data, {o: tv for o, tv in rows.items() if any(
        o == s or o.startswith(s + ".") for s in SUBTREES)})
    env = f"PYTHONPATH={Path(__file__).parent.parent}"
    helper = f"/usr/bin/env {env} {sys.executable} {Path(__file__).resolve()} {data}"
    extra = [f"pass_persist .{s} {helper}" for s in SUBTREES]
    with simlab.start_snmpd(communities=[COMMUNITY], extra_config=extra) as agent:
        yield DynamicPrinter(agent.port, data)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
