"""Sliced inference (tiles + whole frame) and the detector input size option."""

from __future__ import annotations

import re
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from fiftyone_posetrack.detection import box_iou, make_detector
from fiftyone_posetrack.detection.preprocess import input_canvas
from fiftyone_posetrack.detection.tiling import TiledDetector, check_tile_options, cut_box_mask, tile_boxes
from fiftyone_posetrack.pipeline.config import PipelineConfig
from fiftyone_posetrack.types import BadInputError, FrameDetections


# -- slicing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("h, w, size, overlap", [(1080, 1920, 640, 0.2), (480, 640, 320, 0.25), (433, 771, 200, 0.0)])
def test_tiles_cover_the_frame_and_overlap(h, w, size, overlap):
    tiles = tile_boxes(h, w, size, overlap)
    assert (tiles[:, :2] >= 0).all() and (tiles[:, 2] <= w).all() and (tiles[:, 3] <= h).all()
    assert ((tiles[:, 2] - tiles[:, 0]) == min(size, w)).all()
    assert ((tiles[:, 3] - tiles[:, 1]) == min(size, h)).all()
    covered = np.zeros((h, w), dtype=bool)
    for x1, y1, x2, y2 in tiles:
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    # neighbouring tiles overlap by at least the requested fraction
    xs = np.unique(tiles[:, 0])
    if len(xs) > 1:
        assert (size - np.diff(xs)).min() >= int(overlap * size)


def test_tile_count_of_a_full_hd_frame():
    assert len(tile_boxes(1080, 1920, 640, 0.2)) == 8  # 4 columns x 2 rows


@pytest.mark.parametrize(
    "size, overlap, merge, match, config_match",
    [
        (-1, 0.2, "nms", r"det_tile_size.*-1", r"config\.det_tile_size: expected an integer >= 0 and <= 8192, got -1"),
        (16, 0.2, "nms", r"det_tile_size: 16", r"config\.det_tile_size: expected 0 or at least 32 pixels.*got 16"),
        (2.5, 0.2, "nms", r"det_tile_size.*2\.5", r"config\.det_tile_size.*2\.5"),
        (640, -0.1, "nms", r"det_tile_overlap.*-0\.1", r"config\.det_tile_overlap: .*<= 0\.9, got -0\.1"),
        (640, 1.0, "nms", r"det_tile_overlap.*1\.0", r"config\.det_tile_overlap: .*<= 0\.9, got 1\.0"),
        (640, 0.95, "nms", r"det_tile_overlap.*0\.95", r"config\.det_tile_overlap: .*got 0\.95"),
        (640, "a lot", "nms", r"det_tile_overlap.*a lot", r"config\.det_tile_overlap.*a lot"),
        (640, 0.2, "mean", r"det_tile_merge.*'mean'", r"config\.det_tile_merge.*'mean'"),
    ],
)
def test_bad_tile_options_are_named(size, overlap, merge, match, config_match):
    with pytest.raises(BadInputError, match=match):
        check_tile_options(size, overlap, merge)
    with pytest.raises(BadInputError, match=config_match):
        PipelineConfig(det_tile_size=size, det_tile_overlap=overlap, det_tile_merge=merge)


def test_tile_larger_than_the_frame_is_refused():
    with pytest.raises(BadInputError, match=r"det_tile_size: 800 px tiles are larger than the 768x432 frame"):
        tile_boxes(432, 768, 800, 0.2)
    # larger than the shorter side only: clipped to it
    assert (tile_boxes(432, 768, 600, 0.2)[:, 3] == 432).all()


@pytest.mark.parametrize(
    "value, message",
    [
        (-32, "config.det_input_size: expected an integer >= 0 and <= 8192, got -32"),
        (16, "config.det_input_size: expected 0 or at least 32 pixels (the detectors' stride), got 16"),
        (1.5, "config.det_input_size: expected an integer >= 0 and <= 8192, got 1.5"),
        ("960", "config.det_input_size"),
    ],
)
def test_bad_input_size_is_named(value, message):
    with pytest.raises(BadInputError, match=re.escape(message)):
        PipelineConfig(det_input_size=value)


