"""Grid search of tracker parameters against MOT ground truth.

As in the HIE 2020 solution, which tuned DeepSORT's ``max_cosine_distance``,
``nn_budget``, ``max_age``, ``n_init`` and ``max_iou_distance`` this way::

    rows = grid_search(gt, dets, "deepsort", {"max_age": [10, 30], "n_init": [1, 3]})
    print(format_table(rows))          # sorted by IDF1, then MOTA

Appearance features, when frames and an embedder are given, are computed once
and reused by every combination.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from tqdm import tqdm

from fiftyone_posetrack.formats.mot import CLASS, VIS
from fiftyone_posetrack.tracking.base import make_tracker, tracker_params
from fiftyone_posetrack.tracking.run import check_mot_detections, embed_mot_detections, track_mot_array
from fiftyone_posetrack.types import BadInputError

__all__ = ["evaluate", "grid_search", "grid_search_sequences", "format_table", "parse_value", "parse_grid", "TUNE_METRICS"]

#: metrics :func:`grid_search_sequences` can optimise (the first is the default)
TUNE_METRICS = ("idf1", "hota", "mota")

_MOT_CLASSES = np.arange(-1, 13)


def evaluate(gt: np.ndarray, results: np.ndarray, iou_threshold: float = 0.5) -> dict:
    """IDF1, MOTA, ID switches (and more) of tracking results against ground truth.

    Uses :func:`fiftyone_posetrack.eval.mot.evaluate_mot_arrays` when it is
    available, else py-motmetrics directly. MOT15 files whose class /
    visibility columns hold world coordinates are read as class-less.

    Returns:
        a dict with at least ``idf1``, ``mota``, ``idsw``, ``fp``, ``fn``
    """
    gt = np.array(gt, dtype=np.float64)
    if gt.ndim == 2 and gt.shape[1] >= 9 and not np.isin(gt[:, CLASS], _MOT_CLASSES).all():
        gt[:, CLASS] = -1.0  # MOT15 world coordinates, not classes
        gt[:, VIS] = -1.0
    res = np.asarray(results, dtype=np.float64)
    if res.size == 0:
        res = np.zeros((0, 10))
    try:
        from fiftyone_posetrack.eval.mot import evaluate_mot_arrays
    except ImportError:
        return _motmetrics(gt, res, iou_threshold)
    return evaluate_mot_arrays(gt, res, iou_threshold)["OVERALL"]


def _motmetrics(gt: np.ndarray, res: np.ndarray, iou_threshold: float) -> dict:
    import motmetrics as mm

    from fiftyone_posetrack.tracking.matching import iou_matrix
    from fiftyone_posetrack.types import xywh_to_xyxy

    acc = mm.MOTAccumulator(auto_id=False)
    frames = np.union1d(gt[:, 0], res[:, 0]).astype(int) if len(res) else np.unique(gt[:, 0]).astype(int)
    for f in frames:
        g, r = gt[gt[:, 0] == f], res[res[:, 0] == f]
        dist = 1.0 - iou_matrix(xywh_to_xyxy(g[:, 2:6]), xywh_to_xyxy(r[:, 2:6]))
        dist[dist > 1.0 - iou_threshold] = np.nan
        acc.update(g[:, 1].astype(int), r[:, 1].astype(int), dist, frameid=int(f))
    names = {"idf1": "idf1", "mota": "mota", "idsw": "num_switches", "fp": "num_false_positives",
             "fn": "num_misses", "recall": "recall", "precision": "precision"}  # fmt: skip
    s = mm.metrics.create().compute(acc, metrics=list(names.values()), name="seq")
    return {k: (int if k in ("idsw", "fp", "fn") else float)(s.loc["seq", v]) for k, v in names.items()}


def parse_value(text: str):
    """``"30" -> 30``, ``"0.2" -> 0.2``, ``"true" -> True``, ``"none" -> None``, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def parse_grid(items: Sequence[str]) -> dict[str, list]:
    """``["max_age=10,30", "n_init=1,3"] -> {"max_age": [10, 30], "n_init": [1, 3]}``."""
    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise BadInputError(f"grid entry {item!r}: expected key=value1,value2,...")
        grid[key.strip()] = [parse_value(v) for v in values.split(",")]
    return grid


