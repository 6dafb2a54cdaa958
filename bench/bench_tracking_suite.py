"""Tracking suite: every shared benchmark x (default, each tracker, each named preset).

Run: ``nice python bench/bench_tracking_suite.py [--jobs 2] [--benchmarks mot17,dancetrack,tud,crowd] [--per-sequence]
[--configs default,ocsort,...] [--no-loso] [--dancetrack 0004,0019,0034,0063] [--variants FILE.json]``

``--variants`` adds rows from a JSON file ``{label: [tracker, params, postprocess]}``
(``bench/tracking_variants.json`` holds the variants measured in ``docs/tracking.md``).

Cost (estimated from single-sequence timings): ~6 s CPU per row on MOT17, ~2 min on DanceTrack (13 sequences), a few s on
TUD and the crowd: ~25 CPU minutes in all, ~13 min wall on 2 idle cores (more than the 5 asked).

Benchmarks (motion only, no images; ``../shared`` must be there, else the
bench says so and exits 0):

- ``mot17``: MOT17 half-val 02/04/05/09, ByteTrack's YOLOX-X ablation
  detections (``data/mot17-halfval``), MOTChallenge evaluation (pedestrians,
  distractors ignored);
- ``dancetrack``: the 13 shared DanceTrack val sequences with YOLOX
  detections (``data/dancetrack-val-dev``);
- ``tud``: TUD-Campus + TUD-Stadtmitte, the CEM tracker's boxes
  (``test.txt``) with their ids stripped, tracked again and scored against
  ``gt.txt`` (CEM's own IDF1: 0.624);
- ``crowd``: the synthetic crowd of ``bench/bench_tracking.py`` (20 walkers
  of a numpy motion model, 400 frames, ground truth jittered, 10 % dropped,
  ~1 false positive per frame): a mechanics check, not a real-data default.

Every configuration runs with ONE parameter set on every benchmark. Rows:
``default`` (the ``posetrack track-mot`` default,
:data:`~fiftyone_posetrack.tracking.presets.DEFAULT_TRACKER_PRESET`), each
registered tracker with its own defaults and no post-processing, each named
preset of :data:`~fiftyone_posetrack.tracking.presets.TRACKER_PRESETS`.

Metrics are TrackEval's HOTA, Identity (IDF1) and CLEAR (MOTA, IDsw) on the
boxes :func:`fiftyone_posetrack.eval.mot.evaluate_mot_sequences` evaluates
(the same MOTChallenge preprocessing: identical numbers, checked on TUD),
without py-motmetrics' slower accumulator, so that sequences can be combined in
any subset (TrackEval's ``combine_sequences``) for the leave-one-out line.

Leave-one-sequence-out (``loso``) for the default: for each sequence of a
benchmark, the grid point (:data:`LOSO_GRID`, around the default) with the
best combined HOTA on the *other* sequences is scored on the held-out one; the
held-out results are combined. A LOSO HOTA close to the default's says the
default is not fitted to any one sequence.

The last line is ``suite default: worst loss vs per-benchmark best X.X HOTA``:
for each benchmark the best HOTA of any row (grid points included) minus the
default's; the worst of those.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker, before numpy loads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fiftyone_posetrack.eval import mot as mot_eval  # noqa: E402
from fiftyone_posetrack.formats.mot import read_mot  # noqa: E402
from fiftyone_posetrack.tracking import make_tracker  # noqa: E402
from fiftyone_posetrack.tracking.base import available_trackers  # noqa: E402
from fiftyone_posetrack.tracking.postprocess import postprocess_tracks  # noqa: E402
from fiftyone_posetrack.tracking.presets import DEFAULT_TRACKER_PRESET, TRACKER_PRESETS, load_tracker_preset  # noqa: E402
from fiftyone_posetrack.tracking.run import track_mot_array  # noqa: E402

SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
BENCHMARKS = ("mot17", "dancetrack", "tud", "crowd")

#: leave-one-sequence-out grid around the default: ``{label: (parameter overrides, post-processing or None)}``
LOSO_GRID = {
    "max_age=60": ({"max_age": 60}, None),
    "det_thresh=0.5": ({"det_thresh": 0.5}, None),
    "no post-processing": ({}, {}),
}


#: ``--dancetrack`` subset (sequence numbers), set by :func:`main` before the workers fork
DANCE_SUBSET: list[str] | None = None


def load(bench: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{sequence: (gt, detections)}`` MOT arrays of a benchmark."""
    out = {}
    if bench == "mot17":
        for s in ("MOT17-02", "MOT17-04", "MOT17-05", "MOT17-09"):
            d = DATA / "mot17-halfval" / s
            out[s] = (read_mot(d / "gt" / "gt.txt"), read_mot(d / "det" / "det.txt"))
    elif bench == "dancetrack":
        for d in sorted((DATA / "dancetrack-val-dev").glob("dancetrack*")):
            if DANCE_SUBSET and d.name[len("dancetrack"):] not in DANCE_SUBSET:
                continue
            out[d.name] = (read_mot(d / "gt" / "gt.txt"), read_mot(d / "det" / "det.txt"))
    elif bench == "tud":
        for s in ("TUD-Campus", "TUD-Stadtmitte"):
            gt = read_mot(DATA / "mot" / s / "gt.txt")
            gt[:, 7] = gt[:, 8] = -1.0  # MOT15: no classes
            det = read_mot(DATA / "mot" / s / "test.txt")
            det[:, 1] = -1.0  # the CEM tracker's ids stripped
            out[s] = (gt, det)
    elif bench == "crowd":
        from bench_tracking import crowd_detections, numpy_crowd

        gt, det, _ = crowd_detections(numpy_crowd(20, 400))
        out["crowd"] = (gt, det)
    else:
        raise ValueError(bench)
    return out


