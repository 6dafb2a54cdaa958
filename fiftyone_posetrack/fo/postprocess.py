"""Track post-processing on a FiftyOne video collection: a stage of its own.

::

    from fiftyone_posetrack.fo.postprocess import postprocess_tracks_field

    postprocess_tracks_field(dataset, "pred_detections", "pred_detections_post",
                             {"interpolate": 20, "gsi": True, "link": True})

Reads a tracked ``fo.Detections`` frame field (``index`` = track id), runs
:func:`fiftyone_posetrack.tracking.postprocess.postprocess_tracks` on each
video's tracks and writes a NEW frame field (the input is never modified unless
``overwrite_input=True`` and the output names it). Interpolated boxes carry
``interpolated=True`` and confidence 0; observed boxes keep their confidence
and label. Boxes without ``index`` are refused (they are not tracks).

It is a :class:`~fiftyone_posetrack.fo.jobs.VideoJob`: atomic per-video claims,
resumable, no half-written labels. Post-processing needs all of a video's
tracks at once, so one video's boxes (not its frames) are held in memory.
"""

from __future__ import annotations

import dataclasses

import fiftyone as fo
import numpy as np

from fiftyone_posetrack.fo.appconfig import apply_track_colors
from fiftyone_posetrack.fo.jobs import RunSummary, VideoJob, check_collection
from fiftyone_posetrack.fo.labels import check_frame_field
from fiftyone_posetrack.fo.stages import _frame_labels, _run
from fiftyone_posetrack.tracking.postprocess import PostprocessConfig, postprocess_tracks
from fiftyone_posetrack.types import BadInputError

__all__ = ["postprocess_tracks_field"]


def _config(config) -> PostprocessConfig:
    if isinstance(config, PostprocessConfig):
        return config.validate()
    config = dict(config or {})
    known = set(PostprocessConfig.__dataclass_fields__)
    unknown = sorted(set(config) - known)
    if unknown:
        raise BadInputError(f"postprocess: unknown option(s) {unknown}; valid: {sorted(known)}")
    return PostprocessConfig(**config)


def _video_tracks(dataset, sample, field: str, n_frames: int):
    """The video's tracked boxes as a MOT array (pixels) and their labels by (frame, id)."""
    w, h = sample.metadata.frame_width, sample.metadata.frame_height
    labels = _frame_labels(dataset, sample.id, field)
    rows, label_of = [], {}
    for n in range(1, n_frames + 1):
        dets = labels.get(n)
        for d in [] if dets is None else dets.detections:
            if d.index is None:
                raise BadInputError(
                    f"{field}: frame {n} of {sample.filepath} has a box without index (track id); "
                    "post-processing needs tracked boxes"
                )
            x, y, bw, bh = d.bounding_box
            score = 1.0 if d.confidence is None else float(d.confidence)
            rows.append([n, d.index, x * w, y * h, bw * w, bh * h, score])
            label_of[int(d.index)] = d.label
    arr = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return arr, label_of


def postprocess_tracks_field(
    samples,
    in_field: str,
    out_field: str,
    config: PostprocessConfig | dict | None = None,
    overwrite: bool = False,
    overwrite_input: bool = False,
    **kwargs,
) -> RunSummary:
    """Links, filters, interpolates and smooths the tracks of a frame field into a new field.

    Args:
        samples: a video collection
        in_field: a tracked ``fo.Detections`` frame field (``index`` = track id)
        out_field: the output frame field (a new one unless ``overwrite_input``)
        config: a :class:`~fiftyone_posetrack.tracking.postprocess.PostprocessConfig`
            or a dict of its options
        overwrite: recompute videos already done
        overwrite_input: allow ``out_field == in_field`` (replaces the input)
        **kwargs: :func:`~fiftyone_posetrack.fo.jobs.run_video_jobs` options

    Raises:
        BadInputError: bad options (before any write), a missing input field,
            or untracked boxes (the video then fails; labels untouched)
    """
    cfg = _config(config)
    check_collection(samples, "track post-processing")
    check_frame_field(samples, in_field, fo.Detections)
    dataset = samples._dataset

    def compute(sample, n_frames):
        w, h = sample.metadata.frame_width, sample.metadata.frame_height
        arr, label_of = _video_tracks(dataset, sample, job.input_field, n_frames)
        out, interp = postprocess_tracks(arr, cfg, num_frames=n_frames, return_mask=True)
        frames = out[:, 0].astype(np.int64)
        bounds = np.searchsorted(frames, np.arange(1, n_frames + 2))
        for n in range(1, n_frames + 1):
            dets = []
            for r in range(bounds[n - 1], bounds[n]):
                x, y, bw, bh = out[r, 2:6]
                box = [x / w, y / h, bw / w, bh / h]
                d = fo.Detection(label=label_of.get(int(out[r, 1]), "person"), bounding_box=box,
                                 confidence=float(out[r, 6]), index=int(out[r, 1]))  # fmt: skip
                if interp[r]:
                    d["interpolated"] = True
                dets.append(d)
            yield n, {out_field: fo.Detections(detections=dets)}

    options = {"in_field": in_field, "out_field": out_field, **dataclasses.asdict(cfg)}  # the run record's
    job = VideoJob(
        "track post-processing", {out_field: fo.Detections}, compute, overwrite, input_field=in_field,
        options=options,
    )  # fmt: skip
    summary = _run(samples, job, in_field, overwrite_input, **kwargs)
    apply_track_colors(dataset, [out_field])  # one colour per track in the App (unless the user chose)
    return summary
