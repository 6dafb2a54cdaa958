"""MOT17 half-val benchmark: our trackers on the detections published trackers report on.

Run: ``python bench/bench_mot17.py [--configs NAME,...] [--sequences MOT17-02,...] [--per-sequence]``

Input (``../shared``, motion only, no images):

- ``data/mot17-halfval/MOT17-{02,04,05,09}``: the second halves of four MOT17
  training sequences (ByteTrack / OC-SORT / mmtracking "half-val" split) with
  the boxes of ByteTrack's YOLOX-X ablation detector (scores >= 0.01) and the
  official ground truth;
- ``data/mot/TUD-Campus``: the MOT15 public-detection protocol: the official
  ACF boxes (``det/det.txt``) tracked and scored against ``gt.txt``. ACF scores
  are not probabilities (0.09 ... 118): they are clipped to 1, so every
  threshold below 1 keeps nearly all of them. Never used for tuning.

Evaluation is MOTChallenge's (TrackEval's MOT17 preprocessing: pedestrians
only, predictions on distractor classes removed, zero-marked gt ignored; CLEAR
matching as TrackEval), :func:`fiftyone_posetrack.eval.mot.evaluate_mot_sequences`.
Every configuration uses one parameter set for all sequences. Ratios are
against the baseline (``bytetrack`` with its defaults) measured in the same run.

Published anchors, all 7 half-val sequences, same detector (compare like with
like: these 4 are a subset): mmtracking ByteTrack HOTA 67.7 / MOTA 78.6 /
IDF1 79.2; mmtracking OC-SORT 67.5 / 77.8 / 78.4; ByteTrack paper (BYTE) MOTA
76.6 / IDF1 79.3. On these 4 sequences before this bench: our ``bytetrack``
defaults HOTA 70.4 / MOTA 79.6 / IDF1 82.1 (issue 12).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy loads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from fiftyone_posetrack.eval.mot import evaluate_mot_sequences  # noqa: E402
from fiftyone_posetrack.formats.mot import read_mot  # noqa: E402
from fiftyone_posetrack.tracking import make_tracker  # noqa: E402
from fiftyone_posetrack.tracking.postprocess import postprocess_tracks  # noqa: E402
from fiftyone_posetrack.tracking.presets import DEFAULT_TRACKER_PRESET, load_tracker_preset  # noqa: E402
from fiftyone_posetrack.tracking.run import track_mot_array  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
HALFVAL = SHARED / "data" / "mot17-halfval"
TUD = SHARED / "data" / "mot" / "TUD-Campus"
SEQUENCES = ("MOT17-02", "MOT17-04", "MOT17-05", "MOT17-09")
TARGET = {"hota": 0.720, "idf1": 0.840, "mota": 0.796}

ANCHORS = """\
Published (all 7 MOT17 half-val sequences, YOLOX-X ablation detections):
  mmtracking ByteTrack  HOTA 67.7  MOTA 78.6  IDF1 79.2
  mmtracking OC-SORT    HOTA 67.5  MOTA 77.8  IDF1 78.4
  ByteTrack paper BYTE             MOTA 76.6  IDF1 79.3
