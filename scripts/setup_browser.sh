#!/usr/bin/env bash
# Installs what the real-browser App test (tests/test_app_browser.py, marker
# `browser`) needs: Debian's Chromium and the `playwright` Python package.
#
#   bash scripts/setup_browser.sh            # into the repo's .venv
#   POSETRACK_VENV=/path/to/venv bash scripts/setup_browser.sh
#   bash scripts/setup_browser.sh --check    # only verify (exit 1 when something is missing)
#
# Playwright drives the system Chromium (/usr/bin/chromium, or $POSETRACK_CHROMIUM):
# `playwright install` is never run (it downloads browsers from a CDN).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${POSETRACK_VENV:-$REPO/.venv}
CHROMIUM=${POSETRACK_CHROMIUM:-/usr/bin/chromium}
export PIP_CONSTRAINT=$REPO/scripts/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '\033[1m[setup-browser]\033[0m %s\n' "$*" >&2; }
die() { printf '[setup-browser] error: %s\n' "$*" >&2; exit 1; }

check_only=0
[[ ${1:-} == "--check" ]] && check_only=1

[[ -x $VENV/bin/python ]] || die "no virtualenv at $VENV (run scripts/dev.sh setup first, or set POSETRACK_VENV)"

have_chromium() { [[ -x $CHROMIUM ]] && "$CHROMIUM" --version >/dev/null 2>&1; }
have_playwright() { "$VENV/bin/python" -c "import playwright.sync_api" >/dev/null 2>&1; }

if ((check_only)); then
  ok=0
  have_chromium && log "chromium: $("$CHROMIUM" --version)" || { log "chromium missing at $CHROMIUM"; ok=1; }
  have_playwright && log "playwright: installed in $VENV" || { log "playwright missing from $VENV"; ok=1; }
  exit $ok
fi

if ! have_chromium; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing Debian's chromium (apt-get)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
        || die "apt-get install -y chromium failed"
    fi
  else
    die "Chromium is not installed at $CHROMIUM and this is not a root shell with apt-get. \
Install it yourself (Debian/Ubuntu: sudo apt-get install -y chromium) or point \
POSETRACK_CHROMIUM at a Chromium/Chrome binary, then rerun this script."
  fi
  have_chromium || die "chromium was installed but $CHROMIUM does not run"
fi
log "chromium: $("$CHROMIUM" --version)"

if ! have_playwright; then
  log "installing the playwright Python package into $VENV"
  "$VENV/bin/python" -m pip install -q "playwright>=1.40" || die "pip install playwright failed"
fi
log "playwright: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("playwright"))')"
log "ready: pytest -m browser tests/test_app_browser.py"
