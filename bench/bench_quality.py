"""Track-quality flags against ground truth: do the flagged frames hold the real tracking errors?

Run: ``python bench/bench_quality.py [--sets synth,mot17,dancetrack] [--share 0.05] [--synth-frames 300]
[--low-conf-seconds S]``

Each set is tracked motion only with the ``track-mot`` default tracker preset
(:data:`~fiftyone_posetrack.tracking.presets.DEFAULT_TRACKER_PRESET`) from its detections, scored with
:func:`fiftyone_posetrack.tracking.quality.score_mot_tracks` (no ground
truth), and the ground truth is then used only to count:

- true ID switches: CLEAR-MOT's (TrackEval matching, IoU 0.5,
  :func:`fiftyone_posetrack.eval.mot.match_mot_arrays`), each at the frame
  where the ground-truth person is matched to a new track id;
- true fragmentations: a ground-truth person tracked again after frames
  where it was present but untracked, at the frame it is tracked again.

Recall: the share of those events within the score's window (0.25 s: 5
frames at 20 fps, 6 at 25, 8 at 30) of one of the top flagged frames, the
``--share`` of each sequence's frames a user sorting by score looks at first
(:func:`~fiftyone_posetrack.tracking.quality.top_frames`: best first, one per
window). Precision: the share of those top frames with a true ID switch within
the window. Counts are pooled over a set's sequences.

Sets (``../shared``, motion only, no images):

- ``synth``: a rendered crowd's ground truth (:mod:`fiftyone_posetrack.synth`,
  25 fps) with detections simulated as in ``bench_tracking.py`` (2 %
  jitter, 10 % dropped, boxes < 25 % visible dropped, ~1 FP per frame);
- ``mot17``: MOT17 half-val (4 sequences, YOLOX-X ablation detections);
- ``dancetrack``: DanceTrack val dev (13 sequences, published detections).

The last line is the DanceTrack set's (or the last set run):
``quality: ID-switch recall in top-5% flagged frames X.XX, precision Y.YY``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import configparser  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from fiftyone_posetrack.eval.mot import match_mot_arrays  # noqa: E402
from fiftyone_posetrack.formats.mot import read_mot  # noqa: E402
from fiftyone_posetrack.tracking import make_tracker  # noqa: E402
from fiftyone_posetrack.tracking.postprocess import postprocess_tracks  # noqa: E402
from fiftyone_posetrack.tracking.presets import DEFAULT_TRACKER_PRESET, load_tracker_preset  # noqa: E402
from fiftyone_posetrack.tracking.quality import QualityConfig, score_mot_tracks, top_frames  # noqa: E402
from fiftyone_posetrack.tracking.run import track_mot_array  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
SETS = {"mot17": SHARED / "data" / "mot17-halfval", "dancetrack": SHARED / "data" / "dancetrack-val-dev"}


def _fps(seq: pathlib.Path) -> float:
    ini = configparser.ConfigParser()
    ini.read(seq / "seqinfo.ini")
    return float(ini["Sequence"]["frameRate"])


def load_set(name: str, synth_frames: int = 300) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """``{sequence: (gt, detections, fps)}`` of one set."""
    if name == "synth":
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
        from bench_tracking import crowd_detections, synth_crowd

        out = {}
        for seed, people in ((0, 14), (1, 20)):
            with tempfile.TemporaryDirectory() as tmp:
                from fiftyone_posetrack.synth import render_crowd

                res = render_crowd(tmp, people=people, frames=synth_frames, width=960, height=540, seed=seed,
                                   overwrite=True)  # fmt: skip
                gt = read_mot(res.gt_path)
            gt, dets, _ = crowd_detections(gt, width=960, height=540, seed=seed + 1)
            out[f"synth-{people}p-seed{seed}"] = (gt, dets, 25.0)
        del synth_crowd
        return out
    root = SETS[name]
    if not root.is_dir():
        raise SystemExit(f"{root} is absent: the {name} set needs ../shared")
    return {
        s.name: (read_mot(s / "gt" / "gt.txt"), read_mot(s / "det" / "det.txt"), _fps(s))
        for s in sorted(root.iterdir())
        if (s / "det" / "det.txt").is_file()
    }


def true_events(gt: np.ndarray, res: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame numbers of the true ID switches and of the true fragmentations (one entry per event)."""
    m = match_mot_arrays(gt, res)
    switches = m.gt_frames[m.gt_status == "switch"]
    frags = []
    present = m.gt_status != "ignored"
    ids = gt[:, 1].astype(np.int64)
    for g in np.unique(ids[present]):
        rows = np.flatnonzero(present & (ids == g))
        rows = rows[np.argsort(m.gt_frames[rows])]
        tracked = m.gt_match[rows] >= 0
        seen = np.flatnonzero(tracked)
        if len(seen) < 2:
            continue
        again = np.flatnonzero(tracked[1:] & ~tracked[:-1]) + 1
        frags.extend(m.gt_frames[rows[again[again > seen[0]]]].tolist())
    return switches, np.array(frags, dtype=np.int64)


