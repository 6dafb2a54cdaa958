"""A score threshold relative to the detector's scores, measured on the tracking suite's benchmarks.

Run: ``nice python bench/bench_tracking_otsu.py [--offsets 0,0.05] [--jobs 2]``

For each sequence, the default tracker preset runs with ``det_thresh`` = Otsu's
threshold of that sequence's detection scores (those >= 0.1; the scores of the
whole sequence, so this is an offline rule) plus an offset, clipped to
[0.3, 0.8]; a sequence whose boxes carry fewer than 3 distinct scores (TUD's
CEM boxes) keeps the default 0.6. Printed per benchmark: HOTA / MOTA / IDF1 /
IDsw of the fixed default and of each offset, and the thresholds chosen
(``docs/tracking.md``, "Not done", has the numbers).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys

import numpy as np
from skimage.filters import threshold_otsu  # scikit-image: a FiftyOne dependency

import bench_tracking_suite as suite


def job(args) -> tuple[str, str, str, dict]:
    bench, offset = args
    preset = suite.load_tracker_preset(suite.DEFAULT_TRACKER_PRESET)
    metrics, per, chosen = suite._metrics(), {}, {}
    for seq, (gt, det) in suite.load(bench).items():
        s = det[:, 6][det[:, 6] >= 0.1]
        fixed = offset is None or len(np.unique(s)) < 3
        th = preset["params"].get("det_thresh", 0.6) if fixed else float(np.clip(threshold_otsu(s) + offset, 0.3, 0.8))
        chosen[seq] = round(th, 2)
        params = dict(preset["params"], det_thresh=th)
        per[seq] = suite.track_and_score(gt, det, preset["tracker"], params, preset["postprocess"], metrics)
    label = "fixed default" if offset is None else f"otsu{offset:+.2f}"
    return bench, label, suite._cell(suite.combine(per)), chosen


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--offsets", default="0,0.05")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    if not suite.DATA.exists():
        print(f"skipped: {suite.DATA} is absent (the shared data folder)")
        return 0
    offsets = [None] + [float(x) for x in args.offsets.split(",")]
    jobs = [(b, o) for o in offsets for b in suite.BENCHMARKS]
    with mp.Pool(args.jobs) as pool:
        for bench, label, cell, chosen in pool.imap(job, jobs):
            shown = sorted(chosen.values()) if len(chosen) > 4 else chosen
            print(f"{label:14s} {bench:10s} {cell}  det_thresh {shown}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
