"""Tracking benchmark: our trackers vs. FiftyOne's built-in DeepSort, same detections.

Run: ``python bench/bench_tracking.py [--frames 400] [--people 20] [--crowd auto|synth|numpy]
[--appearance sim|mobilenet] [--cache FEATS.npz]``

(a) TUD-Campus / TUD-Stadtmitte (../shared/data/mot): the CEM tracker's boxes
    (``test.txt``) with their ids removed are tracked again (motion only, no
    frames are available) and scored against ``gt.txt``.
(b) A synthetic crowd: the ground truth of a rendered crowd from
    :mod:`fiftyone_posetrack.synth` (``render_crowd``: walkers crossing in both
    directions, exact mask visibilities), or, without it, ``--people`` walkers
    from a numpy motion model. Detections are the ground truth jittered (2 % of
    the height), 10 % dropped at random, boxes less than 25 % visible dropped,
    plus ~1 false positive per frame. Appearance features are simulated: a
    random unit identity vector per person plus noise, mixed with the main
    occluder's vector in proportion to the hidden area; with ``--appearance
    mobilenet`` they come from our default MobileNetV2 embedder run on the
    rendered frames instead.
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
from fiftyone_posetrack.tracking.run import check_mot_detections  # noqa: E402
from fiftyone_posetrack.tracking.tune import evaluate  # noqa: E402
from fiftyone_posetrack.types import FrameDetections, xywh_to_xyxy, xyxy_to_xywh  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"


# -- synthetic crowd ---------------------------------------------------------


def numpy_crowd(people=20, frames=400, width=1920, height=1080, seed=0) -> np.ndarray:
    """Ground truth of walkers from a simple motion model, as a MOT gt array.

    Walkers enter from the left or right edge at random times and walk across,
    nearly horizontally (a quarter diagonally), with a slow random drift; the
    box height grows with the image row (perspective), the width is 0.4 x the
    height. The visibility column is left at 1 (computed from the boxes later).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    direction = rng.choice([-1.0, 1.0], people)
    row0 = rng.uniform(0.45, 0.95, people) * height  # feet row
    diag = rng.random(people) < 0.25
    row1 = np.where(diag, rng.uniform(0.45, 0.95, people) * height,
                    row0 + rng.normal(0, 0.02 * height, people))  # fmt: skip
    speed = rng.uniform(2.5, 6.0, people)  # px / frame at the bottom row
    start = rng.uniform(-0.3 * frames, 0.8 * frames, people)
    walked = np.clip(t - start, 0, None) * speed  # (F, P)
    u = np.clip(walked / (width + 200.0), 0, 1)
    feet_y = row0 + (row1 - row0) * u + np.cumsum(rng.normal(0, 0.3, (frames, people)), axis=0)
    h = 80 + 260 * (feet_y / height - 0.4) / 0.6
    cx = np.where(direction > 0, -100 + walked * h / 340, width + 100 - walked * h / 340)
    inside = (t >= start) & (cx + 0.2 * h > 0) & (cx - 0.2 * h < width)
    f, p = np.nonzero(inside)
    hh = h[f, p]
    return np.column_stack([f + 1, p + 1, cx[f, p] - 0.2 * hh, feet_y[f, p] - hh, 0.4 * hh, hh,
                            np.ones((len(f), 3))])  # fmt: skip


def synth_crowd(people, frames, workdir):
    """Ground truth (and video) of a rendered crowd from :mod:`fiftyone_posetrack.synth`."""
    from fiftyone_posetrack.synth import render_crowd

    res = render_crowd(workdir, people=people, frames=frames, width=960, height=540, seed=0,
                       overwrite=True)  # fmt: skip
    return read_mot(res.gt_path), res.video_path


