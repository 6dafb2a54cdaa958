#!/usr/bin/env bash
# Downloads (here, from PyPI) exactly the packages the lent GPU machine lacks for
# bench/gpu_check.sh, into .gpuwheels/ (git-ignored; named in the device call's `carry`).
#
#   bash scripts/gpu_wheels.sh            # -> .gpuwheels/*.whl, *.tar.gz, SIZE report
#
# The device (see /work/.library/device/KINDS.md) runs Python 3.12 with torch 2.11
# (CUDA 13), torchvision, onnxruntime, opencv-python-headless, numpy 2.x, scipy,
# matplotlib, pillow, rich, pyyaml, six, tqdm, cython, setuptools and wheel, and
# has no network. It lacks the OpenMMLab stack, its small pure-Python
# dependencies, and `lap` (our tracker's assignment solver). FiftyOne and its
# database are NOT carried: the GPU bench never imports them.
#
# Two packages travel as source, on purpose:
#   - mmcv 2.1.0: PyPI has only the sdist. gpu_check.sh installs it without its
#     compiled ops (MMCV_WITH_OPS=0, seconds) and puts bench/gpu/mmcv_ext.py in
#     place of mmcv._ext (nms / roi_align on torchvision's CUDA kernels); with
#     GPU_CHECK_BUILD_MMCV=1 it compiles the real CUDA ops instead (minutes).
#   - xtcocotools: its PyPI wheels are built against numpy 1.x and fail to
#     import under numpy 2; it is built on the device against its numpy (one
#     Cython file, seconds).
# Every other package is a wheel for CPython 3.12 / manylinux x86_64 or pure Python;
# setuptools is pinned below 81 (mmcv's setup.py and mmengine import pkg_resources).
#
# Real model files for the bench's "paths" part (the ONNX / ReID backends on CUDA) are
# copied from ../shared/models, when it is there, into .gpuwheels/models/ (about 13 MiB):
# rtmdet-nano-person, yolox-nano, omz-person-reid-0287, osnet-x0_25-msmt17.
# The carry limit of one device call is 64 MiB for the whole working tree.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST="$REPO/.gpuwheels"
PY=${PYTHON:-python3}
LIMIT_MIB=64

# name==version: versions as in scripts/setup_mm.sh (mmengine, mmcv, mmdet, mmpose)
# and as installed in the project's venv (the rest).
WHEELS=(
    mmengine==0.10.7 addict==2.4.0 termcolor==3.3.0 yapf==0.43.0 platformdirs==4.14.8
    mmdet==3.3.0 pycocotools==2.0.11 shapely==2.2.0 terminaltables==3.1.10
    mmpose==1.3.2 json_tricks==3.17.3 munkres==1.1.4
    lap==0.5.13 setuptools==80.10.2
)
SDISTS=(mmcv==2.1.0 xtcocotools==1.14.3)

PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
    manylinux2014_x86_64 manylinux1_x86_64 linux_x86_64 any; do
    PLATFORMS+=(--platform "$p")
done

mkdir -p "$DEST"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_FIND_LINKS=
"$PY" -m pip download -q --no-input --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --abi cp312 --abi abi3 --abi none "${PLATFORMS[@]}" -d "$DEST" "${WHEELS[@]}"
"$PY" -m pip download -q --no-input --no-deps --no-binary=:all: -d "$DEST" "${SDISTS[@]}"

# real models for the paths part (their licences travel with them)
SHARED_MODELS="$REPO/../shared/models"
if [[ -d "$SHARED_MODELS" ]]; then
    for f in rtmdet-nano-person/end2end.onnx rtmdet-nano-person/LICENSE yolox-nano/yolox_nano.onnx \
        yolox-nano/LICENSE omz-person-reid-0287/person-reidentification-retail-0287.onnx \
        osnet-x0_25-msmt17/osnet_x0_25_msmt17.pth; do
        if [[ -f "$SHARED_MODELS/$f" ]]; then
            mkdir -p "$DEST/models/$(dirname "$f")"
            cp "$SHARED_MODELS/$f" "$DEST/models/$f"
        fi
    done
else
    echo "note: $SHARED_MODELS not found: the bench's paths part will skip the ONNX / real ReID models" >&2
fi

# one version of each package (an older download left in the folder would break the install)
dupes=$(ls "$DEST" | grep -v '^models$' | sed -E 's/-[0-9][^-]*(-.*)?\.(whl|tar\.gz)$//' | tr 'A-Z_' 'a-z-' | sort | uniq -d)
if [[ -n "$dupes" ]]; then
    echo "error: several versions in $DEST of: $dupes (delete the folder and run again)" >&2
    exit 1
fi

(cd "$DEST" && find . -type f -printf '  %10s  %P\n' | sort -k2)
bytes=$(du -sb "$DEST" | cut -f1)
tree=$(cd "$REPO" && git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$((bytes + tree))
printf '%s: %.1f MiB; the working tree besides: %.1f MiB; together %.1f MiB of the %d MiB carry limit\n' \
    "$DEST" "$(echo "$bytes / 1048576" | bc -l)" "$(echo "$tree / 1048576" | bc -l)" \
    "$(echo "$total / 1048576" | bc -l)" "$LIMIT_MIB"
if (( total > LIMIT_MIB * 1048576 )); then
    echo "error: over the carry limit" >&2
    exit 1
fi
