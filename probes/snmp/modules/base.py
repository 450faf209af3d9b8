"""What an SNMP module is, and pure helpers the converters share.

A module is data: which subtrees to walk (and which scalars to GET), plus a pure
``convert(walked) -> ModuleOutput`` that turns what the device returned into samples,
facts and human-facing records. No I/O here, so every converter is tested directly
against the device recordings. Indexes always come from the OID suffix, never from a
hard-coded instance, and a missing table yields nothing (no error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from probes.result import Record, Sample
from probes.snmp.types import OID, Value, Walked, oid


@dataclass(slots=True)
class ModuleOutput:
    samples: list[Sample] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    records: dict[str, list[Record]] = field(default_factory=dict)

    def extend(self, other: ModuleOutput) -> None:
        self.samples.extend(other.samples)
        self.facts.update(other.facts)
        for key, rows in other.records.items():
            self.records.setdefault(key, []).extend(rows)


@dataclass(frozen=True, slots=True)
class SnmpModule:
    """``walks``: subtrees walked with GETBULK (GETNEXT on v1); ``gets``: scalars fetched
    with one GET. ``convert`` must be pure and must not raise on odd data."""

    name: str
    description: str
    walks: tuple[OID, ...]
    convert: Callable[[Walked], ModuleOutput]
    gets: tuple[OID, ...] = ()


def table(walked: Walked, entry: str | OID, columns: Mapping[int, str]) -> dict[OID, dict[str, Value]]:
    """Rows of a conceptual table: ``{index: {column_name: value}}``.

    ``entry`` is the table's Entry OID (e.g. ifEntry ``1.3.6.1.2.1.2.2.1``); the index is
    whatever follows ``entry.column`` in each OID, so sparse or multi-part indexes work.
    Columns the device lacks are simply absent from a row.
    """
    base = oid(entry) if isinstance(entry, str) else entry
    n = len(base)
    n1 = n + 1
    column = columns.get
    rows: dict[OID, dict[str, Value]] = {}
    for key, value in walked.items():  # the hot loop of every converter: keep it lean
        if len(key) > n1 and key[:n] == base:
            name = column(key[n])
            if name is not None:
                rows.setdefault(key[n1:], {})[name] = value
    return rows


def scalar(walked: Walked, at: str | OID) -> Value | None:
    """A scalar's value (``at`` without or with the trailing ``.0``)."""
    key = oid(at) if isinstance(at, str) else at
    if key in walked:
        return walked[key]
    return walked.get(key + (0,))


def text(value: Value | None) -> str | None:
    """Device strings as clean text: bytes decoded (UTF-8, else Latin-1), NULs and
    surrounding whitespace stripped. ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.split(b"\x00", 1)[0]
        try:
            decoded = value.decode("utf-8")
        except UnicodeDecodeError:
            decoded = value.decode("latin-1")
        return decoded.strip()
    return str(value).strip()


def integer(value: Value | None) -> int | None:
    """An integer, or ``None`` when the value is missing or not numeric (odd vendors
    sometimes send numbers as strings)."""
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        try:
            return int(value.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def index_label(index: OID) -> str:
    return ".".join(str(i) for i in index)
