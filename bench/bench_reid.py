"""ReID benchmark on real people: does each embedder find the same person a few frames later?

Run: ``python bench/bench_reid.py [--embedders mobilenet,osnet-x0_25-msmt17,omz-person-reid-0287]
[--flip]``

Data: ``../shared/data/mot17-frames`` (MOT17-02/04/05/09, the first 4-8 frames,
official ground truth): the pedestrians of the first and the last frame of each
sequence that are well visible (visibility > 0.6, height >= 100 px, class 1,
flag 1), cropped from the real frames by their ground-truth boxes. For every
embedder, per sequence and pooled:

- rank-1: share of first-frame people whose nearest last-frame feature (cosine
  distance) is their own;
- same / other: mean cosine distance to the same person / to other people;
- margin: other - same (higher separates better);
- ms/crop: median wall time of ``embed`` per crop on one frame's crops (this
  machine; the 2 cores are shared, so the median of 3 repeats).

Ratios are against the first embedder of ``--embedders`` (the offline default
MobileNetV2), measured in the same run. Named models come from
``../shared/models`` (or ``--models-dir``); the torch ones run on the CPU with
the package's fastest CPU route (``runtime="auto"``).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import time

import cv2
import numpy as np

from fiftyone_posetrack.reid import make_embedder

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
SEQUENCES = {"MOT17-02": 4, "MOT17-04": 8, "MOT17-05": 6, "MOT17-09": 4}


def pedestrians(root: pathlib.Path, seq: str, frame: int) -> dict[int, list[float]]:
    gt = np.loadtxt(root / seq / "gt/gt.txt", delimiter=",", ndmin=2)
    keep = (gt[:, 0] == frame) & (gt[:, 6] == 1) & (gt[:, 7] == 1) & (gt[:, 8] > 0.6) & (gt[:, 5] >= 100)
    return {int(r[1]): [r[2], r[3], r[2] + r[4], r[3] + r[5]] for r in gt[keep]}


def pairs(root: pathlib.Path):
    for seq, last in SEQUENCES.items():
        a, b = pedestrians(root, seq, 1), pedestrians(root, seq, last)
        ids = sorted(set(a) & set(b))
        img = root / seq / "img1"
        yield seq, cv2.imread(str(img / "000001.jpg")), [a[i] for i in ids], \
            cv2.imread(str(img / f"{last:06d}.jpg")), [b[i] for i in ids]  # fmt: skip


def measure(emb, data) -> dict:
    rows, all_same, all_other, hits, n, times = {}, [], [], 0, 0, []
    for seq, first, boxes1, last, boxes2 in data:
        emb.embed(first, boxes1[:1])  # warm-up (first-call export / graph optimisation)
        reps = []
        for _ in range(3):
            t = time.perf_counter()
            f1 = emb.embed(first, boxes1)
            reps.append((time.perf_counter() - t) * 1000 / len(boxes1))
        times.append(statistics.median(reps))
        dist = 1.0 - f1 @ emb.embed(last, boxes2).T
        same, other = np.diag(dist), dist[~np.eye(len(dist), dtype=bool)]
        r1 = float((dist.argmin(axis=1) == np.arange(len(dist))).mean())
        rows[seq] = dict(n=len(dist), rank1=r1, same=same.mean(), other=other.mean() if len(other) else np.nan)
        all_same += list(same)
        all_other += list(other)
        hits += r1 * len(dist)
        n += len(dist)
    rows["ALL"] = dict(n=n, rank1=hits / n, same=np.mean(all_same), other=np.mean(all_other))
    for r in rows.values():
        r["margin"] = r["other"] - r["same"]
    rows["ALL"]["ms"] = statistics.median(times)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedders", default="mobilenet,osnet-x0_25-msmt17,omz-person-reid-0287")
    parser.add_argument("--models-dir", default=str(SHARED / "models"))
    parser.add_argument("--flip", action="store_true", help="flip averaging on (default off: one crop each)")
    args = parser.parse_args()
    root = SHARED / "data/mot17-frames"
    if not root.is_dir():
        raise SystemExit(f"{root} is absent: this bench needs ../shared")
    data = list(pairs(root))
    results = {}
    for name in args.embedders.split(","):
        emb = make_embedder(name, models_dir=args.models_dir, device="cpu", flip=args.flip)
        results[name] = measure(emb, data)
    base = results[args.embedders.split(",")[0]]["ALL"]
    print(f"{'embedder':<24}{'seq':<10}{'n':>4}{'rank-1':>8}{'same':>8}{'other':>8}{'margin':>8}")
    for name, rows in results.items():
        for seq, r in rows.items():
            print(f"{name:<24}{seq:<10}{r['n']:>4}{r['rank1']:>8.3f}{r['same']:>8.3f}{r['other']:>8.3f}{r['margin']:>8.3f}")
    print(f"\n{'embedder':<24}{'margin':>8}{'x base':>8}{'ms/crop':>9}{'x base':>8}")
    for name, rows in results.items():
        r = rows["ALL"]
        print(f"{name:<24}{r['margin']:>8.3f}{r['margin'] / base['margin']:>8.2f}{r['ms']:>9.1f}{r['ms'] / base['ms']:>8.2f}")


if __name__ == "__main__":
    main()
