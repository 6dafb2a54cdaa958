"""Top-down pose estimation with any mmpose 1.x model, and heatmap averaging of two models.

Spec: ``mmpose:CONFIG[:CHECKPOINT]`` (CONFIG a path or a config name shipped in
the mmpose wheel, e.g. ``td-hm_hrnet-w32_8xb64-210e_coco-256x192.py``;
CHECKPOINT a path or URL; omitted: random weights). All boxes of a batch of
frames go through the model's test pipeline and one ``test_step``, with the
config's flip test.

**Heatmap averaging** (the HIE 2020 recipe: HRNet + SimpleBaseline): with
``second_model``, both models see the same crops; each model's heatmaps (flip
averaged when the config asks for it) are averaged, and the mean is decoded
once with the first model's codec. The two heads must produce heatmaps of the
same shape (same input size and codec); otherwise a :class:`BadInputError`
says so.
"""

from __future__ import annotations

import numpy as np

from fiftyone_posetrack.detection.base import ModelSpec, parse_model_spec
from fiftyone_posetrack.openmmlab import load_config, load_weights, require, resolve_device
from fiftyone_posetrack.pose.base import PoseEstimator
from fiftyone_posetrack.types import BadInputError

__all__ = ["MMPoseEstimator"]


def _build(config: str, checkpoint: str | None, device: str):
    from mmpose.apis import init_model

    cfg = load_config(config, "mmpose")
    model = init_model(cfg, None, device="cpu")
    if checkpoint:
        meta = load_weights(model, checkpoint)
        if meta.get("dataset_meta"):
            model.dataset_meta = meta["dataset_meta"]
    return model.to(device).eval(), cfg


class MMPoseEstimator(PoseEstimator):
    """A top-down pose estimator from an mmpose config and checkpoint.

    Args:
        config: config path or name shipped with mmpose
        checkpoint: path or URL of the weights; None builds random weights
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``
        batch_size: the most person crops per forward pass
        second_model: an ``mmpose:CONFIG[:CHECKPOINT]`` spec whose heatmaps are
            averaged with this model's
        flip_test: override the config's flip test (None keeps it)
    """

    def __init__(
        self,
        config: str,
        checkpoint: str | None = None,
        device: str = "auto",
        batch_size: int = 32,
        second_model: str | None = None,
        flip_test: bool | None = None,
    ):
        super().__init__(device, batch_size)
        require("mmpose")
        from mmengine.dataset import Compose
        from mmpose.utils import register_all_modules

        register_all_modules()
        self.device = resolve_device(device)
        self.model, cfg = _build(config, checkpoint, self.device)
        if flip_test is not None:
            self.model.test_cfg["flip_test"] = bool(flip_test)
        k = len(self.model.dataset_meta.get("keypoint_id2name", {})) or 17
        if k != 17:
            raise BadInputError(f"{config}: the model has {k} keypoints; the pipeline needs COCO-17")
        self.pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
        self.second = None
        if second_model:
            spec = parse_model_spec(second_model)
            if spec.backend not in ("mmpose", "mm"):
                raise BadInputError(f"second_model must be an mmpose spec, got {second_model!r}")
            self.second, cfg2 = _build(spec.path, spec.checkpoint, self.device)
            if flip_test is not None:
                self.second.test_cfg["flip_test"] = bool(flip_test)
            size_a = tuple(cfg.codec.get("heatmap_size", ())), tuple(cfg.codec.get("input_size", ()))
            size_b = tuple(cfg2.codec.get("heatmap_size", ())), tuple(cfg2.codec.get("input_size", ()))
            if not size_a[0] or size_a != size_b:
                raise BadInputError(
                    f"heatmap averaging needs two heatmap models with the same input and heatmap "
                    f"sizes; got {size_a} and {size_b}"
                )

    @classmethod
    def from_spec(cls, spec: ModelSpec, **kwargs) -> "MMPoseEstimator":
        return cls(spec.path, spec.checkpoint, **kwargs)

    def _batch(self, frames, frame_index, boxes):
        from mmengine.dataset import pseudo_collate

        items = []
        for i, box in zip(frame_index, boxes):
            info = dict(img=frames[int(i)], bbox=np.asarray(box, np.float32)[None], bbox_score=np.ones(1, np.float32))
            info.update(self.model.dataset_meta)
            items.append(self.pipeline(info))
        return pseudo_collate(items)

    def _heatmaps(self, model, batch):
        """Flip-averaged heatmaps of one model, and its preprocessed data samples."""
        from mmpose.models.utils.tta import flip_heatmaps

        data = model.data_preprocessor(batch, False)
        inputs, samples = data["inputs"], data["data_samples"]
        heatmaps = model.head.forward(model.extract_feat(inputs))
        cfg = model.test_cfg
        if cfg.get("flip_test", False):
            flipped = model.head.forward(model.extract_feat(inputs.flip(-1)))
            flipped = flip_heatmaps(
                flipped,
                flip_mode=cfg.get("flip_mode", "heatmap"),
                flip_indices=samples[0].metainfo["flip_indices"],
                shift_heatmap=cfg.get("shift_heatmap", False),
            )
            heatmaps = (heatmaps + flipped) * 0.5
        return heatmaps, samples

    def _estimate_many(self, frames, frame_index, boxes):
        import torch

        batch = self._batch(frames, frame_index, boxes)
        with torch.no_grad():
            if self.second is None:
                samples = self.model.test_step(batch)
            else:
                heat_a, samples = self._heatmaps(self.model, batch)
                heat_b, _ = self._heatmaps(self.second, batch)
                preds = self.model.head.decode((heat_a + heat_b) * 0.5)
                samples = self.model.add_pred_to_datasample(preds, None, samples)
        kps = np.stack([s.pred_instances.keypoints[0] for s in samples]).astype(np.float64)
        scores = np.stack([s.pred_instances.keypoint_scores[0] for s in samples]).astype(np.float64)
        return kps, np.clip(np.nan_to_num(scores), 0.0, 1.0)

    def __repr__(self) -> str:
        two = " + " + type(self.second.backbone).__name__ if self.second is not None else ""
        return f"MMPoseEstimator({type(self.model.backbone).__name__}{two}, device={self.device!r})"
