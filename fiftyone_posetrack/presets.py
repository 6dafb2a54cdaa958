"""Presets: named sets of pipeline option values, e.g. ``PipelineConfig(preset="cpu")``.

Each entry of :data:`PRESETS` has a one-line ``description`` and the
``options`` it sets (names of :data:`fiftyone_posetrack.pipeline.options.OPTIONS`).
Options given explicitly override the preset's values::

    PipelineConfig(preset="balanced", tracker="bytetrack")
    PipelineConfig.from_preset("cpu", batch_size=4)
    posetrack run --preset cpu --tracker bytetrack ...

Presets are data: a model name the zoo (:mod:`fiftyone_posetrack.models`)
does not know gives the usual unknown-model error when the preset is used,
never at import.

The ``cpu`` preset's values come from the detection and end-to-end benches
(see :data:`CPU_TUNED`); change them there only. They are also the pipeline's
defaults (:data:`fiftyone_posetrack.pipeline.options.OPTIONS` reads them from
here), so ``PipelineConfig()`` is ``PipelineConfig(preset="cpu")``; the other
presets set every detection and tracking value that differs from them.
"""

from __future__ import annotations

from fiftyone_posetrack.types import BadInputError

__all__ = ["PRESETS", "CPU_TUNED", "preset_options", "preset_models"]

#: the ``cpu`` preset's measured values, also the pipeline's defaults.
#: Detection (``python bench/bench_detection.py --score 0.3``): RTMDet-nano on 640 px tiles plus the
#: whole frame, each at the model's own 320 input, at score >= 0.3 finds 66.3 % of the people of
#: ../shared/data/mot17-frames at 70.0 % precision (the plain model: 25.8 % / 70.6 %), and generalises
#: best to frames never used to choose it (PoseTrack18 val: 93 % / 81 %; a 960 px input gives 67 % /
#: 73 % on MOT17 but upscales small videos into split boxes). Frames no larger than a tile are not tiled.
#: Re-measured on every real image set (MOT17, PoseTrack18, COCO, CrowdPose, the real video: issue 22,
#: ``python bench/bench_detection.py``, docs/pose.md): YOLOX-nano fusion, test-time flip, 512 px tiles,
#: overlap 0.3 and score 0.25 each lose recall somewhere or precision on MOT17; none is kept.
#: Tracking (``python bench/bench_end_to_end.py --sizes tiles640@320 --reid osnet --trackers bytetrack
#: --appearance demand --bytetrack-det 0.1,0.2,0.3``, 20-person crowd): ByteTrack with thresholds in
#: nano's score range and OSNet x0.25 features computed only for the boxes whose motion match is
#: ambiguous (appearance_on_demand: 5-16 % of the boxes). The detector threshold was chosen on the
#: crowd of seed 5 (IDF1 0.654 / 0.671 / 0.676 at 0.1 / 0.2 / 0.3); on the reported crowd of seed 3
#: it scores 0.720 / 0.736 / 0.712: 0.3 keeps the detector's precision at 0.70 for the same IDF1.
#: Pose (``python bench/bench_smoothing.py``, docs/pose.md): MoveNet with test-time flip raises PoseTrack
#: AP on every annotated set of ../shared/data/keypoints (PoseTrack18 43.1 -> 52.5, COCO 61.9 -> 65.7,
#: CrowdPose 58.0 -> 60.4) and lowers the jitter of the real video, at twice the pose time.
CPU_TUNED = {
    "detector": "rtmdet-nano-person",
    "det_input_size": 0,
    "det_tile_size": 640,
    "det_tile_overlap": 0.2,
    "det_tile_merge": "nms",
    "det_score_threshold": 0.3,
    "reid": "osnet-x0_25-msmt17",
    "reid_flip": False,
    "pose": "movenet-lightning-int8",
    "pose_flip": True,
    "tracker": "bytetrack",
    "tracker_params": {
        "track_thresh": 0.4, "new_track_thresh": 0.45, "max_age": 90,
        "appearance_thresh": 0.15, "proximity_thresh": 0.9, "appearance_on_demand": True,
    },  # fmt: skip
}

