"""Read snmpsim ``.snmprec`` recordings for tests (test code only).

``load_walked`` turns a recording into the same ``Walked`` mapping the SNMP client
produces, so converters can be tested on every recording without an agent;
``raw_lines`` gives the untouched ``(oid, tag, value)`` triples so tests can compute
their expectations from the file itself instead of hand-copied numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from probes.snmp.types import OID, Value, Walked, oid

RECORDINGS = Path(__file__).parent / "fixtures" / "snmprec"

INTEGER_TAGS = {"2", "65", "66", "67", "70"}


def recordings(kind: str | None = None) -> list[Path]:
    """All recordings, or those of one kind (``printer``, ``switch``, ``linux``...)."""
    pattern = f"{kind}/*.snmprec" if kind else "*/*.snmprec"
    return sorted(RECORDINGS.glob(pattern))


def community_of(path: Path) -> str:
    """snmpsim's community for a recording: its path below the data dir, no suffix."""
    return str(path.relative_to(RECORDINGS).with_suffix(""))


def raw_lines(path: Path) -> Iterator[tuple[str, str, str]]:
    for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        o, tag, value = line.split("|", 2)
        yield o, tag, value


def decode(tag: str, value: str) -> Value:
    hexed = tag.endswith("x")
    base = tag.rstrip("x")
    if base in INTEGER_TAGS:
        return int(value, 16) if hexed else int(value)
    if base == "6":
        return value
    if base == "64":
        if hexed:
            return ".".join(str(b) for b in bytes.fromhex(value))
        return value
    raw = bytes.fromhex(value) if hexed else value.encode("utf-8", errors="surrogateescape")
    return raw


def load_walked(path: Path) -> Walked:
    out: dict[OID, Value] = {}
    for o, tag, value in raw_lines(path):
        out[oid(o)] = decode(tag, value)
    return out


def column(path: Path, entry: str, col: int) -> dict[str, str]:
    """``{index_suffix: raw value text}`` of one table column, straight from the file."""
    prefix = f"{entry}.{col}."
    return {o[len(prefix) :]: v for o, _, v in raw_lines(path) if o.startswith(prefix)}
