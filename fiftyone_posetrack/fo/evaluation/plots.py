"""PNG plots of evaluation results (matplotlib's Agg canvas; no display needed)."""

from __future__ import annotations

import math
import os

import numpy as np

from fiftyone_posetrack.types import BadInputError

__all__ = ["plot_errors_over_time", "plot_joint_ap"]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> str:
    """Writes the PNG whole or not at all (:class:`fiftyone_posetrack.atomic.Staged`)."""
    from fiftyone_posetrack.atomic import Staged

    path = os.fspath(path)
    with Staged() as stage:
        fig.savefig(stage.path(path, "plot"), format="png")
    return path


def plot_errors_over_time(results, path, video: str | None = None) -> str:
    """Per-frame false positives, misses and identity switches over time.

    Args:
        results: a :class:`~fiftyone_posetrack.fo.evaluation.tracking.TrackingEvaluationResults`
        path: the PNG file to write
        video: one video's name; default: every video, one panel each

    Returns:
        ``path``
    """
    per_frame = getattr(results, "per_frame", None)
    if not isinstance(per_frame, dict):
        raise BadInputError("results: expected tracking results (evaluate_tracking) with per-frame counts")
    names = list(per_frame) if video is None else [video]
    for name in names:
        if name not in per_frame:
            raise BadInputError(f"video: expected one of {sorted(per_frame)}, got {name!r}")
    fig = _figure(10, 1.0 + 2.2 * len(names))
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names):
        pf = per_frame[name]
        frames = np.asarray(pf["frame_number"])
        ax.step(frames, pf["fp"], where="mid", color="tab:red", label="FP")
        ax.step(frames, pf["fn"], where="mid", color="tab:blue", label="FN")
        sw = np.asarray(pf["idsw"])
        if sw.any():
            ax.vlines(frames[sw > 0], 0, sw[sw > 0], color="tab:purple", lw=2, label="ID switch")
        m = results.metrics_by_video.get(name, {})
        mota = m.get("mota")
        title = name if mota is None or not math.isfinite(mota) else f"{name}  MOTA {mota:.3f}"
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("per frame")
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("frame number")
    fig.tight_layout()
    return _save(fig, path)


def plot_joint_ap(results, path, video: str | None = None) -> str:
    """Bar chart of PoseTrack's per-joint AP (percent).

    Joints without ground truth (``head_bottom`` / ``head_top`` of COCO-17
    data) get no bar and an ``n/a`` label, never a zero bar.

    Args:
        results: :class:`~fiftyone_posetrack.fo.evaluation.poses.PoseEvaluationResults`
            of ``kind="posetrack"``
        path: the PNG file to write
        video: one video's name; default: all videos pooled

    Returns:
        ``path``
    """
    if not hasattr(results, "joint_ap"):
        raise BadInputError("results: expected pose results (evaluate_poses with kind='posetrack')")
    ap = results.joint_ap(video)
    joints = list(ap)
    vals = np.array([ap[j] for j in joints], dtype=float)
    fig = _figure(10, 4)
    ax = fig.subplots()
    x = np.arange(len(joints))
    ok = np.isfinite(vals)
    ax.bar(x[ok], vals[ok], color="tab:green")
    for i in np.flatnonzero(~ok):
        ax.text(x[i], 1, "n/a", ha="center", va="bottom", fontsize=8, color="gray")
    ax.set_xticks(x)
    ax.set_xticklabels(joints, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("AP (%)")
    total = results.metrics(video).get("pt_ap")
    ax.set_title(f"PoseTrack per-joint AP ({video or 'all videos'}); mean {total:.1f}" if total is not None
                 else "PoseTrack per-joint AP")  # fmt: skip
    fig.tight_layout()
    return _save(fig, path)