def test_input_canvas_follows_the_aspect_ratio():
    full_hd = np.zeros((1080, 1920, 3), np.uint8)
    assert input_canvas([full_hd], 960) == (960, 544)
    assert input_canvas([full_hd], 320) == (320, 192)
    assert input_canvas([np.zeros((480, 640, 3), np.uint8)], 1280) == (1280, 960)
    # frames of two shapes: a canvas holding both
    assert input_canvas([full_hd, np.zeros((1000, 500, 3), np.uint8)], 640) == (640, 640)


# -- border handling and merging (pure numerics) ---------------------------------------------


def test_cut_box_mask_only_inner_borders():
    tile = np.array([0, 0, 640, 640])  # top-left tile of a 1920x1080 frame
    boxes = np.array(
        [
            [0, 10, 50, 100],  # on the frame's left edge: not cut
            [600, 10, 639.5, 100],  # on the tile's right edge (inner): cut
            [100, 600, 150, 640],  # on the tile's bottom edge (inner): cut
            [100, 100, 200, 300],  # inside
        ]
    )
    np.testing.assert_array_equal(cut_box_mask(boxes, tile, 1080, 1920, 2.0), [False, True, True, False])
    last = np.array([1280, 440, 1920, 1080])  # bottom-right tile: right and bottom are frame edges
    np.testing.assert_array_equal(
        cut_box_mask(np.array([[1800, 1000, 1920, 1080], [1280, 500, 1300, 600]]), last, 1080, 1920, 2.0),
        [False, True],
    )


def _tiler(merge="nms", **kwargs):
    from fiftyone_posetrack.detection.base import Detector

    class _Unused(Detector):
        def _detect_batch(self, frames):
            raise AssertionError("merge_frame must not run the detector")

    return TiledDetector(_Unused(score_threshold=0.3), 640, 0.2, merge, **kwargs)


def _dets(boxes, scores):
    return FrameDetections(np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float))


def test_a_person_cut_by_a_tile_border_is_one_box():
    """Person at x 600-700 (straddles tile 0's right border at 640, tile 1 starts at 512)."""
    tiler = _tiler()
    tiles = tile_boxes(1080, 1920, 640, 0.2)
    person = [600, 100, 700, 400]
    full = _dets([person], [0.6])
    per_tile = []
    for tile in tiles:
        x1, y1, x2, y2 = tile
        if x1 == 0 and y1 == 0:  # tile 0 sees the left part, cut at its border (crop pixels)
            per_tile.append(_dets([[600, 100, 640, 400]], [0.7]))
        elif x1 == 512 and y1 == 0:  # tile 1 holds the whole person
            per_tile.append(_dets([[600 - 512, 100, 700 - 512, 400]], [0.9]))
        else:
            per_tile.append(_dets([], []))
    merged = tiler.merge_frame([full, *per_tile], tiles, 1080, 1920)
    assert len(merged) == 1
    np.testing.assert_allclose(merged.boxes[0], person)
    assert merged.scores[0] == pytest.approx(0.9)


def test_an_uncovered_cut_box_is_kept_and_separate_people_stay_apart():
    tiler = _tiler()
    tiles = tile_boxes(1080, 1920, 640, 0.2)
    per_tile = [_dets([], []) for _ in tiles]
    per_tile[0] = _dets([[600, 100, 640, 400], [100, 100, 160, 300], [130, 110, 190, 310]], [0.5, 0.8, 0.7])
    merged = tiler.merge_frame([_dets([], []), *per_tile], tiles, 1080, 1920)
    # the cut box has nothing covering it; the two people overlap below the NMS threshold
    iou = box_iou([[100, 100, 160, 300]], [[130, 110, 190, 310]])[0, 0]
    assert iou < 0.5
    assert len(merged) == 3


@pytest.mark.parametrize("merge", ["nms", "wbf"])
def test_duplicates_from_overlapping_tiles_merge(merge):
    tiler = _tiler(merge)
    tiles = tile_boxes(1080, 1920, 640, 0.2)
    per_tile = [_dets([], []) for _ in tiles]
    # a person inside the overlap of tiles 0 (x 0-640) and the one starting at x 512
    second = [i for i, t in enumerate(tiles) if t[0] == 512 and t[1] == 0][0]
    per_tile[0] = _dets([[540, 100, 600, 300]], [0.8])
    per_tile[second] = _dets([[540 - 512 + 4, 100, 600 - 512 + 4, 300]], [0.6])
    full = _dets([[540, 102, 600, 300]], [0.4])
    merged = tiler.merge_frame([full, *per_tile], tiles, 1080, 1920)
    assert len(merged) == 1
    if merge == "nms":
        np.testing.assert_allclose(merged.boxes[0], [540, 100, 600, 300])
        assert merged.scores[0] == pytest.approx(0.8)
    else:  # score-weighted mean of the three
        x1 = (0.8 * 540 + 0.6 * 544 + 0.4 * 540) / 1.8
        np.testing.assert_allclose(merged.boxes[0, 0], x1)
        assert merged.scores[0] == pytest.approx(0.6)


