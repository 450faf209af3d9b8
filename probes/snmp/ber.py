"""A small, strict reader of SNMP response datagrams (BER), written by hand for two jobs
gufo-snmp does not do:

* it checks the whole structure of an answer before gufo decodes it, so a truncated or
  mangled datagram becomes a clear "malformed answer" instead of a Rust panic (gufo 0.13
  indexes an empty varbind SEQUENCE and panics, printing its message on stderr);
* it reads the PDU header (request-id, error-status, error-index) that gufo ignores, so
  SNMPv1's ``noSuchName``, ``tooBig``, ``genErr`` and access errors are seen as such.

It decodes no values: only tags and lengths. For SNMPv3 with privacy the PDU is
encrypted; then only the outer message is checked and ``pdu`` is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

GET_RESPONSE = 0xA2
REPORT = 0xA8
ERROR_STATUS = {
    0: "noError", 1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr",
    6: "noAccess", 7: "wrongType", 8: "wrongLength", 9: "wrongEncoding", 10: "wrongValue",
    11: "noCreation", 12: "inconsistentValue", 13: "resourceUnavailable", 14: "commitFailed",
    15: "undoFailed", 16: "authorizationError", 17: "notWritable", 18: "inconsistentName",
}  # fmt: skip

_INTEGERS = frozenset((0x02, 0x41, 0x42, 0x43, 0x46, 0x47))  # INTEGER, Counter32/64, Gauge, ...
_EMPTY = frozenset((0x05, 0x80, 0x81, 0x82))  # NULL, noSuchObject, noSuchInstance, endOfMib
_STRINGS = frozenset((0x04, 0x44))  # OCTET STRING, Opaque


class Malformed(ValueError):
    """The datagram is not a well-formed SNMP response; the text says where."""


@dataclass(frozen=True, slots=True)
class Header:
    version: int  # 0 = v1, 1 = v2c, 3 = v3
    pdu: int  # GET_RESPONSE, REPORT, or 0 when encrypted (SNMPv3 authPriv)
    request_id: int
    error_status: int
    error_index: int
    varbinds: int
    size: int


def _tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the TLV at ``pos``, inside ``end``."""
    if pos + 2 > end:
        raise Malformed(f"truncated at byte {pos}")
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4:  # indefinite length is not allowed in SNMP
            raise Malformed(f"invalid length at byte {pos - 1}")
        if pos + k > end:
            raise Malformed(f"truncated at byte {pos}")
        n = int.from_bytes(data[pos : pos + k], "big")
        pos += k
    if pos + n > end:
        raise Malformed(f"a length at byte {pos} runs past the end of its container")
    return tag, pos, pos + n


