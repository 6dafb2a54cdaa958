#!/usr/bin/env bash
# The whole GPU check of a lent H100 / H200, in one command: installs what the machine lacks from
# .gpuwheels/ (made here by scripts/gpu_wheels.sh), then runs bench/bench_gpu.py on the GPU.
#
#   bash bench/gpu_check.sh                    # on the device; results in $OUT (else ./out/gpu)
#
# The device call (see docs/gpu.md): run(command="bash bench/gpu_check.sh",
#   carry=[".gpuwheels"], timeout_s=420)
#
# Environment:
#   OUT                    results folder (the device tool's; default <repo>/out/gpu)
#   GPU_CHECK_SITE         where the packages go (default /tmp/site; put first on PYTHONPATH)
#   GPU_CHECK_BUDGET_S     seconds bench_gpu.py may spend on new measurements (default 300)
#   GPU_CHECK_PARTS        bench parts (default: all; e.g. "pipeline,pose"); "ray" is the Ray run with one
#                          worker per GPU (bench/bench_ray.py --device cuda; skipped, saying so, when the
#                          carried packages lack ray or fiftyone)
#   GPU_CHECK_BUILD_MMCV   1: compile mmcv's C++/CUDA ops (sm_90, MAX_JOBS=16) instead of using
#                          bench/mmcv_ext_torchvision.py for nms / roi_align; the build is cut off
#                          after GPU_CHECK_MMCV_TIMEOUT seconds (default 420) and then falls back
#   PYTHON                 the interpreter (default python3: the device's, with CUDA torch)
#   GPU_CHECK_WHEELS       the carried folder (default <repo>/.gpuwheels)
#   GPU_CHECK_DEVICE       bench device (default cuda); with GPU_CHECK_SMOKE=1 (bench --smoke) these
#                          two let the whole script be rehearsed on a CPU machine
#
# Exit status: bench_gpu.py's (0 = every part ran), 2 = the install failed.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$REPO/out/gpu}
SITE=${GPU_CHECK_SITE:-/tmp/site}
WHEELS=${GPU_CHECK_WHEELS:-$REPO/.gpuwheels}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
T0=$SECONDS
log() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - T0))" "$*"; }
fail() { log "error: $*"; exit 2; }
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INDEX=1

main() {

log "machine: $(uname -m), $(nproc) cores; $(nvidia-smi -L 2>/dev/null | head -1 || echo 'no nvidia-smi')"
"$PY" -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" \
    || fail "$PY cannot import torch"
[[ -d "$WHEELS" ]] || fail "$WHEELS is missing: run scripts/gpu_wheels.sh here and name .gpuwheels in the call's carry"

# ---------------------------------------------------------------------------- wheels
mkdir -p "$SITE"
log "installing $(ls "$WHEELS"/*.whl | wc -l) wheels into $SITE"
"$PY" -m pip install -q --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl \
    || fail "pip install of the carried wheels"
# the carried setuptools (<81, with pkg_resources, which mmcv's setup.py and mmengine import) goes first
export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"

# xtcocotools: built against this machine's numpy (PyPI's wheels are numpy-1 builds)
log "building xtcocotools against numpy $("$PY" -c 'import numpy; print(numpy.__version__)')"
"$PY" -m pip install -q --no-deps --no-build-isolation --no-cache-dir --target "$SITE" "$WHEELS"/xtcocotools-*.tar.gz \
    || fail "xtcocotools build"

# ------------------------------------------------------------------------------ mmcv
MMCV_SDIST=$(ls "$WHEELS"/mmcv-*.tar.gz | head -1)
mmcv_ops=stand-in
if [[ "${GPU_CHECK_BUILD_MMCV:-0}" == 1 ]]; then
    arch=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability(0))")
    log "compiling mmcv with CUDA ops for sm $arch (MAX_JOBS=16, cut off after ${GPU_CHECK_MMCV_TIMEOUT:-420} s)"
    t=$SECONDS
    # its own process group, so that a build cut off leaves no nvcc running beside the bench
    setsid env MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="$arch" \
        "$PY" -m pip install -q --no-deps --no-build-isolation --no-cache-dir --target "$SITE" "$MMCV_SDIST" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && (( SECONDS - t < ${GPU_CHECK_MMCV_TIMEOUT:-420} )); do sleep 2; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -- "-$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        log "mmcv ops not compiled within ${GPU_CHECK_MMCV_TIMEOUT:-420} s (cut off); using the torchvision stand-in"
    elif wait "$pid"; then
        mmcv_ops=compiled
        log "mmcv ops compiled in $((SECONDS - t)) s"
    else
        log "mmcv ops failed to compile after $((SECONDS - t)) s (errors above); using the torchvision stand-in"
    fi
fi
if [[ $mmcv_ops != compiled ]]; then
    log "installing mmcv without compiled ops (MMCV_WITH_OPS=0) + bench/mmcv_ext_torchvision.py as mmcv._ext"
    MMCV_WITH_OPS=0 "$PY" -m pip install -q --no-deps --no-build-isolation --no-cache-dir --upgrade \
        --target "$SITE" "$MMCV_SDIST" || fail "mmcv (without ops) install"
    cp "$REPO/bench/mmcv_ext_torchvision.py" "$SITE/mmcv/_ext.py"
fi

log "checking the imports"
"$PY" - <<'EOF' || fail "the OpenMMLab stack does not import (traceback above)"
import warnings
warnings.filterwarnings("ignore")
import torch, torchvision, mmengine, mmcv, mmdet, mmpose, lap, xtcocotools
import mmdet.apis, mmpose.apis
from mmcv.ops import nms, roi_align
dev = "cuda" if torch.cuda.is_available() else "cpu"
b = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]], device=dev)
assert nms(b, torch.tensor([0.9, 0.8, 0.7], device=dev), 0.5)[1].tolist() == [0, 2]
for m in (torch, torchvision, mmengine, mmcv, mmdet, mmpose):
    print(f"  {m.__name__:12s} {m.__version__}")
import fiftyone_posetrack.pipeline  # the bench's numerics: no FiftyOne needed
EOF
log "install done"

# ----------------------------------------------------------------------------- bench
smoke=()
[[ "${GPU_CHECK_SMOKE:-0}" == 1 ]] && smoke=(--smoke)
"$PY" "$REPO/bench/bench_gpu.py" --out "$OUT" --device "${GPU_CHECK_DEVICE:-cuda}" \
    --budget-s "${GPU_CHECK_BUDGET_S:-300}" --parts "${GPU_CHECK_PARTS:-pipeline,cpu_floor,cpu_prep,pose,det,reid,paths,ray}" "${smoke[@]}"
rc=$?
log "bench_gpu.py exit status $rc; results: $OUT/bench_gpu.json, $OUT/bench_gpu.md"
return $rc
}

main "$@" 2>&1 | tee -a "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
