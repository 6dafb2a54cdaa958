"""Track quality without ground truth, stored on a video collection.

:func:`score_track_quality` reads a tracked ``fo.Detections`` frame field
(``index`` = track id), its skeletons (optional) and, with a ReID embedder,
the boxes' appearance, scores them with
:func:`fiftyone_posetrack.tracking.quality.score_tracks` and writes, for a
key ``<key>`` (default ``"quality"``):

- frame fields ``<key>_score`` (float: the frame's score, higher = more
  worth a look), ``<key>_flags`` (the distinct flags of the frame's boxes),
  ``<key>_births`` and ``<key>_deaths`` (tracks starting / ending there);
- the box attribute ``<key>_flags`` (the box's flags; ``[]`` for a clean box),
  so the App's sidebar filters boxes by flag;
- a run record (:func:`fiftyone_posetrack.fo.runs.record_import`) naming the
  fields and the thresholds.

Only those fields are written: the boxes' other attributes and every other
field are left as they are. Frame rates come from the videos' metadata.

:func:`flagged_frames` lists the top frames (best first, one per incident),
:func:`quality_clips` is a clips view that opens at each of them, and
:func:`quality_frames_view` keeps the frames with a given flag.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

import fiftyone as fo
from fiftyone import ViewField as F

from fiftyone_posetrack.fo.evaluation.base import check_label_field, check_video_collection
from fiftyone_posetrack.fo.labels import detections_to_arrays, keypoints_to_arrays, read_videos
from fiftyone_posetrack.tracking.quality import FLAGS, QualityConfig, score_tracks, top_frames
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "QUALITY_KEY",
    "flagged_frames",
    "has_quality",
    "quality_clips",
    "quality_fields",
    "quality_frames_view",
    "score_track_quality",
]

#: the default key (prefix of the fields written)
QUALITY_KEY = "quality"
#: the job name of the run record
JOB_NAME = "track quality"


def quality_fields(key: str = QUALITY_KEY) -> dict[str, str]:
    """``{role: frame field name}`` of a quality key."""
    return {r: f"{key}_{r}" for r in ("score", "flags", "births", "deaths")}


def has_quality(samples, key: str = QUALITY_KEY) -> bool:
    """Whether the collection holds the frame fields of :func:`score_track_quality` under ``key``."""
    return all(samples.has_frame_field(f) for f in quality_fields(key).values())


def _declare(dataset, key: str, box: str) -> None:
    """Declares the fields once (later runs find them)."""
    f = quality_fields(key)
    for name, ftype, kw in (
        (f["score"], fo.FloatField, {}),
        (f["flags"], fo.ListField, {"subfield": fo.StringField}),
        (f["births"], fo.IntField, {}),
        (f["deaths"], fo.IntField, {}),
    ):
        if not dataset.has_frame_field(name):
            dataset.add_frame_field(name, ftype, **kw)
    if dataset.get_field(f"frames.{box}.detections.{key}_flags") is None:
        dataset.add_frame_field(f"{box}.detections.{key}_flags", fo.ListField, subfield=fo.StringField)


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key.isidentifier():
        raise BadInputError(f"key: expected a field-name prefix (letters, digits, _), got {key!r}")
    return key


def _features(embedder, video, boxes_per_frame: dict) -> list[tuple[int, np.ndarray]]:
    """``[(frame number, (n, D) features)]`` of the boxes of each frame (pixels ``[x1, y1, x2, y2]``)."""
    from fiftyone_posetrack.tracking.run import open_frames

    feats, wanted = [], boxes_per_frame
    for number, frame in open_frames(video.filepath):
        boxes = wanted.get(number)
        if boxes is None or not len(boxes):
            continue
        feats.append((number, np.asarray(embedder.embed(frame, boxes), dtype=np.float64)))
    return feats


def score_track_quality(
    samples,
    box_field: str = "pred_detections",
    keypoints_field: str | None = None,
    key: str = QUALITY_KEY,
    config: QualityConfig | dict | None = None,
    embedder=None,
) -> dict:
    """Scores every track, box and frame of ``box_field`` and stores the flags (see the module docs).

    Args:
        samples: a video collection (a dataset or a view of one)
        box_field: the tracked ``fo.Detections`` frame field
        keypoints_field: its skeletons (``fo.Keypoints`` sharing ``index``),
            or None (then the ``skeleton`` flag is not computed)
        key: prefix of the fields written
        config: a :class:`~fiftyone_posetrack.tracking.quality.QualityConfig`
            or a dict of its fields
        embedder: a ReID embedder (``embed(frame_bgr, boxes_xyxy)``) for the
            ``drift`` flag, or None (then it is not computed: the videos are
            not decoded)

    Returns:
        ``{"key", "fields", "flags_computed", "notes", "videos": {sample id:
        {"frames", "flagged_frames", "tracks", <flag>: boxes}}}``

    Raises:
        BadInputError: for a collection that is not a video collection, a
            bad field or key, or bad thresholds
    """
    check_video_collection(samples)
    key = _check_key(key)
    box = check_label_field(samples, box_field, fo.Detections, "box_field")
    kps = check_label_field(samples, keypoints_field, fo.Keypoints, "keypoints_field") if keypoints_field else None
    if isinstance(config, dict):
        unknown = sorted(set(config) - set(QualityConfig.__dataclass_fields__))
        if unknown:
            raise BadInputError(f"quality: unknown option(s) {unknown}; valid: {sorted(QualityConfig.__dataclass_fields__)}")
        config = QualityConfig(**config)
    config = (config or QualityConfig()).validate()
    dataset = samples._dataset
    fps_of = dict(zip(map(str, samples.values("id")), samples.values("metadata.frame_rate")))
    videos = read_videos(samples, [box, kps])
    fields = quality_fields(key)
    summary = {"key": key, "fields": list(fields.values()) + [f"{box}.detections.{key}_flags"], "videos": {},
               "flags_computed": [], "notes": []}  # fmt: skip
    _declare(dataset, key, box)
    computed, notes = set(), set()
    for video in videos:
        fps = float(fps_of.get(video.sample_id) or 30.0)
        frames, ids, boxes, scores, label_ids, frame_ids, kp_rows = [], [], [], [], [], [], []
        for n, fid, dets, kpl in zip(video.frame_numbers, video.frame_ids, video.labels[box],
                                     video.labels[kps] if kps else [None] * len(video.frame_numbers)):  # fmt: skip
            if dets is None or not dets.detections:
                continue
            b, s, idx = detections_to_arrays(dets, video.width, video.height)
            keep = idx >= 0
            frames += [n] * int(keep.sum())
            ids += idx[keep].tolist()
            boxes.append(b[keep])
            scores += s[keep].tolist()
            label_ids += [d.id for d, k in zip(dets.detections, keep) if k]
            frame_ids += [fid] * int(keep.sum())
            if kps:
                pts, ks, kidx = keypoints_to_arrays(kpl, video.width, video.height)
                by_index = {int(i): np.concatenate([pts[j], ks[j][:, None]], axis=1) for j, i in enumerate(kidx) if i >= 0}
                nan = np.full((17, 3), np.nan)
                kp_rows += [by_index.get(int(i), nan) for i in idx[keep]]
        if not frames:
            summary["videos"][video.sample_id] = {"frames": 0, "flagged_frames": 0, "tracks": 0}
            continue
        boxes = np.concatenate(boxes)
        feats = None
        if embedder is not None:  # rows are in frame order: one contiguous block per frame
            numbers, starts = np.unique(np.asarray(frames), return_index=True)
            stops = np.append(starts[1:], len(frames))
            block = {int(n): (a, b) for n, a, b in zip(numbers, starts, stops)}
            got = _features(embedder, video, {n: boxes[a:b] for n, (a, b) in block.items()})
            if got:
                feats = np.full((len(frames), got[0][1].shape[1]), np.nan)
                for number, f in got:
                    a, b = block[number]
                    feats[a:b] = f
        q = score_tracks(frames, ids, boxes, fps, scores, np.array(kp_rows) if kps else None, feats, config)
        computed.update(q.flags_computed)
        notes.update(q.notes)
        # box attribute: the box's flags
        flag_lists = [[f for f in FLAGS if q.flags[f][i]] for i in range(len(frames))]
        dataset.set_label_values(
            f"frames.{box}.detections.{key}_flags",
            [{"frame_id": fid, "label_id": lid, "value": v} for fid, lid, v in zip(frame_ids, label_ids, flag_lists)],
        )
        # frame fields, on every frame document of the video (frames without boxes: 0 / [])
        pos = {int(f): i for i, f in enumerate(q.frames)}
        frame_flags: dict[int, set] = {}
        for f, v in zip(frames, flag_lists):
            frame_flags.setdefault(int(f), set()).update(v)
        values = {name: {} for name in fields.values()}
        for n, fid in zip(video.frame_numbers, video.frame_ids):
            i = pos.get(int(n))
            values[fields["score"]][fid] = float(q.frame_score[i]) if i is not None else 0.0
            values[fields["flags"]][fid] = [f for f in FLAGS if f in frame_flags.get(int(n), ())]
            values[fields["births"]][fid] = int(q.frame_counts["births"][i]) if i is not None else 0
            values[fields["deaths"]][fid] = int(q.frame_counts["deaths"][i]) if i is not None else 0
        for name, by_id in values.items():
            dataset.set_values(f"frames.{name}", by_id, key_field="frames.id")
        summary["videos"][video.sample_id] = {
            "frames": len(q.frames),
            "flagged_frames": int((q.frame_score > 0).sum()),
            "tracks": len(q.tracks),
            **{f: int(q.flags[f].sum()) for f in FLAGS},
        }
    summary["flags_computed"] = [f for f in FLAGS if f in computed]
    summary["notes"] = sorted(notes)
    from fiftyone_posetrack.fo.runs import record_import

    record_import(
        samples, JOB_NAME, list(fields.values()),
        {"box_field": box, "keypoints_field": kps, "key": key, **asdict(config),
         "embedder": type(embedder).__name__ if embedder is not None else None},
        {sid: v["frames"] for sid, v in summary["videos"].items() if v["frames"]},
    )  # fmt: skip
    return summary


def _check_has(samples, key: str) -> None:
    check_video_collection(samples)
    if not has_quality(samples, key):
        raise BadInputError(
            f"key: no track-quality fields {list(quality_fields(key).values())} on this collection: "
            "score the tracks first (the 'evaluate track quality' operator)"
        )


def flagged_frames(samples, key: str = QUALITY_KEY, share: float = 0.05, flag: str | None = None) -> list[dict]:
    """The top frames of every video by score: best first, at least a score window apart.

    Args:
        samples: a scored video collection
        key: the quality key
        share: the share of each video's frames to list (at least one per video
            with a flagged frame)
        flag: only frames with this flag

    Returns:
        ``[{"sample_id", "frame_number", "score", "flags", "births", "deaths"}]``,
        sorted by descending score over all videos
    """
    _check_has(samples, key)
    if flag is not None and flag not in FLAGS:
        raise BadInputError(f"flag: expected one of {list(FLAGS)}, got {flag!r}")
    f = quality_fields(key)
    window = _window(samples, key)
    out = []
    for video in read_videos(samples, list(f.values())):
        rows = [
            {"sample_id": video.sample_id, "video": video.name, "frame_number": n, "score": float(s or 0.0),
             "flags": list(fl or []), "births": int(b or 0), "deaths": int(d or 0)}
            for n, s, fl, b, d in zip(video.frame_numbers, *(video.labels[f[r]] for r in ("score", "flags", "births", "deaths")))
        ]  # fmt: skip
        k = max(1, int(np.ceil(share * len(rows)))) if rows else 0
        fps = float(samples.select(video.sample_id).first().metadata.frame_rate or 30.0)
        w = max(1, int(round(window * fps)))
        taken = []
        for r in sorted(rows, key=lambda r: (-r["score"], r["frame_number"])):
            if r["score"] <= 0 or len(taken) == k:
                break
            if flag is not None and flag not in r["flags"]:
                continue
            if all(abs(r["frame_number"] - t["frame_number"]) > 2 * w for t in taken):
                taken.append(r)
        out += taken
    out.sort(key=lambda r: (-r["score"], r["video"], r["frame_number"]))
    return out


def _window(samples, key: str) -> float:
    """The score window (seconds) of the latest run that wrote ``key``, else the default."""
    from fiftyone_posetrack.fo.runs import writers_of_field

    try:
        writers = writers_of_field(samples._dataset, quality_fields(key)["score"])
    except Exception:  # no run records (fields written by hand)
        writers = {}
    for record in reversed(list(writers.values())):
        seconds = (record.get("options") or {}).get("window_seconds")
        if seconds is not None:
            return float(seconds)
    return QualityConfig().window_seconds


def quality_clips(samples, key: str = QUALITY_KEY, share: float = 0.05, flag: str | None = None, before: int = 0,
                  after: int = 0):  # fmt: skip
    """A clips view with one clip per top flagged frame (:func:`flagged_frames`), opening at that frame.

    Each clip runs from ``before`` frames before the flagged frame to ``after``
    frames after it (0 and 0: the frame alone, so the App opens on it), in
    score order.
    """
    rows = flagged_frames(samples, key, share, flag)
    for name, value in (("before", before), ("after", after)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise BadInputError(f"{name}: expected a number of frames >= 0, got {value!r}")
    if not rows:
        return samples.limit(0).to_clips([])
    by_video: dict[str, list] = {}
    for r in rows:
        by_video.setdefault(r["sample_id"], []).append([max(1, r["frame_number"] - int(before)), r["frame_number"] + int(after)])
    view = samples.select(list(by_video), ordered=True)
    clips = view.to_clips([sorted(by_video[sid]) for sid in by_video])
    return clips


def quality_frames_view(samples, key: str = QUALITY_KEY, flag: str | None = None, min_score: float = 0.0):
    """The videos with only their frames flagged ``flag`` (any flag when None) or scored above ``min_score``."""
    _check_has(samples, key)
    f = quality_fields(key)
    if flag is not None:
        if flag not in FLAGS:
            raise BadInputError(f"flag: expected one of {list(FLAGS)}, got {flag!r}")
        return samples.match_frames(F(f["flags"]).contains(flag))
    return samples.match_frames(F(f["score"]) > float(min_score))