def configurations() -> dict[str, tuple[str, dict, dict]]:
    """``{label: (tracker, params, postprocess)}``: default, each tracker, each preset."""
    p = load_tracker_preset(DEFAULT_TRACKER_PRESET)
    configs = {"default": (p["tracker"], p["params"], p["postprocess"])}
    for name in available_trackers():
        configs[name] = (name, {}, {})
    for name in TRACKER_PRESETS:
        p = load_tracker_preset(name)
        configs[f"preset:{name}"] = (p["tracker"], p["params"], p["postprocess"])
    return configs


def loso_grid() -> dict[str, tuple[str, dict, dict]]:
    """The default with one change of :data:`LOSO_GRID` at a time."""
    p = load_tracker_preset(DEFAULT_TRACKER_PRESET)
    return {f"grid:{label}": (p["tracker"], dict(p["params"], **over), p["postprocess"] if post is None else post)
            for label, (over, post) in LOSO_GRID.items()}  # fmt: skip


def read_variants(path) -> dict[str, tuple[str, dict, dict]]:
    """Rows from a JSON file ``{label: [tracker, params, postprocess]}``, each checked as a preset."""
    import json

    from fiftyone_posetrack.tracking.presets import check_preset

    rows = {}
    for label, (tracker, params, post) in json.loads(pathlib.Path(path).read_text()).items():
        p = check_preset({"tracker": tracker, "params": params, "postprocess": post}, f"variant {label!r}")
        rows[f"variant:{label}"] = (p["tracker"], p["params"], p["postprocess"])
    return rows


_DATA: dict = {}


def _metrics():
    from trackeval.metrics import CLEAR, HOTA, Identity

    return HOTA(), Identity({"PRINT_CONFIG": False}), CLEAR({"PRINT_CONFIG": False})


def run_config(job) -> tuple[str, str, dict, float]:
    """Tracks every sequence of a benchmark; returns TrackEval's per-sequence results."""
    bench, label, (tracker, params, post) = job
    if bench not in _DATA:
        _DATA[bench] = load(bench)
    start = time.process_time()
    metrics = _metrics()
    per = {seq: track_and_score(gt, det, tracker, params, post, metrics) for seq, (gt, det) in _DATA[bench].items()}
    return bench, label, per, time.process_time() - start


def track_and_score(gt, det, tracker: str, params: dict, post: dict, metrics) -> list:
    """One sequence tracked (then post-processed) and scored: TrackEval's results of each of ``metrics``."""
    res = track_mot_array(det, make_tracker(tracker, **params))
    if post:
        res = postprocess_tracks(res, post)
    g, p, frames, _, _ = mot_eval._prepare(gt, res, 0.5, None)
    data = mot_eval._hota_data(g, p, frames)
    return [m.eval_sequence(data) for m in metrics]


def combine(per: dict, seqs=None) -> dict:
    """HOTA / MOTA / IDF1 / IDsw of the given sequences combined (TrackEval)."""
    seqs = list(per) if seqs is None else list(seqs)
    res = [m.combine_sequences({s: per[s][i] for s in seqs}) for i, m in enumerate(_metrics())]
    return {"hota": float(np.mean(res[0]["HOTA"])), "idf1": float(res[1]["IDF1"]),
            "mota": float(res[2]["MOTA"]), "idsw": int(res[2]["IDSW"])}  # fmt: skip


def loso(results: dict, labels: list[str]) -> dict:
    """Leave-one-sequence-out: per held-out sequence the best label on the others."""
    seqs = list(results[labels[0]])
    if len(seqs) < 2:
        return {"hota": float("nan"), "chosen": []}
    held, chosen = {}, []
    for s in seqs:
        rest = [x for x in seqs if x != s]
        best = max(labels, key=lambda lb: combine(results[lb], rest)["hota"])
        held[s] = results[best][s]
        chosen.append(best)
    return dict(combine(held), chosen=chosen)