def _integer(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    tag, s, e = _tlv(data, pos, end)
    if tag != 0x02 or not 0 < e - s <= 9:
        raise Malformed(f"{what} is not an INTEGER")
    return int.from_bytes(data[s:e], "big", signed=True), e


def _octets(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    tag, s, e = _tlv(data, pos, end)
    if tag != 0x04:
        raise Malformed(f"{what} is not an OCTET STRING")
    return s, e


def _oid_ok(data: bytes, s: int, e: int) -> bool:
    """Non-empty, ends a sub-identifier, and no sub-identifier starts with 0x80 (a
    non-minimal encoding that decoders read differently)."""
    if e <= s or data[e - 1] & 0x80 or e - s > 256:
        return False
    if 0x80 in data[s:e]:  # rare in real OIDs; look closer only then
        if data[s] == 0x80:
            return False
        for i in range(s + 1, e):
            if data[i] == 0x80 and not data[i - 1] & 0x80:
                return False
    return True


def _varbinds(data: bytes, pos: int, end: int) -> int:
    """Check every varbind of the list in ``data[pos:end]``; return how many."""
    count = 0
    while pos < end:
        # The common case inline: a short SEQUENCE holding a short OID (speed matters
        # here: this runs for every varbind); anything else goes the general way.
        if pos + 4 <= end and data[pos] == 0x30 and data[pos + 1] < 0x80 \
                and data[pos + 2] == 0x06 and data[pos + 3] < 0x80:
            s, e = pos + 2, pos + 2 + data[pos + 1]
            os_, oe = pos + 4, pos + 4 + data[pos + 3]
            if e > end or oe > e or not _oid_ok(data, os_, oe):
                raise Malformed(f"varbind {count + 1} is not a valid SEQUENCE with an OID")
        else:
            tag, s, e = _tlv(data, pos, end)
            if tag != 0x30 or e == s:
                raise Malformed(f"varbind {count + 1} is not a non-empty SEQUENCE")
            otag, os_, oe = _tlv(data, s, e)
            if otag != 0x06 or not _oid_ok(data, os_, oe):
                raise Malformed(f"varbind {count + 1} has no valid OBJECT IDENTIFIER")
        vtag, vs, ve = _tlv(data, oe, e)
        if ve != e:
            raise Malformed(f"varbind {count + 1} has trailing bytes")
        n = ve - vs
        if vtag in _INTEGERS:
            if not 0 < n <= 9:
                raise Malformed(f"varbind {count + 1}: integer of {n} bytes")
        elif vtag in _STRINGS:
            pass
        elif vtag in _EMPTY:
            if n:
                raise Malformed(f"varbind {count + 1}: NULL-like value with contents")
        elif vtag == 0x06:
            if not _oid_ok(data, vs, ve):
                raise Malformed(f"varbind {count + 1}: invalid OBJECT IDENTIFIER value")
        elif vtag == 0x40:
            if n != 4:
                raise Malformed(f"varbind {count + 1}: IpAddress of {n} bytes")
        else:
            raise Malformed(f"varbind {count + 1}: unknown value tag 0x{vtag:02x}")
        count += 1
        pos = e
    return count


def _pdu(data: bytes, pos: int, end: int) -> tuple[int, int, int, int, int]:
    tag, s, e = _tlv(data, pos, end)
    if e != end:
        raise Malformed("trailing bytes after the PDU")
    if tag not in (GET_RESPONSE, REPORT):
        raise Malformed(f"PDU type 0x{tag:02x} is not a response")
    request_id, s = _integer(data, s, e, "request-id")
    status, s = _integer(data, s, e, "error-status")
    index, s = _integer(data, s, e, "error-index")
    vtag, vs, ve = _tlv(data, s, e)
    if vtag != 0x30 or ve != e:
        raise Malformed("the varbind list is not a SEQUENCE ending the PDU")
    return tag, request_id, status, index, _varbinds(data, vs, ve)


def read(data: bytes) -> Header:
    """Check ``data`` as an SNMP response; raise :class:`Malformed` saying what is wrong."""
    end = len(data)
    if not end or data[0] != 0x30:
        raise Malformed("not a BER SEQUENCE")
    _, s, e = _tlv(data, 0, end)
    if e != end:
        raise Malformed(f"{end - e} bytes after the message")
    version, s = _integer(data, s, e, "version")
    if version in (0, 1):
        s = _octets(data, s, e, "community")[1]
        pdu, rid, status, index, n = _pdu(data, s, e)
        return Header(version, pdu, rid, status, index, n, end)
    if version != 3:
        raise Malformed(f"unknown SNMP version {version}")
    gtag, gs, ge = _tlv(data, s, e)
    if gtag != 0x30:
        raise Malformed("SNMPv3 header is not a SEQUENCE")
    _, gs = _integer(data, gs, ge, "msgID")
    _, gs = _integer(data, gs, ge, "msgMaxSize")
    gs = _octets(data, gs, ge, "msgFlags")[1]
    _, gs = _integer(data, gs, ge, "msgSecurityModel")
    if gs != ge:
        raise Malformed("trailing bytes in the SNMPv3 header")
    us, ue = _octets(data, ge, e, "msgSecurityParameters")
    utag, us, ue2 = _tlv(data, us, ue)
    if utag != 0x30 or ue2 != ue:
        raise Malformed("USM parameters are not a SEQUENCE")
    us = _octets(data, us, ue, "msgAuthoritativeEngineID")[1]
    _, us = _integer(data, us, ue, "msgAuthoritativeEngineBoots")
    _, us = _integer(data, us, ue, "msgAuthoritativeEngineTime")
    for what in ("msgUserName", "msgAuthenticationParameters", "msgPrivacyParameters"):
        us = _octets(data, us, ue, what)[1]
    if us != ue:
        raise Malformed("trailing bytes in the USM parameters")
    dtag, ds, de = _tlv(data, ue, e)
    if de != e:
        raise Malformed("trailing bytes after the scoped PDU")
    if dtag == 0x04:  # encrypted: gufo decrypts and decodes it
        return Header(3, 0, 0, 0, 0, 0, end)
    if dtag != 0x30:
        raise Malformed("scoped PDU is neither a SEQUENCE nor encrypted")
    ds = _octets(data, ds, de, "contextEngineID")[1]
    ds = _octets(data, ds, de, "contextName")[1]
    pdu, rid, status, index, n = _pdu(data, ds, de)
    return Header(3, pdu, rid, status, index, n, end)
