"""Evaluation of video datasets inside FiftyOne: stored runs, per-label marks, views, plots.

- :mod:`.tracking`: :func:`evaluate_tracking` (MOTA, IDF1, HOTA, ... and
  tp/fp/fn/ID-switch marks on every box)
- :mod:`.detection`: :func:`evaluate_person_detection` (COCO AP, AP50 and the
  log-average miss rate)
- :mod:`.poses`: :func:`evaluate_poses` (OKS AP, PoseTrack per-joint AP and
  MOTA) and :func:`export_coco_keypoints`
- :mod:`.views`: views to the failures (ID-switch frames, FP/FN patches, worst
  tracks)
- :mod:`.plots`: PNG plots of the results

The numbers come from :mod:`fiftyone_posetrack.eval`; this package only reads
labels, converts coordinates and stores runs.
"""

from fiftyone_posetrack.fo.evaluation.detection import (
    DetectionEvaluation,
    DetectionEvaluationConfig,
    DetectionEvaluationResults,
    evaluate_person_detection,
)
from fiftyone_posetrack.fo.evaluation.plots import plot_errors_over_time, plot_joint_ap
from fiftyone_posetrack.fo.evaluation.poses import (
    PoseEvaluation,
    PoseEvaluationConfig,
    PoseEvaluationResults,
    evaluate_poses,
    export_coco_keypoints,
)
from fiftyone_posetrack.fo.evaluation.tracking import (
    TrackingEvaluation,
    TrackingEvaluationConfig,
    TrackingEvaluationResults,
    evaluate_tracking,
)
from fiftyone_posetrack.fo.evaluation.views import (
    TrackErrors,
    fn_patches,
    fp_patches,
    id_switch_frames,
    worst_tracks,
)

__all__ = [
    "DetectionEvaluation",
    "DetectionEvaluationConfig",
    "DetectionEvaluationResults",
    "PoseEvaluation",
    "PoseEvaluationConfig",
    "PoseEvaluationResults",
    "TrackErrors",
    "TrackingEvaluation",
    "TrackingEvaluationConfig",
    "TrackingEvaluationResults",
    "evaluate_person_detection",
    "evaluate_poses",
    "evaluate_tracking",
    "export_coco_keypoints",
    "fn_patches",
    "fp_patches",
    "id_switch_frames",
    "plot_errors_over_time",
    "plot_joint_ap",
    "worst_tracks",
]