PRESETS: dict[str, dict] = {
    "hie2020": {
        "description": "the HIE 2020 challenge pipeline: two Cascade R-CNN detectors fused, DeepSORT + OSNet ReID, "
        "HRNet + SimpleBaseline heatmaps averaged, flow smoothing (slow; GPU)",
        "options": {
            "detector": "cascade-rcnn-x101-fpn-coco",
            "detector2": "cascade-rcnn-r101-fpn-coco",
            "fusion_weights": (1.0, 1.0),
            "det_tile_size": 0,
            "box_smoothing": True,
            "box_alpha": 0.5,
            "tracker": "deepsort",
            "tracker_params": {
                "max_cosine_distance": 0.3, "nn_budget": 256, "max_age": 30, "n_init": 3, "max_iou_distance": 0.7,
            },  # fmt: skip
            "reid": "osnet-x1_0-msmt17",
            "reid_flip": True,
            "reid_scales": (1.0, 0.875),
            "pose": "hrnet-w48-coco-256x192",  # heatmap averaging needs the same input size as pose2
            "pose2": "simplebaseline-r152-coco-256x192",
            "pose_flip": False,
            "pose_smoothing": "flow",
        },
    },
    "accurate": {
        "description": "strong single models: YOLOX-x + RTMPose-l, DeepSORT + OSNet x1.0 (GPU recommended; "
        "no RTMDet-l person model is published)",
        "options": {
            "detector": "yolox-x",
            "det_tile_size": 0,
            "pose": "rtmpose-l-body7",
            "pose_flip": False,  # test-time flip is MoveNet's only
            "tracker": "deepsort",
            "reid": "osnet-x1_0-msmt17",
            "reid_flip": True,
            "pose_smoothing": "flow",
        },
    },
    "balanced": {
        "description": "RTMDet-m + RTMPose-m, DeepSORT + OSNet x0.25",
        "options": {
            "detector": "rtmdet-m-person",
            "det_tile_size": 0,
            "pose": "rtmpose-m-body7",
            "pose_flip": False,  # test-time flip is MoveNet's only
            "tracker": "deepsort",
            "reid": "osnet-x0_25-msmt17",
            "reid_flip": True,
        },
    },
    "fast": {
        "description": "RTMDet-nano (no tiling) + RTMPose-t, ByteTrack (motion only)",
        # bench_end_to_end.py --sizes 320 --reid none --trackers bytetrack,deepsort --bytetrack-det 0.1,0.3:
        # IDF1 0.548 / 0.534 (seeds 5 / 3) against 0.518 / 0.491 for DeepSORT at 280 frames/s of tracking
        "options": {
            "detector": "rtmdet-nano-person",
            "det_tile_size": 0,
            "pose": "rtmpose-t-body7",
            "pose_flip": False,  # test-time flip is MoveNet's only
            "tracker": "bytetrack",
            "tracker_params": {"track_thresh": 0.4, "new_track_thresh": 0.45, "max_age": 90},
            "reid": None,
        },
    },
    "cpu": {
        "description": "the defaults: what runs best offline on 2 CPU cores (RTMDet-nano on 640 px tiles, "
        "ByteTrack + OSNet x0.25 on ambiguous boxes, MoveNet)",
        "options": CPU_TUNED,
    },
}


def preset_options(name: str) -> dict:
    """The option values of preset ``name`` (a copy).

    Raises:
        BadInputError: for an unknown name, listing the known ones
    """
    if name not in PRESETS:
        raise BadInputError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[name]["options"].items()}


def preset_models(name: str) -> dict:
    """``{option: model name}`` of the model options preset ``name`` sets."""
    from fiftyone_posetrack.pipeline.options import OPTIONS

    return {
        k: v for k, v in preset_options(name).items() if OPTIONS[k].model_kind is not None and v is not None
    }