# -- on real frames with the real RTMDet-nano ------------------------------------------------


@pytest.fixture(scope="module")
def mot17_04(shared_dir):
    root = shared_dir / "data" / "mot17-frames" / "MOT17-04"
    frame = cv2.imread(str(root / "img1" / "000001.jpg"))
    gt = np.loadtxt(root / "gt" / "gt.txt", delimiter=",")
    gt = gt[(gt[:, 0] == 1) & (gt[:, 7] == 1) & (gt[:, 6] != 0)]
    boxes = gt[:, 2:6].copy()
    boxes[:, 2:] += boxes[:, :2]
    return frame, boxes


@pytest.fixture(scope="module")
def nano_path(shared_dir):
    return f"rtmdet-onnx:{shared_dir}/models/rtmdet-nano-person/end2end.onnx"


def _recall(gt, dets):
    if not len(dets):
        return 0.0
    return float((box_iou(gt, dets.boxes).max(axis=1) >= 0.5).mean())


def test_input_size_and_tiles_find_more_small_people(mot17_04, nano_path):
    frame, gt = mot17_04
    plain = make_detector(nano_path, score_threshold=0.3, device="cpu")
    large = make_detector(nano_path, score_threshold=0.3, device="cpu", input_size=960)
    tiled = TiledDetector(plain, 640, 0.2, "nms")
    r_plain = _recall(gt, plain.detect([frame])[0])
    r_large = _recall(gt, large.detect([frame])[0])
    out = tiled.detect([frame])[0]
    r_tiled = _recall(gt, out)
    print(f"\nMOT17-04 frame 1 recall: 320 {r_plain:.2f}, 960 {r_large:.2f}, tiles 640 {r_tiled:.2f}")
    assert r_large >= r_plain + 0.15
    assert r_tiled >= r_plain + 0.15
    assert (out.scores >= 0.3).all() and (np.diff(out.scores) <= 0).all()
    assert (out.boxes[:, 2] <= frame.shape[1]).all() and (out.boxes[:, 3] <= frame.shape[0]).all()
    # merged: no two kept boxes overlap above the NMS threshold
    iou = box_iou(out.boxes, out.boxes)
    np.fill_diagonal(iou, 0)
    assert iou.max() <= 0.5


def test_tiled_detector_equals_the_crops_run_by_hand(mot17_04, nano_path):
    frame, _ = mot17_04
    frame = frame[:540, :960].copy()
    base = make_detector(nano_path, score_threshold=0.3, device="cpu")
    tiled = TiledDetector(base, 480, 0.25, "nms")
    tiles = tiled.tiles(*frame.shape[:2])
    crops = [frame] + [frame[y1:y2, x1:x2] for x1, y1, x2, y2 in tiles]
    by_hand = tiled.merge_frame(base.detect(crops), tiles, *frame.shape[:2])
    out = tiled.detect([frame, frame])  # two frames in one call give the same boxes
    for d in out:
        order = np.argsort(-by_hand.scores, kind="stable")
        np.testing.assert_allclose(d.boxes, by_hand.boxes[order][by_hand.scores[order] >= 0.3])


def test_tiles_larger_than_a_real_frame_are_refused(shared_dir, nano_path):
    frame = cv2.imread(str(shared_dir / "data" / "mot17-frames" / "MOT17-05" / "img1" / "000001.jpg"))
    tiled = TiledDetector(make_detector(nano_path, device="cpu"), 1280, 0.2)
    with pytest.raises(BadInputError, match=r"1280 px tiles are larger than the 640x480 frame"):
        tiled.detect([frame])


