"""The App's colour scheme for tracked labels: by track (``index``), ground truth apart, user's scheme kept."""

from __future__ import annotations

import uuid

import fiftyone as fo

from fiftyone_posetrack.cli import main
from fiftyone_posetrack.fo.appconfig import (
    INFO_KEY,
    REFERENCE_COLOR,
    TRACK_PALETTE,
    apply_track_colors,
    clear_track_colors,
    tracked_fields,
)
from fiftyone_posetrack.fo.dataset import get_or_create_dataset
from fiftyone_posetrack.fo.labels import write_frame_labels
from fiftyone_posetrack.fo.dataset import add_videos
from videos import make_video


def _fields(ds) -> dict:
    return {f["path"]: f for f in ds.app_config.color_scheme.fields}


def test_posetrack_run_colours_by_track(shared_dir, tmp_path, capsys):
    video = make_video(tmp_path / "walk.mp4", frames=4, size=(160, 96))
    name = f"appcfg-{uuid.uuid4().hex[:8]}"
    args = ["run", str(video), "--dataset", name, "--models-dir", str(shared_dir / "models"), "--reid", "none"]
    assert main(args) == 0
    ds = fo.load_dataset(name)
    try:
        scheme = ds.app_config.color_scheme
        assert scheme.color_by == "value" and list(scheme.color_pool) == list(TRACK_PALETTE)
        fields = _fields(ds)
        for f in ("frames.pred_detections", "frames.pred_keypoints"):
            assert fields[f]["colorByAttribute"] == "index", f
        assert scheme.show_skeletons and not scheme.multicolor_keypoints
        assert sorted(tracked_fields(ds)) == ["pred_detections", "pred_keypoints"]
    finally:
        ds.delete()


def _dataset(tmp_path):
    ds = get_or_create_dataset(f"appcfg-{uuid.uuid4().hex[:8]}", persistent=False)
    (sid,) = add_videos(ds, [make_video(tmp_path / "v.mp4", frames=3, size=(160, 96))])
    box = fo.Detection(label="person", bounding_box=[0.1, 0.1, 0.3, 0.6], index=1)
    write_frame_labels(ds, {
        "gt_detections": {sid: {1: fo.Detections(detections=[box.copy()])}},
        "pred_detections": {sid: {1: fo.Detections(detections=[box.copy()])}},
    })  # fmt: skip
    return ds


def test_ground_truth_is_one_neutral_colour_and_fields_accumulate(tmp_path):
    ds = _dataset(tmp_path)
    try:
        assert apply_track_colors(ds, ["pred_detections"])
        fields = _fields(ds)
        gt = fields["frames.gt_detections"]
        assert gt["fieldColor"] == REFERENCE_COLOR and gt["valueColors"] == [{"value": "person", "color": REFERENCE_COLOR}]
        assert fields["frames.pred_detections"]["colorByAttribute"] == "index"
        # a later tracked field joins; the earlier one stays coloured by track
        ds.add_frame_field("other_tracks", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
        assert apply_track_colors(ds, ["frames.other_tracks"])
        assert sorted(tracked_fields(ds)) == ["other_tracks", "pred_detections"]
        assert _fields(ds)["frames.other_tracks"]["colorByAttribute"] == "index"
        assert clear_track_colors(ds)
        assert ds.app_config.color_scheme is None and INFO_KEY not in ds.info
    finally:
        ds.delete()


def test_a_users_colour_scheme_is_kept(tmp_path):
    ds = _dataset(tmp_path)
    try:
        mine = fo.ColorScheme(color_by="field", color_pool=["#123456"])
        ds.app_config.color_scheme = mine
        ds.save()
        assert apply_track_colors(ds, ["pred_detections"]) is False
        ds.reload()
        assert ds.app_config.color_scheme.color_by == "field"
        assert list(ds.app_config.color_scheme.color_pool) == ["#123456"]
        assert clear_track_colors(ds) is False and ds.app_config.color_scheme.color_by == "field"
        assert apply_track_colors(ds, ["pred_detections"], force=True)
        assert ds.app_config.color_scheme.color_by == "value"
    finally:
        ds.delete()
