"""Synthetic crowd videos with exact ground truth.

People are articulated COCO-17 figures with distinct clothes walking across a
tiled floor in perspective; they enter and leave the frame at different times,
cross each other and occlude one another. Every frame comes with exact boxes,
visibilities and keypoints computed from the rendered masks, written as
MOTChallenge ``gt.txt`` and PoseTrack18 JSON next to an H.264 ``video.mp4``::

    from fiftyone_posetrack.synth import render_crowd

    result = render_crowd("/tmp/crowd", people=12, frames=150, seed=0)
    result.video_path, result.gt_path, result.posetrack_path
    result.boxes        # (F, P, 4) [x1, y1, x2, y2] pixels, NaN when out of view
    result.keypoints    # (F, P, 17, 2) pixels; result.keypoint_flags (F, P, 17)

Modules: :mod:`.camera` (floor projection), :mod:`.people` (appearance and
walking body), :mod:`.scene` (walkers, trajectories, background),
:mod:`.render` (drawing, masks, visibility), :mod:`.writer` (ffmpeg H.264,
seqinfo), :mod:`.crowd` (the whole sequence).
"""

from fiftyone_posetrack.synth.camera import Camera
from fiftyone_posetrack.synth.crowd import (
    RenderedFrame,
    SynthResult,
    iter_frames,
    render_crowd,
    render_frame,
    render_scene,
)
from fiftyone_posetrack.synth.people import Appearance, random_appearances
from fiftyone_posetrack.synth.render import FrameTruth
from fiftyone_posetrack.synth.scene import Scene, Walker, crossing_walker, random_scene

__all__ = [
    "Appearance",
    "Camera",
    "FrameTruth",
    "RenderedFrame",
    "Scene",
    "SynthResult",
    "Walker",
    "crossing_walker",
    "iter_frames",
    "random_appearances",
    "random_scene",
    "render_crowd",
    "render_frame",
    "render_scene",
]