def grid_search(
    gt,
    dets,
    tracker: str = "deepsort",
    grid: Mapping[str, Sequence] | None = None,
    base_params: Mapping | None = None,
    frames=None,
    embedder=None,
    progress: bool = True,
) -> list[dict]:
    """Tracks ``dets`` with every parameter combination of ``grid`` and scores it.

    Args:
        gt: MOT ground-truth array
        dets: MOT detection array (ids ignored)
        tracker: tracker name (see :func:`~fiftyone_posetrack.tracking.base.make_tracker`)
        grid: ``{param: [values]}``; the cartesian product is searched
        base_params: fixed parameters of every run
        frames: video / image folder, for appearance features (with ``embedder``)
        embedder: ReID embedder (features computed once)
        progress: show a progress bar

    Returns:
        one dict per combination, best first (IDF1, then MOTA, descending):
        ``{"params": {...}, "idf1", "mota", "idsw", "fp", "fn", ...}``
    """
    grid = dict(grid or {})
    valid = tracker_params(tracker)
    unknown = sorted((set(grid) | set(base_params or {})) - set(valid))
    if unknown:
        raise BadInputError(f"tracker {tracker!r} has no parameter(s) {unknown}; valid: {sorted(valid)}")
    empty = [k for k, v in grid.items() if len(v) == 0]
    if empty:
        raise BadInputError(f"grid: no values for {empty}")
    gt = check_mot_detections(gt, "ground truth")
    dets = check_mot_detections(dets)
    feats = None
    if embedder is not None:
        feats = embed_mot_detections(dets, frames, embedder, progress=progress)
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    rows = []
    for values in tqdm(combos, disable=not progress, desc="grid"):
        params = dict(base_params or {}, **dict(zip(keys, values)))
        res = track_mot_array(dets, make_tracker(tracker, **params), embeddings=feats)
        rows.append({"params": dict(zip(keys, values)), **evaluate(gt, res)})
    rows.sort(key=lambda r: (-_num(r["idf1"]), -_num(r["mota"])))
    return rows


def grid_search_sequences(
    sequences: Mapping[str, tuple],
    tracker: str = "bytetrack",
    grid: Mapping[str, Sequence] | None = None,
    base_params: Mapping | None = None,
    postprocess: Mapping | None = None,
    metric: str = "idf1",
    progress: bool = True,
) -> list[dict]:
    """Grid search with ONE parameter set for several sequences at once.

    Every combination tracks every sequence (motion only), optionally
    post-processes the tracks (:func:`~fiftyone_posetrack.tracking.postprocess.postprocess_tracks`),
    and is scored on all sequences together (MOTChallenge's combined metrics:
    events summed, HOTA by TrackEval's combination).

    Args:
        sequences: ``{name: (gt, dets)}`` MOT arrays
        tracker: tracker name
        grid: ``{param: [values]}``; a key ``post.OPTION`` searches a
            post-processing option instead of a tracker parameter
        base_params: fixed tracker parameters
        postprocess: fixed post-processing options
        metric: what to maximise: ``"idf1"``, ``"hota"`` or ``"mota"``
            (ties broken by the other two)
        progress: show a progress bar

    Returns:
        one dict per combination, best first: ``{"params": {...}, "postprocess": {...},
        "sequences": {name: metrics}, <combined metrics>}``
    """
    from fiftyone_posetrack.eval.mot import evaluate_mot_sequences
    from fiftyone_posetrack.tracking.postprocess import PostprocessConfig, postprocess_tracks

    if metric not in TUNE_METRICS:
        raise BadInputError(f"metric: expected one of {TUNE_METRICS}, got {metric!r}")
    if not sequences:
        raise BadInputError("sequences: give at least one (gt, detections) pair")
    grid = dict(grid or {})
    post_keys = {k for k in grid if k.startswith("post.")}
    valid = tracker_params(tracker)
    unknown = sorted((set(grid) - post_keys | set(base_params or {})) - set(valid))
    known_post = set(PostprocessConfig.__dataclass_fields__)
    unknown += sorted(k for k in post_keys if k[5:] not in known_post)
    if unknown:
        raise BadInputError(
            f"tracker {tracker!r} has no parameter(s) {unknown}; valid: {sorted(valid)} "
            f"and post.OPTION for {sorted(known_post)}"
        )
    empty = [k for k, v in grid.items() if len(v) == 0]
    if empty:
        raise BadInputError(f"grid: no values for {empty}")
    PostprocessConfig(**dict(postprocess or {}))  # names bad options before any work
    data = {n: (check_mot_detections(g, f"{n} ground truth"), check_mot_detections(d, f"{n} detections"))
            for n, (g, d) in sequences.items()}  # fmt: skip
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    order = (metric,) + tuple(m for m in TUNE_METRICS if m != metric)
    rows = []
    for values in tqdm(combos, disable=not progress, desc="grid"):
        chosen = dict(zip(keys, values))
        params = dict(base_params or {}, **{k: v for k, v in chosen.items() if k not in post_keys})
        post = dict(postprocess or {}, **{k[5:]: v for k, v in chosen.items() if k in post_keys})
        seqs = {}
        for name, (gt, det) in data.items():
            res = track_mot_array(det, make_tracker(tracker, **params))
            if post:
                res = postprocess_tracks(res, post)
            seqs[name] = (gt, res)
        out = evaluate_mot_sequences(seqs)
        overall = out.pop("OVERALL")
        rows.append({"params": chosen, "tracker_params": params, "postprocess": post, "sequences": out, **overall})
    rows.sort(key=lambda r: tuple(-_num(r[m]) for m in order))
    return rows


def _num(x) -> float:
    x = float(x)
    return -np.inf if np.isnan(x) else x


def format_table(rows: Sequence[dict], metrics=("idf1", "mota", "idsw", "fp", "fn")) -> str:
    """A markdown table of :func:`grid_search` rows."""
    if not rows:
        return "(no results)"
    keys = list(rows[0]["params"])
    head = keys + [m.upper() if m != "idsw" else "IDsw" for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [str(r["params"][k]) for k in keys]
        cells += [f"{r[m]:.3f}" if isinstance(r[m], float) else str(r[m]) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