def _cell(m: dict) -> str:
    return f"{100 * m['hota']:.1f} / {100 * m['mota']:.1f} / {100 * m['idf1']:.1f} / {m['idsw']}"


def print_per_sequence(results: dict, benches: list[str], labels: list[str]) -> None:
    """Each sequence's HOTA per row, and per row the count of sequences above / below the default."""
    for b in benches:
        seqs = list(results[b]["default"])
        if len(seqs) < 2:
            continue
        hota = {lb: {s: combine(results[b][lb], [s])["hota"] for s in seqs} for lb in labels}
        print(f"\n{b}, HOTA per sequence (last column: sequences above / below the default by > 0.1)\n")
        print("| config | " + " | ".join(s.replace("dancetrack", "") for s in seqs) + " | +/- |")
        print("|---" * (len(seqs) + 2) + "|")
        for lb in labels:
            d = [hota[lb][s] - hota["default"][s] for s in seqs]
            up, down = sum(x > 0.001 for x in d), sum(x < -0.001 for x in d)
            print(f"| {lb} | " + " | ".join(f"{100 * hota[lb][s]:.1f}" for s in seqs) + f" | {up} / {down} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (one core each)")
    ap.add_argument("--benchmarks", default=",".join(BENCHMARKS))
    ap.add_argument("--configs", help="comma-separated row labels (default: all; 'default' always runs)")
    ap.add_argument("--no-loso", action="store_true", help="skip the leave-one-sequence-out grid")
    ap.add_argument("--dancetrack", metavar="0004,0019,...", help="only these DanceTrack sequences (a quick subset)")
    ap.add_argument("--variants", metavar="FILE.json", help="extra rows: {label: [tracker, params, postprocess]}")
    ap.add_argument("--per-sequence", action="store_true",
                    help="also print each sequence's HOTA per row, and in how many sequences each row beats the default")
    args = ap.parse_args(argv)
    global DANCE_SUBSET
    DANCE_SUBSET = args.dancetrack.split(",") if args.dancetrack else None
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (the shared benchmarks live in ../shared/data)")
        return 0
    benches = [b for b in args.benchmarks.split(",") if b]
    unknown = sorted(set(benches) - set(BENCHMARKS))
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}")
    configs = configurations()
    if args.configs:
        wanted = ["default"] + [c for c in args.configs.split(",") if c and c != "default"]
        bad = sorted(set(wanted) - set(configs))
        if bad:
            ap.error(f"unknown configuration(s) {bad}; known: {list(configs)}")
        configs = {k: configs[k] for k in wanted}
    if args.variants:
        configs.update(read_variants(args.variants))
    grid = {} if args.no_loso else loso_grid()
    order = sorted(benches, key=lambda b: b != "dancetrack")  # the longest first
    jobs = [(b, lb, c) for b in order for lb, c in {**configs, **grid}.items()]
    results: dict = {b: {} for b in benches}
    cpu = 0.0
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(max(1, args.jobs)) as pool:
        for bench, label, per, secs in pool.imap_unordered(run_config, jobs):
            results[bench][label] = per
            cpu += secs
            print(f"  {bench} {label}: {_cell(combine(per))} ({secs:.0f} s CPU)", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0

    print(f"Tracking suite (motion only; one parameter set per row; cells HOTA / MOTA / IDF1 / IDsw; "
          f"default = preset {DEFAULT_TRACKER_PRESET!r})\n")  # fmt: skip
    print("| config | " + " | ".join(benches) + " |")
    print("|---" * (len(benches) + 1) + "|")
    summary = {b: {lb: combine(per) for lb, per in results[b].items()} for b in benches}
    for label in configs:
        print(f"| {label} | " + " | ".join(_cell(summary[b][label]) for b in benches) + " |")
    if grid:
        labels = ["default", *grid]
        cells = []
        for b in benches:
            m = loso(results[b], labels)
            cells.append("n/a (one sequence)" if np.isnan(m["hota"]) else _cell(m))
        print("| default, leave-one-sequence-out (grid on the other sequences) | " + " | ".join(cells) + " |")
    if args.per_sequence:
        print_per_sequence(results, benches, list(configs))
    print()
    losses = {}
    for b in benches:
        best = max(summary[b], key=lambda lb: summary[b][lb]["hota"])
        losses[b] = 100 * (summary[b][best]["hota"] - summary[b]["default"]["hota"])
        print(f"{b}: default HOTA {100 * summary[b]['default']['hota']:.1f}, best {best} "
              f"{100 * summary[b][best]['hota']:.1f} (default gives up {losses[b]:.1f})")  # fmt: skip
    print(f"({len(jobs)} runs, {cpu:.0f} s CPU, {wall:.0f} s wall with {args.jobs} workers)")
    print(f"suite default: worst loss vs per-benchmark best {max(losses.values()):.1f} HOTA")
    return 0


if __name__ == "__main__":
    sys.exit(main())
