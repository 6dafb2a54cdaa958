"""Tracking benchmark: our trackers vs. FiftyOne's built-in DeepSort, same detections.

Run: ``python bench/bench_tracking.py [--frames 400] [--people 20] [--rendered]``

(a) TUD-Campus / TUD-Stadtmitte (../shared/data/mot): the CEM tracker's boxes
    (``test.txt``) with their ids removed are tracked again (motion only, no
    frames are available) and scored against ``gt.txt``.
(b) A synthetic crowd: ``--people`` walkers on straight and diagonal paths in
    both directions, so that many cross; detections are the ground truth
    jittered (2 % of the height), 10 % dropped at random, people less than 25 %
    visible behind others dropped, plus ~1 false positive per frame.
    Appearance features are simulated: a random unit identity vector per
    person plus noise, mixed with the occluder's vector in proportion to the
    occluded area. With ``--rendered`` and :mod:`fiftyone_posetrack.synth`
    available, the crowd is rendered instead and the features come from our
    default MobileNetV2 embedder on the real frames.
(c) Association speed at 50 tracks, motion only, on one core.

The baseline is ``fiftyone.utils.tracking.DeepSort``: it builds
``deep_sort_realtime.DeepSort(max_age=5)`` and feeds it
``([left, top, w, h], confidence, label)`` tuples frame by frame, keeping the
confirmed tracks' ``to_ltrb()`` boxes. FiftyOne's wrapper needs a video
dataset and its default embedder needs torchvision (which does not import
here), so the bench makes exactly the same calls with ``embedder=None`` and
passes the same appearance features our trackers get (``embeds=``); motion-only
runs pass one constant feature to every box.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy loads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from fiftyone_posetrack.formats.mot import read_mot  # noqa: E402
from fiftyone_posetrack.tracking import make_tracker  # noqa: E402
from fiftyone_posetrack.tracking.run import check_mot_detections, track_mot_array  # noqa: E402
from fiftyone_posetrack.tracking.tune import evaluate  # noqa: E402
from fiftyone_posetrack.types import xywh_to_xyxy  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"


# -- synthetic crowd ---------------------------------------------------------


def crowd_trajectories(people=20, frames=400, width=1920, height=1080, seed=0):
    """Ground-truth boxes ``(F, P, 4)`` xyxy (NaN when out of view) of walkers.

    Walkers enter from the left or right edge at random times and walk across
    at 1-3 % of the frame width per second-ish, nearly horizontally (a quarter
    diagonally), with a slow random drift; box height grows with the image row
    (perspective) and the box width is 0.4 x height.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    direction = rng.choice([-1.0, 1.0], people)
    row0 = rng.uniform(0.45, 0.95, people) * height  # feet row
    diag = rng.random(people) < 0.25
    row1 = np.where(diag, rng.uniform(0.45, 0.95, people) * height, row0 + rng.normal(0, 0.02 * height, people))
    speed = rng.uniform(2.5, 6.0, people)  # px / frame at the bottom row
    start = rng.uniform(-0.3 * frames, 0.8 * frames, people)
    walked = np.clip(t - start, 0, None) * speed  # (F, P)
    length = width + 200.0
    u = np.clip(walked / length, 0, 1)
    feet_y = row0 + (row1 - row0) * u + np.cumsum(rng.normal(0, 0.3, (frames, people)), axis=0)
    h = 80 + 260 * (feet_y / height - 0.4) / 0.6
    cx = np.where(direction > 0, -100 + walked * h / 340, width + 100 - walked * h / 340)
    boxes = np.stack([cx - 0.2 * h, feet_y - h, cx + 0.2 * h, feet_y], axis=2)
    inside = (t >= start) & (boxes[..., 2] > 0) & (boxes[..., 0] < width)
    boxes[~inside] = np.nan
    return boxes


def _visibility(boxes: np.ndarray) -> np.ndarray:
    """Fraction of each box not covered by the nearest box in front (larger y2)."""
    valid = np.isfinite(boxes[:, 0])
    b = np.where(valid[:, None], boxes, 0.0)
    iw = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    cover = iw * ih / np.maximum(area[:, None], 1e-9)  # cover[i, j]: part of i covered by j
    front = (b[None, :, 3] > b[:, None, 3]) & valid[None, :] & valid[:, None]
    cover = np.where(front, cover, 0.0)
    return 1.0 - cover.max(axis=1, initial=0.0), cover.argmax(axis=1)


