"""What FiftyOne's built-in Model Evaluation panel needs from our evaluation runs.

The panel (FiftyOne 1.22, ``plugins/panels/model_evaluation``) lists every
evaluation run with stored results and, when one is opened, reads it as a
``classification``, ``detection`` or ``segmentation`` run; for any other
``config.type`` its ``get_evaluation_data`` returns None and the panel
crashes (``'NoneType' object has no attribute 'get'``). No type is skipped,
so our runs are ``detection`` runs (``config.type``) and their results carry
the data the panel reads, as FiftyOne's own detection results do:

- ``ytrue`` / ``ypred`` / ``ious`` / ``confs`` / ``ytrue_ids`` / ``ypred_ids``:
  one entry per matched pair, unmatched prediction (false positive) and
  unmatched ground truth (miss), class ``"person"`` or :attr:`missing`; read
  from the per-box marks a tracking run writes (``<key>`` = tp/fp/fn,
  ``<key>_id``, ``<key>_iou``), so runs stored before this module get them
  too; runs without per-box marks (pose and detection AP runs) have none;
- ``classes``, ``missing``, ``_confusion_matrix()``: FiftyOne's own
  :class:`fiftyone.utils.eval.detection.DetectionResults` computes them;
- ``custom_metrics``: our overall metrics (MOTA, IDF1, HOTA, AP, ...), shown
  by the panel in its metric table;
- ``report()`` stays our text table, but also answers ``.get(class)`` with
  the per-class precision / recall / F1 / support the panel reads.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

__all__ = ["MISSING", "ModelEvaluationPanelData", "TextReport"]

MISSING = "(none)"
#: overall metrics shown as the panel's custom metrics: key -> (label, lower is better)
CUSTOM_METRICS = {
    "mota": ("MOTA", False), "idf1": ("IDF1", False), "hota": ("HOTA", False), "idsw": ("ID switches", True),
    "ap": ("AP", False), "ap50": ("AP50", False), "lamr": ("Log-average miss rate", True),
    "pt_ap": ("PoseTrack AP", False), "pt_mota": ("PoseTrack MOTA", False),
}  # fmt: skip


class TextReport(str):
    """Our plain-text report that also reads as FiftyOne's per-class report dict (``.get``)."""

    def __new__(cls, text: str, per_class: dict):
        obj = super().__new__(cls, text)
        obj.per_class = per_class
        return obj

    def get(self, key, default=None):
        return self.per_class.get(key, default)


class ModelEvaluationPanelData:
    """Mixin of :class:`~fiftyone_posetrack.fo.evaluation.base.PosetrackEvaluationResults` (see the module docs)."""

    missing = MISSING

    @property
    def classes(self):
        return np.array(["person"])

    def _box_matches(self) -> list[tuple]:
        """``(gt_label, pred_label, iou, confidence, gt_id, pred_id)`` from the stored per-box marks."""
        config, key = self.config, self.key
        samples = getattr(self, "samples", None)
        if samples is None or key is None:
            return []
        pred, gt = config.pred_field, config.gt_field
        if samples.get_field(f"{pred}.detections.{key}") is None or samples.get_field(f"{gt}.detections.{key}") is None:
            return []  # not a run with per-box marks
        from fiftyone_posetrack.fo.labels import read_videos

        pred_name, gt_name = pred[len("frames.") :], gt[len("frames.") :]
        matches, misses = [], []  # predictions first, then the misses (the order FiftyOne's results keep)
        for video in read_videos(samples, [gt_name, pred_name]):  # indexed cursor, one video at a time
            for dets in video.labels[pred_name]:
                for d in dets.detections if dets is not None else []:
                    st, m, iou = getattr(d, key), getattr(d, f"{key}_id"), getattr(d, f"{key}_iou")
                    conf = d.confidence
                    conf = None if conf is None or not math.isfinite(conf) else float(conf)
                    if st == "tp":
                        matches.append(("person", "person", None if iou is None else float(iou), conf, m, d.id))
                    elif st == "fp":
                        matches.append((None, "person", None, conf, None, d.id))
            for dets in video.labels[gt_name]:
                for d in dets.detections if dets is not None else []:
                    if getattr(d, key) == "fn":
                        misses.append(("person", None, None, None, d.id, None))
        return matches + misses

    @cached_property
    def _fo_detection_results(self):
        from fiftyone.utils.eval.detection import DetectionResults

        return DetectionResults(
            getattr(self, "samples", None), self.config, self.key, self._box_matches(),
            classes=["person"], missing=MISSING,
        )  # fmt: skip

    @property
    def ytrue(self):
        return self._fo_detection_results.ytrue

    @property
    def ypred(self):
        return self._fo_detection_results.ypred

    @property
    def ious(self):
        return self._fo_detection_results.ious

    @property
    def confs(self):
        return self._fo_detection_results.confs

    @property
    def ytrue_ids(self):
        return self._fo_detection_results.ytrue_ids

    @property
    def ypred_ids(self):
        return self._fo_detection_results.ypred_ids

    def _confusion_matrix(self, *args, **kwargs):
        return self._fo_detection_results._confusion_matrix(*args, **kwargs)

    def per_class_report(self) -> dict:
        """FiftyOne's per-class report of the box matches (``{}`` without marks)."""
        if not len(self.ytrue):
            return {}
        return self._fo_detection_results.report()

    @property
    def custom_metrics(self) -> dict:
        overall = (getattr(self, "metrics_by_video", None) or {}).get("OVERALL") or {}
        out = {}
        for key, (label, lower) in CUSTOM_METRICS.items():
            v = overall.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[f"posetrack/{key}"] = {"key": key, "value": float(v), "label": label, "lower_is_better": lower}
        return out
