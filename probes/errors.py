"""netmon's exception tree.

::

    NetmonError                  every error netmon raises on purpose
    ├── ConfigError              bad settings, config file or command-line input
    │   └── TargetSyntaxError    a HOST[:PORT] that cannot be parsed
    └── ProbeSetupError          a probe cannot run at all on this machine
        └── IcmpPermissionError  neither raw nor datagram ICMP sockets are allowed

Device misbehaviour is never an exception: it is a :class:`probes.result.ProbeResult`
with a status. These exceptions are for the operator's mistakes and the machine's
limits, and each message says how to fix the problem.
"""

from __future__ import annotations


class NetmonError(Exception):
    """Base of every error netmon raises on purpose."""


class ConfigError(NetmonError):
    """Settings, a config file or command-line input is wrong."""


class TargetSyntaxError(ConfigError):
    """A ``HOST[:PORT]`` could not be parsed."""


class ProbeSetupError(NetmonError):
    """A probe cannot run on this machine as it is set up."""


class IcmpPermissionError(ProbeSetupError):
    """Neither raw nor datagram ICMP sockets may be opened by this process."""