def crowd_detections(boxes, dim=128, drop=0.1, fp_rate=1.0, jitter=0.02, noise=0.5, seed=1, mix=True):
    """Detections and appearance features from ground-truth boxes.

    Returns:
        ``(gt, dets, feats)``: MOT gt array, MOT detection array (ids -1) and
        ``{frame: (n, dim)}`` simulated features in detection row order
    """
    rng = np.random.default_rng(seed)
    frames, people, _ = boxes.shape
    ident = rng.normal(size=(people, dim))
    ident /= np.linalg.norm(ident, axis=1, keepdims=True)
    gt, dets, feats = [], [], {}
    for f in range(frames):
        vis, occluder = _visibility(boxes[f])
        ids = np.flatnonzero(np.isfinite(boxes[f, :, 0]))
        xywh = boxes[f, ids].copy()
        xywh[:, 2:] -= xywh[:, :2]
        gt.append(np.column_stack([np.full(len(ids), f + 1), ids + 1, xywh, np.ones(len(ids)),
                                   np.ones(len(ids)), vis[ids]]))  # fmt: skip
        keep = ids[(rng.random(len(ids)) >= drop) & (vis[ids] >= 0.25)]
        b = boxes[f, keep]
        h = (b[:, 3] - b[:, 1])[:, None]
        b = b + rng.normal(0, jitter, b.shape) * h
        occ = (1 - vis[keep])[:, None] * mix
        emb = (1 - occ) * ident[keep] + occ * ident[occluder[keep]] + noise * rng.normal(size=(len(keep), dim)) / np.sqrt(dim)
        n_fp = rng.poisson(fp_rate)
        fh = rng.uniform(80, 340, n_fp)[:, None]
        fxy = rng.uniform([0, 0], [1920, 1080], (n_fp, 2))
        fp = np.concatenate([fxy - [0.2, 0.5] * fh, fxy + [0.2, 0.5] * fh], axis=1)
        all_b = np.concatenate([b, fp])
        scores = np.concatenate([rng.uniform(0.5, 1.0, len(keep)), rng.uniform(0.1, 0.65, n_fp)])
        all_e = np.concatenate([emb, rng.normal(size=(n_fp, dim))])
        feats[f + 1] = (all_e / np.linalg.norm(all_e, axis=1, keepdims=True)).astype(np.float32)
        xywh = all_b.copy()
        xywh[:, 2:] -= xywh[:, :2]
        dets.append(np.column_stack([np.full(len(all_b), f + 1), -np.ones(len(all_b)), xywh, scores]))
    return np.concatenate(gt), np.concatenate(dets), feats


def rendered_crowd(people, frames, workdir):
    """Rendered synthetic crowd (fiftyone_posetrack.synth) with MobileNetV2 features."""
    from fiftyone_posetrack.reid import make_embedder
    from fiftyone_posetrack.synth import render_crowd
    from fiftyone_posetrack.tracking.run import embed_mot_detections

    res = render_crowd(workdir, people=people, frames=frames, width=960, height=540, seed=0, overwrite=True)
    gt = read_mot(res.gt_path)
    rng = np.random.default_rng(1)
    vis_ok = gt[:, 8] >= 0.25
    keep = vis_ok & (rng.random(len(gt)) >= 0.1)
    dets = gt[keep].copy()
    dets[:, 1] = -1
    dets[:, 2:4] += rng.normal(0, 0.02, (len(dets), 2)) * dets[:, 5:6]
    dets[:, 6] = rng.uniform(0.5, 1.0, len(dets))
    print(f"embedding {len(dets)} boxes of the rendered crowd with MobileNetV2 ...", flush=True)
    feats = embed_mot_detections(dets, res.video_path, make_embedder("mobilenet", device="cpu"))
    return gt, dets, feats


# -- trackers -----------------------------------------------------------------


def run_builtin(dets: np.ndarray, feats: dict | None, max_age: int = 5) -> tuple[np.ndarray, float]:
    """FiftyOne's built-in DeepSort calls on a MOT array; returns (results, seconds)."""
    logging.getLogger("deep_sort_realtime").setLevel(logging.WARNING)
    from deep_sort_realtime.deepsort_tracker import DeepSort as DSRT

    dets = check_mot_detections(dets)
    last = int(dets[:, 0].max())
    bounds = np.searchsorted(dets[:, 0], np.arange(1, last + 2))
    tracker = DSRT(max_age=max_age, embedder=None)
    out, elapsed = [], 0.0
    const = np.ones(8, dtype=np.float32) / np.sqrt(8)
    for f in range(1, last + 1):
        rows = dets[bounds[f - 1] : bounds[f]]
        bbs = [(list(r[2:6]), float(r[6]), "person") for r in rows]
        emb = [const] * len(rows) if feats is None else list(feats.get(f, []))
        t0 = time.perf_counter()
        tracks = tracker.update_tracks(bbs, embeds=emb)
        elapsed += time.perf_counter() - t0
        for tr in tracks:
            if not tr.is_confirmed():
                continue
            x1, y1, x2, y2 = tr.to_ltrb()
            out.append([f, int(tr.track_id), x1, y1, x2 - x1, y2 - y1, 1, -1, -1, -1])
    return np.asarray(out).reshape(-1, 10), elapsed


def run_ours(name, dets, feats, use_features=True, **params) -> tuple[np.ndarray, float]:
    feats = feats if use_features else None
    t0 = time.perf_counter()
    res = track_mot_array(dets, make_tracker(name, **params), embeddings=feats)
    return res, time.perf_counter() - t0


