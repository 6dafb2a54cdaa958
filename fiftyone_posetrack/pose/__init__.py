"""Top-down pose estimation and temporal pose smoothing.

Build an estimator from a model spec string::

    from fiftyone_posetrack.pose import make_pose_estimator

    pose = make_pose_estimator("movenet-tflite:models/movenet/lightning_int8.tflite")
    keypoints, scores = pose.estimate(frame_bgr, boxes_xyxy)   # (N, 17, 2) px, (N, 17)

Backends: ``rtmpose-onnx`` (:mod:`.onnx_rtmpose`), ``movenet-tflite``
(:mod:`.tflite_movenet`), ``mmpose`` (the OpenMMLab backend, when installed).
Box crops and their inverse live in :mod:`.crops`; optical-flow and One-Euro
smoothing of the poses of tracks in :mod:`.smoothing`.
"""

from fiftyone_posetrack.pose.base import (
    PoseEstimator,
    available_pose_estimators,
    make_pose_estimator,
    register_pose_estimator,
)

__all__ = [
    "PoseEstimator",
    "available_pose_estimators",
    "make_pose_estimator",
    "register_pose_estimator",
]
