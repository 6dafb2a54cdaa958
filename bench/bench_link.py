"""Offline tracklet linking (``link_tracklets``) on long videos: time and peak memory against the tracklet count.

Run: ``python bench/bench_link.py [--tracklets 500,2000,8000,20000]``

Synthetic tracks: 20 people, each in 1 s tracklets (30 frames, 30 fps) that
start up to 10 frames apart, at random places (most ends have a start
within the 60-frame gap window, few are admissible). Printed per tracklet
count: seconds, peak memory of the linker's arrays (``tracemalloc``, which
numpy reports to), candidate pairs, and the ratios against the first
(smallest) count measured in the same run. Linear growth is the goal: an hour
of a 20-person crowd in 1 s tracklets is ~72 000 tracklets.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from fiftyone_posetrack.tracking.postprocess import _link_candidates, link_tracklets  # noqa: E402


def tracks(n: int, length: int = 30, people: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` straight tracklets of ``length`` frames, ``people`` at a time: (MOT rows, start frames)."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    start = 1 + (k // people) * length + rng.integers(0, 10, n)
    x, y = rng.uniform(0, 1800, n), rng.uniform(0, 900, n)
    t = np.arange(length)
    frames = (start[:, None] + t[None, :]).ravel()
    ids = np.repeat(k + 1, length)
    xs = (x[:, None] + 2.0 * t[None, :]).ravel()
    ys = np.repeat(y, length)
    one = np.ones_like(xs)
    rows = np.column_stack([frames, ids, xs, ys, 40 * one, 100 * one, 0.9 * one, -one, -one, -one])
    return rows.astype(float), start.astype(float)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracklets", default="500,2000,8000,20000")
    args = ap.parse_args(argv)
    link_tracklets(tracks(50)[0])  # imports and first calls outside the timings
    base = None
    print("| tracklets | rows | candidate pairs | ids after linking | seconds | peak MB | x seconds | x peak | x tracklets |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in [int(v) for v in args.tracklets.split(",")]:
        arr, start = tracks(n)
        a, _ = _link_candidates(start, start + 29, 60)  # the pairs the linker scores (its default gap)
        tracemalloc.start()
        t0 = time.perf_counter()
        out = link_tracklets(arr)
        secs = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        base = base or (secs, peak, n)
        print(f"| {n} | {len(arr)} | {len(a)} | {len(np.unique(out[:, 1]))} | {secs:.2f} | {peak:.0f} "
              f"| {secs / base[0]:.1f} | {peak / base[1]:.1f} | {n / base[2]:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