def table(title, gt, dets, feats, configs, n_frames):
    print(f"\n## {title}\n")
    print(f"| tracker | IDF1 | MOTA | ID sw | frames/s | IDF1 ratio | speed ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    res, secs = run_builtin(dets, feats)
    base = evaluate(gt, res)
    base_fps = n_frames / secs
    rows = [("FiftyOne DeepSort (built-in)", base, base_fps)]
    for label, name, params in configs:
        res, secs = run_ours(name, dets, feats, **params)
        rows.append((label, evaluate(gt, res), n_frames / secs))
    for label, m, fps in rows:
        print(f"| {label} | {m['idf1']:.3f} | {m['mota']:.3f} | {m['idsw']} | {fps:,.0f} | "
              f"{m['idf1'] / max(base['idf1'], 1e-9):.2f}x | {fps / base_fps:.1f}x |")  # fmt: skip
    return rows


def speed_50(frames=300):
    """Motion-only association speed with ~50 live tracks, one core."""
    boxes = crowd_trajectories(people=50, frames=frames + 100, seed=3)[100:]
    # keep everyone in view: a static crowd of 50 drifting boxes is the worst case
    gt, dets, _ = crowd_detections(boxes, drop=0.0, fp_rate=0.0, seed=4)
    live = np.bincount(gt[:, 0].astype(int)).max()
    print(f"\n## Association speed, motion only, up to {live} people in view, {frames} frames, 1 core\n")
    print("| tracker | frames/s | ms / frame | ratio to built-in |")
    print("| --- | --- | --- | --- |")
    _, secs = run_builtin(dets, None)
    base = frames / secs
    print(f"| FiftyOne DeepSort (built-in) | {base:,.0f} | {1000 / base:.2f} | 1.0x |")
    for name in ("deepsort", "bytetrack", "sort"):
        best = min(run_ours(name, dets, None)[1] for _ in range(3))
        print(f"| {name} | {frames / best:,.0f} | {1000 * best / frames:.2f} | {frames / best / base:.1f}x |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--people", type=int, default=20)
    ap.add_argument("--rendered", action="store_true", help="render the crowd with fiftyone_posetrack.synth")
    args = ap.parse_args(argv)

    motion = [("ours deepsort (motion)", "deepsort", {}), ("ours bytetrack", "bytetrack", {}),
              ("ours sort", "sort", {})]  # fmt: skip
    if (SHARED / "data/mot/TUD-Campus/gt.txt").is_file():
        for seq in ("TUD-Campus", "TUD-Stadtmitte"):
            gt = read_mot(SHARED / f"data/mot/{seq}/gt.txt")
            det = read_mot(SHARED / f"data/mot/{seq}/test.txt")
            cem = evaluate(gt, det)
            print(f"\n(CEM tracker's own ids on {seq}: IDF1 {cem['idf1']:.3f}, MOTA {cem['mota']:.3f})")
            table(f"{seq}: re-tracking test.txt without ids", gt, det, None, motion, int(det[:, 0].max()))
    else:
        print(f"skipping TUD: {SHARED}/data/mot is absent", file=sys.stderr)

    appearance = [("ours deepsort", "deepsort", {}), ("ours bytetrack (+appearance)", "bytetrack", {}),
                  ("ours bytetrack + ORU", "bytetrack", {"oru": True}),
                  ("ours deepsort, motion only", "deepsort", {"use_features": False}),
                  ("ours sort (motion only)", "sort", {})]  # fmt: skip
    gt = dets = feats = None
    if args.rendered:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                gt, dets, feats = rendered_crowd(args.people, args.frames, tmp)
            title = f"Rendered synthetic crowd ({args.people} people, MobileNetV2 features)"
        except ImportError as e:
            print(f"synth unavailable ({e}); using numpy trajectories", file=sys.stderr)
    if gt is None:
        boxes = crowd_trajectories(args.people, args.frames)
        gt, dets, feats = crowd_detections(boxes)
        title = f"Synthetic crowd ({args.people} people, simulated 128-d features)"
    crossings = _count_crossings(gt)
    print(f"\n{title}: {len(np.unique(gt[:, 1]))} ids, {crossings} crossing pairs (IoU > 0.3)")
    table(title, gt, dets, feats, appearance, int(gt[:, 0].max()))
    speed_50()
    return 0


def _count_crossings(gt: np.ndarray) -> int:
    from fiftyone_posetrack.tracking.matching import iou_matrix

    pairs = set()
    for f in np.unique(gt[:, 0]):
        rows = gt[gt[:, 0] == f]
        iou = iou_matrix(xywh_to_xyxy(rows[:, 2:6]), xywh_to_xyxy(rows[:, 2:6]))
        i, j = np.nonzero(np.triu(iou > 0.3, 1))
        pairs.update(zip(rows[i, 1].astype(int), rows[j, 1].astype(int)))
    return len(pairs)


if __name__ == "__main__":
    sys.exit(main())
