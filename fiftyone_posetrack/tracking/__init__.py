"""The tracking stage: Kalman trackers with motion and appearance association.

::

    from fiftyone_posetrack.tracking import make_tracker

    tracker = make_tracker("deepsort")          # or "bytetrack", "sort"
    tracks = tracker.update(frame_detections)   # FrameTracks, ids from 1

Modules: :mod:`.base` (interface, registry), :mod:`.kalman`, :mod:`.matching`,
:mod:`.deepsort`, :mod:`.bytetrack`, :mod:`.cmc` (camera motion),
:mod:`.box_smoothing` (optical-flow box smoothing), :mod:`.run` (MOT arrays)
and :mod:`.tune` (parameter grid search).
"""

from fiftyone_posetrack.tracking.base import (
    Tracker,
    available_trackers,
    make_tracker,
    register_tracker,
    tracker_params,
)

__all__ = ["Tracker", "available_trackers", "make_tracker", "register_tracker", "tracker_params"]
