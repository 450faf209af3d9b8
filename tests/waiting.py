"""Small helpers the integration tests share: bounded polling and plain HTTP calls."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


class LabError(RuntimeError):
    """A lab server did not start or a wait ran out; the message carries its log tail."""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               step: float = 0.25) -> None:  # fmt: skip
    """Poll ``predicate`` until it is true; raise :class:`LabError` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise LabError(f"gave up waiting for {what} after {timeout:.0f}s")


def http_json(url: str, body: Any = None, timeout: float = 5) -> Any:
    """GET (or POST ``body`` as JSON) and decode the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def http_status(url: str) -> int:
    """The HTTP status of a GET (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0
