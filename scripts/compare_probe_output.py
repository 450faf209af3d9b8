"""Does `netmon probe snmp` print the same as an older netmon on every recording?

    git worktree add /tmp/netmon-old <commit>
    .venv/bin/python scripts/compare_probe_output.py /tmp/netmon-old

Serves tests/fixtures/snmprec with snmpsim on loopback and runs `netmon probe snmp` of
this tree and of the other tree (same venv, the tree first on PYTHONPATH) on every
recording with the modules that fit its kind, as a table and with --json. Durations
are blanked before comparing. Prints one line per recording and output form, writes
the differing outputs next to each other in a temp dir, and exits 1 if any differ.
Used to check that the move of SNMP polling from pysnmp to gufo-snmp changed nothing a
user sees.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.demo import simlab

MODULES = {
    "printer": "system,printer", "switch": "system,interfaces",
    "linux": "system,interfaces,host", "windows": "system,interfaces,host",
    "ups": "system,ups",
}  # fmt: skip


def _blank_durations(doc: Any) -> Any:
    """The JSON output with every duration set to 0 (they differ from run to run)."""
    if isinstance(doc, list):
        return [_blank_durations(d) for d in doc]
    if isinstance(doc, dict):
        if doc.get("metric") == "netmon_probe_duration_seconds":
            return {**doc, "value": 0}
        return {k: 0 if k in ("duration_seconds", "started_at") else _blank_durations(v)
                for k, v in doc.items()}
    return doc


def probe(tree: Path, port: int, community: str, modules: str, as_json: bool) -> str:
    cmd = [sys.executable, "-m", "monitor.cli", "probe", "snmp", f"127.0.0.1:{port}",
           "--community", community, "--module", modules, *(["--json"] if as_json else [])]
    env = dict(os.environ, PYTHONPATH=str(tree), COLUMNS="200")
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    if as_json:
        try:
            out = json.dumps(_blank_durations(json.loads(done.stdout)), indent=1, sort_keys=True)
        except json.JSONDecodeError:
            out = done.stdout
    else:
        out = re.sub(r"\d+(\.\d+)? ?(ms|s)\b", "<time>", done.stdout)
    return f"{out}\n{done.stderr}\nexit {done.returncode}\n"


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    other = Path(sys.argv[1]).resolve()
    out_dir = Path(tempfile.mkdtemp(prefix="netmon-compare-"))
    differing = 0
    with simlab.start_snmpsim() as agent:
        for path in sorted(simlab.RECORDINGS.glob("*/*.snmprec")):
            community = path.relative_to(simlab.RECORDINGS).with_suffix("").as_posix()
            modules = MODULES.get(path.parent.name, "system")
            for as_json in (False, True):
                old, new = (probe(t, agent.port, community, modules, as_json)
                            for t in (other, REPO))
                form = "--json" if as_json else "table"
                same = old == new
                print(f"{'same' if same else 'DIFFERENT'}  {community}  {form}")
                if not same:
                    differing += 1
                    stem = f"{community.replace('/', '_')}-{form.strip('-')}"
                    (out_dir / f"{stem}.old").write_text(old)
                    (out_dir / f"{stem}.new").write_text(new)
    print(f"{differing} differing output(s)" + (f"; see {out_dir}" if differing else ""))
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
