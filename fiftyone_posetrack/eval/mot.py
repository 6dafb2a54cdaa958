"""Multi-object tracking metrics: CLEAR-MOT, identity (IDF1) and HOTA.

Inputs are MOT arrays as :func:`fiftyone_posetrack.formats.mot.read_mot`
returns them: ``(N, 9)`` rows ``frame, id, x, y, w, h, conf, class, visibility``
with boxes ``[x, y, w, h]`` in pixels (arrays with only the first 6 columns are
accepted: ``conf = class = visibility = 1``).

Conventions (those of MOTChallenge, as TrackEval's ``MotChallenge2DBox``
applies them, so that every metric sees the same boxes):

- similarity is the box IoU; a gt and a prediction can match when
  ``IoU >= iou_threshold`` (0.5);
- ground-truth rows of a distractor class (MOT16+: 2 person on vehicle,
  7 static person, 8 distractor, 12 reflection), of class -2 (this library's
  marker for an ignored box, e.g. a FiftyOne detection with ``ignore=True``)
  or flagged by ``gt_ignore`` are *ignore* boxes: the predictions Hungarian-matched to them (on IoU, among
  all gt boxes of the frame) are removed before evaluation, and they are never
  counted as misses;
- only pedestrian gt rows (class 1, or -1 = unknown as in MOT15) whose
  ``conf`` (the MOTChallenge "consider" flag) is not 0 are evaluated; other
  classes (cars, occluders, ...) are dropped without removing predictions;
  a class outside MOTChallenge's 1-12 (and -1, -2) is an error, as in TrackEval;
- visibility is not used (-1 = unknown); ids must be unique within a frame.

CLEAR-MOT (MOTA, FP, FN, ID switches, fragmentations, MT/PT/ML) uses
TrackEval's per-frame matching, which MOTChallenge's official evaluation
runs: a Hungarian assignment maximising ``1000 * (same pair as in the
previous frame) + IoU`` over pairs with ``IoU >= iou_threshold``; an ID switch
is a gt matched to another id than at its last match (:func:`_clear_match`;
py-motmetrics keeps previous matches first and then minimises ``1 - IoU``,
which differs in a few crowded frames). MOTP is the mean ``1 - IoU`` of the
matches (the py-motmetrics convention). Identity metrics (IDF1, IDP, IDR)
come from py-motmetrics (its accumulator fed with our IoU distances),
HOTA/DetA/AssA from TrackEval (means over the 19 localisation thresholds
``alpha = 0.05 ... 0.95``). Ratios with a zero
denominator are NaN (MOTA is ``-inf`` when there are false positives but no
ground truth), as py-motmetrics reports them. (py-motmetrics 1.4's own
``iou_matrix`` / ``compare_to_groundtruth`` call ``np.asfarray``, gone in
NumPy 2; its accumulator and metrics work with NumPy 2 and pandas 3.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from fiftyone_posetrack.formats.mot import CLASS, CONF, FRAME, ID, read_mot
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "DISTRACTOR_CLASSES",
    "IGNORE_CLASS",
    "METRIC_KEYS",
    "MotMatches",
    "evaluate_mot_arrays",
    "evaluate_mot_files",
    "evaluate_mot_sequences",
    "match_mot_arrays",
    "sequence_name",
]

#: MOT16/17 gt classes whose matched predictions are ignored (MOT20 adds 6)
DISTRACTOR_CLASSES = (2, 7, 8, 12)
#: class of a gt box to ignore (not a MOTChallenge class)
IGNORE_CLASS = -2
#: gt classes that are evaluated (-1 = no class, MOT15)
PEDESTRIAN_CLASSES = (1, -1)
_VALID_CLASSES = (IGNORE_CLASS, -1, *range(1, 13))

#: keys of every per-sequence / OVERALL result dict, in print order
METRIC_KEYS = (
    "mota", "motp", "idf1", "idp", "idr", "recall", "precision",
    "hota", "deta", "assa", "fp", "fn", "idsw", "frag", "mt", "pt", "ml",
    "num_gt_ids", "num_frames", "num_matches", "num_objects", "num_predictions",
)  # fmt: skip

# our key -> py-motmetrics metric name
_MM_NAMES = {
    "mota": "mota", "motp": "motp", "idf1": "idf1", "idp": "idp", "idr": "idr",
    "recall": "recall", "precision": "precision", "fp": "num_false_positives",
    "fn": "num_misses", "idsw": "num_switches", "frag": "num_fragmentations",
    "mt": "mostly_tracked", "pt": "partially_tracked", "ml": "mostly_lost",
    "num_gt_ids": "num_unique_objects", "num_frames": "num_frames",
    "num_matches": "num_matches", "num_objects": "num_objects",
    "num_predictions": "num_predictions",
}  # fmt: skip
_INT_KEYS = {"fp", "fn", "idsw", "frag", "mt", "pt", "ml", "num_gt_ids",
             "num_frames", "num_matches", "num_objects", "num_predictions"}  # fmt: skip


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``(N, 4)`` vs ``(M, 4)`` ``[x, y, w, h]`` boxes; 0 for empty boxes."""
    a1, a2 = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b1, b2 = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    wh = np.clip(np.minimum(a2, b2) - np.maximum(a1, b1), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    eps = np.finfo(float).eps
    return np.where(union > eps, inter / np.where(union > eps, union, 1.0), 0.0)


def _as_mot(data, what: str) -> np.ndarray:
    data = np.asarray(data, dtype=np.float64)
    if data.size == 0:
        return np.zeros((0, 9))
    if data.ndim != 2 or data.shape[1] < 6:
        raise BadInputError(
            f"{what}: expected a MOT array of shape (N, 9) "
            f"(frame, id, x, y, w, h, conf, class, visibility), got {data.shape}"
        )
    full = np.ones((len(data), 9))
    full[:, : min(data.shape[1], 9)] = data[:, :9]
    if not np.isfinite(full[:, :6]).all():
        raise BadInputError(f"{what}: frame, id and box columns must be finite")
    keys = full[:, [FRAME, ID]].astype(np.int64)
    uniq, counts = np.unique(keys, axis=0, return_counts=True)
    if (counts > 1).any():
        f, i = uniq[np.argmax(counts > 1)]
        raise BadInputError(f"{what}: id {i} appears more than once in frame {f}")
    return full


@dataclass
class _Frame:
    frame: int
    gt_rows: np.ndarray  # evaluated gt rows (indices into the input gt array)
    pred_rows: np.ndarray  # evaluated pred rows
    iou: np.ndarray  # (len(gt_rows), len(pred_rows))


def _prepare(gt, pred, iou_threshold, gt_ignore):
    """Splits into frames and applies the MOTChallenge preprocessing.

    Returns ``(gt, pred, frames, ignored_gt_mask, ignored_pred_mask)``.
    """
    gt, pred = _as_mot(gt, "ground truth"), _as_mot(pred, "predictions")
    bad = ~np.isin(gt[:, CLASS], _VALID_CLASSES)
    if bad.any():
        raise BadInputError(
            f"ground truth: class {gt[bad, CLASS][0]:g} (row {int(np.argmax(bad))}) is not a "
            "MOTChallenge class (1-12, -1 for none, -2 to ignore); 10-column MOT15 files carry world "
            "coordinates there, which must load as class -1"
        )
    if gt_ignore is None:
        gt_ignore = np.zeros(len(gt), dtype=bool)
    gt_ignore = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    if len(gt_ignore) != len(gt):
        raise BadInputError(f"gt_ignore: expected {len(gt)} flags, got {len(gt_ignore)}")
    distractor = gt_ignore | np.isin(gt[:, CLASS], (*DISTRACTOR_CLASSES, IGNORE_CLASS))
    keep_gt = np.isin(gt[:, CLASS], PEDESTRIAN_CLASSES) & (np.trunc(gt[:, CONF]) != 0) & ~distractor
    ignored_pred = np.zeros(len(pred), dtype=bool)

    gf, pf = gt[:, FRAME].astype(np.int64), pred[:, FRAME].astype(np.int64)
    frames = []
    for f in np.union1d(gf, pf):
        g_all, p_all = np.flatnonzero(gf == f), np.flatnonzero(pf == f)
        iou = _box_iou(gt[g_all, 2:6], pred[p_all, 2:6])
        drop = np.zeros(len(p_all), dtype=bool)
        if distractor[g_all].any() and len(p_all):
            score = np.where(iou >= iou_threshold - np.finfo(float).eps, iou, 0.0)
            rows, cols = linear_sum_assignment(-score)
            hit = score[rows, cols] > np.finfo(float).eps
            drop[cols[hit & distractor[g_all][rows]]] = True
        ignored_pred[p_all[drop]] = True
        g_keep = keep_gt[g_all]
        frames.append(_Frame(int(f), g_all[g_keep], p_all[~drop], iou[g_keep][:, ~drop]))
    return gt, pred, frames, ~keep_gt, ignored_pred


def _accumulate(gt, pred, frames, iou_threshold):
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    for fr in frames:
        dist = 1.0 - fr.iou
        dist[dist > 1.0 - iou_threshold] = np.nan  # py-motmetrics' iou_matrix rule
        acc.update(
            gt[fr.gt_rows, ID].astype(np.int64),
            pred[fr.pred_rows, ID].astype(np.int64),
            dist,
            frameid=fr.frame,
        )
    return acc


def _clear_match(gt, pred, frames, iou_threshold):
    """TrackEval's CLEAR matching, frame by frame.

    Returns ``(events, counts)``: ``events`` is one ``(frame, gt_rows,
    pred_rows, is_switch)`` per frame with matches (rows index the input
    arrays); ``counts`` holds tp, fp, fn, idsw, frag, mt, pt, ml and the IoU sum.
    """
    eps = np.finfo(float).eps
    prev_any: dict[int, int] = {}  # gt id -> tracker id at its last match (ID switches)
    prev_step: dict[int, int] = {}  # gt id -> tracker id in the previous evaluated frame
    seen: dict[int, int] = {}  # gt id -> frames present
    matched_n: dict[int, int] = {}  # gt id -> frames matched
    starts: dict[int, int] = {}  # gt id -> times it went from untracked to tracked
    c = dict(tp=0, fp=0, fn=0, idsw=0, iou_sum=0.0)
    events = []
    for fr in frames:
        g_ids = gt[fr.gt_rows, ID].astype(np.int64)
        p_ids = pred[fr.pred_rows, ID].astype(np.int64)
        if len(g_ids) == 0:
            c["fp"] += len(p_ids)
            continue
        for g in g_ids.tolist():
            seen[g] = seen.get(g, 0) + 1
        if len(p_ids) == 0:
            c["fn"] += len(g_ids)
            continue
        cont = np.array([[prev_step.get(g, None) == p for p in p_ids.tolist()] for g in g_ids.tolist()])
        score = 1000.0 * cont + fr.iou
        score[fr.iou < iou_threshold - eps] = 0.0
        rows, cols = linear_sum_assignment(-score)
        ok = score[rows, cols] > eps
        rows, cols = rows[ok], cols[ok]
        mg, mp = g_ids[rows], p_ids[cols]
        switch = np.array([g in prev_any and prev_any[g] != p for g, p in zip(mg.tolist(), mp.tolist())], dtype=bool)
        c["idsw"] += int(switch.sum())
        for g, p in zip(mg.tolist(), mp.tolist()):
            matched_n[g] = matched_n.get(g, 0) + 1
            if g not in prev_step:
                starts[g] = starts.get(g, 0) + 1
            prev_any[g] = p
        prev_step = dict(zip(mg.tolist(), mp.tolist()))
        c["tp"] += len(rows)
        c["fn"] += len(g_ids) - len(rows)
        c["fp"] += len(p_ids) - len(rows)
        c["iou_sum"] += float(fr.iou[rows, cols].sum())
        if len(rows):
            events.append((fr.frame, fr.gt_rows[rows], fr.pred_rows[cols], switch))
    ratio = np.array([matched_n.get(g, 0) / n for g, n in seen.items()])
    c["mt"] = int((ratio > 0.8).sum())
    c["pt"] = int((ratio >= 0.2).sum()) - c["mt"]
    c["ml"] = len(ratio) - c["mt"] - c["pt"]
    c["frag"] = int(sum(n - 1 for n in starts.values()))
    return events, c


def _div(num: float, den: float) -> float:
    """``num / den`` with py-motmetrics' conventions: NaN for 0/0, inf for x/0."""
    if den == 0:
        return np.nan if num == 0 else np.inf * np.sign(num)
    return num / den


def _clear_metrics(c: dict, num_objects: int) -> dict:
    """MOTA, MOTP, recall and precision from summed CLEAR counts."""
    errors = c["fn"] + c["fp"] + c["idsw"]
    return {
        "mota": 1.0 - _div(errors, num_objects),
        "motp": 1.0 - _div(c["iou_sum"], c["tp"]) if c["tp"] else np.nan,
        "recall": _div(c["tp"], num_objects),
        "precision": _div(c["tp"], c["tp"] + c["fp"]),
        "fp": c["fp"], "fn": c["fn"], "idsw": c["idsw"], "frag": c["frag"],
        "mt": c["mt"], "pt": c["pt"], "ml": c["ml"],
        "num_matches": c["tp"] - c["idsw"],  # py-motmetrics: matches without an ID switch
    }  # fmt: skip


def _hota_data(gt, pred, frames) -> dict:
    """The data dict TrackEval's MotChallenge2DBox would hand to its metrics."""
    gt_ids = [gt[fr.gt_rows, ID].astype(np.int64) for fr in frames]
    tr_ids = [pred[fr.pred_rows, ID].astype(np.int64) for fr in frames]
    u_gt = np.unique(np.concatenate(gt_ids)) if frames else np.zeros(0, np.int64)
    u_tr = np.unique(np.concatenate(tr_ids)) if frames else np.zeros(0, np.int64)
    return {
        "num_timesteps": len(frames),
        "num_gt_ids": len(u_gt),
        "num_tracker_ids": len(u_tr),
        "num_gt_dets": int(sum(len(g) for g in gt_ids)),
        "num_tracker_dets": int(sum(len(t) for t in tr_ids)),
        "gt_ids": [np.searchsorted(u_gt, g) for g in gt_ids],
        "tracker_ids": [np.searchsorted(u_tr, t) for t in tr_ids],
        "similarity_scores": [fr.iou for fr in frames],
    }


def _hota_metric():
    from trackeval.metrics import HOTA

    return HOTA()


def evaluate_mot_sequences(
    sequences: Mapping[str, tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = 0.5,
    gt_ignore: Mapping[str, np.ndarray] | None = None,
) -> dict[str, dict]:
    """Evaluates several tracked sequences and their combination.

    Args:
        sequences: ``{name: (gt, pred)}`` MOT arrays (see module docstring)
        iou_threshold: the IoU a gt/prediction pair needs to match (CLEAR,
            identity and distractor matching; HOTA uses its own 19 thresholds)
        gt_ignore: optional ``{name: (N_gt,) bool}`` extra ignore flags

    Returns:
        ``{name: metrics, ..., "OVERALL": metrics}`` where each ``metrics`` has
        the keys of :data:`METRIC_KEYS`. OVERALL is py-motmetrics' overall
        summary (the events of all sequences summed) and TrackEval's
        ``combine_sequences`` for HOTA, DetA and AssA.
    """
    import motmetrics as mm

    if not sequences:
        raise BadInputError("sequences: expected at least one (gt, pred) pair")
    if "OVERALL" in sequences:
        raise BadInputError("sequences: 'OVERALL' is reserved for the combined result")
    names, accs, hota, clear = list(sequences), [], {}, {}
    hota_metric = _hota_metric()
    for name in names:
        gt, pred = sequences[name]
        ign = None if gt_ignore is None else gt_ignore.get(name)
        gt, pred, frames, _, _ = _prepare(gt, pred, iou_threshold, ign)
        accs.append(_accumulate(gt, pred, frames, iou_threshold))
        hota[name] = hota_metric.eval_sequence(_hota_data(gt, pred, frames))
        clear[name] = _clear_match(gt, pred, frames, iou_threshold)[1]
    clear["OVERALL"] = {k: sum(clear[n][k] for n in names) for k in clear[names[0]]}
    summary = mm.metrics.create().compute_many(
        accs,
        metrics=sorted(set(_MM_NAMES.values())),
        names=names,
        generate_overall=True,
    )
    hota["OVERALL"] = hota_metric.combine_sequences({n: hota[n] for n in names})
    out = {}
    for name in names + ["OVERALL"]:
        row = summary.loc[name]
        res = {k: row[_MM_NAMES[k]] for k in _MM_NAMES}
        res.update(_clear_metrics(clear[name], int(row["num_objects"])))
        res["hota"] = float(np.mean(hota[name]["HOTA"]))
        res["deta"] = float(np.mean(hota[name]["DetA"]))
        res["assa"] = float(np.mean(hota[name]["AssA"]))
        out[name] = {k: int(res[k]) if k in _INT_KEYS else float(res[k]) for k in METRIC_KEYS}
    return out


def evaluate_mot_arrays(
    gt: np.ndarray,
    pred: np.ndarray,
    iou_threshold: float = 0.5,
    name: str = "sequence",
    gt_ignore: np.ndarray | None = None,
) -> dict[str, dict]:
    """Evaluates one tracked sequence given as MOT arrays.

    Returns:
        ``{name: metrics, "OVERALL": metrics}`` (identical values), see
        :func:`evaluate_mot_sequences`
    """
    ign = None if gt_ignore is None else {name: gt_ignore}
    return evaluate_mot_sequences({name: (gt, pred)}, iou_threshold, ign)


def sequence_name(gt_path: str | os.PathLike) -> str:
    """The sequence name of a gt file: its folder, or ``SEQ`` for ``SEQ/gt/gt.txt``."""
    parent = os.path.dirname(os.path.abspath(os.fspath(gt_path)))
    name = os.path.basename(parent)
    if name == "gt":
        name = os.path.basename(os.path.dirname(parent))
    return name


def evaluate_mot_files(
    pairs: Sequence[tuple[str | os.PathLike, str | os.PathLike]],
    iou_threshold: float = 0.5,
) -> dict[str, dict]:
    """Evaluates MOTChallenge text files, ``[(gt_path, result_path), ...]``.

    Sequences are named by :func:`sequence_name` (``#2``, ``#3`` appended to
    repeated names). Returns the dict of :func:`evaluate_mot_sequences`.

    Raises:
        FileNotFoundError, BadInputError: from :func:`read_mot`
    """
    sequences = {}
    for gt_path, res_path in pairs:
        base = name = sequence_name(gt_path)
        k = 1
        while name in sequences or name == "OVERALL":
            k += 1
            name = f"{base}#{k}"
        sequences[name] = (read_mot(gt_path), read_mot(res_path))
    return evaluate_mot_sequences(sequences, iou_threshold)


@dataclass
class MotMatches:
    """Per-row outcome of the CLEAR-MOT matching, aligned with the input arrays.

    Attributes:
        gt_status: ``(N_gt,)`` one of ``"match"``, ``"switch"`` (matched, and
            the id switched there), ``"miss"``, ``"ignored"`` (distractor,
            non-pedestrian, conf 0 or ``gt_ignore``)
        pred_status: ``(N_pred,)`` one of ``"match"``, ``"switch"``, ``"fp"``,
            ``"ignored"`` (matched to an ignore box and removed)
        gt_match: ``(N_gt,)`` row index into ``pred`` of the match, or -1
        pred_match: ``(N_pred,)`` row index into ``gt`` of the match, or -1
        iou: ``(N_gt,)`` IoU of the match, NaN when unmatched
        gt_frames, pred_frames: the frame number of each row
    """

    gt_status: np.ndarray
    pred_status: np.ndarray
    gt_match: np.ndarray
    pred_match: np.ndarray
    iou: np.ndarray
    gt_frames: np.ndarray
    pred_frames: np.ndarray

    def frames(self) -> dict[int, dict[str, np.ndarray]]:
        """Groups the rows by frame.

        Returns:
            ``{frame: {"gt_matched", "gt_missed", "gt_ignored", "pred_tp",
            "pred_fp", "pred_ignored", "switch_gt", "switch_pred"}}``, each an
            array of row indices into the input arrays (``switch_*`` are the rows
            matched with an identity switch; they are also in the matched/tp
            arrays)
        """
        out = {}
        groups = {
            "gt_matched": (self.gt_frames, np.isin(self.gt_status, ("match", "switch"))),
            "gt_missed": (self.gt_frames, self.gt_status == "miss"),
            "gt_ignored": (self.gt_frames, self.gt_status == "ignored"),
            "pred_tp": (self.pred_frames, np.isin(self.pred_status, ("match", "switch"))),
            "pred_fp": (self.pred_frames, self.pred_status == "fp"),
            "pred_ignored": (self.pred_frames, self.pred_status == "ignored"),
            "switch_gt": (self.gt_frames, self.gt_status == "switch"),
            "switch_pred": (self.pred_frames, self.pred_status == "switch"),
        }
        for f in np.union1d(self.gt_frames, self.pred_frames).tolist():
            out[f] = {k: np.flatnonzero(mask & (fr == f)) for k, (fr, mask) in groups.items()}
        return out


def match_mot_arrays(
    gt: np.ndarray,
    pred: np.ndarray,
    iou_threshold: float = 0.5,
    gt_ignore: np.ndarray | None = None,
) -> MotMatches:
    """Row-level CLEAR-MOT outcome (MATCH / SWITCH / MISS / FP of each box).

    Same matching as :func:`evaluate_mot_arrays`; use it to mark true/false
    positives, misses and identity switches on individual boxes.
    """
    gt, pred, frames, gt_ignored, pred_ignored = _prepare(gt, pred, iou_threshold, gt_ignore)
    events, _ = _clear_match(gt, pred, frames, iou_threshold)
    gt_status = np.where(gt_ignored, "ignored", "miss").astype("<U7")
    pred_status = np.where(pred_ignored, "ignored", "fp").astype("<U7")
    gt_match = np.full(len(gt), -1, dtype=np.int64)
    pred_match = np.full(len(pred), -1, dtype=np.int64)
    iou = np.full(len(gt), np.nan)
    for _, g_rows, p_rows, switch in events:
        status = np.where(switch, "switch", "match")
        gt_status[g_rows], pred_status[p_rows] = status, status
        gt_match[g_rows], pred_match[p_rows] = p_rows, g_rows
    for g in np.flatnonzero(gt_match >= 0):
        iou[g] = _box_iou(gt[g : g + 1, 2:6], pred[gt_match[g] : gt_match[g] + 1, 2:6])[0, 0]
    return MotMatches(
        gt_status, pred_status, gt_match, pred_match, iou,
        gt[:, FRAME].astype(np.int64), pred[:, FRAME].astype(np.int64),
    )  # fmt: skip
