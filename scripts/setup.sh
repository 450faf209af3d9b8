#!/usr/bin/env bash
# Prepare a machine for netmon: system packages (when root), the project venv (.venv)
# and a separate venv for the SNMP simulator (.venv-sim; snmpsim needs pysmi, which
# netmon must not import). Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(snmpd snmp fping iproute2 nftables procps python3-venv prometheus-snmp-exporter prometheus
    prometheus-alertmanager chromium)
PYTHON=${PYTHON:-python3}
SIM_PYTHON=${SIM_PYTHON:-/usr/bin/python3}

log() { printf 'setup: %s\n' "$*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing system packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        log "missing system packages: ${missing[*]}"
        log "install them with: sudo apt-get install ${missing[*]}"
        log "(continuing; tests that need them will be skipped)"
    fi
fi

stamp_of() { sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16; }
stamp=$(stamp_of)

if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.netmon-stamp 2>/dev/null)" != "$stamp" ]; then
    log "creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
    .venv/bin/pip install -q --upgrade 'pip>=24'
    .venv/bin/pip install -q -e '.[test]'
    echo "$stamp" > .venv/.netmon-stamp
fi

# cryptography: snmpsim needs it to answer SNMPv3 with privacy.
SIM_PACKAGES=('snmpsim==1.2.2' 'pysmi>=2,<3' 'pysnmp==7.1.30' 'pyasn1==0.6.5' 'cryptography>=45,<50')
if [ ! -x .venv-sim/bin/snmpsim-command-responder ] || [ "$(cat .venv-sim/.netmon-stamp 2>/dev/null)" != "$stamp" ]; then
    [ -x "$SIM_PYTHON" ] || SIM_PYTHON=$PYTHON
    log "creating .venv-sim (snmpsim) with $SIM_PYTHON"
    "$SIM_PYTHON" -m venv .venv-sim
    .venv-sim/bin/pip install -q "${SIM_PACKAGES[@]}"
    echo "$stamp" > .venv-sim/.netmon-stamp
fi
