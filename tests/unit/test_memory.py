"""monitor.memory: glibc malloc settings applied in a fresh interpreter, and a no-op
elsewhere."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from monitor import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_settings_apply_on_glibc_and_big_freed_blocks_go_back_to_the_os() -> None:
    code = """
import gc
from monitor import memory
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
assert memory.tune_malloc()
x = bytes(1 << 20); del x  # with glibc's defaults the mmap threshold now rises past 1 MiB
before = rss()
# scrape-like: 1 MiB batches made and dropped, long-lived malloc'd objects in between
batches, kept = [], []
for i in range(300):
    batches.append(bytes(1 << 20))
    kept.append(bytearray(600))
del batches
gc.collect()
memory.trim()
print(rss() - before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # 300 MB allocated and freed: glibc's defaults keep ~40 MB of it here, tuned ~1 MB
    assert int(out.stdout) < 15, out.stdout


def test_nothing_happens_off_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    memory._glibc.cache_clear()
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    try:
        assert memory.tune_malloc() is False
        memory.trim()  # no error
    finally:
        memory._glibc.cache_clear()
