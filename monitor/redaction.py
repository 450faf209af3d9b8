"""Hiding secrets in the text netmon prints, logs and serves.

Secrets (SNMP communities, SNMPv3 and SMTP passwords, webhook passwords) are
:class:`pydantic.SecretStr` everywhere, so structured output never holds one. What is
left is free text that netmon did not write itself: a library's exception message, a
string a device sent, a usage error echoing the command line. :func:`redact` hides
secrets there, and only there:

- a secret is hidden where it stands as a whole token: the characters next to it are
  not letters, digits or ``_``, and not a ``-`` or ``.`` that joins it to more of a word
  (so a community ``snmp`` hides ``snmp`` in ``(snmp)`` or ``community=snmp`` but leaves
  ``snmpd``, ``SNMP``, ``netmon.snmp`` and ``snmp-gw`` alone, and ``public`` leaves
  ``publicly``). Matching is exact (case-sensitive, regex characters taken literally);
- secrets shorter than :data:`MIN_TEXT_SECRET` characters ("a", "x", "ok") are not
  hidden in text (only right after their option in an echoed command line,
  :func:`redact_after_options`): hiding them would hide articles, variable names and
  statuses, and a secret that short is guessed in seconds anyway;
- the password of any ``scheme://user:password@host`` URL is hidden, known or not;
- keys, field names and the structure of JSON are never touched: callers pass values
  (:func:`redact_value` walks dicts and lists but leaves their keys alone).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, SecretStr

MASK = "****"
#: Shorter secrets are not hidden in text (see the module docstring).
MIN_TEXT_SECRET = 4

_URL_CREDENTIALS = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)(?P<password>[^\s/?#@]+)(?=@)"
)
_WORD_CHAR = re.compile(r"\w")


def mask_url_credentials(text: str) -> str:
    """``http://user:pw@host/`` -> ``http://user:****@host/`` anywhere in ``text``."""
    if "://" not in text:
        return text
    return _URL_CREDENTIALS.sub(lambda m: m["head"] + MASK, text)


def _token_pattern(secret: str) -> str:
    # A side whose edge character is not a word character needs no boundary there:
    # the secret itself ends the token.
    left = r"(?<!\w)(?<!\w[-.])" if _WORD_CHAR.match(secret[0]) else ""
    right = r"(?!\w)(?![-.]\w)" if _WORD_CHAR.match(secret[-1]) else ""
    return left + re.escape(secret) + right


@lru_cache(maxsize=64)
def _compiled(secrets: frozenset[str]) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    """The secrets hidden in text, and one pattern for all of them."""
    long = tuple(sorted((s for s in secrets if len(s) >= MIN_TEXT_SECRET), key=len, reverse=True))
    return long, re.compile("|".join(_token_pattern(s) for s in long)) if long else None


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret hidden where it stands as a value (module docstring)."""
    text = mask_url_credentials(text)
    long, pattern = _compiled(frozenset(s for s in secrets if s))
    # Most text holds no secret at all: plain substring tests are much cheaper than the
    # pattern's look-arounds at every position.
    if pattern is None or not any(s in text for s in long):
        return text
    return pattern.sub(MASK, text)


def redact_after_options(text: str, secrets: Iterable[str], options: Iterable[str]) -> str:
    """:func:`redact`, and also secrets of any length right after their option
    (``--community a``, ``--community=a``), as argparse echoes a mistyped command line."""
    opts = "|".join(re.escape(o) for o in options)
    values = "|".join(re.escape(s) for s in sorted({s for s in secrets if s}, key=len, reverse=True))
    if opts and values:
        text = re.sub(rf"((?:{opts})(?:=|\s+))(?:{values})(?!\S)", lambda m: m[1] + MASK, text)
    return redact(text, secrets)


def redact_value(value: Any, secrets: Iterable[str]) -> Any:
    """Strings anywhere inside ``value`` redacted; dict keys and the shape unchanged."""
    found = frozenset(s for s in secrets if s)
    if not found:
        return value
    if isinstance(value, str):
        return redact(value, found)
    if isinstance(value, dict):
        return {k: redact_value(v, found) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v, found) for v in value)
    return value


def secret_values(node: Any) -> set[str]:
    """Every secret inside a settings model (or dicts/lists of them): the values of its
    :class:`SecretStr` fields and the passwords of URLs in its string fields."""
    return {s for s in _walk_secrets(node) if s}


def _walk_secrets(node: Any) -> Iterator[str]:
    if isinstance(node, SecretStr):
        yield node.get_secret_value()
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _walk_secrets(getattr(node, name))
    elif isinstance(node, dict):
        for value in node.values():
            yield from _walk_secrets(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _walk_secrets(value)
    elif isinstance(node, str) and "://" in node:
        for m in _URL_CREDENTIALS.finditer(node):
            yield m["password"]