def track(dets: np.ndarray, preset: dict) -> np.ndarray:
    res = track_mot_array(dets, make_tracker(preset["tracker"], **preset["params"]))
    return postprocess_tracks(res, preset["postprocess"]) if preset.get("postprocess") else res


def measure(data, share: float, config: QualityConfig | None = None, tracked: dict | None = None) -> dict:
    preset = load_tracker_preset(DEFAULT_TRACKER_PRESET)
    tot = dict(sw=0, sw_hit=0, fr=0, fr_hit=0, top=0, top_sw=0, top_any=0, frames=0)
    for name, (gt, dets, fps) in data.items():
        res = tracked[name] if tracked is not None and name in tracked else track(dets, preset)
        if tracked is not None:
            tracked[name] = res
        q = score_mot_tracks(res, fps, config)
        top = top_frames(q, share)
        sw, fr = true_events(gt, res)

        def near(a, b):  # a's entries within the window of one of b's
            return np.abs(a[:, None] - b[None]).min(axis=1) <= q.window if len(a) and len(b) else np.zeros(len(a), bool)

        tot["sw"] += len(sw)
        tot["sw_hit"] += int(near(sw, top).sum())
        tot["fr"] += len(fr)
        tot["fr_hit"] += int(near(fr, top).sum())
        tot["top"] += len(top)
        tot["top_sw"] += int(near(top, sw).sum())
        tot["top_any"] += int(near(top, np.concatenate([sw, fr])).sum())
        tot["frames"] += len(q.frames)
    tot["recall"] = tot["sw_hit"] / max(tot["sw"], 1)
    tot["frag_recall"] = tot["fr_hit"] / max(tot["fr"], 1)
    tot["precision"] = tot["top_sw"] / max(tot["top"], 1)
    tot["precision_any"] = tot["top_any"] / max(tot["top"], 1)
    return tot


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="synth,mot17,dancetrack")
    ap.add_argument("--share", type=float, default=0.05, help="share of each sequence's frames looked at")
    ap.add_argument("--synth-frames", type=int, default=300)
    ap.add_argument("--low-conf-seconds", type=float, help="QualityConfig.low_conf_seconds (default: its default)")
    args = ap.parse_args(argv)
    config = QualityConfig() if args.low_conf_seconds is None else QualityConfig(low_conf_seconds=args.low_conf_seconds)
    pct = f"{100 * args.share:g}%"
    print(f"| set | sequences | frames | top-{pct} frames | ID switches | recall | fragmentations | recall | "
          "precision (ID sw.) | precision (ID sw. or frag.) | seconds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    last = None
    for name in args.sets.split(","):
        start = time.time()
        data = load_set(name, args.synth_frames)
        r = measure(data, args.share, config)
        print(f"| {name} | {len(data)} | {r['frames']} | {r['top']} | {r['sw']} | {r['recall']:.2f} | {r['fr']} | "
              f"{r['frag_recall']:.2f} | {r['precision']:.2f} | {r['precision_any']:.2f} | {time.time() - start:.0f} |",
              flush=True)  # fmt: skip
        last = (name, r)
    name, r = last
    print(f"({name})")
    print(f"quality: ID-switch recall in top-{pct} flagged frames {r['recall']:.2f}, precision {r['precision']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
