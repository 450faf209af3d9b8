"""SNMP credentials: v1/v2c communities and SNMPv3 USM users.

Defined once (in a config file's ``credentials:`` section or from CLI flags) and referred
to by name. Secrets are :class:`pydantic.SecretStr`, so they print as ``**********`` in
reprs, logs and JSON; they may be given inline, as ``{env: VAR}`` or ``{file: PATH}``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, SecretStr, model_validator

from probes.settings import StrictModel


def _resolve_secret(value: Any) -> Any:
    """``"s3cret"`` | ``{env: NAME}`` | ``{file: PATH}`` -> the secret string."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            name = str(value["env"])
            if name not in os.environ:
                raise ValueError(f"environment variable {name} is not set")
            return os.environ[name]
        if set(value) == {"file"}:
            path = Path(str(value["file"]))
            try:
                return path.read_text().strip()
            except OSError as exc:
                raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
        raise ValueError("a secret is a string, {env: VARIABLE} or {file: PATH}")
    return value


Secret = Annotated[SecretStr, BeforeValidator(_resolve_secret)]

#: Accepted spellings -> canonical names (canonical names are net-snmp's).
AUTH_PROTOCOLS = {
    "MD5": "MD5", "SHA": "SHA", "SHA1": "SHA", "SHA-1": "SHA",
    "SHA224": "SHA-224", "SHA-224": "SHA-224", "SHA256": "SHA-256", "SHA-256": "SHA-256",
    "SHA384": "SHA-384", "SHA-384": "SHA-384", "SHA512": "SHA-512", "SHA-512": "SHA-512",
}  # fmt: skip
PRIV_PROTOCOLS = {
    "DES": "DES", "AES": "AES", "AES128": "AES", "AES-128": "AES",
    "AES192": "AES-192", "AES-192": "AES-192", "AES256": "AES-256", "AES-256": "AES-256",
}  # fmt: skip


def _canonical(table: dict[str, str], kind: str) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or value.upper() not in table:
            allowed = ", ".join(sorted(set(table.values())))
            raise ValueError(f"unknown {kind} protocol {value!r}; allowed: {allowed}")
        return table[value.upper()]

    return BeforeValidator(check)


AuthProtocol = Annotated[
    Literal["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"],
    _canonical(AUTH_PROTOCOLS, "auth"),
]
PrivProtocol = Annotated[
    Literal["DES", "AES", "AES-192", "AES-256"], _canonical(PRIV_PROTOCOLS, "privacy")
]


class AuthSettings(StrictModel):
    protocol: AuthProtocol = "SHA"
    password: Secret


class PrivSettings(StrictModel):
    protocol: PrivProtocol = "AES"
    password: Secret


class SnmpCredentials(StrictModel):
    """One credential set. ``version`` 1 and 2c use ``community``; 3 uses ``user``,
    optional ``auth`` (authNoPriv) and ``priv`` (authPriv, needs ``auth``)."""

    version: Literal["1", "2c", "3"] = "2c"
    community: Secret | None = None
    user: str | None = None
    auth: AuthSettings | None = None
    priv: PrivSettings | None = None
    #: SNMPv3 context name (snmpsim uses it to pick a recording).
    context: str = ""

    @model_validator(mode="before")
    @classmethod
    def _version_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("version"), int | float):
            data = {**data, "version": {1: "1", 2: "2c", 3: "3"}.get(int(data["version"]), data["version"])}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> SnmpCredentials:
        if self.version in ("1", "2c"):
            if self.community is None:
                raise ValueError(f"SNMP v{self.version} needs a community")
            if self.user or self.auth or self.priv:
                raise ValueError(f"user/auth/priv are SNMPv3 settings, not v{self.version}")
        else:
            if not self.user:
                raise ValueError("SNMPv3 needs a user")
            if self.community is not None:
                raise ValueError("community is a v1/v2c setting; SNMPv3 uses user/auth/priv")
            if self.priv and not self.auth:
                raise ValueError("SNMPv3 privacy (priv) needs authentication (auth) too")
            for part in (self.auth, self.priv):
                if part and len(part.password.get_secret_value()) < 8:
                    raise ValueError("SNMPv3 passwords must be at least 8 characters (RFC 3414)")
        return self

    @property
    def security_level(self) -> str:
        if self.version != "3":
            return "community"
        if self.priv:
            return "authPriv"
        return "authNoPriv" if self.auth else "noAuthNoPriv"

    def fingerprint(self) -> str:
        """A cache key for these credentials that keeps no secret in clear text."""
        parts = [self.version, self.user or "", self.context]
        for secret in (self.community, self.auth and self.auth.password,
                       self.priv and self.priv.password):
            parts.append(secret.get_secret_value() if secret else "")
        parts += [self.auth.protocol if self.auth else "",
                  self.priv.protocol if self.priv else ""]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def describe(self) -> str:
        """A secret-free description for output and logs."""
        if self.version != "3":
            return f"SNMPv{self.version} community (hidden)"
        parts = [f"SNMPv3 user {self.user!r}", self.security_level]
        if self.auth:
            parts.append(self.auth.protocol)
        if self.priv:
            parts.append(self.priv.protocol)
        return ", ".join(parts)


def community(text: str, version: Literal["1", "2c"] = "2c") -> SnmpCredentials:
    return SnmpCredentials(version=version, community=SecretStr(text))


