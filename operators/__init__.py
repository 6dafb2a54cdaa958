"""FiftyOne plugin ``@posetrack/pose-tracking``: operators for every pipeline stage, and a panel.

The operators are thin: they read their parameters, call
:mod:`fiftyone_posetrack` and report. Each one is listed in ``fiftyone.yml``
(FiftyOne silently skips unlisted operators), in the order a user needs
them: import -> run -> evaluate (and look at the failures) -> export. The
"Pose tracking" panel (:mod:`.panel`) lays out an evaluation. See
``docs/operators.md``.
"""

from .data import ImportVideos
from .evaluation import EvaluatePoses, EvaluateTracking, ExportCOCOKeypoints
from .formats import ExportMOT, ExportPoseTrack, ImportMOT, ImportPoseTrack
from .panel import PoseTrackingPanel
from .postprocess import PostprocessTracks
from .quality import EvaluateTrackQuality
from .stages import DetectPersons, EstimatePoses, RunPoseTracking, SmoothPoses, TrackPersons
from .tune import TuneTracker
from .views import ShowEvaluationFailures, ShowTrack, ShowTrajectories

OPERATORS = (
    # import
    ImportVideos,
    ImportMOT,
    ImportPoseTrack,
    # run
    RunPoseTracking,
    DetectPersons,
    TrackPersons,
    PostprocessTracks,
    EstimatePoses,
    SmoothPoses,
    TuneTracker,
    # judge without ground truth, evaluate, and look at the results
    EvaluateTrackQuality,
    EvaluateTracking,
    EvaluatePoses,
    ShowEvaluationFailures,
    ShowTrack,
    ShowTrajectories,
    # export
    ExportMOT,
    ExportPoseTrack,
    ExportCOCOKeypoints,
)
PANELS = (PoseTrackingPanel,)


def register(p):
    for operator in OPERATORS + PANELS:
        p.register(operator)