def test_a_presets_tile_size_leaves_small_frames_untiled(shared_dir):
    """The cpu preset's 640 px tiles: a 640x480 frame is detected whole (the same boxes as without
    tiling); the same tile size given explicitly is checked against the frame."""
    from fiftyone_posetrack.pipeline.core import build_detector

    frame = cv2.imread(str(shared_dir / "data" / "mot17-frames" / "MOT17-05" / "img1" / "000001.jpg"))
    models = str(shared_dir / "models")
    preset = PipelineConfig(preset="cpu", models_dir=models, device="cpu", reid=None, det_score_threshold=0.3)
    assert preset.det_tile_size == 640 and "det_tile_size" not in preset.explicit_options
    tiled = build_detector(preset.replace(det_tile_size=preset.det_tile_size + 1))  # explicit: 641 > 640
    with pytest.raises(BadInputError, match=r"641 px tiles are larger than the 640x480 frame"):
        tiled.detect([frame])
    lenient = build_detector(preset.replace(models_dir=models))  # the preset's own 640
    assert isinstance(lenient, TiledDetector) and not lenient.strict
    assert len(lenient.tiles(480, 640)) == 0 and len(lenient.tiles(1080, 1920)) > 1
    plain = build_detector(preset.replace(det_tile_size=0))
    got, want = lenient.detect([frame])[0], plain.detect([frame])[0]
    assert len(want) > 0 and np.allclose(got.boxes, want.boxes) and np.allclose(got.scores, want.scores)
    # the defaults are the cpu preset: their tile size is lenient too
    default = build_detector(PipelineConfig(models_dir=models, device="cpu", reid=None))
    assert isinstance(default, TiledDetector) and default.tile_size == 640 and not default.strict
    assert np.allclose(default.detect([frame])[0].boxes, want.boxes)


def test_yolox_refuses_other_input_sizes(shared_dir):
    path = f"yolox-onnx:{shared_dir}/models/yolox-nano/yolox_nano.onnx"
    with pytest.raises(BadInputError, match=r"input size 640 is not possible.*fixed 416x416"):
        make_detector(path, input_size=640, device="cpu")
    assert make_detector(path, input_size=416, device="cpu").input_size == (416, 416)


def test_build_detector_applies_size_and_tiles(shared_dir):
    from fiftyone_posetrack.detection.onnx_rtmdet import RTMDetONNX
    from fiftyone_posetrack.pipeline.core import build_detector

    config = PipelineConfig(
        models_dir=str(shared_dir / "models"), device="cpu", det_input_size=640,
        det_tile_size=960, det_tile_overlap=0.1, det_tile_merge="wbf",
    )  # fmt: skip
    detector = build_detector(config)
    assert isinstance(detector, TiledDetector)
    assert (detector.tile_size, detector.overlap, detector.merge) == (960, 0.1, "wbf")
    assert isinstance(detector.detector, RTMDetONNX) and detector.detector.longer_side == 640
    plain = build_detector(config.replace(det_input_size=0, det_tile_size=0))
    assert isinstance(plain, RTMDetONNX) and plain.longer_side == 0 and plain.input_size == (320, 320)


def test_mmdet_pipeline_resized():
    from fiftyone_posetrack.detection.mmdet import MMDetDetector

    pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="Resize", scale=(640, 640), keep_ratio=True),
        dict(type="Pad", size=(640, 640), pad_val=dict(img=(114, 114, 114))),
        dict(type="PackDetInputs"),
    ]
    cfg = SimpleNamespace(test_dataloader=SimpleNamespace(dataset=SimpleNamespace(pipeline=pipeline)))
    steps = MMDetDetector.test_pipeline_steps(cfg, 1280)
    assert steps[1] == dict(type="Resize", scale=(1280, 1280), keep_ratio=True)
    assert steps[2]["size"] == (1280, 1280)
    assert pipeline[1]["scale"] == (640, 640)  # the config itself is untouched
    assert MMDetDetector.test_pipeline_steps(cfg, 0)[1]["scale"] == (640, 640)
    fixed = [dict(type="mmdet.FixShapeResize", width=512, height=512, keep_ratio=False)]
    cfg.test_dataloader.dataset.pipeline = fixed
    assert MMDetDetector.test_pipeline_steps(cfg, 800) == [
        dict(type="mmdet.Resize", scale=(800, 800), keep_ratio=True)
    ]
