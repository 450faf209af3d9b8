"""Building blocks shared by the probe settings models (and reused by the config file)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Accept ``1.5``, ``"500ms"``, ``"2s"``, ``"5m"``, ``"1h"``; return seconds."""
    if isinstance(value, bool):
        # ValueError, not TypeError: pydantic reports only ValueError as a field error.
        raise ValueError("expected a duration such as 500ms, 2s or 5m")  # noqa: TRY004
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration; use e.g. 500ms, 2s, 5m or 1h")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


#: Seconds as a float; config files may write ``500ms``, ``2s``, ``5m``.
Duration = Annotated[float, BeforeValidator(parse_duration)]


class StrictModel(BaseModel):
    """Strict, immutable settings: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
