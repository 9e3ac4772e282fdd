#!/usr/bin/env bash
# Build (or reuse) the separate Home Assistant venv used by the side-by-side benchmark
# (bench/ha_reference.py) and by the tests of the household-link custom integration.
#
# Why a second venv: HA pins aiohttp, zeroconf, voluptuous and PyYAML to versions that differ
# from ours, and HA 2025.4.x is the newest line that accepts Python 3.13.0.
#
# Why HA's constraints file: without `-c homeassistant/package_constraints.txt` pip backtracks
# for minutes through the bluetooth packages. The file ships inside the wheel, so we download
# the wheel alone first and read the file out of it.
#
# Idempotent: a stamp file inside the venv records the pinned versions; if it matches and
# homeassistant imports, the venv is reused as it is (CI can cache the directory keyed on
# this stamp).
#
# Environment:
#   HA_VENV    where the venv lives (default: <repo>/.ha-venv)
#   HA_PYTHON  interpreter to build it from (default: pyenv's 3.13.0)
#   HA_FORCE=1 rebuild even if the stamp matches
set -euo pipefail

readonly HA_VERSION="2025.4.4"
# 0.13.236 pins exactly homeassistant==2025.4.4 (0.13.235 pins 2025.4.3, 0.13.237 a 2025.5 beta).
readonly PHCC_VERSION="0.13.236"
readonly PYTHON_VERSION="3.13.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${HA_VENV:-$repo_root/.ha-venv}"
stamp_file="$venv/.estatehub-ha-stamp"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[ha_venv] %s\n' "$*" >&2; }

find_python() {
    if [[ -n "${HA_PYTHON:-}" ]]; then
        printf '%s\n' "$HA_PYTHON"
        return
    fi
    local prefix=""
    if command -v pyenv >/dev/null 2>&1; then
        prefix="$(pyenv prefix "$PYTHON_VERSION" 2>/dev/null || true)"
    fi
    # CI shells may lack pyenv's shims on PATH; the versions directory is still there.
    if [[ -z "$prefix" ]]; then
        prefix="${PYENV_ROOT:-$HOME/.pyenv}/versions/$PYTHON_VERSION"
    fi
    printf '%s\n' "$prefix/bin/python3.13"
}

python="$(find_python)"
if [[ ! -x "$python" ]]; then
    log "no Python $PYTHON_VERSION at $python (set HA_PYTHON, or: pyenv install $PYTHON_VERSION)"
    exit 1
fi
python_version="$("$python" -c 'import platform; print(platform.python_version())')"
expected_stamp="python=$python_version homeassistant=$HA_VERSION pytest-homeassistant-custom-component=$PHCC_VERSION"

started="$(now)"

if [[ "${HA_FORCE:-0}" != "1" && -f "$stamp_file" ]] \
    && [[ "$(cat "$stamp_file")" == "$expected_stamp" ]] \
    && "$venv/bin/python" -c 'import homeassistant.core' >/dev/null 2>&1; then
    log "reusing $venv ($expected_stamp), checked in $(elapsed "$started") s"
    exit 0
fi

log "building $venv from $python ($expected_stamp)"
# Only ever delete something that is a venv: HA_VENV may point anywhere.
if [[ -e "$venv" && ! -f "$venv/pyvenv.cfg" ]]; then
    log "$venv exists and is not a venv; refusing to replace it"
    exit 1
fi
rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
log "venv created in $(elapsed "$started") s"

download_dir="$(mktemp -d)"
trap 'rm -rf "$download_dir"' EXIT

# Some machines configure file:// extra indexes that lack most of HA's packages; pip warns once
# per package about each (hundreds of lines), which buries real errors, so only those go.
index_noise="is ignored: it is neither a file nor a directory"

step="$(now)"
"${pip[@]}" download --quiet --no-deps --dest "$download_dir" "homeassistant==$HA_VERSION" \
    2> >(grep -v "$index_noise" >&2)
wheel="$(ls "$download_dir"/homeassistant-"$HA_VERSION"-*.whl)"
constraints="$download_dir/package_constraints.txt"
"$venv/bin/python" - "$wheel" "$constraints" <<'PY'
import sys
import zipfile

wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as archive:
    data = archive.read("homeassistant/package_constraints.txt")
with open(target, "wb") as out:
    out.write(data)
PY
log "wheel and constraints ($(wc -l <"$constraints") lines) in $(elapsed "$step") s"

step="$(now)"
# Install from the wheel we already have; the constraints keep the resolver from backtracking.
"${pip[@]}" install --quiet -c "$constraints" \
    "$wheel" \
    "pytest-homeassistant-custom-component==$PHCC_VERSION" \
    2> >(grep -v "$index_noise" >&2)
log "install in $(elapsed "$step") s"

installed="$("$venv/bin/python" -c 'from homeassistant.const import __version__; print(__version__)')"
if [[ "$installed" != "$HA_VERSION" ]]; then
    log "expected homeassistant $HA_VERSION, the venv has $installed"
    exit 1
fi
printf '%s\n' "$expected_stamp" >"$stamp_file"

log "done in $(elapsed "$started") s; size $(du -sh "$venv" | cut -f1)"
