"""Evaluation numerics on plain arrays (no files, no database).

- :mod:`.mot`: CLEAR-MOT, IDF1 (py-motmetrics) and HOTA (TrackEval) on MOT arrays
- :mod:`.detection`: per-frame person detection AP (pycocotools) and
  log-average miss rate
- :mod:`.keypoints`: COCO / CrowdPose OKS keypoint AP (xtcocotools or pycocotools)
- :mod:`.posetrack`: PoseTrack per-joint AP and MOTA (poseval's definitions)

Submodules import their heavy dependencies lazily.
"""
