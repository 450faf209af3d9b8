"""Probe targets and the ``HOST[:PORT]`` / ``[v6addr]:PORT`` syntax IT staff type."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from probes.errors import TargetSyntaxError


@dataclass(frozen=True, slots=True)
class Target:
    """A device to probe: a display name, a host (name or address) and an optional port."""

    name: str
    host: str
    port: int | None = None
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def display(self) -> str:
        if self.port is None:
            return self.host
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_host_port(text: str, default_port: int | None = None) -> tuple[str, int | None]:
    """Split ``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address.

    >>> parse_host_port("[::1]:1161")
    ('::1', 1161)
    >>> parse_host_port("::1")
    ('::1', None)
    """
    text = text.strip()
    if not text:
        raise TargetSyntaxError("empty host")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise TargetSyntaxError(f"{text!r}: missing ']' after an IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        _check_ipv6(text, host)
        if rest and not rest.startswith(":"):
            raise TargetSyntaxError(f"{text!r}: expected ':PORT' after ']'")
        port_text = rest[1:] if rest else ""
    elif text.count(":") > 1:
        # A bare IPv6 address: no port possible without brackets.
        host, port_text = text, ""
    elif ":" in text:
        host, port_text = text.rsplit(":", 1)
    else:
        host, port_text = text, ""
    if not host:
        raise TargetSyntaxError(f"{text!r}: empty host")
    if ":" in host:
        _check_ipv6(text, host)
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise TargetSyntaxError(f"{text!r}: port must be a number from 1 to 65535")
    return host, int(port_text)


def _check_ipv6(text: str, host: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise TargetSyntaxError(f"{text!r}: {host!r} is not a valid IPv6 address") from None


def parse_target(text: str, default_port: int | None = None) -> Target:
    host, port = parse_host_port(text, default_port)
    return Target(name=text.strip(), host=host, port=port)