Target on these 4 sequences (issue 12): HOTA >= 72.0, IDF1 >= 84.0, MOTA >= 79.6"""


def configurations() -> dict[str, tuple[str, dict, dict | None]]:
    """``{label: (tracker, params, postprocess options or None)}``; the first is the baseline."""
    preset = load_tracker_preset(DEFAULT_TRACKER_PRESET)
    post = preset["postprocess"]
    return {
        "bytetrack": ("bytetrack", {}, None),
        "deepsort-ms0.6": ("deepsort", {"min_score": 0.6}, None),
        "sort-ms0.5": ("sort", {"min_score": 0.5, "max_age": 30}, None),
        "deepsort": ("deepsort", {}, None),
        "ocsort": ("ocsort", {}, None),
        "ocsort+byte": ("ocsort", {"use_byte": True}, None),
        "bytetrack+oru": ("bytetrack", {"oru": True}, None),
        "bytetrack+xywh": ("bytetrack", {"kalman": "xywh"}, None),
        "bytetrack+nsa": ("bytetrack", {"nsa": True}, None),
        "bytetrack+interp": ("bytetrack", {}, {"interpolate": 20}),
        "bytetrack+interp+gsi": ("bytetrack", {}, {"interpolate": 20, "gsi": True}),
        "ocsort+post": ("ocsort", {}, post),
        f"preset:{DEFAULT_TRACKER_PRESET}(no post)": (preset["tracker"], preset["params"], None),
        f"preset:{DEFAULT_TRACKER_PRESET}+link": (preset["tracker"], preset["params"], dict(post, link=True, link_max_distance=0.1, link_max_gap=120)),
        f"preset:{DEFAULT_TRACKER_PRESET}": (preset["tracker"], preset["params"], post),
    }  # fmt: skip


def load_halfval(names) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {s: (read_mot(HALFVAL / s / "gt" / "gt.txt"), read_mot(HALFVAL / s / "det" / "det.txt")) for s in names}


def load_tud() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    gt = read_mot(TUD / "gt.txt")
    gt[:, 7] = gt[:, 8] = -1.0  # MOT15: no classes
    det = read_mot(TUD / "det" / "det.txt")
    det[:, 6] = np.minimum(det[:, 6], 1.0)  # ACF scores are not probabilities
    return {"TUD-Campus": (gt, det)}


def run(data, tracker: str, params: dict, post: dict | None) -> tuple[dict, float]:
    """Tracks (and post-processes) every sequence; returns metrics and seconds."""
    seqs, start = {}, time.process_time()
    for name, (gt, det) in data.items():
        res = track_mot_array(det, make_tracker(tracker, **params))
        if post:
            res = postprocess_tracks(res, post)
        seqs[name] = (gt, res)
    seconds = time.process_time() - start
    return evaluate_mot_sequences(seqs), seconds


def _row(label: str, m: dict, base: dict | None = None) -> str:
    cells = [f"{100 * m[k]:.1f}" for k in ("hota", "mota", "idf1")] + [str(m[k]) for k in ("idsw", "fp", "fn")]
    if base is not None:
        cells.append(" / ".join(f"{m[k] / base[k]:.3f}" for k in ("hota", "mota", "idf1")))
    return f"| {label} | " + " | ".join(cells) + " |"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", help="comma-separated labels (default: all)")
    ap.add_argument("--sequences", default=",".join(SEQUENCES))
    ap.add_argument("--per-sequence", action="store_true", help="also print each sequence of each configuration")
    args = ap.parse_args(argv)
    if not HALFVAL.is_dir():
        print(f"skipped: {HALFVAL} is absent (../shared holds the MOT17 half-val data)")
        return 0
    configs = configurations()
    labels = list(configs)
    if args.configs:
        wanted = [c.strip() for c in args.configs.split(",")]
        unknown = sorted(set(wanted) - set(configs))
        if unknown:
            ap.error(f"unknown configuration(s) {unknown}; known: {labels}")
        labels = [labels[0]] + [c for c in wanted if c != labels[0]]  # the baseline always runs
    data = load_halfval(args.sequences.split(","))
    tud = load_tud() if TUD.is_dir() else None
    print(ANCHORS)
    print(f"\nSequences: {', '.join(data)} (combined = all events summed, HOTA by TrackEval's combine)")
    head = "| config | HOTA | MOTA | IDF1 | IDsw | FP | FN | HOTA / MOTA / IDF1 vs baseline |"
    rule = "|---|---|---|---|---|---|---|---|"
    results, tud_results = {}, {}
    for label in labels:
        tracker, params, post = configs[label]
        results[label], secs = run(data, tracker, params, post)
        if tud is not None:
            tud_results[label] = run(tud, tracker, params, post)[0]["OVERALL"]
        print(f"  {label}: {tracker} {params} post={post} ({secs:.1f} s CPU tracking + post-processing)",
              file=sys.stderr)  # fmt: skip
    base = results[labels[0]]["OVERALL"]
    print("\nMOT17 half-val, combined")
    print(head + "\n" + rule)
    for label in labels:
        print(_row(label, results[label]["OVERALL"], base))
    print("\nPer sequence")
    print("| config / sequence | HOTA | MOTA | IDF1 | IDsw | FP | FN |\n|---|---|---|---|---|---|---|")
    for label in labels if args.per_sequence else [labels[0], labels[-1]]:
        for seq in data:
            print(_row(f"{label} / {seq}", results[label][seq]))
    if tud_results:
        tb = tud_results[labels[0]]
        print("\nTUD-Campus public detections (ACF), same parameters, never tuned on")
        print(head + "\n" + rule)
        for label in labels:
            print(_row(label, tud_results[label], tb))
    best = results[labels[-1]]["OVERALL"]
    ok = all(best[k] >= v for k, v in TARGET.items())
    print(f"\n{labels[-1]}: HOTA {100 * best['hota']:.1f}, IDF1 {100 * best['idf1']:.1f}, "
          f"MOTA {100 * best['mota']:.1f} -> target {'MET' if ok else 'NOT met'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
