"""FiftyOne plugin ``@posetrack/pose-tracking``: operators for every pipeline stage.

The operators are thin: they read their parameters, call
:mod:`fiftyone_posetrack` and report. Each one is listed in ``fiftyone.yml``
(FiftyOne silently skips unlisted operators). See ``docs/operators.md``.
"""

from .data import ImportVideos
from .evaluation import EvaluatePoses, EvaluateTracking, ExportCOCOKeypoints
from .formats import ExportMOT, ExportPoseTrack, ImportMOT, ImportPoseTrack
from .postprocess import PostprocessTracks
from .stages import DetectPersons, EstimatePoses, RunPoseTracking, SmoothPoses, TrackPersons
from .tune import TuneTracker

OPERATORS = (
    ImportVideos,
    ImportMOT,
    ImportPoseTrack,
    DetectPersons,
    TrackPersons,
    PostprocessTracks,
    EstimatePoses,
    SmoothPoses,
    RunPoseTracking,
    TuneTracker,
    EvaluateTracking,
    EvaluatePoses,
    ExportMOT,
    ExportPoseTrack,
    ExportCOCOKeypoints,
)


def register(p):
    for operator in OPERATORS:
        p.register(operator)
