"""Person detection with any mmdet 3.x model (Cascade R-CNN, RTMDet, Faster R-CNN, ...).

Spec: ``mmdet:CONFIG[:CHECKPOINT]`` where CONFIG is a path or a config name that
ships in the mmdet wheel and CHECKPOINT a path or URL (omitted: random weights,
for tests and benchmarks). A whole batch of frames goes through the model's
test pipeline and one ``test_step`` (one forward pass), unlike
``mmdet.apis.inference_detector``, which loops over images. Only the
``person`` class (looked up by name in the model's classes) is kept.
"""

from __future__ import annotations

import numpy as np

from fiftyone_posetrack.detection.base import Detector, ModelSpec, check_frames
from fiftyone_posetrack.detection.preprocess import check_input_size
from fiftyone_posetrack.openmmlab import load_config, load_weights, require, resolve_device
from fiftyone_posetrack.types import BadInputError, FrameDetections

__all__ = ["MMDetDetector"]


class MMDetDetector(Detector):
    """A person detector from an mmdet config and checkpoint.

    Args:
        config: config path or name shipped with mmdet
        checkpoint: path or URL of the weights; None builds random weights
        score_threshold: boxes scoring below it are dropped
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``
        batch_size: frames per forward pass
        person_class: the class name to keep
        cfg_options: config overrides, e.g. ``{"model.test_cfg.score_thr": 0.01}``
        input_size: the longer side of the resized frame in pixels (the test
            pipeline's ``Resize`` becomes ``scale=(S, S), keep_ratio=True`` and a
            fixed-size ``Pad`` pads to ``S x S``); 0 / None keeps the config's
    """

    def __init__(
        self,
        config: str,
        checkpoint: str | None = None,
        score_threshold: float = 0.3,
        device: str = "auto",
        batch_size: int = 8,
        person_class: str = "person",
        cfg_options: dict | None = None,
        input_size: int | None = None,
    ):
        super().__init__(score_threshold, device, batch_size)
        self.input_size = check_input_size(input_size or 0, "input_size")
        require("mmdet")
        from mmdet.apis import init_detector
        from mmdet.utils import register_all_modules

        register_all_modules()
        cfg = load_config(config, "mmdet")
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        self.device = resolve_device(device)
        self.model = init_detector(cfg, None, device="cpu")
        if checkpoint:
            meta = load_weights(self.model, checkpoint)
            classes = (meta.get("dataset_meta") or {}).get("classes")
            if classes:
                self.model.dataset_meta = dict(self.model.dataset_meta or {}, classes=classes)
        self.model.to(self.device).eval()
        classes = [str(c).lower() for c in (self.model.dataset_meta or {}).get("classes", ())]
        if person_class not in classes:
            raise BadInputError(f"{config}: the model's classes {classes[:10]}... have no {person_class!r}")
        self.person_label = classes.index(person_class)
        self.pipeline = self._test_pipeline(cfg, self.input_size)

    @staticmethod
    def test_pipeline_steps(cfg, input_size: int = 0) -> list[dict]:
        """The config's test pipeline steps, resized to ``input_size`` (longer side) if > 0."""
        steps = [dict(t) for t in cfg.test_dataloader.dataset.pipeline]
        if input_size:
            for t in steps:
                kind = str(t.get("type")).rsplit(".", 1)[-1]
                if kind in ("Resize", "FixShapeResize"):
                    t.pop("scale_factor", None)
                    t.pop("width", None), t.pop("height", None)  # FixShapeResize's
                    t["type"] = str(t["type"]).replace("FixShapeResize", "Resize")
                    t.update(scale=(input_size, input_size), keep_ratio=True)
                elif kind == "Pad" and t.get("size") is not None:
                    t["size"] = (input_size, input_size)
        return steps

    @classmethod
    def _test_pipeline(cls, cfg, input_size: int = 0):
        from mmengine.dataset import Compose

        steps = cls.test_pipeline_steps(cfg, input_size)
        steps[0] = dict(type="mmdet.LoadImageFromNDArray")
        # annotations are not needed (and absent) at inference
        steps = [t for t in steps if "LoadAnnotations" not in str(t.get("type"))]
        return Compose(steps)

    @classmethod
    def from_spec(cls, spec: ModelSpec, **kwargs) -> "MMDetDetector":
        return cls(spec.path, spec.checkpoint, **kwargs)

    def _detect_batch(self, frames: list[np.ndarray]) -> list[FrameDetections]:
        import torch
        from mmengine.dataset import pseudo_collate

        frames = check_frames(frames)
        data = pseudo_collate([self.pipeline(dict(img=f, img_id=i)) for i, f in enumerate(frames)])
        with torch.no_grad():
            results = self.model.test_step(data)
        out = []
        for result in results:
            pred = result.pred_instances
            keep = (pred.labels == self.person_label) & (pred.scores >= self.score_threshold)
            boxes = pred.bboxes[keep].float().cpu().numpy().astype(np.float64)
            scores = pred.scores[keep].float().cpu().numpy().astype(np.float64)
            finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
            boxes, scores = boxes[finite], scores[finite]
            boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
            out.append(FrameDetections(boxes, np.clip(scores, 0, 1)))
        return out

    def __repr__(self) -> str:
        return f"MMDetDetector({type(self.model).__name__}, device={self.device!r})"