def _cover(xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per box: fraction not covered by the boxes in front (larger y2), main occluder."""
    a, b = xyxy[:, None], xyxy[None, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    cover = np.where(b[..., 3] > a[..., 3], iw * ih / np.maximum(area[:, None], 1e-9), 0.0)
    return 1.0 - cover.max(axis=1, initial=0.0), cover.argmax(axis=1)


def crowd_detections(gt, width=1920, height=1080, dim=128, drop=0.1, fp_rate=1.0, jitter=0.02,
                     noise=0.5, min_vis=0.25, seed=1):  # fmt: skip
    """Detections and simulated appearance features from a MOT ground truth.

    Each gt box is detected unless dropped at random (``drop``) or less than
    ``min_vis`` visible (gt visibility column, else computed from the boxes);
    corners are jittered by ``jitter`` x height; ~``fp_rate`` false positives
    per frame are added. Features: a random unit identity vector per person,
    mixed with its main occluder's in proportion to the hidden area, plus noise.

    Returns:
        ``(gt, dets, feats)``: gt with the visibility used, MOT detections (ids
        -1) and ``{frame: (n, dim)}`` L2-normalized features in row order
    """
    rng = np.random.default_rng(seed)
    gt = gt[np.argsort(gt[:, 0], kind="stable")].copy()
    ids = gt[:, 1].astype(int)
    ident = rng.normal(size=(ids.max() + 1, dim))
    ident /= np.linalg.norm(ident, axis=1, keepdims=True)
    has_vis = (gt[:, 8] >= 0).all() and (gt[:, 8] < 1).any()
    dets, feats = [], {}
    bounds = np.searchsorted(gt[:, 0], np.arange(1, int(gt[:, 0].max()) + 2))
    for f in range(1, len(bounds)):
        sl = slice(bounds[f - 1], bounds[f])
        xyxy = xywh_to_xyxy(gt[sl, 2:6])
        vis, occluder = _cover(xyxy)
        if has_vis:
            vis = gt[sl, 8]
        gt[sl, 8] = vis
        keep = np.flatnonzero((rng.random(len(xyxy)) >= drop) & (vis >= min_vis))
        b = xyxy[keep] + rng.normal(0, jitter, (len(keep), 4)) * (xyxy[keep, 3:] - xyxy[keep, 1:2])
        occ = (1 - vis[keep])[:, None]
        own, other = ident[ids[sl][keep]], ident[ids[sl][occluder[keep]]]
        emb = (1 - occ) * own + occ * other + noise * rng.normal(size=(len(keep), dim)) / np.sqrt(dim)
        n_fp = rng.poisson(fp_rate)
        fh = rng.uniform(0.07, 0.3, (n_fp, 1)) * height
        fxy = rng.uniform([0, 0], [width, height], (n_fp, 2))
        b = np.concatenate([b, np.concatenate([fxy - [0.2, 0.5] * fh, fxy + [0.2, 0.5] * fh], axis=1)])
        scores = np.concatenate([rng.uniform(0.5, 1.0, len(keep)), rng.uniform(0.1, 0.65, n_fp)])
        emb = np.concatenate([emb, rng.normal(size=(n_fp, dim))])
        feats[f] = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
        dets.append(np.column_stack([np.full(len(b), f), -np.ones(len(b)), xyxy_to_xywh(b), scores]))
    return gt, np.concatenate(dets), feats


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
    """Our tracker on pre-built per-frame inputs; only ``update`` calls are timed."""
    dets = check_mot_detections(dets)
    last = int(dets[:, 0].max())
    bounds = np.searchsorted(dets[:, 0], np.arange(1, last + 2))
    inputs = []
    for f in range(1, last + 1):
        rows = dets[bounds[f - 1] : bounds[f]]
        emb = feats.get(f) if (feats is not None and use_features and len(rows)) else None
        inputs.append(FrameDetections(xywh_to_xyxy(rows[:, 2:6]), rows[:, 6], emb))
    tracker = make_tracker(name, **params)
    outputs = []
    t0 = time.perf_counter()
    for d in inputs:
        outputs.append(tracker.update(d))
    elapsed = time.perf_counter() - t0
    out = [np.column_stack([np.full(len(o), f), o.track_ids, xyxy_to_xywh(o.boxes), o.scores])
           for f, o in enumerate(outputs, 1) if len(o)]  # fmt: skip
    return (np.concatenate(out) if out else np.zeros((0, 7))), elapsed


def table(title, gt, dets, feats, configs, n_frames):
    print(f"\n## {title}\n")
    print("| tracker | IDF1 | MOTA | ID sw | frames/s | IDF1 ratio | speed ratio |")
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


def busy_crowd(people=50, frames=300, width=1920, height=1080, seed=3) -> np.ndarray:
    """``people`` walkers all in view all the time (wandering, bouncing off the edges)."""
    rng = np.random.default_rng(seed)
    h = rng.uniform(90, 220, people)
    size = np.stack([0.4 * h, h], axis=1)
    hi = np.array([width, height]) - size
    pos = rng.uniform(0, 1, (people, 2)) * hi
    vel = rng.normal(0, 2.0, (people, 2))
    rows = []
    for f in range(1, frames + 1):
        vel += rng.normal(0, 0.2, vel.shape)
        pos += vel
        vel = np.where((pos < 0) | (pos > hi), -vel, vel)
        pos = np.clip(pos, 0, hi)
        rows.append(np.column_stack([np.full(people, f), np.arange(1, people + 1), pos, size,
                                     np.ones((people, 3))]))  # fmt: skip
    return np.concatenate(rows)


def speed_50(frames=300):
    """Motion-only association speed with 50 live tracks, one core."""
    _, dets, _ = crowd_detections(busy_crowd(50, frames), drop=0.0, fp_rate=0.0, min_vis=0.0, seed=4)
    print(f"\n## Association speed, motion only, 50 people in view, {frames} frames, 1 core\n")
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
    ap.add_argument("--crowd", choices=("auto", "synth", "numpy"), default="auto",
                    help="ground truth from fiftyone_posetrack.synth (auto: when importable) or numpy")
    ap.add_argument("--appearance", choices=("sim", "mobilenet"), default="sim",
                    help="simulated features, or MobileNetV2 on the rendered frames (synth only)")
    ap.add_argument("--cache", help="with --appearance mobilenet: .npz file to reuse the features from")
    args = ap.parse_args(argv)  # fmt: skip

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

    with tempfile.TemporaryDirectory() as tmp:
        gt, video, size = None, None, (1920, 1080)
        if args.crowd in ("auto", "synth"):
            try:
                gt, video = synth_crowd(args.people, args.frames, tmp)
                size, source = (960, 540), "fiftyone_posetrack.synth gt.txt"
            except ImportError as e:
                if args.crowd == "synth":
                    raise
                print(f"synth unavailable ({e}); using numpy trajectories", file=sys.stderr)
        if gt is None:
            gt, source = numpy_crowd(args.people, args.frames), "numpy trajectories"
        gt, dets, feats = crowd_detections(gt, *size)
        kind = "simulated 128-d features"
        if args.appearance == "mobilenet":
            if video is None:
                raise SystemExit("--appearance mobilenet needs the rendered synth video")
            from fiftyone_posetrack.reid import make_embedder
            from fiftyone_posetrack.tracking.run import embed_mot_detections

            cache = pathlib.Path(args.cache) if args.cache else None
            if cache is not None and cache.is_file():
                with np.load(cache) as z:
                    feats = {int(k): z[k] for k in z.files}
                print(f"features from {cache}")
            else:
                print(f"embedding {len(dets)} boxes with MobileNetV2 ...", flush=True)
                t0 = time.perf_counter()
                feats = embed_mot_detections(dets, video, make_embedder("mobilenet", device="cpu"))
                print(f"({len(dets) / (time.perf_counter() - t0):.1f} boxes/s)")
                if cache is not None:
                    np.savez(cache, **{str(k): v for k, v in feats.items()})
            kind = "MobileNetV2 features of the rendered frames"
    appearance = [("ours deepsort", "deepsort", {}),
                  ("ours deepsort, MobileNet-tuned (max_cos 0.2, max_age 5)", "deepsort",
                   {"max_cosine_distance": 0.2, "max_age": 5}),
                  ("ours bytetrack (+appearance)", "bytetrack", {}),
                  ("ours bytetrack + ORU", "bytetrack", {"oru": True}),
                  ("ours bytetrack, output_missed=3", "bytetrack", {"output_missed": 3}),
                  ("ours deepsort, motion only", "deepsort", {"use_features": False}),
                  ("ours sort (motion only)", "sort", {})]  # fmt: skip
    title = f"Synthetic crowd: {source}, {args.people} people, {args.frames} frames, {kind}"
    hidden = np.mean(gt[:, 8] < 0.25)
    print(f"\n{title}: {len(np.unique(gt[:, 1]))} ids, {_count_crossings(gt)} crossing pairs "
          f"(IoU > 0.3), {hidden:.0%} of gt boxes < 25 % visible (never detected)")  # fmt: skip
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
